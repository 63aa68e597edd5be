import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billFlags, patientFlags } from '../../src/services/flags.service.js';
import {
  authHeader,
  FIELD,
  newLabId,
  principalFor,
  startTestApp,
  statementCounts,
  type TestApp,
} from '../support/fixtures.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

interface RowSeed {
  patient: number;
  bill?: number | null;
  field?: number;
  org?: number | null;
  resolved?: boolean;
}

async function seedRows(labId: number, rows: RowSeed[]): Promise<void> {
  await t.db.em().execute(
    `INSERT INTO LabMissingDetails
  (lab_id, org_id, user_details_id, bill_id, field_id, config_id, field_name, field_value, field_module,
   is_resolved, created_at, updated_at)
VALUES ${rows.map(() => "(?, ?, ?, ?, ?, NULL, 'f', 'x', ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))").join(', ')}`,
    rows.flatMap((r) => [
      labId,
      r.org ?? null,
      r.patient,
      r.bill ?? null,
      r.field ?? (r.bill ? FIELD.insurance : FIELD.email),
      r.bill ? 'bill' : 'patient',
      r.resolved ? 1 : 0,
    ]),
    'run',
  );
}

async function trpc(path: string, labId: number, input: unknown, orgId?: number) {
  return t.app.inject({
    url: `/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`,
    headers: await authHeader({ labId, userId: 7, ...(orgId ? { orgId } : {}) }),
  });
}

describe('patientFlags', () => {
  it('is true for a patient with any unresolved row, patient or bill field, in the caller’s lab only', async () => {
    const labId = newLabId();
    const otherLab = newLabId();
    await seedRows(labId, [
      { patient: 1 },
      { patient: 2, bill: 20 },
      { patient: 3, resolved: true },
      { patient: 3, bill: 30, resolved: true },
    ]);
    await seedRows(otherLab, [{ patient: 4 }]);
    const flags = await patientFlags(t.db.em(), principalFor(labId), [1, 2, 3, 4, 5]);
    expect([...flags]).toEqual([
      [1, true],
      [2, true],
      [3, false],
      [4, false],
      [5, false],
    ]);
  });

  it('counts only the organization’s rows for a principal limited to one', async () => {
    const labId = newLabId();
    await seedRows(labId, [{ patient: 1, org: 9 }, { patient: 2, org: 10 }, { patient: 3 }]);
    const flags = await patientFlags(t.db.em(), principalFor(labId, { orgId: 9 }), [1, 2, 3]);
    expect([...flags.values()]).toEqual([true, false, false]);
  });

  it('answers a thousand patients with one query', async () => {
    const labId = newLabId();
    await seedRows(labId, [{ patient: 500 }, { patient: 999, bill: 1 }]);
    const ids = Array.from({ length: 1000 }, (_, i) => i + 1);
    const { flags, selects } = await t.db.em().transactional(async (tx) => {
      const start = await statementCounts(tx);
      const result = await patientFlags(tx, principalFor(labId), ids);
      return { flags: result, selects: (await statementCounts(tx)).selects - start.selects };
    });
    expect(selects).toBe(1);
    expect([...flags].filter(([, flagged]) => flagged).map(([id]) => id)).toEqual([500, 999]);
  });
});

