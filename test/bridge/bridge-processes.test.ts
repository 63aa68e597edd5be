import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import type { Database } from '../../src/db/database.js';
import {
  countDelivered,
  openBridgeDatabase,
  outboxStates,
  PY2_TOKEN,
  type SeededCreation,
  seedCreations,
  traceSummary,
  waitFor,
} from '../support/bridge-fixtures.js';

/** `npm run worker` as real processes: killed, restarted and run side by side on one database. */

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

let db: Database;
let databaseUrl: string;
let sim: LegacySimulator;
const children: WorkerProcess[] = [];

interface WorkerProcess {
  child: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the worker logged that it started. */
  started: Promise<void>;
}

function spawnWorker(env: Record<string, string> = {}): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'legacy-bridge/main.ts'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      DATABASE_URL: databaseUrl,
      LEGACY_PY2_URL: sim.py2Url,
      LEGACY_PY2_TOKEN: PY2_TOKEN,
      LOG_LEVEL: 'info',
      BRIDGE_POLL_INTERVAL_MS: '50',
      BRIDGE_CLAIM_TTL_MS: '1000',
      BRIDGE_REQUEST_TIMEOUT_MS: '800',
      BRIDGE_BASE_BACKOFF_MS: '50',
      BRIDGE_MAX_BACKOFF_MS: '500',
      BRIDGE_BREAKER_HALF_OPEN_MS: '200',
      BRIDGE_SHUTDOWN_GRACE_MS: '3000',
      // Each worker's /health and /metrics on a port of its own: several run side by side.
      WORKER_PORT: '0',
      BRIDGE_CONCURRENCY: '8',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let onStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    onStarted = resolve;
  });
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    output.push(text);
    if (text.includes('legacy bridge worker started')) onStarted();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const worker = { child, output, exited, started };
  children.push(worker);
  return worker;
}

async function startedWithin(worker: WorkerProcess, ms = 60_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    worker.started,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`worker did not start within ${ms} ms:\n${worker.output.join('')}`)),
        ms,
      );
    }),
  ]);
  clearTimeout(timer);
}

function callsFor(creation: SeededCreation): number {
  return sim.state.py2Calls.filter((call) => call.idempotencyKey === creation.idempotencyKey).length;
}

beforeAll(async () => {
  ({ db, url: databaseUrl } = await openBridgeDatabase('processes'));
});
afterAll(async () => {
  await db.close();
});
beforeEach(async () => {
  sim = await startLegacySimulator();
});
afterEach(async () => {
  for (const { child, exited } of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
  await sim.close();
});

describe('the legacy bridge worker process', () => {
  it('delivers a creation once, with one trace, when killed with SIGKILL between its call and its commit and restarted, and drains on SIGTERM', async () => {
    // PY-2 is slow to answer: the kill lands after the call and before any commit, and PY-2 still
    // creates the entity for the dead worker.
    sim.state.py2Faults.push({ delayMs: 1_500, times: 1 });
    const env = { BRIDGE_CLAIM_TTL_MS: '3000', BRIDGE_REQUEST_TIMEOUT_MS: '2500' };
    const [creation] = await seedCreations(db, { count: 1 });
    const first = spawnWorker(env);
    await waitFor(() => callsFor(creation!) === 1, 'the first delivery to reach PY-2', 60_000);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    const [orphaned] = await outboxStates(db, [creation!.id]);
    expect(orphaned).toMatchObject({ status: 'queued', attempts: 1, claimed_by: expect.any(String) });
    await waitFor(() => sim.state.py2Objects.has(creation!.idempotencyKey), 'PY-2 to create the entity');
    const createdForTheDeadWorker = sim.state.py2Objects.get(creation!.idempotencyKey);

    const second = spawnWorker(env);
    await waitFor(async () => (await countDelivered(db, [creation!.id])) === 1, 'the delivery', 60_000);
    expect(callsFor(creation!)).toBe(2);
    const summary = await traceSummary(db, [creation!]);
    const [delivered] = await outboxStates(db, [creation!.id]);
    expect(summary.traces.get(creation!.configId)).toEqual({ count: 1, objectIds: [delivered!.object_id] });
    expect(summary.activity.get('entity_creation_succeeded')).toBe(1);
    expect(delivered!.object_id).toBe(createdForTheDeadWorker);
    expect(delivered!.claimed_by).not.toBe(orphaned!.claimed_by);

    // SIGTERM lets the delivery in flight finish before the process exits.
    sim.state.py2Faults.push({ delayMs: 600, times: 1 });
    const [next] = await seedCreations(db, { count: 1 });
    await waitFor(() => callsFor(next!) === 1, 'the next delivery to reach PY-2', 30_000);
    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(await countDelivered(db, [next!.id])).toBe(1);
    expect(callsFor(next!)).toBe(1);
    expect((await traceSummary(db, [next!])).traces.get(next!.configId)?.count).toBe(1);
  }, 120_000);

  it('shares 200 creations between two processes without sending any twice, one trace each', async () => {
    sim.state.py2Faults.push({ delayMs: 15 });
    // Calls and claims outlast any delivery here even on a loaded machine, so no call times out and
    // no claim expires: a second send could only be a bug.
    const env = { BRIDGE_CLAIM_TTL_MS: '20000', BRIDGE_REQUEST_TIMEOUT_MS: '15000' };
    const workers = [spawnWorker(env), spawnWorker(env)];
    await Promise.all(workers.map((w) => startedWithin(w)));
    const creations = await seedCreations(db, { count: 200 });
    const ids = creations.map((c) => c.id);
    await waitFor(async () => (await countDelivered(db, ids)) === 200, 'all 200 deliveries', 60_000, 100);

    expect(sim.state.py2MaxConcurrentPerKey).toBe(1);
    expect(sim.state.py2Calls).toHaveLength(200);
    expect(new Set(sim.state.py2Calls.map((c) => c.idempotencyKey)).size).toBe(200);
    const summary = await traceSummary(db, creations);
    expect(summary.traces.size).toBe(200);
    expect([...summary.traces.values()].every((t) => t.count === 1)).toBe(true);
    expect(summary.activity.get('entity_creation_succeeded')).toBe(200);
    const deliveredBy = new Set((await outboxStates(db, ids)).map((s) => s.claimed_by));
    expect(deliveredBy.size).toBe(2);

    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) expect(await w.exited).toEqual({ code: 0, signal: null });
  }, 120_000);
});
