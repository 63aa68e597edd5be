import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activityMessages,
  openBridgeDatabase,
  outboxStates,
  seedCreations,
} from '../support/bridge-fixtures.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

/** tRPC entityCreations.list / entityCreations.retry: the operators' view of the legacy bridge. */

let t: TestApp;
beforeAll(async () => {
  // A database of its own: a bridge worker elsewhere in the suite must not pick up these rows.
  const own = await openBridgeDatabase('operators');
  await own.db.close();
  t = await startTestApp({ DATABASE_URL: own.url });
});
afterAll(async () => {
  await t.close();
});

async function list(
  labId: number,
  input: Record<string, unknown> = {},
  role: 'lab_user' | 'doctor' = 'lab_user',
) {
  return t.app.inject({
    url: `/trpc/entityCreations.list?input=${encodeURIComponent(JSON.stringify(input))}`,
    headers: await authHeader({ labId, userId: 7, role }),
  });
}

async function retry(labId: number, input: unknown, role: 'lab_user' | 'doctor' = 'lab_user') {
  return t.app.inject({
    method: 'POST',
    url: '/trpc/entityCreations.retry',
    headers: { ...(await authHeader({ labId, userId: 8, role })), 'content-type': 'application/json' },
    payload: JSON.stringify(input),
  });
}

describe('tRPC entityCreations.list', () => {
  it("lists the caller's lab's creations newest first, with status, attempts, last error, next attempt and age", async () => {
    const labId = newLabId();
    const createdAt = new Date(Date.now() - 90_000);
    const [queued] = await seedCreations(t.db, { count: 1, labId, now: createdAt });
    const [failed] = await seedCreations(t.db, {
      count: 1,
      labId,
      status: 'failed',
      lastError: 'PY-2 answered 400: bad name',
      now: createdAt,
    });
    const [delivered] = await seedCreations(t.db, { count: 1, labId, status: 'delivered', now: createdAt });
    await seedCreations(t.db, { count: 2, labId: newLabId(), status: 'failed' });

    const res = await list(labId);
    expect(res.statusCode).toBe(200);
    const { items, nextCursor } = res.json().result.data;
    expect(nextCursor).toBeNull();
    expect(items.map((i: { id: number }) => i.id)).toEqual([delivered!.id, failed!.id, queued!.id]);
    expect(items[2]).toEqual({
      id: queued!.id,
      configId: queued!.configId,
      entityType: 'referral_doctor',
      name: queued!.name,
      status: 'queued',
      attempts: 0,
      lastError: null,
      nextAttemptAt: createdAt.toISOString().replace('Z', '000Z'),
      inFlight: false,
      objectId: null,
      createdAt: createdAt.toISOString().replace('Z', '000Z'),
      ageSeconds: expect.any(Number),
      deliveredAt: null,
      failedAt: null,
      retriedAt: null,
      retryCount: 0,
    });
    expect(items[2].ageSeconds).toBeGreaterThanOrEqual(90);
    expect(items[1]).toMatchObject({
      status: 'failed',
      lastError: 'PY-2 answered 400: bad name',
      nextAttemptAt: null,
      failedAt: createdAt.toISOString().replace('Z', '000Z'),
    });
    expect(items[0]).toMatchObject({ status: 'delivered', objectId: 4242, nextAttemptAt: null });
  });

  it('filters by status and pages with an opaque cursor that visits every creation once', async () => {
    const labId = newLabId();
    const failed = await seedCreations(t.db, { count: 5, labId, status: 'failed' });
    await seedCreations(t.db, { count: 2, labId });
    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const res = await list(labId, { status: 'failed', limit: 2, ...(cursor ? { cursor } : {}) });
      expect(res.statusCode).toBe(200);
      const page = res.json().result.data;
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((i: { id: number; status: string }) => i.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(failed.map((c) => c.id).reverse());
  });

  it('rejects a bad cursor, a bad status and unknown input keys with BAD_REQUEST naming them', async () => {
    const labId = newLabId();
    const badCursor = await list(labId, { cursor: 'not-a-cursor' });
    expect(badCursor.statusCode).toBe(400);
    expect(badCursor.json().error.message).toContain('cursor');
    const badStatus = await list(labId, { status: 'lost' });
    expect(badStatus.statusCode).toBe(400);
    expect(badStatus.json().error.data.issues[0].path).toBe('status');
    const unknownKey = await list(labId, { labId: 3 });
    expect(unknownKey.statusCode).toBe(400);
    const tooMany = await list(labId, { limit: 201 });
    expect(tooMany.json().error.data.issues[0].path).toBe('limit');
  });

  it('answers UNAUTHORIZED without a principal', async () => {
    const res = await t.app.inject({ url: '/trpc/entityCreations.list' });
    expect(res.statusCode).toBe(401);
  });
});

describe('tRPC entityCreations.retry', () => {
  it('puts failed creations of the lab back in the queue with attempts reset, and logs each retry', async () => {
    const labId = newLabId();
    const failed = await seedCreations(t.db, {
      count: 2,
      labId,
      status: 'failed',
      lastError: 'PY-2 answered 503',
    });
    const [queued] = await seedCreations(t.db, { count: 1, labId });
    const [delivered] = await seedCreations(t.db, { count: 1, labId, status: 'delivered' });
    const [otherLab] = await seedCreations(t.db, { count: 1, labId: newLabId(), status: 'failed' });
    const ids = [failed[0]!.id, failed[1]!.id, queued!.id, delivered!.id, otherLab!.id];

    const res = await retry(labId, { ids });
    expect(res.statusCode).toBe(200);
    expect(res.json().result.data).toEqual({
      retried: [failed[0]!.id, failed[1]!.id],
      skipped: [
        { id: queued!.id, reason: 'not_failed' },
        { id: delivered!.id, reason: 'not_failed' },
        { id: otherLab!.id, reason: 'not_found' },
      ],
    });

    const states = await outboxStates(t.db, ids);
    const byId = new Map(states.map((s) => [s.id, s]));
    for (const creation of failed) {
      expect(byId.get(creation.id)).toMatchObject({
        status: 'queued',
        attempts: 0,
        retry_count: 1,
        claimed_by: null,
        last_error: 'PY-2 answered 503',
      });
    }
    expect(byId.get(delivered!.id)!.status).toBe('delivered');
    expect(byId.get(otherLab!.id)).toMatchObject({ status: 'failed', retry_count: 0 });
    expect(await activityMessages(t.db, labId, 'entity_creation_retried')).toHaveLength(2);
    expect(await activityMessages(t.db, otherLab!.labId, 'entity_creation_retried')).toHaveLength(0);

    const listed = (await list(labId, { status: 'queued' })).json().result.data.items;
    expect(listed.find((i: { id: number }) => i.id === failed[0]!.id)).toMatchObject({
      retryCount: 1,
      retriedAt: expect.any(String),
      failedAt: null,
    });

    const again = await retry(labId, { ids: [failed[0]!.id] });
    expect(again.json().result.data).toEqual({
      retried: [],
      skipped: [{ id: failed[0]!.id, reason: 'not_failed' }],
    });
  });

  it('rejects an empty, duplicated or malformed id list with BAD_REQUEST', async () => {
    const labId = newLabId();
    for (const input of [
      { ids: [] },
      { ids: [1, 1] },
      { ids: [0] },
      { ids: ['1'] },
      {},
      { ids: [1], labId: 2 },
    ]) {
      const res = await retry(labId, input);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.data.code).toBe('BAD_REQUEST');
    }
  });
});
