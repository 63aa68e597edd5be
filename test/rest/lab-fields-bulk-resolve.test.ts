import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import type { TokenClaims } from '../../src/auth/token.js';
import { ID_SLICE } from '../../src/db/sql-session.js';
import { resolveLabFields } from '../../src/services/lab-fields.service.js';
import { manualResolutionStamp } from '../../src/services/resolution-reasons.service.js';
import {
  type BeyondRow,
  insertRows,
  newLabId,
  patchLabFields,
  startTestApp,
  type TestApp,
} from '../support/fixtures.js';

/** More ids than one statement takes, so that calls run over several slices. */
const OVER_TWO_SLICES = ID_SLICE * 2 + 3;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const patch = (claims: TokenClaims, body: unknown) => patchLabFields(t, claims, body);

const placeholders = (values: readonly unknown[]) => values.map(() => '?').join(', ');

interface RowState {
  is_resolved: number;
  resolved_at: string | null;
  resolved_by_doctor_id: number | null;
  resolved_by_lab_user_id: number | null;
}

async function rowsById(ids: readonly number[]): Promise<Map<number, RowState>> {
  const rows = await t.db.em().execute<Array<RowState & { id: number | string }>>(
    `SELECT id, is_resolved, DATE_FORMAT(resolved_at, '%Y-%m-%d %H:%i:%s.%f') AS resolved_at,
  resolved_by_doctor_id, resolved_by_lab_user_id
FROM LabMissingDetails WHERE id IN (${placeholders(ids)})`,
    [...ids],
  );
  return new Map(rows.map(({ id, ...row }) => [Number(id), row]));
}

interface RecordState {
  org_id: number | null;
  reason_code: string | null;
  resolved_at: string;
  resolved_by_doctor_id: number | null;
  resolved_by_lab_user_id: number | null;
}

/** The manual-resolution record each row's current resolution matches, by row id, with the row's organization. */
async function recordsById(ids: readonly number[]): Promise<Map<number, RecordState>> {
  const rows = await t.db.em().execute<Array<RecordState & { id: number | string }>>(
    `SELECT d.id, d.org_id, r.reason_code, DATE_FORMAT(r.resolved_at, '%Y-%m-%d %H:%i:%s.%f') AS resolved_at,
  NULLIF(r.resolved_by_doctor_id, 0) AS resolved_by_doctor_id, NULLIF(r.resolved_by_lab_user_id, 0) AS resolved_by_lab_user_id
FROM LabMissingDetails d
JOIN md_manual_resolutions r ON r.lab_id = d.lab_id AND r.resolved_at = d.resolved_at
  AND r.resolved_by_lab_user_id = COALESCE(d.resolved_by_lab_user_id, 0)
  AND r.resolved_by_doctor_id = COALESCE(d.resolved_by_doctor_id, 0)
WHERE d.is_resolved = 1 AND d.id IN (${placeholders(ids)})`,
    [...ids],
  );
  return new Map(rows.map(({ id, ...row }) => [Number(id), row]));
}

async function auditDetails(labId: number): Promise<Array<{ updated_count: number; updated_ids: number[] }>> {
  const rows = await t.db
    .em()
    .execute<Array<{ details: string }>>('SELECT details FROM ActivityLog WHERE lab_id = ? ORDER BY id', [
      labId,
    ]);
  return rows.map((row) => JSON.parse(row.details));
}

const ascending = (ids: readonly number[]) => [...ids].sort((a, b) => a - b);

/** Runs `work` while another transaction holds a row lock on `id`, and says whether `work` finished meanwhile. */
async function finishesWhileLocked<T>(
  id: number,
  lockSql: string,
  work: () => Promise<T>,
): Promise<{ finished: boolean; result: T }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holder = t.db.em().transactional(async (tx) => {
    await tx.execute(lockSql, [id]);
    locked();
    await released;
  });
  await isLocked;
  const pending = work();
  // Far longer than the work takes; far shorter than InnoDB's lock wait timeout, which a wait would run into.
  const finished = await Promise.race([
    pending.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000)),
  ]);
  release();
  await holder;
  return { finished, result: await pending };
}

