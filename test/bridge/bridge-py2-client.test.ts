import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  classifyPy2Status,
  Py2Client,
  type Py2EntityRequest,
  parseRetryAfter,
} from '../../legacy-bridge/py2-client.js';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { PY2_TOKEN } from '../support/bridge-fixtures.js';

describe('classifyPy2Status', () => {
  it('treats every 2xx as success', () => {
    for (const status of [200, 201, 202, 204]) expect(classifyPy2Status(status)).toBe('success');
  });

  it('treats 4xx as final, except 408 and 429', () => {
    for (const status of [400, 401, 403, 404, 409, 410, 413, 422])
      expect(classifyPy2Status(status)).toBe('final');
    expect(classifyPy2Status(408)).toBe('retryable');
    expect(classifyPy2Status(429)).toBe('retryable');
  });

  it('retries 5xx and the statuses only a misconfigured proxy or URL produces', () => {
    for (const status of [500, 502, 503, 504, 599, 301, 302, 307]) {
      expect(classifyPy2Status(status)).toBe('retryable');
    }
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates and ignores anything else', () => {
    expect(parseRetryAfter('3')).toBe(3_000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('Py2Client against the simulated PY-2', () => {
  let sim: LegacySimulator;
  const request: Py2EntityRequest = {
    labId: 1,
    orgId: null,
    entityType: 'referral_doctor',
    name: 'Dr. Unknown',
    configId: 13,
  };
  const client = () => new Py2Client({ baseUrl: sim.py2Url, token: PY2_TOKEN, timeoutMs: 1_000 });

  beforeEach(async () => {
    sim = await startLegacySimulator();
  });
  afterEach(async () => {
    await sim.close();
  });

  it("sends the contract's request with the bearer token and the creation's idempotency key", async () => {
    const outcome = await client().createEntity({ ...request, orgId: 9 }, 'creation-key-1');
    expect(outcome).toEqual({ kind: 'created', status: 201, objectId: expect.any(Number) });
    expect(sim.state.py2Calls).toEqual([
      {
        idempotencyKey: 'creation-key-1',
        authorization: `Bearer ${PY2_TOKEN}`,
        body: { lab_id: 1, org_id: 9, entity_type: 'referral_doctor', name: 'Dr. Unknown', config_id: 13 },
        at: expect.any(Number),
      },
    ]);
  });

  it('gets the same object back when the same creation is sent again', async () => {
    const first = await client().createEntity(request, 'creation-key-2');
    const again = await client().createEntity(request, 'creation-key-2');
    expect(first.kind).toBe('created');
    expect(again).toEqual({
      kind: 'created',
      status: 200,
      objectId: (first as { objectId: number }).objectId,
    });
  });

  it("reports a 4xx as final, with PY-2's error in the reason", async () => {
    const outcome = await client().createEntity({ ...request, entityType: 'spaceship' }, 'creation-key-3');
    expect(outcome).toEqual({
      kind: 'final',
      status: 400,
      reason: 'PY-2 answered 400: lab_id, name and a known entity_type are required',
    });
    const badToken = new Py2Client({ baseUrl: sim.py2Url, token: 'wrong', timeoutMs: 1_000 });
    expect(await badToken.createEntity(request, 'creation-key-4')).toMatchObject({
      kind: 'final',
      status: 401,
    });
  });

  it('reports 408, 429 and 5xx as retryable', async () => {
    sim.state.py2Faults.push({ status: 408, times: 1 }, { status: 429, times: 1 }, { status: 503, times: 1 });
    const c = client();
    expect(await c.createEntity(request, 'k5')).toMatchObject({ kind: 'retryable', status: 408 });
    expect(await c.createEntity(request, 'k5')).toMatchObject({ kind: 'retryable', status: 429 });
    expect(await c.createEntity(request, 'k5')).toEqual({
      kind: 'retryable',
      status: 503,
      reason: 'PY-2 answered 503: simulated failure 503',
    });
    expect(await c.createEntity(request, 'k5')).toMatchObject({ kind: 'created' });
  });

  it('reports a refused connection, a reset and a timeout as retryable', async () => {
    sim.state.py2Faults.push({ reset: true, times: 1 }, { delayMs: 500, times: 1 });
    const c = new Py2Client({ baseUrl: sim.py2Url, token: PY2_TOKEN, timeoutMs: 150 });
    expect(await c.createEntity(request, 'k6')).toMatchObject({
      kind: 'retryable',
      status: null,
      reason: expect.stringContaining('PY-2 could not be reached'),
    });
    expect(await c.createEntity(request, 'k6')).toEqual({
      kind: 'retryable',
      status: null,
      reason: 'PY-2 did not answer within 150 ms',
    });
    await sim.stopPy2();
    expect(await c.createEntity(request, 'k6')).toEqual({
      kind: 'retryable',
      status: null,
      reason: 'PY-2 refused the connection',
    });
  });

  it("marks a request cut short by the caller's signal as interrupted", async () => {
    sim.state.py2Faults.push({ delayMs: Number.POSITIVE_INFINITY, times: 1 });
    const controller = new AbortController();
    const pending = client().createEntity(request, 'k7', { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect(await pending).toMatchObject({ kind: 'retryable', interrupted: true });
  });
});
