import { ensureDatabaseExists, initOrm, migrateUp } from '../../src/db/orm.js';
import { testDatabaseUrl } from './env.js';

/** Runs the real migrations once per test run, on the test database. */
export default async function setup(): Promise<void> {
  const databaseUrl = testDatabaseUrl();
  await ensureDatabaseExists(databaseUrl);
  const orm = await initOrm({ databaseUrl });
  try {
    await migrateUp(orm);
  } finally {
    await orm.close(true);
  }
}
