import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { mintToken } from '../src/auth/token.js';
import { DEVELOPMENT_JWT_SECRET } from '../src/config.js';
import { buildService, productionNodeFlags } from './build-service.js';
import { benchDatabaseUrl, buildDataset, type DatasetInfo, PROFILES, readDatasetInfo } from './dataset.js';
import { SequentialClient } from './load.js';
import { type Child, freePort, startChild, waitUntilReady, withTsx } from './processes.js';
import { cpuProfile, heapProfile, monotonicMicros, profileMarkdown, readProfile } from './profile.js';
import {
  failed,
  type RunInfo,
  type ScenarioResult,
  textTable,
  markdownTable as textTableMarkdown,
  writeResults,
} from './report.js';
import { type BenchEnv, SCENARIOS, SETTINGS } from './scenarios.js';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const USER_ID = 7;
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Args {
  quick: boolean;
  only: string[] | null;
  profile: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, only: null, profile: false };
  for (const arg of argv) {
    if (arg === '--quick') args.quick = true;
    else if (arg === '--profile') args.profile = true;
    else if (arg.startsWith('--only=')) args.only = arg.slice('--only='.length).split(',');
    else throw new Error(`unknown argument ${arg} (use --quick, --profile, --only=rest-list,proxy,…)`);
  }
  const known = SCENARIOS.map((s) => s.name);
  const unknown = args.only?.filter((name) => !known.includes(name)) ?? [];
  if (unknown.length)
    throw new Error(`unknown scenario ${unknown.join(', ')}; scenarios: ${known.join(', ')}`);
  return args;
}

async function ensureDataset(quick: boolean, databaseUrl: string): Promise<DatasetInfo> {
  const profile = quick ? PROFILES.quick : PROFILES.full;
  const existing = await readDatasetInfo(databaseUrl);
  if (existing) return existing;
  if (!quick) {
    throw new Error(
      `no benchmark dataset in ${new URL(databaseUrl).pathname.slice(1)}: build it first with \`npm run bench:data\``,
    );
  }
  log(`building the quick dataset (${profile.rows.toLocaleString('en-US')} rows)…`);
  return buildDataset(profile, databaseUrl);
}

/** The 200 patients of the large lab's report list: those with the most recent missing-details activity. */
async function reportPatients(pool: mysql.Pool, labId: number): Promise<number[]> {
  const [rows] = (await pool.query(
    `SELECT user_details_id FROM LabMissingDetails WHERE lab_id = ?
     GROUP BY user_details_id ORDER BY MAX(created_at) DESC LIMIT 200`,
    [labId],
  )) as unknown as [Array<{ user_details_id: number }>];
  return rows.map((row) => row.user_details_id);
}

