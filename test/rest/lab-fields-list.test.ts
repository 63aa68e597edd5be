import { serializerCompiler } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAnswer } from '../../src/rest/lab-fields.routes.js';
import { encodeCursor } from '../../src/services/lab-fields.service.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

const URL_PATH = '/api-v3/account/missing-details/lab-fields';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

interface RowSpec {
  labId: number;
  orgId?: number | null;
  userDetailsId?: number;
  billId?: number | null;
  fieldId?: number;
  fieldName?: string;
  fieldValue?: string;
  fieldModule?: 'patient' | 'bill';
  /** `YYYY-MM-DD HH:MM:SS.ffffff`, UTC: inserted as text so that the microseconds survive. */
  createdAt: string;
  resolved?: { at: string; doctorId?: number; labUserId?: number };
}

const COLUMNS = [
  'lab_id',
  'org_id',
  'user_details_id',
  'bill_id',
  'field_id',
  'config_id',
  'field_name',
  'field_value',
  'field_module',
  'is_resolved',
  'resolved_at',
  'resolved_by_doctor_id',
  'resolved_by_lab_user_id',
  'created_at',
  'updated_at',
];

let nextPatient = 1_000_000;

/**
 * Inserts rows with one statement and returns their ids, in the order given. Each row gets a patient
 * of its own unless it names one: the open-row guard allows one open row per (patient, bill, field).
 */
async function insertRows(rows: RowSpec[]): Promise<number[]> {
  const em = t.db.em();
  const values = rows.flatMap((r) => [
    r.labId,
    r.orgId ?? null,
    r.userDetailsId ?? nextPatient++,
    r.billId ?? null,
    r.fieldId ?? 1,
    null,
    r.fieldName ?? 'email',
    r.fieldValue ?? 'noemail@lab.in',
    r.fieldModule ?? 'patient',
    r.resolved ? 1 : 0,
    r.resolved?.at ?? null,
    r.resolved?.doctorId ?? null,
    r.resolved?.labUserId ?? null,
    r.createdAt,
    r.createdAt,
  ]);
  const tuple = `(${COLUMNS.map(() => '?').join(', ')})`;
  const result = await em.execute<{ insertId: number }>(
    `INSERT INTO LabMissingDetails (${COLUMNS.join(', ')}) VALUES ${rows.map(() => tuple).join(', ')}`,
    values,
    'run',
  );
  const labs = [...new Set(rows.map((r) => r.labId))];
  const inserted = await em.execute<{ id: number }[]>(
    `SELECT id FROM LabMissingDetails WHERE id >= ? AND lab_id IN (${labs.map(() => '?').join(', ')}) ORDER BY id`,
    [result.insertId, ...labs],
  );
  return inserted.map((r) => Number(r.id));
}

async function list(
  claims: { labId: number; orgId?: number | null; userId?: number },
  query: Record<string, string> = {},
) {
  const res = await t.app.inject({
    method: 'GET',
    url: URL_PATH,
    query,
    headers: await authHeader({ userId: 7, ...claims }),
  });
  return res;
}

async function listIds(claims: { labId: number; orgId?: number | null }, query: Record<string, string> = {}) {
  const res = await list(claims, query);
  expect(res.statusCode, res.body).toBe(200);
  return (res.json().results as { id: number }[]).map((r) => r.id);
}

