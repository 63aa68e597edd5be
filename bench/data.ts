import { benchDatabaseUrl, buildDataset, PROFILES } from './dataset.js';

/**
 * `npm run bench:data`: builds the benchmark dataset (1,000 labs, 1,000,000 rows) in its own database,
 * BENCH_DATABASE_URL (default md_bench). `-- --quick` builds the small one `npm run bench -- --quick`
 * uses (it also builds it by itself when missing).
 */
const profile = process.argv.includes('--quick') ? PROFILES.quick : PROFILES.full;
const databaseUrl = benchDatabaseUrl(profile);
process.stderr.write(
  `building the ${profile.name} dataset in ${new URL(databaseUrl).pathname.slice(1)}: ` +
    `${profile.labs.toLocaleString('en-US')} labs, ${profile.rows.toLocaleString('en-US')} rows\n`,
);
const info = await buildDataset(profile, databaseUrl);
process.stderr.write(
  `done in ${info.buildSeconds}s: ${info.rows.toLocaleString('en-US')} rows, ` +
    `${((info.resolvedRows / info.rows) * 100).toFixed(1)}% resolved, large lab ${info.largeLabId} ` +
    `with ${info.largeLabRows.toLocaleString('en-US')} rows\n`,
);
