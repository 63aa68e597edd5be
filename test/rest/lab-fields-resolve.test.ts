import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenClaims } from '../../src/auth/token.js';
import { authHeader, newLabId, patchLabFields, startTestApp, type TestApp } from '../support/fixtures.js';

const URL_PATH = '/api-v3/account/missing-details/lab-fields';
const CREATED_AT = '2024-03-01 10:00:00.000000';

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
  resolved?: { doctorId?: number; labUserId?: number };
}

let nextPatient = 2_000_000;

/**
 * Inserts rows with one statement and returns their ids, in the order given. Each row gets a patient
 * of its own unless it names one: the open-row guard allows one open row per (patient, bill, field).
 */
async function insertRows(rows: RowSpec[]): Promise<number[]> {
  const em = t.db.em();
  const tuple = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
  const result = await em.execute<{ insertId: number }>(
    `INSERT INTO LabMissingDetails (lab_id, org_id, user_details_id, bill_id, field_id, field_name, field_value,
  field_module, is_resolved, resolved_at, resolved_by_doctor_id, resolved_by_lab_user_id, created_at, updated_at)
VALUES ${rows.map(() => tuple).join(', ')}`,
    rows.flatMap((r) => [
      r.labId,
      r.orgId ?? null,
      r.userDetailsId ?? nextPatient++,
      r.billId ?? null,
      r.fieldId ?? 1,
      'email',
      'noemail@lab.in',
      r.billId ? 'bill' : 'patient',
      r.resolved ? 1 : 0,
      r.resolved ? '2024-03-02 00:00:00.000000' : null,
      r.resolved?.doctorId ?? null,
      r.resolved?.labUserId ?? null,
      CREATED_AT,
      CREATED_AT,
    ]),
    'run',
  );
  const labs = [...new Set(rows.map((r) => r.labId))];
  const inserted = await em.execute<{ id: number }[]>(
    `SELECT id FROM LabMissingDetails WHERE id >= ? AND lab_id IN (${labs.map(() => '?').join(', ')}) ORDER BY id`,
    [result.insertId, ...labs],
  );
  return inserted.map((r) => Number(r.id));
}

interface StoredRow {
  id: number;
  is_resolved: number;
  resolved_at: string | null;
  resolved_by_doctor_id: number | null;
  resolved_by_lab_user_id: number | null;
  updated_at: string;
}

async function stored(ids: number[]): Promise<Map<number, StoredRow>> {
  const rows = await t.db.em().execute<StoredRow[]>(
    `SELECT id, is_resolved, DATE_FORMAT(resolved_at, '%Y-%m-%d %H:%i:%s.%f') AS resolved_at,
  resolved_by_doctor_id, resolved_by_lab_user_id, DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f') AS updated_at
FROM LabMissingDetails WHERE id IN (${ids.map(() => '?').join(', ')})`,
    ids,
  );
  return new Map(rows.map((r) => [Number(r.id), { ...r, id: Number(r.id) }]));
}

const patch = (claims: TokenClaims, body: unknown) => patchLabFields(t, claims, body);

async function activities(labId: number) {
  return t.db.em().execute<
    {
      org_id: number | null;
      lab_user_id: number | null;
      doctor_id: number | null;
      module: string;
      action: string;
      object_type: string;
      object_id: number | null;
      message: string;
      details: string;
    }[]
  >(
    `SELECT org_id, lab_user_id, doctor_id, module, action, object_type, object_id, message, details
FROM ActivityLog WHERE lab_id = ? ORDER BY id`,
    [labId],
  );
}

