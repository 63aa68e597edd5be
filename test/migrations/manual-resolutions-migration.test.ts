import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Migration20260105000000ManualResolutions } from '../../migrations/20260105000000-manual-resolutions.js';
import type { Em } from '../../src/db/database.js';
import { initOrm } from '../../src/db/orm.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/fixtures.js';

/**
 * A database of its own, migrated up to this migration (the next one drops the per-row records table),
 * where the migration is taken down and up by hand around per-row records.
 */
let orm: Awaited<ReturnType<typeof initOrm>>;
let em: Em;
let scratch: ScratchDatabase;

beforeAll(async () => {
  scratch = await createScratchDatabase('md_manres');
  orm = await initOrm({ databaseUrl: scratch.url, poolSize: 1 });
  await orm.getMigrator().up({ to: 'Migration20260105000000ManualResolutions' });
  em = orm.em.fork() as unknown as Em;
});

afterAll(async () => {
  await orm.close(true);
  await scratch.drop();
});

async function run(direction: 'up' | 'down'): Promise<void> {
  const migration = new Migration20260105000000ManualResolutions(orm.em.getDriver(), orm.config);
  await migration[direction]();
  for (const query of migration.getQueries()) await em.execute(query as string);
}

const LAB = 5;
const T1 = '2025-03-01 09:00:00.123000';
const T2 = '2025-03-02 09:00:00.456000';

/** A runtime row of LAB; `resolved` is [resolved_at, lab user, doctor] or null for an open row. */
async function insertRow(resolved: [string, number | null, number | null] | null): Promise<number> {
  const result = await em.execute<{ insertId: number }>(
    `INSERT INTO LabMissingDetails (lab_id, org_id, user_details_id, bill_id, field_id, field_name, field_value,
  field_module, is_resolved, resolved_at, resolved_by_lab_user_id, resolved_by_doctor_id, created_at, updated_at)
VALUES (?, 9, ?, NULL, 1, 'email', 'noemail@lab.in', 'patient', ?, ?, ?, ?, '2025-01-01 00:00:00', '2025-01-01 00:00:00')`,
    [
      LAB,
      1000 + Math.floor(Math.random() * 1_000_000),
      resolved ? 1 : 0,
      ...(resolved ?? [null, null, null]),
    ],
    'run',
  );
  return Number(result.insertId);
}

async function insertPerRowRecord(
  id: number,
  resolvedAt: string,
  labUser: number | null,
  doctor: number | null,
  reasonCode: string | null,
  reasonNote: string | null = null,
): Promise<void> {
  await em.execute(
    `INSERT INTO md_lab_field_resolutions (lab_missing_details_id, lab_id, org_id, reason_code, reason_note, resolved_at,
  resolved_by_lab_user_id, resolved_by_doctor_id) VALUES (?, ?, 9, ?, ?, ?, ?, ?)`,
    [id, LAB, reasonCode, reasonNote, resolvedAt, labUser, doctor],
  );
}

const manualRecords = async () =>
  em.execute<Array<Record<string, unknown>>>(
    `SELECT lab_id, DATE_FORMAT(resolved_at, '%Y-%m-%d %H:%i:%s.%f') AS resolved_at, resolved_by_lab_user_id,
  resolved_by_doctor_id, reason_code, reason_note
FROM md_manual_resolutions ORDER BY lab_id, resolved_at, resolved_by_lab_user_id, resolved_by_doctor_id`,
  );

const perRowRecords = async () =>
  em.execute<Array<Record<string, unknown>>>(
    `SELECT lab_missing_details_id AS id, reason_code, reason_note, DATE_FORMAT(resolved_at, '%Y-%m-%d %H:%i:%s.%f') AS resolved_at,
  resolved_by_lab_user_id, resolved_by_doctor_id
FROM md_lab_field_resolutions ORDER BY lab_missing_details_id`,
  );

const tableExists = async (name: string) =>
  Number(
    (
      await em.execute<Array<{ n: number }>>(
        'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
        [name],
      )
    )[0]!.n,
  ) > 0;

describe('migration 20260105000000-manual-resolutions', () => {
  it('moves the per-row records that still match their row into one record per call, and back on down', async () => {
    await run('down');
    expect(await tableExists('md_manual_resolutions')).toBe(false);

    // One call of lab user 7 at T1 over two rows whose records disagree on the reason (the higher id wins).
    const a = await insertRow([T1, 7, null]);
    const b = await insertRow([T1, 7, null]);
    await insertPerRowRecord(a, T1, 7, null, 'masked');
    await insertPerRowRecord(b, T1, 7, null, 'asked-declined', 'Declined');
    // A doctor's call at T2.
    const c = await insertRow([T2, null, 8]);
    await insertPerRowRecord(c, T2, null, 8, null, 'No reason given');
    // Stale records: a row stamped again since (by legacy), and a row reopened since.
    const restamped = await insertRow(['2025-04-01 00:00:00.000000', 7, null]);
    await insertPerRowRecord(restamped, '2025-03-03 00:00:00.000000', 7, null, 'not-asked');
    const reopened = await insertRow(null);
    await insertPerRowRecord(reopened, '2025-03-04 00:00:00.000000', 7, null, 'not-asked');

    await run('up');
    const moved = [
      {
        lab_id: LAB,
        resolved_at: T1,
        resolved_by_lab_user_id: 7,
        resolved_by_doctor_id: 0,
        reason_code: 'asked-declined',
        reason_note: 'Declined',
      },
      {
        lab_id: LAB,
        resolved_at: T2,
        resolved_by_lab_user_id: 0,
        resolved_by_doctor_id: 8,
        reason_code: null,
        reason_note: 'No reason given',
      },
    ];
    expect(await manualRecords()).toEqual(moved);
    // Kept, unchanged, for the previous release's instances during the rollout.
    expect((await perRowRecords()).map((r) => r.id)).toEqual([a, b, c, restamped, reopened]);
    await run('up');
    expect(await manualRecords()).toEqual(moved);

    // A call made after the upgrade goes back as per-row records of the rows it still matches.
    const d = await insertRow(['2025-05-01 10:00:00.000001', 7, null]);
    await em.execute(
      `INSERT INTO md_manual_resolutions (lab_id, resolved_at, resolved_by_lab_user_id, resolved_by_doctor_id, reason_code)
VALUES (?, '2025-05-01 10:00:00.000001', 7, 0, 'unknown')`,
      [LAB],
    );
    await run('down');
    expect(await tableExists('md_manual_resolutions')).toBe(false);
    const back = new Map((await perRowRecords()).map((r) => [Number(r.id), r]));
    expect(back.get(a)).toMatchObject({
      reason_code: 'asked-declined',
      resolved_at: T1,
      resolved_by_lab_user_id: 7,
    });
    expect(back.get(c)).toMatchObject({
      reason_code: null,
      resolved_by_doctor_id: 8,
      resolved_by_lab_user_id: null,
    });
    expect(back.get(d)).toMatchObject({
      reason_code: 'unknown',
      resolved_at: '2025-05-01 10:00:00.000001',
      resolved_by_lab_user_id: 7,
      resolved_by_doctor_id: null,
    });
    await run('down');
    await run('up');
    expect(await tableExists('md_manual_resolutions')).toBe(true);
  });
});
