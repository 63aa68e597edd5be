/**
 * `npm run soak`: drives mixed load at the real service (over HTTP, with the bridge worker and the
 * capture retrier running) while PY-2 flaps, then checks that nothing was lost: every acknowledged
 * config save and capture is in the database, every queued entity creation was delivered exactly
 * once, and the heap after GC stayed flat. Not part of CI. Knobs (environment):
 * SOAK_DURATION_MS (default 300000), SOAK_CONCURRENCY (8), SOAK_PY2_FLAP_MS (5000),
 * SOAK_DATABASE_URL (mysql://root@127.0.0.1:3306/md_soak). Writes soak/last-result.json.
 */
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLegacySimulator } from '../simulator/legacy-simulator.js';
import { buildApp } from '../src/app.js';
import { mintToken } from '../src/auth/token.js';
import { startBackgroundTasks } from '../src/background.js';
import { DEVELOPMENT_JWT_SECRET, loadConfig } from '../src/config.js';
import { Database } from '../src/db/database.js';
import { ensureDatabaseExists, initOrm, migrateUp } from '../src/db/orm.js';

const env = process.env;
const durationMs = Number(env.SOAK_DURATION_MS ?? 300_000);
const concurrency = Number(env.SOAK_CONCURRENCY ?? 8);
const flapMs = Number(env.SOAK_PY2_FLAP_MS ?? 5_000);
const databaseUrl = env.SOAK_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/md_soak';

const CONFIGS = '/api-v3/registration/patients/lab-missing-details-config';
const LAB_FIELDS = '/api-v3/account/missing-details/lab-fields';
const PLACEHOLDER_EMAIL = 'noemail@lab.in';
const REFERRAL_DOCTOR = 5;
const EMAIL = 1;

const gc = (globalThis as { gc?: () => void }).gc;
function heapAfterGc(): number {
  gc?.();
  return process.memoryUsage().heapUsed;
}

