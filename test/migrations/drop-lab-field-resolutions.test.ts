import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Em } from '../../src/db/database.js';
import { initOrm } from '../../src/db/orm.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/fixtures.js';

/**
 * Migration 20260106000000-drop-lab-field-resolutions on a database of its own: migrated up to the
 * release before it, where instances of the release before that still wrote per-row records.
 */
let orm: Awaited<ReturnType<typeof initOrm>>;
let em: Em;
let scratch: ScratchDatabase;

const THIS_MIGRATION = 'Migration20260106000000DropLabFieldResolutions';
/** Later migrations stay out of this test: it is about this one step, up and down. */
const upToThisMigration = async () =>
  (await orm.getMigrator().up({ to: THIS_MIGRATION })).map((migration) => migration.name);
const LAB = 6;

beforeAll(async () => {
  scratch = await createScratchDatabase('md_dropres');
  orm = await initOrm({ databaseUrl: scratch.url, poolSize: 1 });
  await orm.getMigrator().up({ to: 'Migration20260105000000ManualResolutions' });
  em = orm.em.fork() as unknown as Em;
});

afterAll(async () => {
  await orm.close(true);
  await scratch.drop();
});

/** A resolved runtime row of LAB: [resolved_at, lab user, doctor]. */
async function insertResolvedRow([resolvedAt, labUser, doctor]: [string, number | null, number | null]) {
  const result = await em.execute<{ insertId: number }>(
    `INSERT INTO LabMissingDetails (lab_id, org_id, user_details_id, bill_id, field_id, field_name, field_value,
  field_module, is_resolved, resolved_at, resolved_by_lab_user_id, resolved_by_doctor_id, created_at, updated_at)
VALUES (?, 9, ?, NULL, 1, 'email', 'noemail@lab.in', 'patient', 1, ?, ?, ?, '2025-01-01 00:00:00', '2025-01-01 00:00:00')`,
    [LAB, 1000 + Math.floor(Math.random() * 1_000_000), resolvedAt, labUser, doctor],
    'run',
  );
  return Number(result.insertId);
}

const tableExists = async (name: string) =>
  Number(
    (
      await em.execute<Array<{ n: number }>>(
        'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
        [name],
      )
    )[0]!.n,
  ) > 0;

const manualRecords = () =>
  em.execute<Array<Record<string, unknown>>>(
    `SELECT DATE_FORMAT(resolved_at, '%Y-%m-%d %H:%i:%s.%f') AS resolved_at, resolved_by_lab_user_id,
  resolved_by_doctor_id, reason_code, reason_note
FROM md_manual_resolutions WHERE lab_id = ? ORDER BY resolved_at`,
    [LAB],
  );

const perRowRecords = () =>
  em.execute<Array<Record<string, unknown>>>(
    `SELECT lab_missing_details_id AS id, reason_code, DATE_FORMAT(resolved_at, '%Y-%m-%d %H:%i:%s.%f') AS resolved_at,
  resolved_by_lab_user_id, resolved_by_doctor_id
FROM md_lab_field_resolutions WHERE lab_id = ? ORDER BY lab_missing_details_id`,
    [LAB],
  );

describe('migration 20260106000000-drop-lab-field-resolutions', () => {
  it('copies the per-row records written during the last rollout, drops the table, and brings it back on down', async () => {
    // Recorded by the current release: one record per call, which the copy must not overwrite.
    const current = await insertResolvedRow(['2025-06-01 08:00:00.000001', 7, null]);
    await em.execute(
      `INSERT INTO md_manual_resolutions (lab_id, resolved_at, resolved_by_lab_user_id, resolved_by_doctor_id, reason_code)
VALUES (?, '2025-06-01 08:00:00.000001', 7, 0, 'masked')`,
      [LAB],
    );
    // Written by an instance of the release before, after the previous migration's copy had run.
    const late = await insertResolvedRow(['2025-06-02 09:00:00.000002', null, 8]);
    await em.execute(
      `INSERT INTO md_lab_field_resolutions (lab_missing_details_id, lab_id, org_id, reason_code, reason_note,
  resolved_at, resolved_by_lab_user_id, resolved_by_doctor_id)
VALUES (?, ?, 9, 'asked-declined', 'Declined at the desk', '2025-06-02 09:00:00.000002', NULL, 8),
       (?, ?, 9, 'not-asked', NULL, '2025-06-01 08:00:00.000001', 7, NULL)`,
      [late, LAB, current, LAB],
    );

    expect(await upToThisMigration()).toEqual([THIS_MIGRATION]);
    expect(await tableExists('md_lab_field_resolutions')).toBe(false);
    const upgraded = [
      {
        resolved_at: '2025-06-01 08:00:00.000001',
        resolved_by_lab_user_id: 7,
        resolved_by_doctor_id: 0,
        reason_code: 'masked',
        reason_note: null,
      },
      {
        resolved_at: '2025-06-02 09:00:00.000002',
        resolved_by_lab_user_id: 0,
        resolved_by_doctor_id: 8,
        reason_code: 'asked-declined',
        reason_note: 'Declined at the desk',
      },
    ];
    expect(await manualRecords()).toEqual(upgraded);

    await orm.getMigrator().down();
    expect(await tableExists('md_lab_field_resolutions')).toBe(true);
    expect(await perRowRecords()).toEqual([
      {
        id: current,
        reason_code: 'masked',
        resolved_at: '2025-06-01 08:00:00.000001',
        resolved_by_lab_user_id: 7,
        resolved_by_doctor_id: null,
      },
      {
        id: late,
        reason_code: 'asked-declined',
        resolved_at: '2025-06-02 09:00:00.000002',
        resolved_by_lab_user_id: null,
        resolved_by_doctor_id: 8,
      },
    ]);

    expect(await upToThisMigration()).toEqual([THIS_MIGRATION]);
    expect(await tableExists('md_lab_field_resolutions')).toBe(false);
    expect(await manualRecords()).toEqual(upgraded);
  });
});
