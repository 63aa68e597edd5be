import { loadConfigOrExit } from '../config.js';
import { ensureDatabaseExists, initOrm, migrateUp } from '../db/orm.js';

/** `npm run db:migrate`: creates the database if missing and applies pending migrations, nothing else. */
const config = loadConfigOrExit();
await ensureDatabaseExists(config.databaseUrl);
const orm = await initOrm({ databaseUrl: config.databaseUrl });
try {
  const applied = await migrateUp(orm);
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'no pending migrations\n');
} finally {
  await orm.close(true);
}
