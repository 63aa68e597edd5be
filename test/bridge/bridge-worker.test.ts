import { randomUUID } from 'node:crypto';
import { CircuitState } from 'cockatiel';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { claimDueCreations, completeCreation, releaseClaims } from '../../legacy-bridge/outbox.js';
import { Py2Client } from '../../legacy-bridge/py2-client.js';
import type { BridgeWorker } from '../../legacy-bridge/worker.js';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import type { Database } from '../../src/db/database.js';
import { EntityCreationOutbox } from '../../src/entities/index.js';
import { metricsRegistry } from '../../src/metrics.js';
import { retryEntityCreations } from '../../src/services/entity-creation-operator.service.js';
import {
  activityMessages,
  countDelivered,
  openBridgeDatabase,
  outboxStates,
  PY2_TOKEN,
  type SeededCreation,
  seedCreations,
  sleep,
  startTestWorker,
  traceSummary,
  waitFor,
} from '../support/bridge-fixtures.js';
import { sentStatements } from '../support/fixtures.js';

let db: Database;
let sim: LegacySimulator;
const workers: BridgeWorker[] = [];

beforeAll(async () => {
  ({ db } = await openBridgeDatabase('worker'));
});
afterAll(async () => {
  await db.close();
});
beforeEach(async () => {
  sim = await startLegacySimulator();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  await sim.close();
});

function worker(options: Parameters<typeof startTestWorker>[2] = {}): BridgeWorker {
  const w = startTestWorker(db, sim.py2Url, options);
  workers.push(w);
  return w;
}

function callsFor(creation: SeededCreation): number {
  return sim.state.py2Calls.filter((call) => call.idempotencyKey === creation.idempotencyKey).length;
}

async function expectDeliveredOnce(creations: SeededCreation[]): Promise<void> {
  const summary = await traceSummary(db, creations);
  const states = await outboxStates(
    db,
    creations.map((c) => c.id),
  );
  for (const [i, creation] of creations.entries()) {
    const state = states[i]!;
    expect(state.status).toBe('delivered');
    expect(summary.traces.get(creation.configId)).toEqual({ count: 1, objectIds: [state.object_id] });
    expect(summary.entityObjectIds.get(creation.configId)).toBe(state.object_id);
    expect(state.object_id).toBe(sim.state.py2Objects.get(creation.idempotencyKey));
  }
  expect(summary.activity.get('entity_creation_succeeded')).toBe(creations.length);
}