describe('GET /api-v3/account/missing-details/lab-fields', () => {
  it("lists the caller's unresolved rows newest first, in the contract's snake_case shape", async () => {
    const labId = newLabId();
    const [older, newer, resolved] = await insertRows([
      { labId, orgId: 9, userDetailsId: 123, createdAt: '2024-03-01 10:00:00.123456' },
      {
        labId,
        orgId: null,
        userDetailsId: 124,
        billId: 456,
        fieldId: 7,
        fieldName: 'insurance',
        fieldValue: 'Self pay (missing)',
        fieldModule: 'bill',
        createdAt: '2024-03-02 08:30:00.000001',
      },
      {
        labId,
        createdAt: '2024-03-03 00:00:00.000000',
        resolved: { at: '2024-03-04 12:00:00.654321', doctorId: 77 },
      },
    ]);
    const res = await list({ labId });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      results: [
        {
          id: newer,
          user_details_id: 124,
          bill_id: 456,
          org_id: null,
          field_id: 7,
          field_name: 'insurance',
          field_value: 'Self pay (missing)',
          field_module: 'bill',
          is_resolved: false,
          created_at: '2024-03-02T08:30:00.000001Z',
          resolved_at: null,
          resolved_by_doctor_id: null,
          resolved_by_lab_user_id: null,
          detected_as: 'placeholder',
          assignee_user_id: null,
          due_at: null,
          is_overdue: false,
        },
        {
          id: older,
          user_details_id: 123,
          bill_id: null,
          org_id: 9,
          field_id: 1,
          field_name: 'email',
          field_value: 'noemail@lab.in',
          field_module: 'patient',
          is_resolved: false,
          created_at: '2024-03-01T10:00:00.123456Z',
          resolved_at: null,
          resolved_by_doctor_id: null,
          resolved_by_lab_user_id: null,
          detected_as: 'placeholder',
          assignee_user_id: null,
          due_at: null,
          is_overdue: false,
        },
      ],
      next_cursor: null,
    });

    for (const flag of ['true', '1']) {
      const resolvedPage = await list({ labId }, { is_resolved: flag });
      expect(resolvedPage.json().results).toEqual([
        expect.objectContaining({
          id: resolved,
          is_resolved: true,
          resolved_at: '2024-03-04T12:00:00.654321Z',
          resolved_by_doctor_id: 77,
          resolved_by_lab_user_id: null,
        }),
      ]);
    }
    expect(await listIds({ labId }, { is_resolved: '0' })).toEqual([newer, older]);
    expect(await listIds({ labId }, { is_resolved: 'false' })).toEqual([newer, older]);
  });

  it('writes exactly the bytes its described answer schema would, on open and resolved pages', async () => {
    const labId = newLabId();
    await insertRows([
      { labId, orgId: 9, billId: 4, fieldValue: 'quote " and \\ é', createdAt: '2024-03-01 10:00:00.123456' },
      { labId, createdAt: '2024-03-02 00:00:00.000000', resolved: { at: '2024-03-04 12:00:00.654321' } },
      {
        labId,
        createdAt: '2024-03-03 00:00:00.000000',
        resolved: { at: '2024-03-05 12:00:00.000001', labUserId: 7 },
      },
    ]);
    const described = serializerCompiler({ schema: listAnswer, method: 'GET', url: URL_PATH });
    const queries: Record<string, string>[] = [
      {},
      { is_resolved: 'true' },
      { is_resolved: 'true', limit: '1' },
    ];
    for (const query of queries) {
      const res = await list({ labId }, query);
      expect(res.statusCode).toBe(200);
      expect(res.json().results.length).toBeGreaterThan(0);
      expect(res.body).toBe(described(res.json()));
    }
  });

  it('filters by patient, bill, field module and one or several field ids', async () => {
    const labId = newLabId();
    const at = (n: number) => `2024-04-01 10:00:0${n}.000000`;
    const [email, mobile, insurance, group, otherPatient] = await insertRows([
      { labId, userDetailsId: 500, fieldId: 1, fieldName: 'email', createdAt: at(1) },
      { labId, userDetailsId: 500, fieldId: 2, fieldName: 'mobile', createdAt: at(2) },
      {
        labId,
        userDetailsId: 500,
        billId: 900,
        fieldId: 7,
        fieldName: 'insurance',
        fieldModule: 'bill',
        createdAt: at(3),
      },
      {
        labId,
        userDetailsId: 500,
        billId: 901,
        fieldId: 8,
        fieldName: 'group',
        fieldModule: 'bill',
        createdAt: at(4),
      },
      { labId, userDetailsId: 501, fieldId: 1, fieldName: 'email', createdAt: at(5) },
    ]);
    expect(await listIds({ labId }, { user_details_id: '500' })).toEqual([group, insurance, mobile, email]);
    expect(await listIds({ labId }, { user_details_id: '501' })).toEqual([otherPatient]);
    expect(await listIds({ labId }, { bill_id: '900' })).toEqual([insurance]);
    expect(await listIds({ labId }, { field_module: 'bill' })).toEqual([group, insurance]);
    expect(await listIds({ labId }, { field_module: 'patient' })).toEqual([otherPatient, mobile, email]);
    expect(await listIds({ labId }, { field_id: '1' })).toEqual([otherPatient, email]);
    expect(await listIds({ labId }, { field_id: '1,7' })).toEqual([otherPatient, insurance, email]);
    expect(await listIds({ labId }, { field_id: '2, 8,2' })).toEqual([group, mobile]);
    const repeated = await t.app.inject({
      url: `${URL_PATH}?field_id=2&field_id=7`,
      headers: await authHeader({ labId, userId: 7 }),
    });
    expect(repeated.json().results.map((r: { id: number }) => r.id)).toEqual([insurance, mobile]);
    expect(
      await listIds({ labId }, { user_details_id: '500', field_module: 'patient', field_id: '2' }),
    ).toEqual([mobile]);
    expect(await listIds({ labId }, { user_details_id: '999' })).toEqual([]);
  });

  it('takes a plain created_from / created_to date as the whole UTC day, both ends inclusive', async () => {
    const labId = newLabId();
    const [dayBefore, firstInstant, lastInstant, dayAfter] = await insertRows([
      { labId, createdAt: '2024-02-29 23:59:59.999999' },
      { labId, createdAt: '2024-03-01 00:00:00.000000' },
      { labId, createdAt: '2024-03-01 23:59:59.999999' },
      { labId, createdAt: '2024-03-02 00:00:00.000000' },
    ]);
    expect(await listIds({ labId }, { created_from: '2024-03-01', created_to: '2024-03-01' })).toEqual([
      lastInstant,
      firstInstant,
    ]);
    expect(await listIds({ labId }, { created_from: '2024-03-01' })).toEqual([
      dayAfter,
      lastInstant,
      firstInstant,
    ]);
    expect(await listIds({ labId }, { created_to: '2024-02-29' })).toEqual([dayBefore]);
    expect(await listIds({ labId }, { created_from: '2024-03-02', created_to: '2024-03-02' })).toEqual([
      dayAfter,
    ]);
  });

  it('takes date-times as instants at microsecond precision, in UTC unless they carry an offset', async () => {
    const labId = newLabId();
    const [justBefore, exact, justAfter] = await insertRows([
      { labId, createdAt: '2024-03-01 10:00:00.123455' },
      { labId, createdAt: '2024-03-01 10:00:00.123456' },
      { labId, createdAt: '2024-03-01 10:00:00.123457' },
    ]);
    expect(await listIds({ labId }, { created_to: '2024-03-01T10:00:00.123456Z' })).toEqual([
      exact,
      justBefore,
    ]);
    expect(await listIds({ labId }, { created_from: '2024-03-01T10:00:00.123456Z' })).toEqual([
      justAfter,
      exact,
    ]);
    expect(
      await listIds(
        { labId },
        { created_from: '2024-03-01T10:00:00.123456', created_to: '2024-03-01T10:00:00.123456' },
      ),
    ).toEqual([exact]);
    // 15:30:00.123456 at +05:30 is 10:00:00.123456 UTC; -01:00 moves the other way.
    expect(
      await listIds(
        { labId },
        { created_from: '2024-03-01T15:30:00.123456+05:30', created_to: '2024-03-01T09:00:00.123456-01:00' },
      ),
    ).toEqual([exact]);
    expect(await listIds({ labId }, { created_to: '2024-03-01T10:00Z' })).toEqual([]);
    expect(await listIds({ labId }, { created_from: '2024-03-01T10:00:01Z' })).toEqual([]);
    // A date-time may also close the range that a plain date opens on the same day.
    expect(
      await listIds({ labId }, { created_from: '2024-03-01', created_to: '2024-03-01T10:00:00.123455Z' }),
    ).toEqual([justBefore]);
    // Fewer than six fractional digits are padded: .12346 is .123460.
    expect(await listIds({ labId }, { created_to: '2024-03-01T10:00:00.12346Z' })).toEqual([
      justAfter,
      exact,
      justBefore,
    ]);
  });

  it('pages through 1,000 rows that share their created_at to the microsecond, visiting each exactly once', async () => {
    const labId = newLabId();
    const rows: RowSpec[] = [];
    for (let i = 0; i < 1000; i++) {
      // Three instants one microsecond apart, which a JS Date cannot tell apart.
      const micros = i % 5 === 0 ? '500001' : i % 5 === 1 ? '499999' : '500000';
      rows.push({ labId, userDetailsId: 1000 + i, createdAt: `2024-05-05 05:05:05.${micros}` });
    }
    const ids = await insertRows(rows);
    const expected = ids
      .map((id, i) => ({ id, createdAt: rows[i]!.createdAt }))
      .sort((a, b) => (a.createdAt === b.createdAt ? b.id - a.id : a.createdAt < b.createdAt ? 1 : -1))
      .map((r) => r.id);

    for (const limit of [200, 37]) {
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: Record<string, string> = { limit: String(limit), ...(cursor ? { cursor } : {}) };
        const res = await list({ labId }, query);
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json() as { results: { id: number }[]; next_cursor: string | null };
        expect(body.results.length).toBeLessThanOrEqual(limit);
        seen.push(...body.results.map((r) => r.id));
        cursor = body.next_cursor;
        pages++;
      } while (cursor !== null);
      expect(pages).toBe(Math.ceil(1000 / limit));
      expect(seen).toEqual(expected);
    }
  });

  it('keeps the filters while paging and answers null next_cursor on an exactly full last page', async () => {
    const labId = newLabId();
    const rows: RowSpec[] = [];
    for (let i = 0; i < 10; i++) {
      rows.push({ labId, fieldId: i % 2 ? 2 : 1, createdAt: `2024-06-01 00:00:0${i}.000000` });
    }
    const ids = await insertRows(rows);
    const emails = ids.filter((_, i) => i % 2 === 0).reverse();
    const first = (await list({ labId }, { field_id: '1', limit: '3' })).json();
    expect(first.results.map((r: { id: number }) => r.id)).toEqual(emails.slice(0, 3));
    const second = (await list({ labId }, { field_id: '1', limit: '3', cursor: first.next_cursor })).json();
    expect(second.results.map((r: { id: number }) => r.id)).toEqual(emails.slice(3, 5));
    expect(second.next_cursor).toBeNull();
    const exact = (await list({ labId }, { field_id: '1', limit: '5' })).json();
    expect(exact.results).toHaveLength(5);
    expect(exact.next_cursor).toBeNull();
  });

  it('defaults to 50 rows a page', async () => {
    const labId = newLabId();
    await insertRows(Array.from({ length: 51 }, () => ({ labId, createdAt: '2024-07-01 00:00:00.000000' })));
    const body = (await list({ labId })).json();
    expect(body.results).toHaveLength(50);
    expect(typeof body.next_cursor).toBe('string');
  });

  it("shows only the caller's lab, and only their organization when the principal has one", async () => {
    const labId = newLabId();
    const otherLab = newLabId();
    const [org9, org10, noOrg] = await insertRows([
      { labId, orgId: 9, userDetailsId: 123, createdAt: '2024-08-01 00:00:01.000000' },
      { labId, orgId: 10, userDetailsId: 123, fieldId: 2, createdAt: '2024-08-01 00:00:02.000000' },
      { labId, orgId: null, userDetailsId: 124, createdAt: '2024-08-01 00:00:03.000000' },
    ]);
    const [foreign] = await insertRows([
      { labId: otherLab, orgId: 9, createdAt: '2024-08-01 00:00:04.000000' },
    ]);
    expect(await listIds({ labId })).toEqual([noOrg, org10, org9]);
    expect(await listIds({ labId, orgId: 9 })).toEqual([org9]);
    expect(await listIds({ labId, orgId: 10 }, { user_details_id: '123' })).toEqual([org10]);
    expect(await listIds({ labId, orgId: 11 })).toEqual([]);
    expect(await listIds({ labId: otherLab })).toEqual([foreign]);
  });

  it('does not let a cursor from another lab reveal anything', async () => {
    const labId = newLabId();
    const [foreign] = await insertRows([{ labId: newLabId(), createdAt: '2024-08-02 00:00:00.000000' }]);
    const cursor = encodeCursor({ createdAt: '2030-01-01 00:00:00.000000', id: foreign! + 1 });
    expect(await listIds({ labId }, { cursor })).toEqual([]);
  });

  const valid = encodeCursor({ createdAt: '2024-01-01 00:00:00.000000', id: 5 });
  const b64 = (text: string) => Buffer.from(text).toString('base64url');
  it.each([
    ['is_resolved', { is_resolved: 'yes' }],
    ['is_resolved', { is_resolved: '' }],
    ['user_details_id', { user_details_id: 'abc' }],
    ['user_details_id', { user_details_id: '0' }],
    ['user_details_id', { user_details_id: '-4' }],
    ['user_details_id', { user_details_id: '99999999999999999999' }],
    ['bill_id', { bill_id: '1.5' }],
    ['bill_id', { bill_id: '' }],
    ['field_id', { field_id: '1,,2' }],
    ['field_id', { field_id: 'email' }],
    ['field_id', { field_id: '1,0' }],
    ['field_id', { field_id: Array.from({ length: 101 }, (_, i) => i + 1).join(',') }],
    ['field_module', { field_module: 'lab' }],
    ['created_from', { created_from: 'yesterday' }],
    ['created_from', { created_from: '2024-02-30' }],
    ['created_from', { created_from: '2023-02-29' }],
    ['created_from', { created_from: '2024-13-01' }],
    ['created_from', { created_from: '24-01-01' }],
    ['created_from', { created_from: '' }],
    ['created_to', { created_to: '2024-03-01T25:00:00Z' }],
    ['created_to', { created_to: '2024-03-01T10:60:00Z' }],
    ['created_to', { created_to: '2024-03-01T10:00:00.1234567Z' }],
    ['created_to', { created_to: '2024-03-01T10:00:00+24:00' }],
    ['created_to', { created_to: '2024-03-01 10:00:00' }],
    ['created_to', { created_to: '1717171717' }],
    ['created_to', { created_from: '2024-03-02', created_to: '2024-03-01' }],
    ['created_to', { created_from: '2024-03-01T10:00:00.000001Z', created_to: '2024-03-01T10:00:00Z' }],
    ['limit', { limit: '0' }],
    ['limit', { limit: '201' }],
    ['limit', { limit: 'ten' }],
    ['limit', { limit: '-1' }],
    ['cursor', { cursor: 'not a cursor!' }],
    ['cursor', { cursor: '' }],
    ['cursor', { cursor: valid.slice(0, -3) }],
    ['cursor', { cursor: `${valid}A` }],
    ['cursor', { cursor: b64('v1|2024-01-01 00:00:00|5') }],
    ['cursor', { cursor: b64('v1|2024-02-30 00:00:00.000000|5') }],
    ['cursor', { cursor: b64('v1|2024-01-01 00:00:00.000000|0') }],
    ['cursor', { cursor: b64('v1|2024-01-01 00:00:00.000000|5 OR 1=1') }],
    ['cursor', { cursor: b64('{"created_at":"2024-01-01","id":5}') }],
    ['lab_id', { lab_id: '3' }],
    ['org_id', { org_id: '9' }],
    ['offset', { offset: '10' }],
  ])('rejects a malformed %s with a 400 naming it (%j)', async (parameter, query) => {
    const res = await list({ labId: newLabId() }, query);
    expect(res.statusCode, res.body).toBe(400);
    const { error } = res.json();
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.issues.map((i: { path: string }) => i.path)).toContain(parameter);
    expect(error.message).toContain(parameter);
  });

  it('tells a client that forgot to encode the "+" of an offset what to do', async () => {
    const res = await t.app.inject({
      url: `${URL_PATH}?created_from=2024-03-01T10:00:00+05:30`,
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues[0]).toMatchObject({
      path: 'created_from',
      message: expect.stringContaining('%2B'),
    });
  });

  it('rejects a repeated single-valued parameter', async () => {
    const res = await t.app.inject({
      url: `${URL_PATH}?limit=5&limit=6`,
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues[0].path).toBe('limit');
  });

  it('answers 401 without a principal', async () => {
    const res = await t.app.inject({ url: URL_PATH });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('UNAUTHORIZED');
  });
});

