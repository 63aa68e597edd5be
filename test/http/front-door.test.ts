import type { Socket } from 'node:net';
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { DEVELOPMENT_JWT_SECRET, loadConfig } from '../../src/config.js';
import { authHeader, newLabId, startTestApp, type TestApp, tokenFor } from '../support/fixtures.js';
import { rawRequest, stalledRequest } from '../support/raw-http.js';

const LAB_FIELDS = '/api-v3/account/missing-details/lab-fields';

async function listening(overrides: Record<string, string>, sim: LegacySimulator) {
  const t = await startTestApp({ LEGACY_PY3_URL: sim.py3Url, ...overrides });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  return { t, port: (t.app.server.address() as { port: number }).port };
}

function closed(socket: Socket): Promise<number> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve(Date.now());
    else socket.once('close', () => resolve(Date.now()));
  });
}

let sim: LegacySimulator;
beforeAll(async () => {
  sim = await startLegacySimulator();
});
afterAll(async () => {
  await sim.close();
});

describe('slow and stalled clients', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    ({ t, port } = await listening(
      { HTTP_BODY_IDLE_TIMEOUT_MS: '4000', CLIENT_MAX_OPEN_REQUESTS: '64' },
      sim,
    ));
  });
  afterAll(() => t.close());
  const sockets: Socket[] = [];
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.destroy();
  });

  it('keeps answering other clients while one holds 300 stalled uploads, and cuts those by the body-idle timeout', async () => {
    const heads = [
      'POST /api-v3/registration/patients/new',
      `PATCH ${LAB_FIELDS}`,
      'POST /trpc/labFields.resolve',
      'POST /api-v3/some/legacy/upload',
    ].map(
      (line) =>
        `${line} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"a":`,
    );
    const stalled = await Promise.all(
      Array.from({ length: 300 }, (_, i) => stalledRequest(port, heads[i % heads.length]!, '127.0.0.2')),
    );
    sockets.push(...stalled);
    const answers = new Map<Socket, string>();
    for (const socket of stalled) socket.on('data', (chunk: Buffer) => answers.set(socket, chunk.toString()));
    const lastOpened = Date.now();
    // Uploads without a principal to the shim are answered 401 at once; the rest are held up to the
    // bound, and beyond it refused.
    for (let waited = 0; answers.size < 300 - 64 && waited < 5_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const held = stalled.filter((s) => !answers.has(s));
    expect(held.length).toBe(64);
    const statuses = [...answers.values()].map((text) => text.slice(9, 12));
    expect(statuses.filter((status) => status === '429').length).toBeGreaterThan(150);
    expect(statuses.every((status) => status === '429' || status === '401')).toBe(true);
    expect(
      [...answers.values()]
        .filter((text) => text.startsWith('HTTP/1.1 429'))
        .every((text) => /retry-after: \d+/i.test(text)),
    ).toBe(true);

    // Another client, meanwhile: a proxied GET and a shim GET answer while the 64 are still held.
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const proxied = await rawRequest(port, 'GET', '/api-v3/plain/read');
    const shim = await rawRequest(port, 'GET', LAB_FIELDS, headers);
    const trpc = await rawRequest(port, 'GET', '/trpc/templates.list', headers);
    expect([proxied.status, shim.status, trpc.status]).toEqual([200, 200, 200]);
    expect(held.filter((s) => !s.destroyed).length).toBe(64);

    const closedAt = await Promise.all(stalled.map(closed));
    const cutAfterMs = Math.max(...closedAt) - lastOpened;
    console.info(
      `stalled uploads: 300 opened, ${held.length} held, last cut ${cutAfterMs} ms after the last opened`,
    );
    expect(cutAfterMs).toBeGreaterThanOrEqual(3_000);
  });
});

