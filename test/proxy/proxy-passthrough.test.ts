import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { startTestApp, type TestApp } from '../support/fixtures.js';

let sim: LegacySimulator;
let t: TestApp;
let baseUrl: string;

beforeAll(async () => {
  sim = await startLegacySimulator();
  t = await startTestApp({ LEGACY_PY3_URL: sim.py3Url, LEGACY_TIMEOUT_MS: '500' });
  baseUrl = await t.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await t.close();
  await sim.close();
});
afterEach(() => {
  sim.state.py3Faults.length = 0;
});

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  body_base64: string;
}

function requestsTo(prefix: string) {
  return sim.state.py3Requests.filter((r) => r.url.startsWith(prefix));
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function expectNoInternalAddress(body: string, ...addresses: string[]) {
  for (const address of ['127.0.0.1', 'localhost', ...addresses]) expect(body).not.toContain(address);
}

describe('requests the service does not own go to legacy PY-3 unchanged', () => {
  it.each(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const)(
    'forwards a %s with its path, raw query, cookies, authorization and other headers',
    async (method) => {
      const url = `/api-v3/lab/things/42?b=2&a=1&a=3&empty=&enc=%20x%2B&method=${method}`;
      const res = await t.app.inject({
        method,
        url,
        headers: {
          cookie: 'sessionid=abc; csrftoken=xyz',
          authorization: 'Token legacy-opaque-token',
          'x-custom-header': 'kept',
          ...(method === 'GET' || method === 'DELETE'
            ? {}
            : { 'content-type': 'application/x-www-form-urlencoded' }),
        },
        ...(method === 'GET' || method === 'DELETE' ? {} : { payload: `field=body+of+${method}` }),
      });
      expect(res.statusCode).toBe(200);
      const echo = res.json<Echo>();
      expect(echo.method).toBe(method);
      expect(echo.url).toBe(url);
      expect(echo.headers).toMatchObject({
        cookie: 'sessionid=abc; csrftoken=xyz',
        authorization: 'Token legacy-opaque-token',
        'x-custom-header': 'kept',
      });
      if (method !== 'GET' && method !== 'DELETE') {
        expect(Buffer.from(echo.body_base64, 'base64').toString()).toBe(`field=body+of+${method}`);
      }
    },
  );

  it('forwards binary bodies byte for byte, whatever their content type', async () => {
    const bytes = randomBytes(64 * 1024);
    for (const contentType of ['application/octet-stream', 'image/png', 'multipart/form-data; boundary=x']) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api-v3/files/upload',
        headers: { 'content-type': contentType },
        payload: bytes,
      });
      expect(res.statusCode).toBe(200);
      const echo = res.json<Echo>();
      expect(echo.headers['content-type']).toBe(contentType);
      expect(Buffer.from(echo.body_base64, 'base64').equals(bytes)).toBe(true);
    }
  });

  it('forwards a JSON body as sent, without parsing and re-encoding it', async () => {
    const payload = ' { "b" : 2,\n  "a":1 }  ';
    const res = await t.app.inject({
      method: 'POST',
      url: '/api-v3/some/json-endpoint',
      headers: { 'content-type': 'application/json' },
      payload,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json<Echo>().headers['content-length']).toBe(String(Buffer.byteLength(payload)));
  });

  it('lets bodies larger than the service’s own 1 MiB limit through for legacy to decide', async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 17);
    const res = await fetch(`${baseUrl}/api-v3/files/big`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(res.status).toBe(200);
    const echo = (await res.json()) as Echo;
    expect(Buffer.from(echo.body_base64, 'base64').equals(bytes)).toBe(true);
  });

  it('returns legacy’s status and headers, every Set-Cookie as its own header', async () => {
    const res = await fetch(`${baseUrl}/api-v3/anything?status=418`);
    expect(res.status).toBe(418);
    expect(res.headers.get('x-legacy')).toBe('py3');
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
    await res.body?.cancel();
    for (const status of [201, 204, 302, 404, 500]) {
      const answer = await t.app.inject({ method: 'POST', url: `/api-v3/anything?status=${status}` });
      expect(answer.statusCode).toBe(status);
    }
  });

  it('answers a relayed request with its request id, the caller’s when it sent a sane one', async () => {
    const mine = await fetch(`${baseUrl}/api-v3/anything`, { headers: { 'x-request-id': 'trace-42.a' } });
    expect(mine.headers.get('x-request-id')).toBe('trace-42.a');
    await mine.body?.cancel();
    const generated = await fetch(`${baseUrl}/api-v3/anything`, { headers: { 'x-request-id': 'bad id!' } });
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    await generated.body?.cancel();
  });

  it('relays a large answer to a slow reader byte for byte', async () => {
    const bytes = randomBytes(3 * 1024 * 1024);
    const res = await fetch(`${baseUrl}/api-v3/files/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    const reader = res.body!.getReader();
    const chunks: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      // Reading slower than the proxy gets legacy's answer makes it wait for the client.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const echo = JSON.parse(Buffer.concat(chunks).toString()) as Echo;
    expect(Buffer.from(echo.body_base64, 'base64').equals(bytes)).toBe(true);
  });

  it('sends each request once: a legacy 503 reaches the client as a 503', async () => {
    sim.state.py3Faults.push({ pathPrefix: '/api-v3/once-503', status: 503 });
    const get = await t.app.inject({ method: 'GET', url: '/api-v3/once-503/get' });
    expect(get.statusCode).toBe(503);
    expect(get.json()).toEqual({ error: 'simulated failure 503' });
    const post = await t.app.inject({ method: 'POST', url: '/api-v3/once-503/post', payload: { a: 1 } });
    expect(post.statusCode).toBe(503);
    expect(requestsTo('/api-v3/once-503/get')).toHaveLength(1);
    expect(requestsTo('/api-v3/once-503/post')).toHaveLength(1);
  });

  it('keeps its own routes: /health, /trpc and the shim never reach legacy', async () => {
    const before = sim.state.py3Requests.length;
    const health = await t.app.inject({ url: '/health' });
    expect(health.json()).toMatchObject({ status: 'ok' });
    const shim = await t.app.inject({ url: '/api-v3/registration/patients/missing-details-templates' });
    expect(shim.statusCode).toBe(401);
    expect(shim.json().error.code).toBe('UNAUTHORIZED');
    const trpc = await t.app.inject({ url: '/trpc/templates.list' });
    expect(trpc.statusCode).toBe(401);
    expect(sim.state.py3Requests.length).toBe(before);
  });
});

describe('when legacy PY-3 fails', () => {
  it('answers 502 with the contract’s error body when legacy refuses connections', async () => {
    const port = await closedPort();
    const down = await startTestApp({ LEGACY_PY3_URL: `http://127.0.0.1:${port}`, LEGACY_TIMEOUT_MS: '500' });
    try {
      for (const method of ['GET', 'POST'] as const) {
        const res = await down.app.inject({ method, url: '/api-v3/anything?x=1' });
        expect(res.statusCode).toBe(502);
        expect(res.json()).toEqual({ error: { code: 'BAD_GATEWAY', message: expect.any(String) } });
        expectNoInternalAddress(res.body, String(port));
      }
    } finally {
      await down.close();
    }
  });

  it('answers 502 when legacy drops the connection, without retrying', async () => {
    sim.state.py3Faults.push({ pathPrefix: '/api-v3/reset', reset: true });
    const res = await t.app.inject({ method: 'GET', url: '/api-v3/reset/me' });
    expect(res.statusCode).toBe(502);
    expect(res.json().error.code).toBe('BAD_GATEWAY');
    expectNoInternalAddress(res.body, new URL(sim.py3Url).port);
    expect(requestsTo('/api-v3/reset/me')).toHaveLength(1);
  });

  it('answers 504 once LEGACY_TIMEOUT_MS passes without an answer', async () => {
    sim.state.py3Faults.push({ pathPrefix: '/api-v3/slow', delayMs: Number.POSITIVE_INFINITY });
    const started = Date.now();
    const res = await t.app.inject({ method: 'GET', url: '/api-v3/slow/report' });
    const elapsed = Date.now() - started;
    expect(res.statusCode).toBe(504);
    expect(res.json()).toEqual({ error: { code: 'GATEWAY_TIMEOUT', message: expect.any(String) } });
    expectNoInternalAddress(res.body, new URL(sim.py3Url).port);
    // The timeout is 500 ms; the margin only guards against hanging on legacy's default timeouts.
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(5_000);
    expect(requestsTo('/api-v3/slow/report')).toHaveLength(1);
  });
});
