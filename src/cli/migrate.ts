import { loadConfigOrExit } from '../config.js';
import { ensureDatabaseExists, initOrm, migrateUpLocked } from '../db/orm.js';

/** `npm run db:migrate`: creates the database if missing and applies pending migrations (under the
 * migration lock, so it may run beside starting instances), nothing else. The release job when the
 * instances run with MIGRATE_ON_START=false. */
const config = loadConfigOrExit();
await ensureDatabaseExists(config.databaseUrl);
const orm = await initOrm({ databaseUrl: config.databaseUrl });
try {
  const applied = await migrateUpLocked(orm, config.databaseUrl);
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'no pending migrations\n');
} finally {
  await orm.close(true);
}