describe('bodies', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    ({ t, port } = await listening({}, sim));
  });
  afterAll(() => t.close());

  it('refuses a 60 MB multipart body to /trpc with 415 before reading it, and the process does not grow by its size', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const size = 60 * 1024 * 1024;
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, async () => {
        socket.write(
          `POST /trpc/configs.save HTTP/1.1\r\nHost: x\r\nAuthorization: ${headers.authorization}\r\n` +
            `Content-Type: multipart/form-data; boundary=b\r\nContent-Length: ${size}\r\n\r\n`,
        );
        const chunk = Buffer.alloc(1024 * 1024, 'x');
        for (let sent = 0; sent < size && !socket.destroyed && !got; sent += chunk.length) {
          if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
        }
      });
      let got = '';
      socket.on('data', (data: Buffer) => {
        got += data.toString();
        if (got.includes('\r\n\r\n')) {
          resolve(got);
          socket.destroy();
        }
      });
      socket.on('error', (error) => (got ? resolve(got) : reject(error)));
    });
    const grewBy = process.memoryUsage().rss - rssBefore;
    console.info(
      `60 MB multipart to /trpc: ${answer.split('\r\n')[0]}, RSS grew by ${(grewBy / 1048576).toFixed(1)} MiB`,
    );
    expect(answer.startsWith('HTTP/1.1 415')).toBe(true);
    expect(grewBy).toBeLessThan(size / 4);
  });

  it('holds the 1 MiB cap for every content type on /trpc and the shim', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const big = 'x'.repeat(1024 * 1024 + 10);
    const json = { ...headers, 'content-type': 'application/json' };
    expect((await rawRequest(port, 'POST', '/trpc/configs.save', json, `"${big}"`)).status).toBe(413);
    expect((await rawRequest(port, 'PATCH', LAB_FIELDS, json, `"${big}"`)).status).toBe(413);
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=b',
    ]) {
      const typed = { ...headers, 'content-type': type };
      expect((await rawRequest(port, 'POST', '/trpc/configs.save', typed, big)).status, type).toBe(415);
      expect((await rawRequest(port, 'PATCH', LAB_FIELDS, typed, big)).status, type).toBe(415);
    }
  });

  it('lets a flagged answer beyond the shared buffer budget pass through unflagged, and counts it', async () => {
    const small = await listening({ LEGACY_BUFFER_BUDGET_BYTES: '1024' }, sim);
    try {
      const labId = newLabId();
      const headers = await authHeader({ labId, userId: 7 });
      for (let id = 1; id <= 40; id++)
        sim.state.reports.set(9_100_000 + id, {
          report_id: 9_100_000 + id,
          user_details_id: id,
          note: 'n'.repeat(40),
        });
      const res = await rawRequest(small.port, 'GET', '/api-v3/reports', headers);
      expect(res.status).toBe(200);
      expect(res.body).not.toContain('has_missing_fields');
      const metrics = await rawRequest(small.port, 'GET', '/metrics');
      expect(metrics.body).toMatch(
        /missing_details_proxy_untouched_answers_total\{path="reports_list",reason="buffer_budget"\} [1-9]/,
      );
    } finally {
      for (let id = 1; id <= 40; id++) sim.state.reports.delete(9_100_000 + id);
      await small.t.close();
    }
  });
});

