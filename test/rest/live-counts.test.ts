import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTRPCClient,
  httpLink,
  httpSubscriptionLink,
  splitLink,
  type TRPCClientError,
} from '@trpc/client';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../routers/app.router.js';
import type { TokenClaims } from '../../src/auth/token.js';
import { countOfEventId, liveCountsOf } from '../../src/services/live-counts.service.js';
import { waitFor } from '../support/bridge-fixtures.js';
import {
  authHeader,
  insertRows,
  newLabId,
  seedConfigs,
  startTestApp,
  type TestApp,
  testConfig,
  tokenFor,
} from '../support/fixtures.js';

const POLL_MS = 100;
const LIVE = {
  LIVE_COUNTS_POLL_INTERVAL_MS: String(POLL_MS),
  LIVE_COUNTS_MAX_PER_USER: '2',
  LIVE_COUNTS_HEARTBEAT_MS: '60000',
};

let a: TestApp;
let aUrl: string;
let other: ChildProcess | undefined;
let otherUrl: Promise<string>;
let spoolDir: string;

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** A second instance of the service: its own process, the same database. */
async function startOtherInstance(): Promise<string> {
  const port = await freePort();
  spoolDir = await mkdtemp(join(tmpdir(), 'md-live-counts-'));
  const config = testConfig();
  other = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      DATABASE_URL: config.databaseUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'silent',
      BRIDGE_WORKER_ENABLED: 'false',
      CAPTURE_SPOOL_DIR: spoolDir,
      SHUTDOWN_GRACE_MS: '0',
    },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => (await fetch(`${url}/health`).catch(() => null))?.status === 200,
    'the second instance to be ready',
    50_000,
    100,
  );
  return url;
}