describe('tRPC labFields.list', () => {
  const call = async (labId: number, input: unknown) =>
    t.app.inject({
      url: `/trpc/labFields.list${input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`}`,
      headers: await authHeader({ labId, userId: 7 }),
    });

  it('returns the same page in camelCase and pages with nextCursor', async () => {
    const labId = newLabId();
    const [first, second, third] = await insertRows([
      { labId, fieldId: 7, billId: 456, fieldModule: 'bill', createdAt: '2024-09-01 00:00:00.000001' },
      { labId, fieldId: 1, userDetailsId: 123, createdAt: '2024-09-01 00:00:00.000002' },
      { labId, fieldId: 2, createdAt: '2024-09-01 00:00:00.000003' },
    ]);
    const res = await call(labId, { limit: 2 });
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json().result.data;
    expect(page.results.map((r: { id: number }) => r.id)).toEqual([third, second]);
    expect(page.results[1]).toEqual({
      id: second,
      userDetailsId: 123,
      billId: null,
      orgId: null,
      fieldId: 1,
      fieldName: 'email',
      fieldValue: 'noemail@lab.in',
      fieldModule: 'patient',
      isResolved: false,
      createdAt: '2024-09-01T00:00:00.000002Z',
      resolvedAt: null,
      resolvedByDoctorId: null,
      resolvedByLabUserId: null,
      detectedAs: 'placeholder',
      assigneeUserId: null,
      dueAt: null,
      isOverdue: false,
    });
    const next = (await call(labId, { limit: 2, cursor: page.nextCursor })).json().result.data;
    expect(next).toEqual({ results: [expect.objectContaining({ id: first })], nextCursor: null });

    const all = (await call(labId, undefined)).json().result.data;
    expect(all.results).toHaveLength(3);
    const filtered = (
      await call(labId, {
        fieldId: [7, 2],
        fieldModule: 'bill',
        createdFrom: '2024-09-01',
        createdTo: '2024-09-01',
      })
    ).json().result.data;
    expect(filtered.results.map((r: { id: number }) => r.id)).toEqual([first]);
  });

  it('rejects bad input with BAD_REQUEST and zod issues naming the field', async () => {
    for (const [input, path] of [
      [{ limit: 0 }, 'limit'],
      [{ cursor: 'garbage' }, 'cursor'],
      [{ createdFrom: '2024-03-02', createdTo: '2024-03-01' }, 'createdTo'],
      [{ fieldId: [] }, 'fieldId'],
      [{ labId: 3 }, ''],
    ] as const) {
      const res = await call(newLabId(), input);
      expect(res.statusCode, JSON.stringify(input)).toBe(400);
      expect(res.json().error.data).toMatchObject({
        code: 'BAD_REQUEST',
        issues: [expect.objectContaining({ path })],
      });
    }
  });
});