export async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const profile = args.quick ? PROFILES.quick : PROFILES.full;
  const settings = SETTINGS[profile.name];
  const databaseUrl = benchDatabaseUrl(profile);
  const dataset = await ensureDataset(args.quick, databaseUrl);
  log(
    `dataset ${profile.name}: ${dataset.rows.toLocaleString('en-US')} rows in ${dataset.labs} labs, large lab ${dataset.largeLabId} with ${dataset.largeLabRows.toLocaleString('en-US')}`,
  );

  const pool = mysql.createPool({
    uri: databaseUrl,
    connectionLimit: 4,
    supportBigNumbers: true,
    timezone: '+00:00',
  });
  const children: Child[] = [];
  const client = new SequentialClient();
  const results: ScenarioResult[] = [];
  const profiles: string[] = [];
  try {
    const legacy = startChild('legacy simulator', withTsx('bench/legacy-server.ts'), {
      BENCH_REPORT_PATIENTS: (await reportPatients(pool, dataset.largeLabId)).join(','),
    });
    children.push(legacy);
    const { py3Url, py2Url } = await legacy.firstJsonLine<{ py3Url: string; py2Url: string }>();

    const baselinePort = await freePort();
    const baseline = startChild(
      'baseline server',
      withTsx('--import', './bench/field-map.ts', 'bench/baseline-server.ts'),
      { DATABASE_URL: databaseUrl, PORT: String(baselinePort), DATABASE_POOL_SIZE: '10' },
    );
    children.push(baseline);
    const baselineUrl = `http://127.0.0.1:${baselinePort}`;
    await waitUntilReady(baseline, `${baselineUrl}/health`);

    const spoolDir = join(tmpdir(), `md-bench-spool-${process.pid}`);
    const serviceEntry = await buildService();
    const nodeFlags = await productionNodeFlags();
    const startService = async (nodeArgs: string[] = []) => {
      const port = await freePort();
      const child = startChild('service', [...nodeFlags, ...nodeArgs, serviceEntry], {
        NODE_ENV: 'production',
        AUTH_JWT_SECRET: DEVELOPMENT_JWT_SECRET,
        DATABASE_URL: databaseUrl,
        DATABASE_POOL_SIZE: '10',
        HOST: '127.0.0.1',
        PORT: String(port),
        LEGACY_PY3_URL: py3Url,
        LEGACY_PY2_URL: py2Url,
        LOG_LEVEL: 'error',
        CAPTURE_SPOOL_DIR: spoolDir,
        // One principal sends all the load: the per-principal rate limit stays on (its cost is measured)
        // but out of reach.
        RATE_LIMIT_MAX: '10000000',
      });
      children.push(child);
      const url = `http://127.0.0.1:${port}`;
      // A first start on a dataset may apply new migrations to a million rows: give it time.
      await waitUntilReady(child, `${url}/health`, 15 * 60_000);
      return { url, child };
    };
    // Profiling gives each scenario a service process of its own, and its own profile.
    const shared = args.profile ? null : await startService();

    const token = (labId: number) =>
      mintToken(DEVELOPMENT_JWT_SECRET, {
        labId,
        userId: USER_ID,
        role: 'lab_user',
        expiresInSeconds: 6 * 3600,
      });
    const baseEnv: Omit<BenchEnv, 'serviceUrl' | 'startService'> = {
      settings,
      dataset,
      databaseUrl,
      pool,
      baselineUrl,
      py3Url,
      auth: { authorization: `Bearer ${await token(dataset.largeLabId)}` },
      authFor: async (labId) => ({ authorization: `Bearer ${await token(labId)}` }),
      userId: USER_ID,
      client,
      log,
    };

    for (const scenario of SCENARIOS) {
      if (args.only && !args.only.includes(scenario.name)) continue;
      log(`${scenario.name}…`);
      const scenarioStarted = performance.now();
      const profileDir = join(BENCH_DIR, 'data', 'profiles', scenario.name);
      let service = scenario.service === 'shared' ? shared : null;
      const profiling = args.profile && scenario.service !== 'none';
      let measuredFrom = 0;
      try {
        if (profiling) {
          await rm(profileDir, { recursive: true, force: true });
          await mkdir(profileDir, { recursive: true });
          if (scenario.service === 'shared') service = await startService(cpuProfile(profileDir));
        }
        measuredFrom = monotonicMicros();
        results.push(
          ...(await scenario.run({
            ...baseEnv,
            serviceUrl: service?.url ?? 'http://service.not.started',
            // A scenario with a service of its own (memory) gets a heap profile instead.
            startService: () => startService(profiling ? heapProfile(profileDir) : []),
          })),
        );
      } catch (error) {
        log(`  ${scenario.name} failed: ${(error as Error).stack ?? error}`);
        results.push(...scenario.specs.map((spec) => failed(spec, error)));
      }
      if (profiling) {
        await service?.child.stop();
        try {
          profiles.push(profileMarkdown(scenario.name, await readProfile(profileDir, measuredFrom)));
        } catch (error) {
          log(`  no profile for ${scenario.name}: ${(error as Error).message}`);
        }
      }
      log(`  (${((performance.now() - scenarioStarted) / 1000).toFixed(0)} s)`);
    }
  } finally {
    client.close();
    await Promise.allSettled(children.map((child) => child.stop()));
    await pool.end();
  }

  const info: RunInfo = {
    profile: profile.name,
    startedAt,
    seconds: (performance.now() - started) / 1000,
    node: process.versions.node,
    cpus: cpus().length,
    dataset: `${dataset.labs.toLocaleString('en-US')} labs, ${dataset.rows.toLocaleString('en-US')} rows, large lab ${dataset.largeLabRows.toLocaleString('en-US')} rows`,
  };
  process.stdout.write(`\n${textTable(results)}\n\n`);
  if (args.profile) {
    const text = [
      '# Where the service spends its time',
      '',
      `\`npm run bench -- ${argv.join(' ')}\`, ${info.startedAt}, ${info.dataset}. Each scenario ran against a service`,
      'process of its own started with `--cpu-prof` (the memory scenario with `--heap-prof`); the tables rank self',
      'time from the scenario start on (start-up excluded). The raw profiles are in bench/data/profiles/ (open them',
      'in Chrome DevTools). Figures measured under the profiler are a little low.',
      '',
      textTableMarkdown(results),
      '',
      // What the tables mean, written by a person from them (bench/profile-reading.md): kept across runs.
      await readFile(join(BENCH_DIR, 'profile-reading.md'), 'utf8').catch(() => ''),
      ...profiles,
    ].join('\n');
    await writeFile(join(BENCH_DIR, 'results.profile.md'), text);
    log('wrote bench/results.profile.md (results files left as they were)');
  } else if (args.only) {
    log('--only: results files left as they were');
  } else {
    await writeResults(BENCH_DIR, results, info);
    log(`wrote bench/results.json, bench/results.md and bench/results.svg (${Math.round(info.seconds)} s)`);
  }
  return results.some((r) => r.value === null) ? 1 : 0;
}