describe('legacy connections', () => {
  it('answers 504 to a request that waited LEGACY_TIMEOUT_MS for a PY-3 connection, and never sends it', async () => {
    const { t, port } = await listening(
      { LEGACY_MAX_CONNECTIONS: '1', LEGACY_TIMEOUT_MS: '400', HTTP_BODY_IDLE_TIMEOUT_MS: '5000' },
      sim,
    );
    try {
      // The one connection is held by an upload whose body never ends.
      const holder = await stalledRequest(
        port,
        'POST /api-v3/slot/holder HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{',
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      const seen = sim.state.py3Requests.length;
      const waited = await rawRequest(port, 'GET', '/api-v3/slot/waiter');
      expect(waited.status).toBe(504);
      expect(JSON.parse(waited.body).error.code).toBe('GATEWAY_TIMEOUT');
      expect(waited.body).not.toMatch(/127\.0\.0\.1|localhost/);
      expect(sim.state.py3Requests.slice(seen).map((r) => r.url)).not.toContain('/api-v3/slot/waiter');
      holder.destroy();
      // The slot comes back once the holder is gone.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await rawRequest(port, 'GET', '/api-v3/slot/after')).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('principal work', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    ({ t, port } = await listening({ RATE_LIMIT_MAX: '1000' }, sim));
  });
  afterAll(() => t.close());

  it('does no session check for plain proxied requests, whatever cookies they carry', async () => {
    const sessionChecks = () =>
      sim.state.py3Requests.filter((r) => r.url.startsWith('/api-v3/account/session')).length;
    const before = sessionChecks();
    for (let i = 0; i < 20; i++) {
      const res = await rawRequest(port, 'GET', `/api-v3/plain/page-${i}`, {
        cookie: `sessionid=cookie-${i}`,
      });
      expect(res.status).toBe(200);
    }
    expect(sessionChecks() - before).toBe(0);
  });

  it('answers 401 before judging the input on the shim and /trpc', async () => {
    expect((await rawRequest(port, 'GET', `${LAB_FIELDS}?foo=1&page_size=abc`)).status).toBe(401);
    expect(
      (await rawRequest(port, 'PATCH', LAB_FIELDS, { 'content-type': 'application/json' }, '{not json'))
        .status,
    ).toBe(401);
    expect((await rawRequest(port, 'DELETE', LAB_FIELDS)).status).toBe(401);
    expect((await rawRequest(port, 'GET', '/trpc/labFields.list?input=%7Bbad')).status).toBe(401);
  });
});

describe('tokens', () => {
  it('must carry the configured issuer and audience', async () => {
    const { t, port } = await listening(
      {
        AUTH_JWT_SECRET: 's'.repeat(32),
        AUTH_JWT_ISSUER: 'https://lab.example',
        AUTH_JWT_AUDIENCE: 'missing-details',
      },
      sim,
    );
    try {
      const labId = newLabId();
      const ask = async (claims: { issuer?: string; audience?: string }) => {
        const token = await tokenFor({ labId, userId: 7, ...claims }, 's'.repeat(32));
        return (await rawRequest(port, 'GET', LAB_FIELDS, { authorization: `Bearer ${token}` })).status;
      };
      expect(await ask({ issuer: 'https://lab.example', audience: 'missing-details' })).toBe(200);
      expect(await ask({})).toBe(401);
      expect(await ask({ issuer: 'https://other.example', audience: 'missing-details' })).toBe(401);
      expect(await ask({ issuer: 'https://lab.example', audience: 'other' })).toBe(401);
    } finally {
      await t.close();
    }
  });

  it('allows the development secret only on a loopback address', () => {
    const base = { NODE_ENV: 'development' as const };
    expect(() => loadConfig({ ...base, HOST: '0.0.0.0' })).toThrow(/AUTH_JWT_SECRET/);
    expect(loadConfig({ ...base, HOST: '127.0.0.1' }).auth.jwtSecret).toBe(DEVELOPMENT_JWT_SECRET);
    expect(
      loadConfig({ ...base, HOST: '0.0.0.0', AUTH_JWT_SECRET: 'x'.repeat(32) }).auth.usingDevelopmentSecret,
    ).toBe(false);
  });
});

describe('forwarding', () => {
  const forwardedTo = (url: string) =>
    sim.state.py3Requests.filter((r) => r.url === url).at(-1)?.headers ?? {};

  it('drops hop-by-hop headers, sets X-Forwarded-* and the request id, and returns the id', async () => {
    const { t, port } = await listening({}, sim);
    try {
      const res = await rawRequest(port, 'GET', '/api-v3/forward/one', {
        connection: 'keep-alive, x-secret-hop',
        'x-secret-hop': '1',
        'proxy-authorization': 'Basic eDp5',
        te: 'trailers',
        'x-forwarded-for': '6.6.6.6',
        'x-request-id': 'req-front-door-1',
        'x-kept': 'yes',
      });
      expect(res.headers['x-request-id']).toBe('req-front-door-1');
      const seen = forwardedTo('/api-v3/forward/one');
      for (const name of ['x-secret-hop', 'proxy-authorization', 'te', 'keep-alive'])
        expect(seen, name).not.toHaveProperty(name);
      expect(seen['x-kept']).toBe('yes');
      expect(seen['x-request-id']).toBe('req-front-door-1');
      expect(seen['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen['x-forwarded-proto']).toBe('http');
      expect(seen['x-forwarded-host']).toMatch(/^127\.0\.0\.1:\d+$/);
    } finally {
      await t.close();
    }
  });

  it('appends to what a trusted edge wrote', async () => {
    const { t, port } = await listening({ TRUST_PROXY: '127.0.0.1' }, sim);
    try {
      await rawRequest(port, 'GET', '/api-v3/forward/two', {
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'lab.example',
      });
      const seen = forwardedTo('/api-v3/forward/two');
      expect(seen['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
      expect(seen['x-forwarded-proto']).toBe('https');
      expect(seen['x-forwarded-host']).toBe('lab.example');
    } finally {
      await t.close();
    }
  });

  it('sends the request id with a session check', async () => {
    const { t, port } = await listening({}, sim);
    try {
      sim.state.sessions.set('front-door-session', {
        lab_id: newLabId(),
        user_id: 7,
        is_doctor: false,
        org_id: null,
      });
      await rawRequest(port, 'GET', '/api-v3/reports', {
        cookie: 'sessionid=front-door-session',
        'x-request-id': 'req-session-7',
      });
      const check = sim.state.py3Requests.filter((r) => r.url.startsWith('/api-v3/account/session')).at(-1);
      expect(check?.headers['x-request-id']).toBe('req-session-7');
    } finally {
      await t.close();
    }
  });
});
