import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseName, ensureDatabaseExists, initOrm, migrateUp } from '../../src/db/orm.js';
import { captureInTransaction } from '../../src/services/capture.service.js';
import { testDatabaseUrl } from '../support/env.js';
import {
  FIELD,
  newLabId,
  principalFor,
  rowsOf,
  seedConfigs,
  startTestApp,
  type TestApp,
} from '../support/fixtures.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const INSERT_ROW = `INSERT INTO LabMissingDetails
  (lab_id, org_id, user_details_id, bill_id, field_id, config_id, field_name, field_value, field_module,
   is_resolved, created_at, updated_at)
VALUES (?, NULL, ?, ?, ?, NULL, 'email', 'x', 'patient', ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`;

describe('concurrent captures of one patient', () => {
  it('leave exactly one open row per field, however many race', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [
      { field: 'email', value: 'noemail@lab.in' },
      { field: 'mobile', value: '9999999999' },
      { field: 'dob', value: '1900-01-01' },
    ]);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        captureInTransaction(t.db.em(), principalFor(labId, { userId: i + 1 }), {
          module: 'patient',
          userDetailsId: 5,
          billId: null,
          orgId: null,
          values: { email: 'noemail@lab.in', mobile: 9999999999, dob: '1900-01-01' },
        }),
      ),
    );
    const rows = await rowsOf(t.db.em(), labId);
    expect(
      rows
        .filter((r) => !r.is_resolved)
        .map((r) => r.field_id)
        .sort(),
    ).toEqual([FIELD.email, FIELD.mobile, FIELD.dob]);
    expect(rows).toHaveLength(3);
    expect(results.reduce((sum, r) => sum + r.opened, 0)).toBe(3);
    expect(results.every((r) => r.hasMissingFields)).toBe(true);
  });

  it('leave one open row per bill field for concurrent saves of one bill, and none for another bill', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'sample_collector', value: 'NA' }]);
    const save = (billId: number, collector: string) =>
      captureInTransaction(t.db.em(), principalFor(labId), {
        module: 'bill',
        userDetailsId: 5,
        billId,
        orgId: null,
        values: { sample_collector: collector },
      });
    await Promise.all([...Array.from({ length: 10 }, () => save(1, 'NA')), save(2, 'Ravi')]);
    const rows = await rowsOf(t.db.em(), labId);
    expect(rows.map((r) => [r.bill_id, r.is_resolved])).toEqual([[1, 0]]);
  });

  it('interleaving resolutions and placeholders never leave two open rows', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'email', value: 'noemail@lab.in' }]);
    const save = (email: string) =>
      captureInTransaction(t.db.em(), principalFor(labId), {
        module: 'patient',
        userDetailsId: 5,
        billId: null,
        orgId: null,
        values: { email },
      });
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        Array.from({ length: 12 }, (_, i) => save(i % 2 === 0 ? 'noemail@lab.in' : `asha${i}@example.com`)),
      );
    }
    const rows = await rowsOf(t.db.em(), labId);
    expect(rows.filter((r) => !r.is_resolved).length).toBeLessThanOrEqual(1);
  });
});

describe('the open-row guard in the database', () => {
  it('refuses a second open row for one (lab, patient, bill, field), and allows resolved ones', async () => {
    const labId = newLabId();
    const em = t.db.em();
    await em.execute(INSERT_ROW, [labId, 5, null, FIELD.email, 0], 'run');
    await expect(em.execute(INSERT_ROW, [labId, 5, null, FIELD.email, 0], 'run')).rejects.toThrow(
      /Duplicate entry/,
    );
    await em.execute(INSERT_ROW, [labId, 5, null, FIELD.email, 1], 'run');
    await em.execute(INSERT_ROW, [labId, 5, null, FIELD.email, 1], 'run');
    await em.execute(INSERT_ROW, [labId, 5, 8, FIELD.email, 0], 'run');
    await em.execute(INSERT_ROW, [labId, 6, null, FIELD.email, 0], 'run');
    expect(await rowsOf(em, labId)).toHaveLength(5);
  });
});

describe('the open-row guard migration', () => {
  const url = `${testDatabaseUrl().replace(/\?.*$/, '')}_guard`;

  it('resolves older duplicate open rows without deleting any, then adds the guard, and can be undone', async () => {
    const admin = await initOrm({ databaseUrl: testDatabaseUrl(), poolSize: 1 });
    await admin.em.fork().execute(`DROP DATABASE IF EXISTS \`${databaseName(url)}\``);
    await admin.close(true);
    await ensureDatabaseExists(url);
    const orm = await initOrm({ databaseUrl: url, poolSize: 2 });
    try {
      const migrator = orm.getMigrator();
      await migrator.up({ to: 'Migration20260101000100ServiceTables' });
      const em = orm.em.fork();
      for (const [patient, bill, resolved] of [
        [5, null, 0],
        [5, null, 0],
        [5, null, 0],
        [5, null, 1],
        [5, 8, 0],
        [5, 9, 0],
        [5, 9, 0],
        [6, null, 0],
      ] as const) {
        await em.execute(INSERT_ROW, [1, patient, bill, FIELD.email, resolved], 'run');
      }
      await migrateUp(orm);
      const rows = await em.execute<
        Array<{ id: number; is_resolved: number; resolved_by_lab_user_id: null }>
      >('SELECT id, is_resolved, resolved_by_lab_user_id FROM LabMissingDetails ORDER BY id');
      expect(rows.map((r) => r.is_resolved)).toEqual([1, 1, 0, 1, 0, 1, 0, 0]);
      const audit = await em.execute<Array<{ object_id: number; details: string }>>(
        "SELECT object_id, details FROM ActivityLog WHERE action = 'duplicate_open_row_resolved' ORDER BY object_id",
      );
      expect(audit).toEqual([
        { object_id: 1, details: '{"kept_id":3}' },
        { object_id: 2, details: '{"kept_id":3}' },
        { object_id: 6, details: '{"kept_id":7}' },
      ]);
      await expect(em.execute(INSERT_ROW, [1, 5, null, FIELD.email, 0], 'run')).rejects.toThrow(
        /Duplicate entry/,
      );

      await migrator.down({ to: 'Migration20260101000100ServiceTables' });
      await em.execute(INSERT_ROW, [1, 5, null, FIELD.email, 0], 'run');
      const tables = await em.execute("SHOW TABLES LIKE 'md_capture_outbox'");
      expect(tables).toEqual([]);
      expect(await em.execute('SELECT COUNT(*) AS n FROM LabMissingDetails')).toEqual([{ n: 9 }]);
    } finally {
      await orm.em.fork().execute(`DROP DATABASE IF EXISTS \`${databaseName(url)}\``);
      await orm.close(true);
    }
  });
});