describe('bulk resolve over several slices of ids', () => {
  it('stamps rows resolved by hand before again, with their reason records, and names every id in the audit', async () => {
    const labId = newLabId();
    const ids = await insertRows(
      t.db,
      Array.from({ length: OVER_TWO_SLICES }, () => ({ labId, orgId: 9 })),
    );
    const shuffled = [...ids].reverse();
    const first = await patch(
      { labId, userId: 41 },
      { ids: shuffled, is_resolved: true, reason_code: 'masked' },
    );
    expect(first.json()).toEqual({ updated_count: ids.length });

    const again = await patch(
      { labId, userId: 42, role: 'doctor' },
      { ids: shuffled, is_resolved: true, reason_code: 'asked-declined' },
    );
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toEqual({ updated_count: ids.length });
    const rows = await rowsById(ids);
    const records = await recordsById(ids);
    for (const id of ids) {
      const row = rows.get(id)!;
      expect(row).toMatchObject({ is_resolved: 1, resolved_by_doctor_id: 42, resolved_by_lab_user_id: null });
      expect(records.get(id)).toEqual({
        org_id: 9,
        reason_code: 'asked-declined',
        resolved_at: row.resolved_at,
        resolved_by_doctor_id: 42,
        resolved_by_lab_user_id: null,
      });
    }
    const audit = await auditDetails(labId);
    expect(audit).toHaveLength(2);
    for (const entry of audit) {
      expect(entry).toMatchObject({ updated_count: ids.length, updated_ids: ascending(ids) });
    }
  });

  it('resolves a mix of recorded, unrecorded and out-of-scope ids, counting and recording only those in scope', async () => {
    const labId = newLabId();
    const otherLab = newLabId();
    const caller = { labId, userId: 41, orgId: 9 };
    const spec = (i: number): BeyondRow =>
      i % 7 === 0
        ? { labId: otherLab, orgId: 9 }
        : i % 5 === 0
          ? { labId, orgId: 10 }
          : i % 3 === 0
            ? { labId, orgId: 9, resolvedAt: '2024-01-01 00:00:00.000000', resolvedByLabUserId: 3 }
            : { labId, orgId: 9 };
    const ids = await insertRows(
      t.db,
      Array.from({ length: OVER_TWO_SLICES }, (_, i) => spec(i)),
    );
    const inScope = ids.filter((_, i) => i % 7 !== 0 && i % 5 !== 0);
    const outOfScope = ids.filter((id) => !inScope.includes(id));
    // Some rows of the caller were resolved by hand before and carry a record; the others (open, or
    // resolved by the engine) do not.
    const recordedBefore = inScope.filter((_, i) => i % 2 === 0);
    await patch(caller, { ids: recordedBefore, is_resolved: true });
    const missing = 2_000_000_000;

    const res = await patch(caller, { ids: [...ids, missing], is_resolved: true, reason_code: 'not-asked' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ updated_count: inScope.length });
    const rows = await rowsById(ids);
    const records = await recordsById(ids);
    expect(ascending([...records.keys()])).toEqual(ascending(inScope));
    for (const id of inScope) {
      expect(records.get(id)).toMatchObject({
        reason_code: 'not-asked',
        resolved_at: rows.get(id)!.resolved_at,
      });
      expect(rows.get(id)).toMatchObject({ is_resolved: 1, resolved_by_lab_user_id: 41 });
    }
    for (const id of outOfScope) expect(rows.get(id)).toMatchObject({ is_resolved: 0, resolved_at: null });
    expect((await auditDetails(labId)).at(-1)).toMatchObject({
      updated_count: inScope.length,
      updated_ids: ascending(inScope),
    });
  });

  it('counts a row stamped again with the very same time, and keeps its record', async () => {
    const labId = newLabId();
    const ids = await insertRows(t.db, [{ labId }, { labId }]);
    const principal: Principal = { labId, userId: 41, role: 'lab_user', orgId: null, via: 'jwt' };
    const now = new Date('2025-06-01T10:00:00.123Z');
    const input = { ids, isResolved: true, reasonCode: 'masked' as const };
    expect(await resolveLabFields(t.db.em(), principal, input, now)).toEqual({ updatedCount: 2 });
    expect(await resolveLabFields(t.db.em(), principal, input, now)).toEqual({ updatedCount: 2 });
    const records = await recordsById(ids);
    expect([...records.values()].map((r) => [r.reason_code, r.resolved_at])).toEqual([
      ['masked', '2025-06-01 10:00:00.123000'],
      ['masked', '2025-06-01 10:00:00.123000'],
    ]);
  });

  it('lets the later of two calls by one resolver with the very same stamp give the reason of both', async () => {
    const labId = newLabId();
    const [first, second] = await insertRows(t.db, [{ labId }, { labId }]);
    const principal: Principal = { labId, userId: 41, role: 'lab_user', orgId: null, via: 'jwt' };
    const now = new Date('2025-06-02T10:00:00.456Z');
    await resolveLabFields(
      t.db.em(),
      principal,
      { ids: [first!], isResolved: true, reasonCode: 'masked' },
      now,
    );
    await resolveLabFields(
      t.db.em(),
      principal,
      { ids: [second!], isResolved: true, reasonCode: 'not-asked' },
      now,
    );
    const records = await recordsById([first!, second!]);
    expect([...records.values()].map((r) => r.reason_code)).toEqual(['not-asked', 'not-asked']);
  });

  it('stamps rows and their record with the same microsecond, never twice the same in one process, never on a whole millisecond', async () => {
    const stamps = Array.from({ length: 3_000 }, () => manualResolutionStamp().resolvedAt);
    for (const stamp of stamps) {
      expect(stamp).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/);
      expect(stamp.endsWith('000')).toBe(false);
    }
    expect([...stamps].sort()).toEqual(stamps);
    expect(new Set(stamps).size).toBe(stamps.length);
    expect(Math.abs(Date.parse(`${stamps[0]!.replace(' ', 'T')}Z`) - Date.now())).toBeLessThan(5_000);

    const labId = newLabId();
    const [id] = await insertRows(t.db, [{ labId }]);
    await patch({ labId, userId: 41 }, { ids: [id], is_resolved: true });
    const row = (await rowsById([id!])).get(id!)!;
    expect(row.resolved_at).toMatch(/\.\d{6}$/);
    expect((await recordsById([id!])).get(id!)).toMatchObject({ resolved_at: row.resolved_at });
  });

  it("takes the record's organization from the row when a row is resolved by hand again", async () => {
    const labId = newLabId();
    const [id] = await insertRows(t.db, [{ labId, orgId: 9 }]);
    await patch({ labId, userId: 41 }, { ids: [id], is_resolved: true });
    await t.db.em().execute('UPDATE LabMissingDetails SET org_id = 11 WHERE id = ?', [id]);
    await patch({ labId, userId: 41 }, { ids: [id], is_resolved: true });
    expect((await recordsById([id!])).get(id!)).toMatchObject({ org_id: 11 });
  });

  it("resolves rows again without waiting on another lab's locked reason record", async () => {
    const labId = newLabId();
    const otherLab = newLabId();
    const [foreign] = await insertRows(t.db, [{ labId: otherLab }]);
    await patch({ labId: otherLab, userId: 41 }, { ids: [foreign], is_resolved: true });
    const ids = await insertRows(
      t.db,
      Array.from({ length: OVER_TWO_SLICES }, () => ({ labId })),
    );
    await patch({ labId, userId: 41 }, { ids, is_resolved: true });

    const { finished, result } = await finishesWhileLocked(
      foreign!,
      // Exactly the other lab's record (its whole primary key): a record lock, no gap.
      `SELECT r.* FROM LabMissingDetails d
JOIN md_manual_resolutions r ON r.lab_id = d.lab_id AND r.resolved_at = d.resolved_at
  AND r.resolved_by_lab_user_id = COALESCE(d.resolved_by_lab_user_id, 0)
  AND r.resolved_by_doctor_id = COALESCE(d.resolved_by_doctor_id, 0)
WHERE d.id = ? FOR UPDATE`,
      () => patch({ labId, userId: 41 }, { ids, is_resolved: true }),
    );
    expect(finished).toBe(true);
    expect(result.json()).toEqual({ updated_count: ids.length });
  });

  it("unresolves rows of many patients without waiting on another patient's locked open row", async () => {
    const labId = newLabId();
    const [othersOpenRow] = await insertRows(t.db, [{ labId }]);
    const ids = await insertRows(
      t.db,
      Array.from({ length: OVER_TWO_SLICES }, () => ({ labId, resolvedAt: '2024-01-01 00:00:00.000000' })),
    );

    const { finished, result } = await finishesWhileLocked(
      othersOpenRow!,
      'SELECT * FROM LabMissingDetails WHERE id = ? FOR UPDATE',
      () => patch({ labId, userId: 41 }, { ids, is_resolved: false }),
    );
    expect(finished).toBe(true);
    expect(result.json()).toEqual({ updated_count: ids.length });
    const rows = await rowsById(ids);
    expect([...rows.values()].every((row) => row.is_resolved === 0)).toBe(true);
  });
});