describe('the legacy bridge worker', () => {
  it('delivers every creation exactly once after PY-2 was down for a while', async () => {
    await sim.stopPy2();
    const creations = await seedCreations(db, { count: 12 });
    const w = worker();
    await waitFor(() => w.breaker.state === CircuitState.Open, 'the breaker to open while PY-2 refuses');
    await sleep(300);
    expect(
      await countDelivered(
        db,
        creations.map((c) => c.id),
      ),
    ).toBe(0);
    const waiting = await outboxStates(
      db,
      creations.map((c) => c.id),
    );
    expect(waiting.every((s) => s.status === 'queued')).toBe(true);
    expect(waiting.some((s) => s.last_error === 'PY-2 refused the connection')).toBe(true);

    await sim.startPy2();
    await waitFor(
      async () =>
        (await countDelivered(
          db,
          creations.map((c) => c.id),
        )) === 12,
      'all deliveries',
    );

    await expectDeliveredOnce(creations);
    // Refused calls never reached PY-2; once it was back, each creation was sent exactly once.
    expect(sim.state.py2Calls.map((c) => `${c.idempotencyKey}@${c.at}`)).toHaveLength(12);
    for (const creation of creations) expect(callsFor(creation)).toBe(1);
    expect(sim.state.py2MaxConcurrentPerKey).toBe(1);
  });

  it('opens the circuit breaker while PY-2 fails, stops hammering it, and closes once it recovers', async () => {
    sim.state.py2Faults.push({ status: 503 });
    const creations = await seedCreations(db, { count: 6 });
    const w = worker({ settings: { breakerThreshold: 3, breakerHalfOpenMs: 400 } });
    const states: CircuitState[] = [];
    w.breaker.onStateChange((state) => states.push(state));

    await waitFor(() => w.breaker.state === CircuitState.Open, 'the breaker to open');
    const callsWhenOpened = sim.state.py2Calls.length;
    expect(callsWhenOpened).toBeGreaterThanOrEqual(3);
    await sleep(250);
    expect(sim.state.py2Calls.length).toBe(callsWhenOpened);
    // While PY-2 keeps failing, only one probe goes out per break.
    await sleep(1_000);
    expect(sim.state.py2Calls.length - callsWhenOpened).toBeLessThanOrEqual(3);
    expect(states).toContain(CircuitState.HalfOpen);

    sim.state.py2Faults.length = 0;
    await waitFor(
      async () =>
        (await countDelivered(
          db,
          creations.map((c) => c.id),
        )) === 6,
      'all deliveries',
    );
    expect(w.breaker.state).toBe(CircuitState.Closed);
    expect(states.at(-1)).toBe(CircuitState.Closed);
    await expectDeliveredOnce(creations);
  });

  it('fails a creation PY-2 refuses with a 4xx, records why, never resends it, and sends it again once an operator retries', async () => {
    sim.state.py2Faults.push({ status: 422, times: 1 });
    const [creation] = await seedCreations(db, { count: 1 });
    worker();
    await waitFor(
      async () => (await outboxStates(db, [creation!.id]))[0]!.status === 'failed',
      'the failure',
    );
    await sleep(200);
    expect(callsFor(creation!)).toBe(1);
    const [failed] = await outboxStates(db, [creation!.id]);
    expect(failed).toMatchObject({ attempts: 1, last_error: 'PY-2 answered 422: simulated failure 422' });
    expect(await activityMessages(db, creation!.labId, 'entity_creation_failed')).toEqual([
      expect.stringContaining('PY-2 answered 422'),
    ]);
    const before = await traceSummary(db, [creation!]);
    expect(before.traces.size).toBe(0);
    expect(before.entityObjectIds.get(creation!.configId)).toBeNull();

    const principal = {
      labId: creation!.labId,
      userId: 7,
      role: 'lab_user',
      orgId: null,
      via: 'jwt',
    } as const;
    expect(await retryEntityCreations(db.em(), principal, { ids: [creation!.id] })).toEqual({
      retried: [creation!.id],
      skipped: [],
    });
    await waitFor(async () => (await countDelivered(db, [creation!.id])) === 1, 'the retried delivery');
    await expectDeliveredOnce([creation!]);
    expect(callsFor(creation!)).toBe(2);
    expect((await outboxStates(db, [creation!.id]))[0]).toMatchObject({ attempts: 1, retry_count: 1 });
  });

  it('retries 408, 429, 5xx and timeouts with growing delays until PY-2 accepts', async () => {
    sim.state.py2Faults.push(
      { status: 408, times: 1 },
      { status: 429, times: 1 },
      { status: 502, times: 1 },
      { delayMs: 400, times: 1 },
    );
    const [creation] = await seedCreations(db, { count: 1 });
    worker({
      requestTimeoutMs: 150,
      settings: { breakerThreshold: 100, baseBackoffMs: 40, maxBackoffMs: 2_000 },
    });
    await waitFor(async () => (await countDelivered(db, [creation!.id])) === 1, 'the delivery');
    await expectDeliveredOnce([creation!]);
    const calls = sim.state.py2Calls.filter((c) => c.idempotencyKey === creation!.idempotencyKey);
    expect(calls).toHaveLength(5);
    expect((await outboxStates(db, [creation!.id]))[0]!.attempts).toBe(5);
    // Backoff with equal jitter: the wait before attempt n+1 is at least half of base * 2^(n-1).
    for (let n = 1; n < 4; n++) {
      expect(calls[n]!.at - calls[n - 1]!.at).toBeGreaterThanOrEqual((40 * 2 ** (n - 1)) / 2 - 5);
    }
  });

  it('gives a creation up after the configured attempts, with the reason', async () => {
    sim.state.py2Faults.push({ status: 503 });
    const [creation] = await seedCreations(db, { count: 1 });
    worker({ settings: { breakerThreshold: 100, maxAttempts: 3 } });
    await waitFor(
      async () => (await outboxStates(db, [creation!.id]))[0]!.status === 'failed',
      'the failure',
    );
    expect(callsFor(creation!)).toBe(3);
    const [failed] = await outboxStates(db, [creation!.id]);
    expect(failed!.last_error).toMatch(
      /^PY-2 answered 503: simulated failure 503 \(gave up after 3 attempts over \d+ s\)$/,
    );
    expect(await activityMessages(db, creation!.labId, 'entity_creation_failed')).toHaveLength(1);
  });

  it('writes one success trace when PY-2 was called twice because a worker died between its call and its commit', async () => {
    const [creation] = await seedCreations(db, { count: 1 });
    // A worker claims the creation and PY-2 creates the entity, but the worker never commits.
    const [claimed] = await claimDueCreations(db.em(), {
      workerId: 'crashed-worker',
      limit: 1,
      now: new Date(),
      claimTtlMs: 300,
    });
    const client = new Py2Client({ baseUrl: sim.py2Url, token: PY2_TOKEN, timeoutMs: 1_000 });
    const lost = await client.createEntity(claimed!, claimed!.idempotencyKey);
    expect(lost.kind).toBe('created');

    // Once its claim expires another worker sends it again and PY-2 answers with the same object.
    worker({ workerId: 'next-worker' });
    await waitFor(async () => (await countDelivered(db, [creation!.id])) === 1, 'the delivery');
    expect(callsFor(creation!)).toBe(2);
    expect((await outboxStates(db, [creation!.id]))[0]!.object_id).toBe(
      (lost as { objectId: number }).objectId,
    );
    await expectDeliveredOnce([creation!]);

    // Had the first worker come back and reported its answer, nothing more would be written.
    const late = await completeCreation(db.em(), claimed!, {
      workerId: 'crashed-worker',
      objectId: (lost as { objectId: number }).objectId,
      now: new Date(),
    });
    expect(late).toBe(false);
    await expectDeliveredOnce([creation!]);
  });

  it('polls with one plain read and no transaction while nothing is due', async () => {
    // Nothing is due before 1970: every instance's idle poll is this one statement.
    const statements = await sentStatements(() =>
      claimDueCreations(db.em(), { workerId: 'w', limit: 10, now: new Date(0), claimTtlMs: 1_000 }),
    );
    expect(statements).toEqual([expect.stringMatching(/^SELECT 1 FROM `md_entity_creation_outbox` WHERE/)]);
  });

  it('records a success once however many times it is reported', async () => {
    const [creation] = await seedCreations(db, { count: 1 });
    const now = new Date();
    const [claimed] = await claimDueCreations(db.em(), { workerId: 'w', limit: 1, now, claimTtlMs: 1_000 });
    expect(claimed!.id).toBe(creation!.id);
    const report = () => completeCreation(db.em(), claimed!, { workerId: 'w', objectId: 77, now });
    const results = await Promise.all([report(), report(), report()]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const summary = await traceSummary(db, [creation!]);
    expect(summary.traces.get(creation!.configId)).toEqual({ count: 1, objectIds: [77] });
    expect(summary.activity.get('entity_creation_succeeded')).toBe(1);
  });

  it('keeps a config pointing at its newest placeholder when an older creation lands late', async () => {
    const [older] = await seedCreations(db, { count: 1 });
    const newerKey = randomUUID();
    await db.em().insert(EntityCreationOutbox, {
      labId: older!.labId,
      orgId: null,
      configId: older!.configId,
      entityType: older!.entityType,
      name: 'Dr. Renamed',
      idempotencyKey: newerKey,
      status: 'queued',
      attempts: 0,
      nextAttemptAt: new Date(),
      createdAt: new Date(),
      updatedAt: new Date(),
    });
    const now = new Date();
    const claimed = await claimDueCreations(db.em(), { workerId: 'w', limit: 10, now, claimTtlMs: 5_000 });
    const mine = claimed.filter((c) => c.configId === older!.configId);
    const [first, second] = mine.sort((a, b) => a.id - b.id);
    expect(await completeCreation(db.em(), second!, { workerId: 'w', objectId: 502, now })).toBe(true);
    expect(await completeCreation(db.em(), first!, { workerId: 'w', objectId: 501, now })).toBe(true);
    const summary = await traceSummary(db, [older!]);
    expect(summary.traces.get(older!.configId)).toEqual({
      count: 2,
      objectIds: expect.arrayContaining([501, 502]),
    });
    expect(summary.entityObjectIds.get(older!.configId)).toBe(502);
    // Other due rows this test claimed go back untouched.
    await releaseClaims(
      db.em(),
      claimed.filter((c) => c.configId !== older!.configId).map((c) => c.id),
      { workerId: 'w', nextAttemptAt: now, refundAttempt: true, now },
    );
  });

  it('lets the delivery in flight finish when stopped', async () => {
    sim.state.py2Faults.push({ delayMs: 300, times: 1 });
    const [creation] = await seedCreations(db, { count: 1 });
    const w = worker();
    await waitFor(() => callsFor(creation!) === 1, 'the call');
    await w.stop();
    await expectDeliveredOnce([creation!]);
  });

  it('releases the claim of a delivery that outlasts the shutdown grace, for another worker to deliver', async () => {
    sim.state.py2Faults.push({ delayMs: Number.POSITIVE_INFINITY, times: 1 });
    const [creation] = await seedCreations(db, { count: 1 });
    const w = worker({ requestTimeoutMs: 5_000, settings: { shutdownGraceMs: 100, claimTtlMs: 30_000 } });
    await waitFor(() => callsFor(creation!) === 1, 'the call');
    await w.stop();
    const [released] = await outboxStates(db, [creation!.id]);
    expect(released).toMatchObject({
      status: 'queued',
      claimed_by: null,
      claim_expires_at: null,
      attempts: 1,
    });
    worker();
    await waitFor(async () => (await countDelivered(db, [creation!.id])) === 1, 'the delivery');
    await expectDeliveredOnce([creation!]);
  });

  it('reports queued and failed counts, the oldest pending age and the circuit state as metrics', async () => {
    await sim.stopPy2();
    const [oldest] = await seedCreations(db, { count: 2, now: new Date(Date.now() - 120_000) });
    await seedCreations(db, { count: 1, status: 'failed' });
    const w = worker({
      settings: { statsIntervalMs: 100, breakerThreshold: 1, breakerHalfOpenMs: 60_000, maxAgeMs: 3_600_000 },
    });
    await waitFor(() => w.breaker.state === CircuitState.Open, 'the breaker to open');
    const value = async (name: string, labels: Record<string, string> = {}) => {
      const metric = await metricsRegistry.getSingleMetric(name)?.get();
      return metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
    };
    await waitFor(
      async () => ((await value('md_bridge_oldest_pending_age_seconds')) ?? 0) >= 120,
      'the age gauge',
    );
    expect(await value('md_bridge_creations', { status: 'queued' })).toBeGreaterThanOrEqual(2);
    expect(await value('md_bridge_creations', { status: 'failed' })).toBeGreaterThanOrEqual(1);
    expect(await value('md_bridge_circuit_state')).toBe(1);
    expect(await value('md_bridge_py2_requests_total', { outcome: 'retryable' })).toBeGreaterThanOrEqual(1);
    const text = await metricsRegistry.metrics();
    expect(text).toContain('md_bridge_creation_events_total');

    await sim.startPy2();
    await w.stop();
    const next = worker({ settings: { statsIntervalMs: 100, maxAgeMs: 3_600_000 } });
    await waitFor(
      async () => (await outboxStates(db, [oldest!.id]))[0]!.status === 'delivered',
      'the delivery',
    );
    await waitFor(
      async () => ((await value('md_bridge_creation_events_total', { event: 'delivered' })) ?? 0) >= 2,
      'the delivered count',
    );
    expect(next.breaker.state).toBe(CircuitState.Closed);
  });
});
