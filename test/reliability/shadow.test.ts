import { Writable } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { buildApp } from '../../src/app.js';
import type { RawEnv } from '../../src/config.js';
import { Database } from '../../src/db/database.js';
import { initOrm } from '../../src/db/orm.js';
import { differingKeys, shadowComparisons } from '../../src/shadow/shadow.service.js';
import { authHeader, newLabId, testConfig } from '../support/fixtures.js';

const TEMPLATES = '/api-v3/registration/patients/missing-details-templates';
const CONFIGS = '/api-v3/registration/patients/lab-missing-details-config';

let sim: LegacySimulator;
let db: Database;

beforeAll(async () => {
  sim = await startLegacySimulator();
  db = new Database(await initOrm({ databaseUrl: testConfig().databaseUrl, poolSize: 5 }));
});
afterAll(async () => {
  await db.close();
  await sim.close();
});

const running: FastifyInstance[] = [];
afterEach(async () => {
  sim.state.py3Faults.length = 0;
  sim.state.shadowFixtures.clear();
  await Promise.all(running.splice(0).map((app) => app.close()));
});

/** The app against the simulator, logging warnings into `logs`. */
async function startApp(env: RawEnv) {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const config = testConfig({ LEGACY_PY3_URL: sim.py3Url, LEGACY_PY2_URL: sim.py2Url, ...env });
  const logger = pino({ level: 'warn' }, sink) as unknown as FastifyBaseLogger;
  const app = await buildApp({ config, db, loggerInstance: logger });
  await app.ready();
  running.push(app);
  return { app, logs };
}

function shadowRequests() {
  return sim.state.py3Requests.filter((r) => r.headers['x-shadow-request'] === '1');
}

async function comparisons(route: string, outcome: string): Promise<number> {
  const { values } = await shadowComparisons.get();
  return values.find((v) => v.labels.route === route && v.labels.outcome === outcome)?.value ?? 0;
}

/** Legacy's own rendering of an answer: other key order, items reversed, timestamps with an offset and microseconds. */
function asLegacyWouldRender<T>(items: T[]): T[] {
  return [...items].reverse().map((item) => {
    const entries = Object.entries(item as Record<string, unknown>).reverse();
    return Object.fromEntries(
      entries.map(([key, value]) => [
        key,
        typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value)
          ? value.replace(/Z$/, '+00:00')
          : value,
      ]),
    ) as T;
  });
}