async function main(): Promise<number> {
  await ensureDatabaseExists(databaseUrl);
  const migrator = await initOrm({ databaseUrl });
  await migrateUp(migrator);
  await migrator.close(true);

  const sim = await startLegacySimulator();
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    LEGACY_PY3_URL: sim.py3Url,
    LEGACY_PY2_URL: sim.py2Url,
    LEGACY_PY2_TOKEN: 'development-py2-token',
    LOG_LEVEL: 'warn',
    BRIDGE_POLL_INTERVAL_MS: '100',
    BRIDGE_BASE_BACKOFF_MS: '100',
    BRIDGE_MAX_BACKOFF_MS: '2000',
    BRIDGE_BREAKER_HALF_OPEN_MS: '500',
    RATE_LIMIT_MAX: '10000000',
    CAPTURE_SPOOL_DIR: join(dirname(fileURLToPath(import.meta.url)), '..', 'var', 'soak-spool'),
  });
  const orm = await initOrm({ databaseUrl, poolSize: 20 });
  const db = new Database(orm);
  const app = await buildApp({ config, db, logger: { level: 'error' } });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const tasks = await startBackgroundTasks({ config, db, logger: app.log });

  const runId = Date.now() % 1_000_000;
  const ackedSaves = new Map<number, { email: string; doctor: string }>();
  const ackedCaptures: Array<{ labId: number; userDetailsId: number }> = [];
  const counts = {
    requests: 0,
    errors5xx: 0,
    saves: 0,
    acknowledgedSaves: 0,
    captures: 0,
    lists: 0,
    resolves: 0,
  };
  const heap: number[] = [];
  let stopping = false;

  const flapper = (async () => {
    let up = true;
    while (!stopping) {
      await new Promise((resolve) => setTimeout(resolve, flapMs));
      if (stopping) break;
      if (up) await sim.stopPy2();
      else await sim.startPy2();
      up = !up;
    }
    if (!up) await sim.startPy2();
  })();
  const sampler = setInterval(() => heap.push(heapAfterGc()), 5_000);

  async function call(path: string, init: RequestInit & { token: string }) {
    counts.requests++;
    const res = await fetch(`${base}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${init.token}`, 'content-type': 'application/json' },
    });
    if (res.status >= 500) counts.errors5xx++;
    return res;
  }

  async function worker(w: number) {
    const labId = 900_000_000 + runId * 100 + w;
    const token = await mintToken(DEVELOPMENT_JWT_SECRET, { labId, userId: 7 });
    for (let i = 0; !stopping; i++) {
      const pick = i % 10;
      if (pick < 3) {
        const email = `soak-${w}-${i}@lab.in`;
        const doctor = `Dr. Soak ${w}-${i}`;
        const emailValue = i === 0 ? PLACEHOLDER_EMAIL : email;
        const res = await call(CONFIGS, {
          token,
          method: 'POST',
          body: JSON.stringify({
            configs: [
              { field_id: EMAIL, field_value: emailValue },
              { field_id: REFERRAL_DOCTOR, field_value: doctor },
            ],
          }),
        });
        counts.saves++;
        if (res.status === 200) {
          ackedSaves.set(labId, { email: emailValue, doctor });
          counts.acknowledgedSaves++;
        }
        await res.arrayBuffer().catch(() => undefined);
      } else if (pick < 7) {
        const current = ackedSaves.get(labId)?.email ?? PLACEHOLDER_EMAIL;
        const res = await call('/api-v3/registration/patients/new', {
          token,
          method: 'POST',
          body: JSON.stringify({ user_details_id: null, full_name: 'Soak Patient', email: current }),
        });
        counts.captures++;
        const body = (await res.json().catch(() => ({}))) as {
          user_details_id?: number;
          has_missing_fields?: boolean;
        };
        if (res.status === 200 && body.has_missing_fields === true && body.user_details_id) {
          ackedCaptures.push({ labId, userDetailsId: body.user_details_id });
        }
      } else if (pick < 9) {
        const res = await call(`${LAB_FIELDS}?limit=50`, { token, method: 'GET' });
        counts.lists++;
        await res.arrayBuffer();
      } else {
        const list = await call(`${LAB_FIELDS}?limit=5`, { token, method: 'GET' });
        const { results = [] } = (await list.json().catch(() => ({}))) as { results?: { id: number }[] };
        if (results.length > 0) {
          const res = await call(LAB_FIELDS, {
            token,
            method: 'PATCH',
            body: JSON.stringify({ ids: results.map((r) => r.id), is_resolved: i % 20 === 9 }),
          });
          counts.resolves++;
          await res.arrayBuffer();
        }
      }
    }
  }

  console.log(`soak: ${durationMs} ms, ${concurrency} workers, PY-2 flapping every ${flapMs} ms`);
  const startedAt = Date.now();
  const load = Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  stopping = true;
  await load;
  await flapper;
  clearInterval(sampler);

  const labIds = Array.from({ length: concurrency }, (_, w) => 900_000_000 + runId * 100 + w);
  const em = () => db.em();
  // Let the bridge deliver what is queued, PY-2 being up for good now.
  const drainDeadline = Date.now() + 120_000;
  let undelivered = Number.POSITIVE_INFINITY;
  while (Date.now() < drainDeadline) {
    const [row] = await em().execute<{ n: number }[]>(
      `SELECT COUNT(*) AS n FROM md_entity_creation_outbox WHERE lab_id IN (?) AND status <> 'delivered'`,
      [labIds],
    );
    undelivered = Number(row?.n ?? 0);
    if (undelivered === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }

  const problems: string[] = [];
  const configs = await em().execute<{ lab_id: number; field_id: number; field_value: string }[]>(
    'SELECT lab_id, field_id, field_value FROM LabMissingDetailsConfiguration WHERE lab_id IN (?) AND is_disabled = 0',
    [labIds],
  );
  for (const [labId, expected] of ackedSaves) {
    const of = (fieldId: number) =>
      configs.find((c) => Number(c.lab_id) === labId && Number(c.field_id) === fieldId)?.field_value;
    if (of(EMAIL) !== expected.email || of(REFERRAL_DOCTOR) !== expected.doctor) {
      problems.push(`lab ${labId}: acknowledged save missing`);
    }
  }
  const rows = await em().execute<{ lab_id: number; user_details_id: number }[]>(
    'SELECT DISTINCT lab_id, user_details_id FROM LabMissingDetails WHERE lab_id IN (?) AND field_id = ?',
    [labIds, EMAIL],
  );
  const captured = new Set(rows.map((r) => `${r.lab_id}:${r.user_details_id}`));
  const lostCaptures = ackedCaptures.filter((c) => !captured.has(`${c.labId}:${c.userDetailsId}`));
  if (lostCaptures.length) problems.push(`${lostCaptures.length} acknowledged captures missing`);
  const [outbox] = await em().execute<{ n: number; delivered: number }[]>(
    `SELECT COUNT(*) AS n, SUM(status = 'delivered') AS delivered FROM md_entity_creation_outbox WHERE lab_id IN (?)`,
    [labIds],
  );
  const [traces] = await em().execute<{ n: number; creations: number }[]>(
    `SELECT COUNT(*) AS n, COUNT(DISTINCT config_id, object_id) AS creations FROM MissingDetailsEntityCreation
      WHERE lab_id IN (?) AND entity_name = 'referral_doctor'`,
    [labIds],
  );
  const [succeeded] = await em().execute<{ n: number }[]>(
    `SELECT COUNT(*) AS n FROM ActivityLog WHERE lab_id IN (?) AND action = 'entity_creation_succeeded'`,
    [labIds],
  );
  const [audited] = await em().execute<{ n: number }[]>(
    `SELECT COUNT(*) AS n FROM ActivityLog WHERE lab_id IN (?) AND action = 'config_saved'`,
    [labIds],
  );
  // Each acknowledged save committed its audit row in its own transaction: one row per save.
  if (Number(audited?.n) !== counts.acknowledgedSaves) {
    problems.push(`${counts.acknowledgedSaves} acknowledged saves but ${audited?.n} config_saved rows`);
  }
  const queued = Number(outbox?.n ?? 0);
  if (undelivered !== 0) problems.push(`${undelivered} queued creations not delivered`);
  if (Number(traces?.n) !== queued || Number(succeeded?.n) !== queued) {
    problems.push(
      `creations: ${queued} queued, ${traces?.n} traces, ${succeeded?.n} success logs (want equal)`,
    );
  }
  const warm = heap.slice(Math.floor(heap.length * 0.2), Math.floor(heap.length * 0.4));
  const last = heap.slice(-Math.max(1, Math.floor(heap.length * 0.2)));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const heapStartMb = median(warm.length ? warm : heap) / 2 ** 20;
  const heapEndMb = median(last) / 2 ** 20;
  const memoryFlat = heapEndMb <= heapStartMb * 1.25 + 10;
  if (!memoryFlat) problems.push(`heap grew from ${heapStartMb.toFixed(1)} MB to ${heapEndMb.toFixed(1)} MB`);
  if (!gc) problems.push('run with --expose-gc for meaningful heap samples');

  const result = {
    finishedAt: new Date().toISOString(),
    durationMs: Date.now() - startedAt,
    concurrency,
    py2FlapMs: flapMs,
    ...counts,
    acknowledgedCaptures: ackedCaptures.length,
    queuedCreations: queued,
    deliveredCreations: Number(outbox?.delivered ?? 0),
    py2Calls: sim.state.py2Calls.length,
    heapStartMb: Number(heapStartMb.toFixed(1)),
    heapEndMb: Number(heapEndMb.toFixed(1)),
    ok: problems.length === 0,
    problems,
  };
  await writeFile(
    join(dirname(fileURLToPath(import.meta.url)), 'last-result.json'),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  console.log(JSON.stringify(result, null, 2));

  for (const task of tasks) await task.stop();
  await app.close();
  await db.close();
  await sim.close();
  return result.ok ? 0 : 1;
}

process.exitCode = await main();
