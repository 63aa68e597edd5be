import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { buildApp } from '../../src/app.js';
import { Database } from '../../src/db/database.js';
import { authHeader, newLabId, startTestApp, type TestApp, testConfig } from '../support/fixtures.js';

let sim: LegacySimulator;
let t: TestApp;

beforeAll(async () => {
  sim = await startLegacySimulator();
  t = await startTestApp({ LEGACY_PY3_URL: sim.py3Url, LEGACY_PY2_URL: sim.py2Url });
});
afterAll(async () => {
  await t.close();
  await sim.close();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function scrape(): Promise<{ text: string; samples: Sample[] }> {
  const res = await t.app.inject({ url: '/metrics' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain/);
  const samples: Sample[] = [];
  for (const line of res.body.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { text: res.body, samples };
}

function sampleValue(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find(
    (s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
  )?.value;
}

describe('GET /metrics', () => {
  it('counts and times requests by route pattern, with relayed legacy paths under one label', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const templates = '/api-v3/registration/patients/missing-details-templates';
    const before = await scrape();
    const counted = { method: 'GET', route: templates, status_code: '200' };
    const startCount = sampleValue(before.samples, 'md_http_requests_total', counted) ?? 0;

    await t.app.inject({ url: `${templates}?module=bill`, headers });
    await t.app.inject({ url: `${templates}?include_inactive=true`, headers });
    await t.app.inject({ url: `${templates}?include_inactive=maybe`, headers });
    const relayed = await t.app.inject({ url: '/api-v3/legacy/patients/98765/history?page=3' });
    expect(relayed.statusCode).toBe(200);

    const { samples } = await scrape();
    expect(sampleValue(samples, 'md_http_requests_total', counted)).toBe(startCount + 2);
    expect(
      sampleValue(samples, 'md_http_requests_total', { route: templates, status_code: '400' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleValue(samples, 'md_http_requests_total', { route: 'legacy-proxy', status_code: '200' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleValue(samples, 'md_http_request_duration_seconds_count', { method: 'GET', route: templates }),
    ).toBeGreaterThanOrEqual(3);
    expect(
      sampleValue(samples, 'md_http_request_duration_seconds_bucket', { route: 'legacy-proxy', le: '+Inf' }),
    ).toBeGreaterThanOrEqual(1);

    // Bounded labels: never a concrete path, id or query.
    const routes = new Set(
      samples.filter((s) => s.name === 'md_http_requests_total').map((s) => s.labels.route),
    );
    for (const route of routes) expect(route).not.toMatch(/\d{3,}|\?/);
  });

  it('shows the database pool: connections in use while a transaction holds one, and the pool size', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const transaction = t.db.em().transactional(async (em) => {
      await em.getConnection().execute('SELECT 1', [], 'all', em.getTransactionContext());
      await held;
    });
    try {
      await expect
        .poll(
          async () => sampleValue((await scrape()).samples, 'md_db_pool_connections', { state: 'used' }),
          {
            timeout: 10_000,
          },
        )
        .toBeGreaterThanOrEqual(1);
    } finally {
      release();
      await transaction;
    }
    const { samples } = await scrape();
    expect(sampleValue(samples, 'md_db_pool_max_connections')).toBe(5);
    expect(sampleValue(samples, 'md_db_pool_connections', { state: 'free' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(samples, 'md_db_pool_connections', { state: 'pending' })).toBe(0);
  });

  it('includes the process metrics and those of capture, the legacy bridge and the proxy', async () => {
    const { text } = await scrape();
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'md_capture_outcomes_total',
      'md_bridge_creations',
      'md_bridge_oldest_pending_age_seconds',
      'md_bridge_creation_events_total',
      'missing_details_proxy_upstream_failures_total',
      'md_shadow_comparisons_total',
    ]) {
      expect(text, name).toContain(`# TYPE ${name} `);
    }
  });
});

describe('health', () => {
  it('answers liveness at /health/live and readiness at /health while the database is ready', async () => {
    const live = await t.app.inject({ url: '/health/live' });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const ready = await t.app.inject({ url: '/health' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ok', database: true });
  });

  it('stays live but not ready while the database is not attached yet', async () => {
    const app = await buildApp({ config: testConfig(), db: new Database() });
    try {
      expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
      const ready = await app.inject({ url: '/health' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ database: false });
      const metrics = await app.inject({ url: '/metrics' });
      expect(metrics.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