describe('billFlags', () => {
  it('is true for a bill with an unresolved bill row, and with its patient given, a patient row too', async () => {
    const labId = newLabId();
    await seedRows(labId, [
      { patient: 1, bill: 10 },
      { patient: 1, bill: 11, resolved: true },
      { patient: 2 },
      { patient: 3, bill: 30, field: FIELD.group },
    ]);
    const principal = principalFor(labId);
    const byBill = await billFlags(t.db.em(), principal, [
      { billId: 10 },
      { billId: 11 },
      { billId: 20 },
      { billId: 30 },
    ]);
    expect([...byBill]).toEqual([
      [10, true],
      [11, false],
      [20, false],
      [30, true],
    ]);
    const withPatients = await t.db.em().transactional(async (tx) => {
      const start = await statementCounts(tx);
      const flags = await billFlags(tx, principal, [
        { billId: 11, userDetailsId: 1 },
        { billId: 20, userDetailsId: 2 },
        { billId: 21, userDetailsId: 4 },
      ]);
      return { flags, selects: (await statementCounts(tx)).selects - start.selects };
    });
    expect(withPatients.selects).toBe(1);
    expect([...withPatients.flags]).toEqual([
      [11, false],
      [20, true],
      [21, false],
    ]);
  });

  it('counts only the organization’s rows for a principal limited to one', async () => {
    const labId = newLabId();
    await seedRows(labId, [
      { patient: 1, bill: 10, org: 9 },
      { patient: 2, bill: 20, org: 10 },
    ]);
    const flags = await billFlags(t.db.em(), principalFor(labId, { orgId: 10 }), [
      { billId: 10 },
      { billId: 20 },
    ]);
    expect([...flags.values()]).toEqual([false, true]);
  });
});

describe('tRPC flags.patients and flags.bills', () => {
  it('answer {id, hasMissingFields} in input order', async () => {
    const labId = newLabId();
    await seedRows(labId, [{ patient: 1 }, { patient: 2, bill: 20 }, { patient: 3, bill: 30 }]);
    const patients = await trpc('flags.patients', labId, { ids: [3, 9, 1] });
    expect(patients.statusCode).toBe(200);
    expect(patients.json().result.data).toEqual([
      { id: 3, hasMissingFields: true },
      { id: 9, hasMissingFields: false },
      { id: 1, hasMissingFields: true },
    ]);
    const bills = await trpc('flags.bills', labId, { ids: [30, 1, 20] });
    expect(bills.json().result.data).toEqual([
      { id: 30, hasMissingFields: true },
      { id: 1, hasMissingFields: false },
      { id: 20, hasMissingFields: true },
    ]);
  });

  it('scope the answer to the organization of a principal limited to one', async () => {
    const labId = newLabId();
    await seedRows(labId, [
      { patient: 1, org: 9 },
      { patient: 2, org: 10 },
    ]);
    const res = await trpc('flags.patients', labId, { ids: [1, 2] }, 10);
    expect(res.json().result.data.map((f: { hasMissingFields: boolean }) => f.hasMissingFields)).toEqual([
      false,
      true,
    ]);
  });

  it('accept a thousand ids', async () => {
    const res = await trpc('flags.bills', newLabId(), { ids: Array.from({ length: 1000 }, (_, i) => i + 1) });
    expect(res.statusCode).toBe(200);
    expect(res.json().result.data).toHaveLength(1000);
  });

  it.each([
    [{ ids: [] }, 'ids'],
    [{ ids: Array.from({ length: 1001 }, (_, i) => i + 1) }, 'ids'],
    [{ ids: [1, 2, 1] }, 'ids.2'],
    [{ ids: [0] }, 'ids.0'],
    [{ ids: [-4] }, 'ids.0'],
    [{ ids: [1.5] }, 'ids.0'],
    [{ ids: ['1'] }, 'ids.0'],
    [{ ids: [2 ** 31] }, 'ids.0'],
    [{}, 'ids'],
    [{ ids: [1], labId: 2 }, ''],
  ])('reject %j with BAD_REQUEST naming %j', async (input, issuePath) => {
    for (const path of ['flags.patients', 'flags.bills']) {
      const res = await trpc(path, newLabId(), input);
      expect(res.statusCode).toBe(400);
      const { data } = res.json().error;
      expect(data.code).toBe('BAD_REQUEST');
      expect(data.issues.map((i: { path: string }) => i.path)).toContain(issuePath);
    }
  });

  it('answer UNAUTHORIZED without a principal', async () => {
    const res = await t.app.inject({
      url: `/trpc/flags.patients?input=${encodeURIComponent('{"ids":[1]}')}`,
    });
    expect(res.statusCode).toBe(401);
  });
});
