import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { withFlag, withItemFlags } from '../../src/proxy/json-flags.js';
import { authHeader, newLabId, startTestApp, statementsDuring, type TestApp } from '../support/fixtures.js';

let sim: LegacySimulator;
let t: TestApp;

beforeAll(async () => {
  sim = await startLegacySimulator();
  t = await startTestApp({ LEGACY_PY3_URL: sim.py3Url, LEGACY_TIMEOUT_MS: '2000' });
});
afterAll(async () => {
  await t.close();
  await sim.close();
});

/** A patient, bill or report id no other test uses (the legacy tables are shared across runs). */
const newId = () => newLabId();

interface RowSpec {
  labId: number;
  userDetailsId: number;
  billId?: number;
  orgId?: number | null;
  resolved?: boolean;
}

/** Inserts unresolved (or resolved) rows: patient rows on email, bill rows on sample_collector. */
async function insertRows(rows: readonly RowSpec[]): Promise<void> {
  const values = rows
    .map(() => "(?, ?, ?, ?, ?, ?, 'NA', ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))")
    .join(', ');
  const params = rows.flatMap((r) => [
    r.labId,
    r.orgId ?? null,
    r.userDetailsId,
    r.billId ?? null,
    r.billId ? 9 : 1,
    r.billId ? 'sample_collector' : 'email',
    r.billId ? 'bill' : 'patient',
    r.resolved ? 1 : 0,
  ]);
  await t.db
    .em()
    .getConnection()
    .execute(
      `INSERT INTO LabMissingDetails
         (lab_id, org_id, user_details_id, bill_id, field_id, field_name, field_value, field_module, is_resolved, created_at, updated_at)
       VALUES ${values}`,
      params,
    );
}

/** Runs `fn` and returns the SQL it sent that reads LabMissingDetails. */
async function rowQueriesDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const queries = await statementsDuring(t.db, fn);
  return queries.filter((q) => /LabMissingDetails(?!Configuration)/.test(q));
}

