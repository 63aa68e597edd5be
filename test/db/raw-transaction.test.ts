import { DriverException } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inTransaction as inRawTransaction } from '../../src/db/sql-session.js';
import { newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.close();
});

async function versionOf(labId: number): Promise<number | undefined> {
  const [row] = await t.db
    .em()
    .execute<Array<{ version: number }>>('SELECT version FROM md_lab_config_versions WHERE lab_id = ?', [
      labId,
    ]);
  return row === undefined ? undefined : Number(row.version);
}

const insertVersion = 'INSERT INTO md_lab_config_versions (lab_id, version) VALUES (?, 1)';

describe('a transaction on a raw pooled connection', () => {
  it('commits the writes of work that succeeds and answers its result', async () => {
    const labId = newLabId();
    const changed = await inRawTransaction(
      t.db.rootEm(),
      'READ COMMITTED',
      async (sql) => (await sql.execute(insertVersion, [labId])).affectedRows,
    );
    expect(changed).toBe(1);
    expect(await versionOf(labId)).toBe(1);
  });

  it('rolls back every write of work that fails, and rethrows its error as it was', async () => {
    const labId = newLabId();
    const failure = new Error('the work failed after writing');
    await expect(
      inRawTransaction(t.db.rootEm(), 'READ COMMITTED', async (sql) => {
        await sql.execute(insertVersion, [labId]);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await versionOf(labId)).toBeUndefined();
  });

  it('converts a failed statement as the ORM does, and leaves the connection usable for the next', async () => {
    const labId = newLabId();
    const error = await inRawTransaction(t.db.rootEm(), 'READ COMMITTED', async (sql) => {
      await sql.execute(insertVersion, [labId]);
      await sql.execute(insertVersion, [labId]);
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriverException);
    expect((error as DriverException).code).toBe('ER_DUP_ENTRY');
    expect(await versionOf(labId)).toBeUndefined();
    // A pool of five: more transactions than connections, so a leaked connection would time out.
    for (let i = 0; i < 8; i++) {
      await inRawTransaction(t.db.rootEm(), 'READ COMMITTED', (sql) => sql.query('SELECT 1', []));
    }
  });
});
