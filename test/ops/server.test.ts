import { randomBytes } from 'node:crypto';
import net from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { testDatabaseUrl } from '../support/env.js';
import {
  eventually,
  freePort,
  PROCESS_TEST_TIMEOUT_MS,
  type ServiceProcess,
  startServiceProcess,
} from '../support/service-process.js';

/** The real server process (`src/server.ts`), over real HTTP. */

type ServerProcess = ServiceProcess;

const started: ServerProcess[] = [];

async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServiceProcess(env);
  started.push(server);
  return server;
}

async function healthStatus(server: ServerProcess): Promise<number> {
  const res = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(3_000) });
  await res.body?.cancel();
  return res.status;
}

async function portIsFree(port: number): Promise<boolean> {
  const probe = net.createServer();
  return new Promise((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** A TCP forwarder to MariaDB that can be started late: until then, the database refuses connections. */
function databaseForwarder(targetHost: string, targetPort: number) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  return {
    listen: (port: number) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    close: async () => {
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const database = new URL(testDatabaseUrl().replace(/^mariadb:/, 'mysql:'));
const freshDatabase = `md_mig_server_${process.pid}_${randomBytes(3).toString('hex')}`;
let simulator: LegacySimulator;
const forwarder = databaseForwarder(database.hostname, Number(database.port || 3306));

function databaseUrlVia(port: number, name: string): string {
  const url = new URL(database);
  url.port = String(port);
  url.pathname = `/${name}`;
  return url.toString();
}

beforeAll(async () => {
  simulator = await startLegacySimulator();
});

afterEach(() => {
  for (const server of started.splice(0)) {
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  }
});

afterAll(async () => {
  await forwarder.close();
  if (simulator) {
    // close() waits for connections that never sent a request, and undici opens some ahead of use.
    simulator.py3.server.closeAllConnections();
    simulator.py2.server.closeAllConnections();
    await simulator.close();
  }
  const url = new URL(database);
  url.pathname = '/';
  const admin = await mysql.createConnection({ uri: url.toString() });
  try {
    await admin.query(`DROP DATABASE IF EXISTS \`${freshDatabase}\``);
  } finally {
    await admin.end();
  }
});

describe('the server process', () => {
  it(
    'listens at once, answers 503 on /health while the database is unreachable, and stops on SIGTERM',
    async () => {
      const unreachable = await freePort();
      const server = await startServer({
        DATABASE_URL: databaseUrlVia(unreachable, 'md_never_created'),
        LEGACY_PY3_URL: simulator.py3Url,
        LEGACY_PY2_URL: simulator.py2Url,
      });
      const status = await eventually('the port to answer', () => healthStatus(server), server);
      expect(status).toBe(503);
      const body = await (await fetch(`${server.url}/health`)).json();
      expect(body).toMatchObject({ status: 'unavailable', database: false });
      // Routes that need the database answer 503 too, not 500.
      const res = await fetch(`${server.url}/trpc/templates.list`, {
        headers: { cookie: 'sessionid=nobody' },
      });
      expect([401, 503]).toContain(res.status);

      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      expect(await portIsFree(server.port)).toBe(true);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'creates and migrates its database once it becomes reachable, then reports ready',
    async () => {
      const late = await freePort();
      simulator.state.sessions.set('slow-session', {
        lab_id: 31,
        user_id: 7,
        is_doctor: false,
        org_id: null,
      });
      const server = await startServer({
        DATABASE_URL: databaseUrlVia(late, freshDatabase),
        LEGACY_PY3_URL: simulator.py3Url,
        LEGACY_PY2_URL: simulator.py2Url,
      });
      expect(await eventually('the port to answer', () => healthStatus(server), server)).toBe(503);

      await forwarder.listen(late);
      await eventually(
        'the database to be ready',
        async () => ((await healthStatus(server)) === 200 ? true : undefined),
        server,
      );
      expect(server.output()).toMatch(/applied migrations/);

      // SIGTERM while requests are in flight (one of the service's own, one proxied to legacy): both
      // complete, then the process exits 0.
      simulator.state.py3Faults.push(
        { pathPrefix: '/api-v3/account/session', delayMs: 1_500, times: 1 },
        { pathPrefix: '/api-v3/slow-legacy-page', delayMs: 1_500, times: 1 },
      );
      const seenBefore = simulator.state.py3Requests.length;
      const ownRoute = fetch(`${server.url}/api-v3/registration/patients/missing-details-templates`, {
        headers: { cookie: 'sessionid=slow-session' },
      });
      const proxied = fetch(`${server.url}/api-v3/slow-legacy-page?x=1`);
      await eventually(
        'both requests to reach legacy',
        async () => (simulator.state.py3Requests.length >= seenBefore + 2 ? true : undefined),
        server,
      );
      // A client that connected and never sent a request must not hold the drain either.
      const silent = net.connect(server.port, '127.0.0.1');
      silent.on('error', () => undefined);
      await new Promise((resolve) => silent.once('connect', resolve));
      server.child.kill('SIGTERM');
      const own = await ownRoute;
      expect(own.status).toBe(200);
      expect(((await own.json()) as { templates: unknown[] }).templates.length).toBeGreaterThan(0);
      const legacy = await proxied;
      expect(legacy.status).toBe(200);
      expect(await legacy.json()).toMatchObject({ method: 'GET', url: '/api-v3/slow-legacy-page?x=1' });
      expect(await server.exited).toBe(0);
      expect(server.output()).toMatch(/stopped/);
      expect(silent.destroyed || silent.readableEnded).toBe(true);
      expect(await portIsFree(server.port)).toBe(true);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