async function untouchedCount(path: string, reason: string): Promise<number> {
  const metrics = await t.app.inject({ url: '/metrics' });
  const line = metrics.body
    .split('\n')
    .find((l) =>
      l.startsWith(`missing_details_proxy_untouched_answers_total{path="${path}",reason="${reason}"}`),
    );
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('GET /api-v3/registration/patients/{user_details_id} (flagged)', () => {
  it('adds has_missing_fields: true with an unresolved patient or bill row, false otherwise', async () => {
    const labId = newLabId();
    const [withPatientRow, withBillRow, resolvedOnly, clean] = [newId(), newId(), newId(), newId()];
    await insertRows([
      { labId, userDetailsId: withPatientRow },
      { labId, userDetailsId: withBillRow, billId: newId() },
      { labId, userDetailsId: resolvedOnly, resolved: true },
    ]);
    const headers = await authHeader({ labId, userId: 7 });
    for (const [id, expected] of [
      [withPatientRow, true],
      [withBillRow, true],
      [resolvedOnly, false],
      [clean, false],
    ] as const) {
      sim.state.patients.set(id, { user_details_id: id, full_name: `Patient ${id}`, org_id: null });
      const res = await t.app.inject({ url: `/api-v3/registration/patients/${id}`, headers });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        user_details_id: id,
        full_name: `Patient ${id}`,
        org_id: null,
        has_missing_fields: expected,
      });
    }
  });

  it('only sees rows in the caller’s scope: its lab, and its organization when limited to one', async () => {
    const labId = newLabId();
    const patientId = newId();
    await insertRows([{ labId, userDetailsId: patientId, orgId: 9 }]);
    sim.state.patients.set(patientId, { user_details_id: patientId, org_id: 9 });
    const flagFor = async (claims: { labId: number; orgId?: number }) =>
      (
        await t.app.inject({
          url: `/api-v3/registration/patients/${patientId}`,
          headers: await authHeader({ ...claims, userId: 7 }),
        })
      ).json().has_missing_fields;
    expect(await flagFor({ labId })).toBe(true);
    expect(await flagFor({ labId, orgId: 9 })).toBe(true);
    expect(await flagFor({ labId, orgId: 10 })).toBe(false);
    expect(await flagFor({ labId: newLabId() })).toBe(false);
  });

  it('passes the read through untouched without a principal, and counts it', async () => {
    const labId = newLabId();
    const patientId = newId();
    await insertRows([{ labId, userDetailsId: patientId }]);
    sim.state.patients.set(patientId, { user_details_id: patientId, full_name: 'No Principal' });
    const before = await untouchedCount('patient_read', 'no_principal');
    const res = await t.app.inject({ url: `/api-v3/registration/patients/${patientId}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(JSON.stringify({ user_details_id: patientId, full_name: 'No Principal' }));
    expect(await untouchedCount('patient_read', 'no_principal')).toBe(before + 1);
  });

  it('passes legacy’s 404 through untouched', async () => {
    const res = await t.app.inject({
      url: `/api-v3/registration/patients/${newId()}`,
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ detail: 'Not found.' });
  });
});

describe('GET /api-v3/finance/bill/{labBillId} (flagged)', () => {
  it('is true when the bill has an unresolved bill row or its patient an unresolved patient row', async () => {
    const labId = newLabId();
    const [flaggedBill, billOfFlaggedPatient, cleanBill, billWithOtherBillsRow] = [
      newId(),
      newId(),
      newId(),
      newId(),
    ];
    const [patientA, flaggedPatient, patientC] = [newId(), newId(), newId()];
    await insertRows([
      { labId, userDetailsId: patientA, billId: flaggedBill },
      { labId, userDetailsId: flaggedPatient },
      { labId, userDetailsId: patientC, billId: newId() },
    ]);
    const headers = await authHeader({ labId, userId: 7 });
    for (const [billId, patientId, expected] of [
      [flaggedBill, patientA, true],
      [billOfFlaggedPatient, flaggedPatient, true],
      [cleanBill, patientA, false],
      [billWithOtherBillsRow, patientC, false],
    ] as const) {
      sim.state.bills.set(billId, { bill_id: billId, user_details_id: patientId, sample_collector: 'Ravi' });
      const res = await t.app.inject({ url: `/api-v3/finance/bill/${billId}`, headers });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        bill_id: billId,
        user_details_id: patientId,
        sample_collector: 'Ravi',
        has_missing_fields: expected,
      });
    }
  });

  it('passes the read through untouched without a principal', async () => {
    const billId = newId();
    sim.state.bills.set(billId, { bill_id: billId, user_details_id: 5 });
    const res = await t.app.inject({ url: `/api-v3/finance/bill/${billId}` });
    expect(res.body).toBe(JSON.stringify({ bill_id: billId, user_details_id: 5 }));
  });
});

describe('GET /api-v3/reports and /api-v3/reports/{id} (flagged)', () => {
  it('flags each of 200 listed reports by its patient with one query', async () => {
    const labId = newLabId();
    const patients = Array.from({ length: 100 }, () => newId());
    const flagged = new Set(patients.filter((_, i) => i % 3 === 0));
    await insertRows([...flagged].map((userDetailsId) => ({ labId, userDetailsId })));
    sim.state.reports.clear();
    for (let i = 0; i < 200; i++) {
      const reportId = i + 1;
      sim.state.reports.set(reportId, {
        report_id: reportId,
        user_details_id: patients[i % patients.length]!,
        status: 'final',
      });
    }
    const headers = await authHeader({ labId, userId: 7 });
    let body: {
      results: Array<{ report_id: number; user_details_id: number; has_missing_fields: boolean }>;
    } = {
      results: [],
    };
    const queries = await rowQueriesDuring(async () => {
      const res = await t.app.inject({ url: '/api-v3/reports?status=final', headers });
      expect(res.statusCode).toBe(200);
      body = res.json();
    });
    expect(queries).toHaveLength(1);
    expect(body.results).toHaveLength(200);
    for (const report of body.results) {
      expect(report).toEqual({
        report_id: report.report_id,
        user_details_id: patients[(report.report_id - 1) % patients.length],
        status: 'final',
        has_missing_fields: flagged.has(report.user_details_id),
      });
    }
  });

  it('flags a single report by its patient', async () => {
    const labId = newLabId();
    const [flaggedPatient, cleanPatient] = [newId(), newId()];
    await insertRows([{ labId, userDetailsId: flaggedPatient }]);
    sim.state.reports.set(9001, { report_id: 9001, user_details_id: flaggedPatient });
    sim.state.reports.set(9002, { report_id: 9002, user_details_id: cleanPatient });
    const headers = await authHeader({ labId, userId: 7 });
    const flaggedReport = await t.app.inject({ url: '/api-v3/reports/9001', headers });
    expect(flaggedReport.json()).toEqual({
      report_id: 9001,
      user_details_id: flaggedPatient,
      has_missing_fields: true,
    });
    const cleanReport = await t.app.inject({ url: '/api-v3/reports/9002', headers });
    expect(cleanReport.json()).toEqual({
      report_id: 9002,
      user_details_id: cleanPatient,
      has_missing_fields: false,
    });
  });

  it('flags listed reports by a digit-string patient too, but not by a nested one, and replaces a flag legacy sent', async () => {
    const labId = newLabId();
    const [patient, nestedPatient, alreadyFlagged] = [newId(), newId(), newId()];
    await insertRows(
      [patient, nestedPatient, alreadyFlagged].map((userDetailsId) => ({ labId, userDetailsId })),
    );
    const reports = [
      { report_id: 1, user_details_id: String(patient) },
      { report_id: 2, user_details_id: 0, sample: { user_details_id: nestedPatient } },
      { report_id: 3, user_details_id: patient, note: 'say "}" \\' },
      { report_id: 4, user_details_id: alreadyFlagged, has_missing_fields: false },
    ];
    const headers = await authHeader({ labId, userId: 7 });
    const listOf = async (listed: readonly object[]) => {
      sim.state.reports.clear();
      for (const report of listed)
        sim.state.reports.set((report as { report_id: number }).report_id, report as never);
      const res = await t.app.inject({ url: '/api-v3/reports', headers });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(Number(res.headers['content-length'])).toBe(res.rawPayload.length);
      return res.json() as unknown;
    };
    const scanned = [
      { ...reports[0], has_missing_fields: true },
      reports[1],
      { ...reports[2], has_missing_fields: true },
    ];
    // Without an item legacy already flagged, the list is read from its text; with one, it is parsed.
    expect(await listOf(reports.slice(0, 3))).toEqual({ results: scanned });
    expect(await listOf(reports)).toEqual({
      results: [...scanned, { ...reports[3], has_missing_fields: true }],
    });
  });

  it('passes the list through untouched without a principal', async () => {
    sim.state.reports.clear();
    sim.state.reports.set(1, { report_id: 1, user_details_id: newId() });
    const res = await t.app.inject({ url: '/api-v3/reports' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(JSON.stringify({ results: [...sim.state.reports.values()] }));
  });
});

describe('GET /api-v3/reports when legacy answers odd JSON', () => {
  it('relays an answer that is not JSON or not a list untouched and counts why, with or without a principal', async () => {
    let body = '';
    const legacy = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => legacy.listen(0, '127.0.0.1', resolve));
    const odd = await startTestApp({
      LEGACY_PY3_URL: `http://127.0.0.1:${(legacy.address() as AddressInfo).port}`,
      LEGACY_TIMEOUT_MS: '2000',
    });
    try {
      const count = async (reason: string) => {
        const metrics = await odd.app.inject({ url: '/metrics' });
        const prefix = `missing_details_proxy_untouched_answers_total{path="reports_list",reason="${reason}"}`;
        const line = metrics.body.split('\n').find((l) => l.startsWith(prefix));
        return line ? Number(line.split(' ').at(-1)) : 0;
      };
      const headers = await authHeader({ labId: newLabId(), userId: 7 });
      const cases = [
        { text: '{"results":[{"user_details_id":1},]}', headers, reason: 'not_json' },
        { text: '{"results":[{"user_details_id":1},]}', headers: {}, reason: 'not_json' },
        { text: '{"results":{"user_details_id":1}}', headers, reason: 'unexpected_answer' },
        { text: '[{"user_details_id":1}]', headers, reason: 'unexpected_answer' },
        { text: '{"results":[{"user_details_id":1}]}', headers: {}, reason: 'no_principal' },
      ];
      for (const { text, headers: sent, reason } of cases) {
        body = text;
        const before = await count(reason);
        const res = await odd.app.inject({ url: '/api-v3/reports', headers: sent });
        expect(res.statusCode).toBe(200);
        expect(res.body).toBe(text);
        expect(await count(reason), text).toBe(before + 1);
      }
    } finally {
      await odd.close();
      await new Promise((resolve) => legacy.close(resolve));
    }
  });
});