describe('PATCH /api-v3/account/missing-details/lab-fields', () => {
  it("resolves the caller's rows and stamps the lab user who did it", async () => {
    const labId = newLabId();
    const ids = await insertRows([{ labId }, { labId }, { labId }]);
    const before = Date.now();
    const res = await patch({ labId, userId: 41 }, { ids: ids.slice(0, 2), is_resolved: true });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ updated_count: 2 });

    const rows = await stored(ids);
    for (const id of ids.slice(0, 2)) {
      const row = rows.get(id)!;
      expect(row).toMatchObject({ is_resolved: 1, resolved_by_lab_user_id: 41, resolved_by_doctor_id: null });
      const resolvedAt = Date.parse(`${row.resolved_at!.replace(' ', 'T')}Z`);
      expect(resolvedAt).toBeGreaterThanOrEqual(before - 1000);
      expect(resolvedAt).toBeLessThanOrEqual(Date.now() + 1000);
      expect(row.updated_at).toBe(row.resolved_at);
    }
    expect(rows.get(ids[2]!)).toMatchObject({
      is_resolved: 0,
      resolved_at: null,
      updated_at: `${CREATED_AT}`,
    });
  });

  it("records a doctor's resolution under the doctor, never the lab user", async () => {
    const labId = newLabId();
    const [id] = await insertRows([{ labId }]);
    const res = await patch({ labId, userId: 77, role: 'doctor' }, { ids: [id], is_resolved: true });
    expect(res.json()).toEqual({ updated_count: 1 });
    expect((await stored([id!])).get(id!)).toMatchObject({
      is_resolved: 1,
      resolved_by_doctor_id: 77,
      resolved_by_lab_user_id: null,
    });
  });

  it('counts an already resolved row and stamps it again with the new resolver, as the old system did', async () => {
    const labId = newLabId();
    const [resolved, open] = await insertRows([{ labId, resolved: { doctorId: 5 } }, { labId }]);
    const res = await patch({ labId, userId: 41 }, { ids: [resolved, open], is_resolved: true });
    expect(res.json()).toEqual({ updated_count: 2 });
    const row = (await stored([resolved!])).get(resolved!)!;
    expect(row).toMatchObject({ is_resolved: 1, resolved_by_lab_user_id: 41, resolved_by_doctor_id: null });
    expect(row.resolved_at).not.toBe('2024-03-02 00:00:00.000000');
  });

  it('unresolving clears resolved_at and both resolvers', async () => {
    const labId = newLabId();
    const ids = await insertRows([
      { labId, resolved: { doctorId: 5 } },
      { labId, resolved: { labUserId: 6 } },
    ]);
    const res = await patch({ labId, userId: 41 }, { ids, is_resolved: false });
    expect(res.json()).toEqual({ updated_count: 2 });
    for (const row of (await stored(ids)).values()) {
      expect(row).toMatchObject({
        is_resolved: 0,
        resolved_at: null,
        resolved_by_doctor_id: null,
        resolved_by_lab_user_id: null,
      });
      expect(row.updated_at > CREATED_AT).toBe(true);
    }
  });

  it('neither touches nor counts ids of another lab or, for an org-scoped caller, another organization', async () => {
    const labId = newLabId();
    const otherLab = newLabId();
    const [mine, otherOrg, noOrg] = await insertRows([
      { labId, orgId: 9 },
      { labId, orgId: 10 },
      { labId, orgId: null },
    ]);
    const [foreign] = await insertRows([{ labId: otherLab, orgId: 9 }]);
    const missing = foreign! + 1_000_000_000;

    const scoped = await patch(
      { labId, userId: 41, orgId: 9 },
      { ids: [mine, otherOrg, noOrg, foreign, missing], is_resolved: true },
    );
    expect(scoped.statusCode).toBe(200);
    expect(scoped.json()).toEqual({ updated_count: 1 });
    const rows = await stored([mine!, otherOrg!, noOrg!, foreign!]);
    expect(rows.get(mine!)!.is_resolved).toBe(1);
    for (const id of [otherOrg!, noOrg!, foreign!]) {
      expect(rows.get(id)).toMatchObject({ is_resolved: 0, resolved_at: null, updated_at: CREATED_AT });
    }

    const labWide = await patch(
      { labId, userId: 41 },
      { ids: [otherOrg, noOrg, foreign], is_resolved: true },
    );
    expect(labWide.json()).toEqual({ updated_count: 2 });
    expect((await stored([foreign!])).get(foreign!)!.is_resolved).toBe(0);

    const nothing = await patch({ labId: otherLab, userId: 3 }, { ids: [mine], is_resolved: false });
    expect(nothing.json()).toEqual({ updated_count: 0 });
    expect((await stored([mine!])).get(mine!)!.is_resolved).toBe(1);
  });

  it('writes one ActivityLog row per call: who, which way, how many and which ids', async () => {
    const labId = newLabId();
    const ids = await insertRows([
      { labId, orgId: 9 },
      { labId, orgId: 9 },
    ]);
    await patch(
      { labId, userId: 77, role: 'doctor', orgId: 9 },
      { ids: [...ids, 999_999_999_999], is_resolved: true },
    );
    await patch({ labId, userId: 41 }, { ids: [ids[0]], is_resolved: false });
    await patch({ labId, userId: 41 }, { ids: [999_999_999_999], is_resolved: true });

    const log = await activities(labId);
    expect(log).toHaveLength(3);
    expect(log[0]).toMatchObject({
      org_id: 9,
      doctor_id: 77,
      lab_user_id: null,
      module: 'missing_details',
      action: 'lab_fields_resolved',
      object_type: 'LabMissingDetails',
      object_id: null,
      message: expect.stringContaining('2'),
    });
    expect(JSON.parse(log[0]!.details)).toMatchObject({
      is_resolved: true,
      updated_count: 2,
      updated_ids: ids,
      requested_count: 3,
    });
    expect(log[1]).toMatchObject({ lab_user_id: 41, doctor_id: null, action: 'lab_fields_unresolved' });
    expect(Number(log[1]!.object_id)).toBe(ids[0]);
    expect(JSON.parse(log[1]!.details)).toMatchObject({
      is_resolved: false,
      updated_count: 1,
      updated_ids: [ids[0]],
    });
    expect(JSON.parse(log[2]!.details)).toMatchObject({ updated_count: 0, updated_ids: [] });
  });

  it('does not reopen a row whose field is already open again for that patient and bill, and does not count it', async () => {
    const labId = newLabId();
    const [oldEmail, openEmail, oldMobile, oldInsurance, otherBillInsurance] = await insertRows([
      { labId, userDetailsId: 500, fieldId: 1, resolved: { labUserId: 3 } },
      { labId, userDetailsId: 500, fieldId: 1 },
      { labId, userDetailsId: 500, fieldId: 2, resolved: { labUserId: 3 } },
      { labId, userDetailsId: 500, billId: 900, fieldId: 7, resolved: { labUserId: 3 } },
      { labId, userDetailsId: 500, billId: 901, fieldId: 7 },
    ]);
    const res = await patch(
      { labId, userId: 41 },
      { ids: [oldEmail, openEmail, oldMobile, oldInsurance], is_resolved: false },
    );
    expect(res.statusCode, res.body).toBe(200);
    // openEmail is stamped and counted; oldMobile and the bill-900 insurance reopen; oldEmail stays resolved.
    expect(res.json()).toEqual({ updated_count: 3 });
    const rows = await stored([oldEmail!, openEmail!, oldMobile!, oldInsurance!, otherBillInsurance!]);
    expect(rows.get(oldEmail!)).toMatchObject({ is_resolved: 1, resolved_by_lab_user_id: 3 });
    expect(rows.get(oldMobile!)!.is_resolved).toBe(0);
    expect(rows.get(oldInsurance!)!.is_resolved).toBe(0);
    expect(rows.get(openEmail!)!.updated_at > CREATED_AT).toBe(true);
    const [entry] = await activities(labId);
    expect(JSON.parse(entry!.details)).toMatchObject({
      updated_count: 3,
      skipped_open_field_ids: [oldEmail],
    });
  });

  it('reopens only the newest of several resolved rows of one field', async () => {
    const labId = newLabId();
    const [older, newer] = await insertRows([
      { labId, userDetailsId: 600, fieldId: 3, resolved: { labUserId: 3 } },
      { labId, userDetailsId: 600, fieldId: 3, resolved: { labUserId: 3 } },
    ]);
    const res = await patch({ labId, userId: 41 }, { ids: [older, newer], is_resolved: false });
    expect(res.json()).toEqual({ updated_count: 1 });
    const rows = await stored([older!, newer!]);
    expect(rows.get(newer!)!.is_resolved).toBe(0);
    expect(rows.get(older!)!.is_resolved).toBe(1);
  });

  it('reopens only one row of a field when two requests unresolve two of its rows at the same time', async () => {
    const labId = newLabId();
    for (let round = 0; round < 5; round++) {
      const userDetailsId = 800 + round;
      const [a, b] = await insertRows([
        { labId, userDetailsId, fieldId: 4, resolved: { labUserId: 3 } },
        { labId, userDetailsId, fieldId: 4, resolved: { labUserId: 3 } },
      ]);
      const answers = await Promise.all([
        patch({ labId, userId: 41 }, { ids: [a], is_resolved: false }),
        patch({ labId, userId: 42 }, { ids: [b], is_resolved: false }),
      ]);
      for (const res of answers) expect(res.statusCode, res.body).toBe(200);
      expect(answers.map((res) => res.json().updated_count).sort()).toEqual([0, 1]);
      const rows = await stored([a!, b!]);
      expect(rows.get(a!)!.is_resolved + rows.get(b!)!.is_resolved).toBe(1);
    }
  });

  it('does not reopen a row when the open row of that field is outside the caller organization', async () => {
    const labId = newLabId();
    const [resolvedOrg9] = await insertRows([
      { labId, orgId: 9, userDetailsId: 700, resolved: { labUserId: 3 } },
    ]);
    await insertRows([{ labId, orgId: 10, userDetailsId: 700 }]);
    const res = await patch({ labId, userId: 41, orgId: 9 }, { ids: [resolvedOrg9], is_resolved: false });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ updated_count: 0 });
  });

  it('accepts 5000 ids in one call and updates them with one statement', async () => {
    const labId = newLabId();
    const ids = await insertRows(Array.from({ length: 5000 }, () => ({ labId })));
    const res = await patch({ labId, userId: 41 }, { ids, is_resolved: true });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ updated_count: 5000 });
    const [{ open }] = (await t.db
      .em()
      .execute('SELECT COUNT(*) AS open FROM LabMissingDetails WHERE lab_id = ? AND is_resolved = 0', [
        labId,
      ])) as [{ open: number }];
    expect(Number(open)).toBe(0);
  });

  const many = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
  it.each([
    ['ids', { is_resolved: true }],
    ['ids', { ids: [], is_resolved: true }],
    ['ids', { ids: many(5001), is_resolved: true }],
    ['ids', { ids: 5, is_resolved: true }],
    ['ids.0', { ids: [0], is_resolved: true }],
    ['ids.1', { ids: [3, -1], is_resolved: true }],
    ['ids.0', { ids: [1.5], is_resolved: true }],
    ['ids.0', { ids: ['7'], is_resolved: true }],
    ['ids.0', { ids: [null], is_resolved: true }],
    ['ids.2', { ids: [90, 91, 90], is_resolved: true }],
    ['is_resolved', { ids: [1] }],
    ['is_resolved', { ids: [1], is_resolved: 'true' }],
    ['is_resolved', { ids: [1], is_resolved: 1 }],
    ['is_resolved', { ids: [1], is_resolved: null }],
    ['lab_id', { ids: [1], is_resolved: true, lab_id: 3 }],
    ['resolved_by', { ids: [1], is_resolved: true, resolved_by: 3 }],
  ])('rejects a body with a bad %s with a 400 naming it', async (path, body) => {
    const labId = newLabId();
    const res = await patch({ labId, userId: 41 }, body);
    expect(res.statusCode, res.body).toBe(400);
    const { error } = res.json();
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.issues.map((i: { path: string }) => i.path)).toContain(path);
    expect(await activities(labId)).toHaveLength(0);
  });

  it('names the duplicated id', async () => {
    const res = await patch({ labId: newLabId(), userId: 41 }, { ids: [90, 91, 90], is_resolved: true });
    expect(res.json().error.issues).toEqual([{ path: 'ids.2', message: expect.stringContaining('90') }]);
  });

  it('rejects a body that is not a JSON object', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 41 });
    for (const payload of ['[1,2]', '"ids"', 'null']) {
      const res = await t.app.inject({
        method: 'PATCH',
        url: URL_PATH,
        headers: { ...headers, 'content-type': 'application/json' },
        payload,
      });
      expect(res.statusCode, payload).toBe(400);
      expect(res.json().error.code).toBe('BAD_REQUEST');
    }
    const broken = await t.app.inject({
      method: 'PATCH',
      url: URL_PATH,
      headers: { ...headers, 'content-type': 'application/json' },
      payload: '{"ids":[1',
    });
    expect(broken.statusCode).toBe(400);
    const form = await t.app.inject({
      method: 'PATCH',
      url: URL_PATH,
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'ids=1',
    });
    expect(form.statusCode).toBe(415);
  });

  it('answers 401 without a principal and changes nothing', async () => {
    const labId = newLabId();
    const [id] = await insertRows([{ labId }]);
    const res = await t.app.inject({
      method: 'PATCH',
      url: URL_PATH,
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ ids: [id], is_resolved: true }),
    });
    expect(res.statusCode).toBe(401);
    expect((await stored([id!])).get(id!)!.is_resolved).toBe(0);
  });
});

