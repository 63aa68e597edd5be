import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { testDatabaseUrl } from '../support/env.js';
import {
  eventually,
  PROCESS_TEST_TIMEOUT_MS,
  REPO_ROOT,
  type ServiceProcess,
  startServiceProcess,
  statusOf,
} from '../support/service-process.js';

/** Operations as a real deployment meets them: several instances, release jobs, SIGTERM, the worker's port. */

const root = new URL(testDatabaseUrl().replace(/^mariadb:/, 'mysql:'));
const created: string[] = [];
const running: ServiceProcess[] = [];
let simulator: LegacySimulator;

function freshDatabaseUrl(): string {
  const name = `md_ops_${process.pid}_${randomBytes(3).toString('hex')}`;
  created.push(name);
  const url = new URL(root);
  url.pathname = `/${name}`;
  return url.toString();
}

async function start(env: Record<string, string>, options: Parameters<typeof startServiceProcess>[1] = {}) {
  const service = await startServiceProcess(
    { LEGACY_PY3_URL: simulator.py3Url, LEGACY_PY2_URL: simulator.py2Url, ...env },
    options,
  );
  running.push(service);
  return service;
}

const ready = (service: ServiceProcess) =>
  eventually(
    'readiness',
    async () => ((await statusOf(`${service.url}/health`)) === 200 ? true : undefined),
    service,
  );

beforeAll(async () => {
  simulator = await startLegacySimulator();
});
afterEach(() => {
  for (const service of running.splice(0)) service.kill();
});
afterAll(async () => {
  await simulator?.close();
  const url = new URL(root);
  url.pathname = '/';
  const connection = await mysql.createConnection(url.toString());
  for (const name of created) await connection.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await connection.end();
});

async function appliedMigrations(databaseUrl: string): Promise<string[]> {
  const connection = await mysql.createConnection(databaseUrl);
  try {
    const [rows] = await connection.query('SELECT name FROM md_mikro_orm_migrations ORDER BY id');
    return (rows as Array<{ name: string }>).map((row) => row.name);
  } finally {
    await connection.end();
  }
}

describe('migrations on start', () => {
  it(
    'two instances started together on an empty database migrate it once',
    async () => {
      const databaseUrl = freshDatabaseUrl();
      const [a, b] = await Promise.all([
        start({ DATABASE_URL: databaseUrl }),
        start({ DATABASE_URL: databaseUrl }),
      ]);
      await Promise.all([ready(a as ServiceProcess), ready(b as ServiceProcess)]);
      const migrators = [a, b].filter((service) => service?.output().includes('applied migrations'));
      expect(migrators).toHaveLength(1);
      // The other waited on the lock, then found nothing pending: no failed attempt, no retry.
      for (const service of [a, b]) expect(service?.output()).not.toContain('database not ready');
      const names = await appliedMigrations(databaseUrl);
      expect(names.length).toBeGreaterThan(0);
      expect(new Set(names).size).toBe(names.length);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'with MIGRATE_ON_START=false an instance stays unready, naming the pending migrations, until `npm run db:migrate` ran',
    async () => {
      const databaseUrl = freshDatabaseUrl();
      const service = await start({ DATABASE_URL: databaseUrl, MIGRATE_ON_START: 'false' });
      const waiting = await eventually(
        'the pending migrations on /health',
        async () => {
          const res = await fetch(`${service.url}/health`);
          const body = (await res.json()) as { pendingMigrations?: string[] };
          return res.status === 503 && body.pendingMigrations?.length ? body : undefined;
        },
        service,
      );
      expect(waiting).toMatchObject({ status: 'unavailable', database: false });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await appliedMigrations(databaseUrl)).toEqual([]);

      const job = spawn(process.execPath, ['--import', 'tsx', 'src/cli/migrate.ts'], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', DATABASE_URL: databaseUrl },
        stdio: 'ignore',
      });
      expect(await new Promise((resolve) => job.once('exit', resolve))).toBe(0);
      await ready(service);
      expect(service.output()).not.toContain('applied migrations');
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});

describe('shutdown', () => {
  it(
    'on SIGTERM readiness answers 503 for SHUTDOWN_GRACE_MS while requests are still served, then in-flight requests drain and it exits 0',
    async () => {
      const graceMs = 2_000;
      const service = await start({ DATABASE_URL: testDatabaseUrl(), SHUTDOWN_GRACE_MS: String(graceMs) });
      await ready(service);
      simulator.state.py3Faults.push({ pathPrefix: '/slow-drain', delayMs: graceMs + 1_000 });
      const inFlight = fetch(`${service.url}/slow-drain/report`);
      await new Promise((resolve) => setTimeout(resolve, 200));

      const signalled = Date.now();
      service.child.kill('SIGTERM');
      const draining = await eventually(
        'readiness to turn 503',
        async () => {
          const res = await fetch(`${service.url}/health`);
          return res.status === 503 ? ((await res.json()) as { status: string }) : undefined;
        },
        service,
        graceMs,
      );
      expect(draining.status).toBe('draining');
      expect(await statusOf(`${service.url}/health/live`)).toBe(200);

      const answered = await inFlight;
      expect(answered.status).not.toBe(503);
      await answered.body?.cancel();
      expect(await service.exited).toBe(0);
      const stoppedAfterMs = Date.now() - signalled;
      expect(stoppedAfterMs).toBeGreaterThanOrEqual(graceMs);
      simulator.state.py3Faults.length = 0;
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});

describe('the standalone bridge worker', () => {
  it(
    'serves /health and /metrics on WORKER_PORT and stops on SIGTERM',
    async () => {
      const worker = await start(
        { DATABASE_URL: testDatabaseUrl(), LEGACY_PY2_TOKEN: 'development-py2-token' },
        { entry: 'legacy-bridge/main.ts', portVariable: 'WORKER_PORT' },
      );
      const health = await eventually(
        'the worker to be running',
        async () => {
          const res = await fetch(`${worker.url}/health`);
          return res.status === 200 ? await res.json() : undefined;
        },
        worker,
      );
      expect(health).toEqual({ status: 'ok', database: true });
      const metrics = await fetch(`${worker.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('md_bridge_creations');
      expect(await statusOf(`${worker.url}/anything-else`)).toBe(404);
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