beforeAll(async () => {
  otherUrl = startOtherInstance();
  otherUrl.catch(() => undefined);
  a = await startTestApp(LIVE);
  await a.app.listen({ host: '127.0.0.1', port: 0 });
  aUrl = `http://127.0.0.1:${(a.app.server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await a?.close();
  if (other && other.exitCode === null) {
    other.kill('SIGTERM');
    await once(other, 'exit');
  }
  if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
});

interface Stream {
  events: Array<{ id: string; openCount: number }>;
  errors: TRPCClientError<AppRouter>[];
  states: Array<{ state: string; code?: string | undefined }>;
  /** Waits for the `n`-th event (1-based) and returns it. */
  event(n: number): Promise<{ id: string; openCount: number }>;
  close(): void;
}

/** Subscribes to labFields.onChange through @trpc/client's SSE link, as the frontend does. */
async function subscribe(base: string, claims: TokenClaims | null, input?: unknown): Promise<Stream> {
  const token = claims ? await tokenFor(claims) : null;
  const client = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: `${base}/trpc`,
          EventSource,
          // EventSource cannot set headers itself; this implementation lets its fetch carry the bearer token.
          eventSourceOptions: {
            fetch: (url, init) =>
              fetch(url, {
                ...init,
                headers: { ...init?.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
              }),
          },
        }),
        false: httpLink({ url: `${base}/trpc` }),
      }),
    ],
  });
  const stream: Stream = {
    events: [],
    errors: [],
    states: [],
    async event(n) {
      await waitFor(
        () => stream.events.length >= n || stream.errors.length > 0,
        `live-count event ${n}`,
        15_000,
      );
      if (stream.events.length < n) throw stream.errors[0];
      return stream.events[n - 1]!;
    },
    close: () => subscription.unsubscribe(),
  };
  const subscription = client.labFields.onChange.subscribe(input as undefined, {
    onData: (data) => stream.events.push({ id: data.id, openCount: data.data.openCount }),
    onError: (error) => stream.errors.push(error as TRPCClientError<AppRouter>),
    onConnectionStateChange: (state) =>
      stream.states.push({
        state: state.state,
        code: (state.error as TRPCClientError<AppRouter> | null)?.data?.code,
      }),
  });
  return stream;
}

async function post(base: string, claims: TokenClaims, path: string, body: unknown, method = 'POST') {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(await authHeader(claims)), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
}

describe('labFields.onChange', () => {
  it('pushes the open count when another instance captures and resolves, seen through the database', async () => {
    const labId = newLabId();
    const claims = { labId, userId: 7 };
    await seedConfigs(a.db.em(), labId, [
      { field: 'email', value: 'noemail@lab.in' },
      { field: 'mobile', value: '9999999999' },
    ]);
    const stream = await subscribe(aUrl, claims);
    expect((await stream.event(1)).openCount).toBe(0);

    const b = await otherUrl;
    await post(b, claims, '/trpc/capture.patient', {
      userDetailsId: 501,
      values: { email: 'noemail@lab.in', mobile: '9999999999' },
    });
    const opened = await stream.event(2);
    expect(opened.openCount).toBe(2);
    expect(countOfEventId(opened.id)).toBe(2);

    const listed = await fetch(`${b}/api-v3/account/missing-details/lab-fields`, {
      headers: await authHeader(claims),
    });
    const ids = ((await listed.json()) as { results: Array<{ id: number }> }).results.map((r) => r.id);
    await post(
      b,
      claims,
      '/api-v3/account/missing-details/lab-fields',
      { ids: ids.slice(0, 1), is_resolved: true, reason_code: 'asked-declined' },
      'PATCH',
    );
    expect((await stream.event(3)).openCount).toBe(1);
    stream.close();
    expect(stream.errors).toEqual([]);
  });

  it('resumes after a reconnect: the count is sent again only if it changed since the last event id', async () => {
    const labId = newLabId();
    const claims = { labId, userId: 7 };
    const first = await subscribe(aUrl, claims);
    const seen = await first.event(1);
    expect(seen.openCount).toBe(0);
    first.close();

    await insertRows(a.db, [{ labId }]);
    const changed = await subscribe(aUrl, claims, { lastEventId: seen.id });
    const missed = await changed.event(1);
    expect(missed.openCount).toBe(1);
    changed.close();

    const unchanged = await subscribe(aUrl, claims, { lastEventId: missed.id });
    // Several polls go by without an event: the client already has this count.
    await new Promise((resolve) => setTimeout(resolve, POLL_MS * 6));
    expect(unchanged.events).toEqual([]);
    await insertRows(a.db, [{ labId }]);
    expect((await unchanged.event(1)).openCount).toBe(2);
    unchanged.close();

    // An id that is not one of ours is no resume point: the current count comes at once.
    const foreign = await subscribe(aUrl, claims, { lastEventId: 'not-an-id' });
    expect((await foreign.event(1)).openCount).toBe(2);
    foreign.close();
  });

  it('counts only the caller organization for an org-scoped caller', async () => {
    const labId = newLabId();
    await insertRows(a.db, [
      { labId, orgId: 9 },
      { labId, orgId: 10 },
      { labId, orgId: 10 },
    ]);
    const scoped = await subscribe(aUrl, { labId, userId: 7, orgId: 9 });
    const whole = await subscribe(aUrl, { labId, userId: 8 });
    expect((await scoped.event(1)).openCount).toBe(1);
    expect((await whole.event(1)).openCount).toBe(3);
    await insertRows(a.db, [{ labId, orgId: 9 }]);
    expect((await scoped.event(2)).openCount).toBe(2);
    expect((await whole.event(2)).openCount).toBe(4);
    scoped.close();
    whole.close();
  });

  it('polls each lab once however many clients listen, stops with the last one, and bounds streams per user', async () => {
    const labId = newLabId();
    const hub = liveCountsOf(a.app.deps);
    // Streams closed by earlier tests are released as their connections close.
    await waitFor(() => hub.polledScopes === 0, 'earlier streams to be released');
    const before = hub.polledScopes;
    const one = await subscribe(aUrl, { labId, userId: 7 });
    const two = await subscribe(aUrl, { labId, userId: 7 });
    const colleague = await subscribe(aUrl, { labId, userId: 8, role: 'doctor' });
    await Promise.all([one.event(1), two.event(1), colleague.event(1)]);
    expect(hub.polledScopes).toBe(before + 1);

    const third = await subscribe(aUrl, { labId, userId: 7 });
    await waitFor(() => third.errors.length > 0, 'the third stream of one user to be refused');
    expect(third.errors[0]!.data?.code).toBe('TOO_MANY_REQUESTS');
    expect(third.errors[0]!.message).toMatch(/At most 2 live-count streams per user/);
    expect(third.events).toEqual([]);

    one.close();
    // The freed place can be taken again.
    const again = await subscribe(aUrl, { labId, userId: 7 });
    expect((await again.event(1)).openCount).toBe(0);
    for (const stream of [two, colleague, again]) stream.close();
    await waitFor(() => hub.polledScopes === before, 'the lab poller to stop with its last subscriber');
  });

  it('refuses a caller without a principal and bad input', async () => {
    const anonymous = await subscribe(aUrl, null);
    await waitFor(() => anonymous.errors.length > 0, 'the anonymous stream to be refused');
    expect(anonymous.errors[0]!.data?.code).toBe('UNAUTHORIZED');

    const claims = { labId: newLabId(), userId: 7 };
    for (const input of [{ lastEventId: 'x'.repeat(201) }, { labId: 3 }]) {
      const bad = await subscribe(aUrl, claims, input);
      await waitFor(() => bad.errors.length > 0, 'a bad input to be refused');
      expect(bad.errors[0]!.data?.code).toBe('BAD_REQUEST');
    }
  });

  it('lets the server close promptly, telling open streams to reconnect elsewhere', async () => {
    const closing = await startTestApp(LIVE);
    await closing.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(closing.app.server.address() as { port: number }).port}`;
    const stream = await subscribe(base, { labId: newLabId(), userId: 7 });
    await stream.event(1);
    const started = Date.now();
    await closing.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    await waitFor(
      () => stream.states.some((s) => s.state === 'connecting' && s.code === 'SERVICE_UNAVAILABLE'),
      'the stream to be told the service is unavailable',
    );
    stream.close();
  });
});