describe('shadow mode', () => {
  it('is off by default: the shim’s reads never reach legacy', async () => {
    const { app } = await startApp({});
    const before = shadowRequests().length;
    const res = await app.inject({
      url: TEMPLATES,
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(res.statusCode).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(shadowRequests().length).toBe(before);
  });

  it('counts a match when legacy answers the same data in its own order and timestamp notation', async () => {
    const { app, logs } = await startApp({ SHADOW_SAMPLE_RATE: '1' });
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const save = await app.inject({
      method: 'POST',
      url: CONFIGS,
      headers,
      payload: {
        configs: [
          { field_id: 1, field_value: 'noemail@lab.in' },
          { field_id: 2, field_value: '0000' },
        ],
      },
    });
    expect(save.statusCode).toBe(200);
    const { configs } = save.json();
    sim.state.shadowFixtures.set(CONFIGS, { configs: asLegacyWouldRender(configs) });
    const matches = await comparisons(CONFIGS, 'match');

    const res = await app.inject({ url: `${CONFIGS}?module=patient`, headers });
    expect(res.json()).toEqual({ configs });

    await expect.poll(() => comparisons(CONFIGS, 'match'), { timeout: 10_000 }).toBe(matches + 1);
    expect(await comparisons(CONFIGS, 'mismatch')).toBe(0);
    expect(logs.filter((line) => line.msg === 'shadow: legacy answer differs')).toEqual([]);
    // Legacy was asked the same read, as the same caller.
    const asked = shadowRequests().at(-1)!;
    expect(asked.url).toBe(`${CONFIGS}?module=patient`);
    expect(asked.headers.authorization).toBe(headers.authorization);
  });

  it('counts a mismatch and logs the path and the differing keys, never the values', async () => {
    const { app, logs } = await startApp({ SHADOW_SAMPLE_RATE: '1' });
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    // Our answer, compared with legacy's 404 (no fixture yet) before legacy's answer is set.
    const errors = await comparisons(TEMPLATES, 'legacy_error');
    const ours = (await app.inject({ url: `${TEMPLATES}?module=bill`, headers })).json();
    await expect.poll(() => comparisons(TEMPLATES, 'legacy_error'), { timeout: 10_000 }).toBe(errors + 1);

    const [insurance, group, sampleCollector] = ours.templates;
    sim.state.shadowFixtures.set(TEMPLATES, {
      templates: [
        { ...insurance, display_name: 'Insurance company (legacy wording)' },
        { ...group, legacy_only: 'x-secret-value' },
        sampleCollector,
      ],
    });
    const mismatches = await comparisons(TEMPLATES, 'mismatch');
    const res = await app.inject({ url: `${TEMPLATES}?module=bill`, headers });
    expect(res.json()).toEqual(ours);

    await expect.poll(() => comparisons(TEMPLATES, 'mismatch'), { timeout: 10_000 }).toBe(mismatches + 1);
    const line = logs.find((entry) => entry.msg === 'shadow: legacy answer differs');
    expect(line?.shadow).toEqual({
      path: TEMPLATES,
      differingKeyCount: 2,
      differingKeys: [`templates[id=${insurance.id}].display_name`, `templates[id=${group.id}].legacy_only`],
    });
    const logged = JSON.stringify(logs);
    expect(logged).not.toContain('legacy wording');
    expect(logged).not.toContain('x-secret-value');
    expect(logged).not.toContain(insurance.display_name);
  });

  it('answers before legacy does, and counts a timeout when legacy takes longer than SHADOW_TIMEOUT_MS', async () => {
    const { app } = await startApp({ SHADOW_SAMPLE_RATE: '1', SHADOW_TIMEOUT_MS: '1500' });
    sim.state.shadowFixtures.set(TEMPLATES, { templates: [] });
    sim.state.py3Faults.push({ pathPrefix: TEMPLATES, delayMs: Number.POSITIVE_INFINITY });
    const timeouts = await comparisons(TEMPLATES, 'timeout');
    const asked = shadowRequests().length;

    const res = await app.inject({
      url: TEMPLATES,
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().templates.length).toBeGreaterThan(0);
    // The client has its answer while legacy still holds the shadow read.
    await expect.poll(() => shadowRequests().length, { timeout: 10_000 }).toBe(asked + 1);
    expect(await comparisons(TEMPLATES, 'timeout')).toBe(timeouts);

    await expect.poll(() => comparisons(TEMPLATES, 'timeout'), { timeout: 10_000 }).toBe(timeouts + 1);
  });

  it('counts legacy failures apart from mismatches', async () => {
    const { app } = await startApp({ SHADOW_SAMPLE_RATE: '1' });
    const errors = await comparisons(TEMPLATES, 'legacy_error');
    const res = await app.inject({
      url: TEMPLATES,
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(res.statusCode).toBe(200);
    // No fixture: legacy answers 404.
    await expect.poll(() => comparisons(TEMPLATES, 'legacy_error'), { timeout: 10_000 }).toBe(errors + 1);
  });
});

describe('the shadow comparison', () => {
  it('matches items by id whatever their order, and timestamps whatever their notation', () => {
    expect(
      differingKeys(
        { results: [{ id: 1, created_at: '2026-01-02T03:04:05.123456Z' }, { id: 2 }], next_cursor: 'ours' },
        {
          results: [{ id: 2 }, { id: 1, created_at: '2026-01-02 05:04:05.123456+02:00' }],
          next_cursor: 'theirs',
        },
      ),
    ).toEqual([]);
  });

  it('names missing items, extra keys and changed values by path', () => {
    expect(
      differingKeys(
        { results: [{ id: 1, v: 'a' }, { id: 2 }], count: 2, list: [1, 2] },
        { results: [{ id: 1, v: 'b', extra: null }], count: '2', list: [2, 1] },
      ),
    ).toEqual(['results[id=1].v', 'results[id=1].extra', 'results[id=2]', 'count', 'list[0]', 'list[1]']);
  });
});
