import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { canonicalPath, hasDotSegments } from '../../src/http/canonical-path.js';
import { isServicePath } from '../../src/http/route-table.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';
import { type RawAnswer, rawRequest } from '../support/raw-http.js';

/**
 * undici's headers timeout ticks at 1 s resolution (up to ~1 s late), so "within LEGACY_TIMEOUT_MS
 * + 10%" holds from about 10 s up (the default is 30 s); 12 s keeps this test honest and short.
 */
const TIMEOUT_MS = 12_000;

let sim: LegacySimulator;
let t: TestApp;
let port: number;
beforeAll(async () => {
  sim = await startLegacySimulator();
  t = await startTestApp({ LEGACY_PY3_URL: sim.py3Url, LEGACY_TIMEOUT_MS: String(TIMEOUT_MS) });
  const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
  port = Number(new URL(address).port);
});
afterAll(async () => {
  await t.close();
  await sim.close();
});
afterEach(() => {
  sim.state.py3Faults.length = 0;
});

function raw(method: string, path: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return rawRequest(port, method, path, headers);
}

function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

describe('legacy PY-3 faults', () => {
  it('answers a hanging PY-3 with 504 within LEGACY_TIMEOUT_MS + 10%, naming no internal address', async () => {
    sim.state.py3Faults.push({ pathPrefix: '/api-v3/hang', delayMs: Number.POSITIVE_INFINITY, times: 1 });
    const res = await raw('GET', '/api-v3/hang/report');
    expect(res.status).toBe(504);
    expect(res.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(res.ms).toBeLessThan(TIMEOUT_MS * 1.1);
    expect(JSON.parse(res.body).error.code).toBe('GATEWAY_TIMEOUT');
    expect(res.body).not.toContain('127.0.0.1');
  }, 30_000);

  it('answers a connection reset with 502', async () => {
    sim.state.py3Faults.push({ pathPrefix: '/api-v3/reset', reset: true, times: 1 });
    const res = await raw('POST', '/api-v3/reset/me');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body).error.code).toBe('BAD_GATEWAY');
    expect(res.body).not.toContain(sim.py3Url);
  });

  it('leaks no sockets or handles after 1,000 faults', async () => {
    // Warm up: the proxy's pool and the simulator's first connections are not leaks.
    await raw('GET', '/api-v3/warm');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = tcpSockets();
    const handlesBefore = process.getActiveResourcesInfo().length;
    sim.state.py3Faults.push({ pathPrefix: '/api-v3/flaky', reset: true, times: 1_000 });
    const statuses: number[] = [];
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          t.app.inject({
            method: i % 2 ? 'GET' : 'POST',
            url: `/api-v3/flaky/${batch}/${i}`,
            payload: i % 2 ? undefined : { n: i },
          }),
        ),
      );
      statuses.push(...answers.map((a) => a.statusCode));
    }
    expect(statuses.filter((s) => s === 502)).toHaveLength(1_000);
    // Sockets close asynchronously; give them a moment, then count again.
    let after = tcpSockets();
    for (let i = 0; i < 40 && after > before + 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      after = tcpSockets();
    }
    expect(after).toBeLessThanOrEqual(before + 2);
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(handlesBefore + 5);
    // And the proxy still works.
    expect((await raw('GET', '/api-v3/after/faults')).status).toBe(200);
  });
});

describe('encoded path tricks', () => {
  const TRICKS = [
    '/api-v3/%2e%2e/trpc/templates.list',
    '/api-v3/..%2ftrpc/templates.list',
    '/api-v3/%2e%2e%2f%2e%2e%2ftrpc%2ftemplates.list',
    '/api-v3/reports/%2e%2e/%2e%2e/trpc/templates.list',
    '/api-v3/x/%2E%2E/%2E%2E/api-v3/account/missing-details/lab-fields',
    '//trpc/templates.list',
    '//api-v3/registration/patients/lab-missing-details-config',
    '/api-v3/registration/patients/new%2f..%2f..%2ffinance/bill/1/update',
    '/api-v3/finance/bill/1%2fupdate',
  ];

  it("refuse dot segments, serve spellings of the service's own paths itself, and forward the rest exactly as sent", async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    for (const path of TRICKS) {
      const seen = sim.state.py3Requests.length;
      const res = await raw('GET', path, headers);
      const forwarded = sim.state.py3Requests
        .slice(seen)
        .filter((r) => !r.url.startsWith('/api-v3/account/session'));
      if (hasDotSegments(path)) {
        // No router agrees on dot segments: refused, and nothing reached legacy.
        expect(res.status, `${path}: ${res.body}`).toBe(400);
        expect(forwarded, path).toEqual([]);
      } else if (isServicePath(canonicalPath(path))) {
        // A spelling of the service's own path is the service's: never legacy's.
        expect(forwarded, path).toEqual([]);
        expect(res.status, `${path}: ${res.body}`).toBe(200);
      } else {
        // Legacy got the very path the client sent, and its answer came back untouched.
        expect(forwarded.map((r) => r.url)).toEqual([path]);
        if (res.status === 200) expect(JSON.parse(res.body).url, path).toBe(path);
      }
    }
  });

  it('keeps encoded tricks under /trpc inside tRPC, away from legacy', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    for (const path of [
      '/trpc/%2e%2e/api-v3/reports',
      '/trpc/..%2fapi-v3%2freports',
      '/trpc/templates.list%2f..%2f..',
    ]) {
      const seen = sim.state.py3Requests.length;
      const res = await raw('GET', path, headers);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
      expect(sim.state.py3Requests.slice(seen), path).toEqual([]);
    }
  });
});
