import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

const TEMPLATES = '/api-v3/registration/patients/missing-details-templates';
const CONFIGS = '/api-v3/registration/patients/lab-missing-details-config';
const LAB_FIELDS = '/api-v3/account/missing-details/lab-fields';

let sim: LegacySimulator;
let t: TestApp;
beforeAll(async () => {
  sim = await startLegacySimulator();
  t = await startTestApp({ LEGACY_PY3_URL: sim.py3Url });
});
afterAll(async () => {
  await t.close();
  await sim.close();
});

function bigConfigsBody(): string {
  return JSON.stringify({ configs: [{ field_id: 1, field_value: 'x'.repeat(1024 * 1024 + 10) }] });
}

describe('size limits', () => {
  it('answers a shim body over 1 MiB with 413 and saves nothing', async () => {
    const labId = newLabId();
    const headers = { ...(await authHeader({ labId, userId: 7 })), 'content-type': 'application/json' };
    const res = await t.app.inject({ method: 'POST', url: CONFIGS, headers, payload: bigConfigsBody() });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    const list = await t.app.inject({ url: `${CONFIGS}?include_disabled=true`, headers });
    expect(list.json().configs).toEqual([]);
  });

  it('answers a tRPC body over 1 MiB with 413', async () => {
    const headers = {
      ...(await authHeader({ labId: newLabId(), userId: 7 })),
      'content-type': 'application/json',
    };
    const res = await t.app.inject({
      method: 'POST',
      url: '/trpc/configs.save',
      headers,
      payload: bigConfigsBody(),
    });
    expect(res.statusCode).toBe(413);
  });

  it('rejects a page over 200 rows with a 400 naming limit', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const res = await t.app.inject({ url: `${LAB_FIELDS}?limit=201`, headers });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues[0].path).toBe('limit');
    const trpc = await t.app.inject({
      url: `/trpc/labFields.list?input=${encodeURIComponent(JSON.stringify({ limit: 201 }))}`,
      headers,
    });
    expect(trpc.statusCode).toBe(400);
  });

  it('rejects more than 5,000 ids with a 400 naming ids', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const ids = Array.from({ length: 5001 }, (_, i) => i + 1);
    const res = await t.app.inject({
      method: 'PATCH',
      url: LAB_FIELDS,
      headers,
      payload: { ids, is_resolved: true },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues[0].path).toBe('ids');
    const trpc = await t.app.inject({
      method: 'POST',
      url: '/trpc/labFields.resolve',
      headers,
      payload: { ids, isResolved: true },
    });
    expect(trpc.statusCode).toBe(400);
  });

  it('runs a tRPC batch of 10 calls and rejects one of 11 with 400 before running any', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const batch = (n: number) => {
      const paths = Array.from({ length: n }, () => 'templates.list').join(',');
      const input = Object.fromEntries(Array.from({ length: n }, (_, i) => [i, {}]));
      return `/trpc/${paths}?batch=1&input=${encodeURIComponent(JSON.stringify(input))}`;
    };
    const ten = await t.app.inject({ url: batch(10), headers });
    expect(ten.statusCode).toBe(200);
    expect(ten.json()).toHaveLength(10);
    const eleven = await t.app.inject({ url: batch(11), headers });
    expect(eleven.statusCode).toBe(400);
    expect(JSON.stringify(eleven.json())).toContain('BAD_REQUEST');
    expect(JSON.stringify(eleven.json())).not.toContain('"result"');
  });
});

describe('rate limit per principal', () => {
  let limited: TestApp;
  beforeAll(async () => {
    limited = await startTestApp({
      LEGACY_PY3_URL: sim.py3Url,
      RATE_LIMIT_MAX: '3',
      RATE_LIMIT_WINDOW_MS: '60000',
    });
  });
  afterAll(async () => {
    await limited.close();
  });

  it('answers the request past the limit with 429, Retry-After and the error envelope', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    for (let i = 0; i < 3; i++) {
      expect((await limited.app.inject({ url: TEMPLATES, headers })).statusCode).toBe(200);
    }
    const over = await limited.app.inject({ url: TEMPLATES, headers });
    expect(over.statusCode).toBe(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.json()).toEqual({
      error: { code: 'TOO_MANY_REQUESTS', message: expect.stringContaining('Rate limit') },
    });
    const trpc = await limited.app.inject({ url: '/trpc/templates.list', headers });
    expect(trpc.statusCode).toBe(429);
  });

  it('counts each lab and user apart, and never limits the health probes', async () => {
    const labId = newLabId();
    const first = await authHeader({ labId, userId: 1 });
    const second = await authHeader({ labId, userId: 2 });
    for (let i = 0; i < 4; i++) await limited.app.inject({ url: TEMPLATES, headers: first });
    expect((await limited.app.inject({ url: TEMPLATES, headers: first })).statusCode).toBe(429);
    expect((await limited.app.inject({ url: TEMPLATES, headers: second })).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) {
      expect((await limited.app.inject({ url: '/health/live' })).statusCode).toBe(200);
    }
  });

  it('leaves plain proxied legacy paths to legacy but limits the flagged ones', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    for (let i = 0; i < 6; i++) {
      const plain = await limited.app.inject({ url: '/api-v3/some/legacy/page', headers });
      expect(plain.statusCode).not.toBe(429);
    }
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await limited.app.inject({ url: '/api-v3/reports', headers })).statusCode);
    }
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.slice(0, 3)).not.toContain(429);
  });
});

describe('load shedding', () => {
  let pressed: TestApp;
  beforeAll(async () => {
    pressed = await startTestApp({
      UNDER_PRESSURE_MAX_HEAP_USED_BYTES: '1',
      UNDER_PRESSURE_SAMPLE_INTERVAL_MS: '10',
      UNDER_PRESSURE_RETRY_AFTER_S: '7',
    });
  });
  afterAll(async () => {
    await pressed.close();
  });

  it('sheds requests with 503 and Retry-After when the heap is saturated, while /health answers', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    await vi.waitFor(async () => {
      expect((await pressed.app.inject({ url: TEMPLATES, headers })).statusCode).toBe(503);
    });
    const shed = await pressed.app.inject({ url: TEMPLATES, headers });
    expect(shed.headers['retry-after']).toBe('7');
    expect(shed.json().error.code).toBe('SERVICE_UNAVAILABLE');
    const trpc = await pressed.app.inject({ url: '/trpc/templates.list', headers });
    expect(trpc.statusCode).toBe(503);
    const health = await pressed.app.inject({ url: '/health' });
    expect(health.statusCode).toBe(200);
    expect((await pressed.app.inject({ url: '/health/live' })).statusCode).toBe(200);
  });
});