describe('tRPC labFields.resolve', () => {
  const call = async (claims: TokenClaims, input: unknown) =>
    t.app.inject({
      method: 'POST',
      url: '/trpc/labFields.resolve',
      headers: { ...(await authHeader(claims)), 'content-type': 'application/json' },
      payload: JSON.stringify(input),
    });

  it('resolves and unresolves with camelCase input and result', async () => {
    const labId = newLabId();
    const ids = await insertRows([{ labId }, { labId }]);
    const resolved = await call({ labId, userId: 41 }, { ids, isResolved: true });
    expect(resolved.statusCode, resolved.body).toBe(200);
    expect(resolved.json().result.data).toEqual({ updatedCount: 2 });
    const reopened = await call({ labId, userId: 41 }, { ids: [ids[0]], isResolved: false });
    expect(reopened.json().result.data).toEqual({ updatedCount: 1 });
    const rows = await stored(ids);
    expect(rows.get(ids[0]!)!.is_resolved).toBe(0);
    expect(rows.get(ids[1]!)!.is_resolved).toBe(1);
  });

  it('rejects bad input with BAD_REQUEST and zod issues', async () => {
    for (const [input, path] of [
      [{ ids: [1, 1], isResolved: true }, 'ids.1'],
      [{ ids: [], isResolved: true }, 'ids'],
      [{ ids: [1] }, 'isResolved'],
      [{ ids: [1], is_resolved: true }, ''],
    ] as const) {
      const res = await call({ labId: newLabId(), userId: 41 }, input);
      expect(res.statusCode, JSON.stringify(input)).toBe(400);
      expect(res.json().error.data).toMatchObject({
        code: 'BAD_REQUEST',
        issues: expect.arrayContaining([expect.objectContaining({ path })]),
      });
    }
  });
});