describe('adding has_missing_fields keeps every other byte of legacy’s answer', () => {
  it('splices the flag into an object without reformatting numbers, escapes or whitespace', () => {
    const text =
      '{"amount": 250.0, "id": 9007199254740993, "name":"Ren\\u00e9e \\"R\\"", "tags":[{"a":1}]}\n';
    expect(withFlag(text, JSON.parse(text), true)).toBe(
      '{"amount": 250.0, "id": 9007199254740993, "name":"Ren\\u00e9e \\"R\\"", "tags":[{"a":1}],"has_missing_fields":true}\n',
    );
    expect(withFlag(' {} ', {}, false)).toBe(' {"has_missing_fields":false} ');
  });

  it('replaces a flag legacy already sent instead of duplicating it', () => {
    const text = '{"user_details_id":5,"has_missing_fields":false}';
    expect(JSON.parse(withFlag(text, JSON.parse(text), true))).toEqual({
      user_details_id: 5,
      has_missing_fields: true,
    });
  });

  it('flags list items in place, skipping items without a flag and nested objects', () => {
    const text =
      '{"count":3, "results": [ {"report_id":1,"user_details_id":5,"meta":{"x":"}"}}, 7, {}, {"report_id":2} ], "next":null}';
    const answer = JSON.parse(text);
    expect(withItemFlags(text, answer, 'results', [true, undefined, false, undefined])).toBe(
      '{"count":3, "results": [ {"report_id":1,"user_details_id":5,"meta":{"x":"}"},"has_missing_fields":true}, 7, {"has_missing_fields":false}, {"report_id":2} ], "next":null}',
    );
  });
});
