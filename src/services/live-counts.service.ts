import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import { z } from 'zod';
import type { AppDeps } from '../app-deps.js';
import type { Principal } from '../auth/principal.js';
import type { AppConfig } from '../config.js';
import type { Database } from '../db/database.js';
import { sqlSession } from '../db/sql-session.js';
import { AppError, ServiceUnavailableError } from '../errors.js';
import { metricsRegistry } from '../metrics.js';
import { countOpenRows } from '../repositories/lab-fields.repository.js';

const subscribersGauge = new Gauge({
  name: 'md_live_counts_subscribers',
  help: 'Open live-count streams (tRPC labFields.onChange) in this process',
  registers: [metricsRegistry],
});
const scopesGauge = new Gauge({
  name: 'md_live_counts_polled_scopes',
  help: 'Labs (or lab organizations) whose open count this process polls: one poll each, however many streams',
  registers: [metricsRegistry],
});
const pollsCounter = new Counter({
  name: 'md_live_counts_polls_total',
  help: 'Open-count reads of the live-count pollers, by outcome',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});
const refusedCounter = new Counter({
  name: 'md_live_counts_refused_total',
  help: 'Live-count streams refused because a limit was reached',
  labelNames: ['limit'] as const,
  registers: [metricsRegistry],
});

export const liveCountsInput = z
  .object({
    /** Set by the tRPC client (or EventSource's Last-Event-ID) when it reconnects. */
    lastEventId: z.string().max(200).nullish(),
  })
  .strict()
  .optional();

export interface LiveCountEvent {
  /** The SSE event id: a client that reconnects with it is sent the count only if it changed since. */
  id: string;
  openCount: number;
}

export type LiveCountsSettings = AppConfig['liveCounts'];

const EVENT_ID = /^(\d{1,15})-[0-9a-z]{1,12}$/;

/** `<open count>-<time, base 36>`: the count is what a resumed stream compares against. */
export const eventIdOf = (count: number, now = Date.now()) => `${count}-${now.toString(36)}`;

/** The count a client last saw, from its last event id; undefined when there is none or it is not ours. */
export function countOfEventId(id: string | null | undefined): number | undefined {
  const match = id ? EVENT_ID.exec(id) : null;
  return match ? Number(match[1]) : undefined;
}

interface Subscriber {
  /** The newest count of the scope; only the newest is kept, so a slow client never queues counts. */
  latest: number | undefined;
  wake: (() => void) | undefined;
  /** Set when the process is shutting down. */
  closed: boolean;
}

/** One poller per scope (a lab, or one organization of a lab) in this process. */
interface Scope {
  readonly key: string;
  readonly labId: number;
  readonly orgId: number | null;
  readonly subscribers: Set<Subscriber>;
  count: number | undefined;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
  failing: boolean;
}

/**
 * Pushes a lab's open count to its subscribers when it changes, whichever instance changed it: the
 * change is seen in the database, not on an in-process bus. Each scope with subscribers is read once per
 * interval (an index-only COUNT over the lab's open rows) and fanned out; the poll stops with the last
 * subscriber. Cost per client: one small object and one waiting promise; per lab: one query per interval.
 */
export class LiveCounts {
  readonly #scopes = new Map<string, Scope>();
  readonly #perUser = new Map<string, number>();
  readonly #perLab = new Map<number, number>();
  #closed = false;

  constructor(
    private readonly db: Database,
    private readonly settings: LiveCountsSettings,
    private readonly logger: FastifyBaseLogger,
  ) {}

  /** Scopes polled right now (for tests and metrics). */
  get polledScopes(): number {
    return this.#scopes.size;
  }

  /**
   * Opens a stream of the caller's open count (their lab, their organization when they have one).
   * Refuses at once (TOO_MANY_REQUESTS) when the caller or the lab holds too many streams. The first
   * event is the current count unless `lastEventId` says the client already has it.
   */
  open(
    principal: Principal,
    lastEventId: string | null | undefined,
    signal?: AbortSignal,
  ): AsyncGenerator<LiveCountEvent> {
    if (this.#closed) throw new ServiceUnavailableError('The service is shutting down; reconnect');
    const userKey = `${principal.labId}:${principal.role}:${principal.userId}`;
    if ((this.#perUser.get(userKey) ?? 0) >= this.settings.maxPerUser) {
      refusedCounter.inc({ limit: 'user' });
      throw new AppError(
        'TOO_MANY_REQUESTS',
        `At most ${this.settings.maxPerUser} live-count streams per user: close one before opening another`,
      );
    }
    if ((this.#perLab.get(principal.labId) ?? 0) >= this.settings.maxPerLab) {
      refusedCounter.inc({ limit: 'lab' });
      throw new AppError(
        'TOO_MANY_REQUESTS',
        `At most ${this.settings.maxPerLab} live-count streams per lab`,
      );
    }
    this.#perUser.set(userKey, (this.#perUser.get(userKey) ?? 0) + 1);
    this.#perLab.set(principal.labId, (this.#perLab.get(principal.labId) ?? 0) + 1);
    subscribersGauge.inc();
    const subscriber: Subscriber = { latest: undefined, wake: undefined, closed: false };
    const scope = this.#join(principal, subscriber);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      signal?.removeEventListener('abort', release);
      this.#leave(scope, subscriber);
      decrement(this.#perUser, userKey);
      decrement(this.#perLab, principal.labId);
      subscribersGauge.dec();
    };
    // Also on abort: a stream whose client left before it was first read never runs its `finally`.
    signal?.addEventListener('abort', release, { once: true });
    return this.#stream(subscriber, countOfEventId(lastEventId), signal, release);
  }

  /** Ends every stream with SERVICE_UNAVAILABLE so clients reconnect elsewhere; refuses new ones. */
  closeAll(): void {
    this.#closed = true;
    for (const scope of this.#scopes.values()) {
      for (const subscriber of scope.subscribers) {
        subscriber.closed = true;
        subscriber.wake?.();
      }
    }
  }

  async *#stream(
    subscriber: Subscriber,
    lastSent: number | undefined,
    signal: AbortSignal | undefined,
    release: () => void,
  ): AsyncGenerator<LiveCountEvent> {
    let sent = lastSent;
    let sentAt = Date.now();
    try {
      while (!signal?.aborted) {
        if (subscriber.closed) throw new ServiceUnavailableError('The service is shutting down; reconnect');
        const latest = subscriber.latest;
        const heartbeatDue = Date.now() - sentAt >= this.settings.heartbeatMs;
        if (latest !== undefined && (latest !== sent || heartbeatDue)) {
          sent = latest;
          sentAt = Date.now();
          yield { id: eventIdOf(latest, sentAt), openCount: latest };
          continue;
        }
        // An unchanged count is sent again after the heartbeat interval: a write to a vanished client
        // fails, and its stream (and its place in the limits) is released.
        await waitForWake(subscriber, signal, Math.max(1, this.settings.heartbeatMs - (Date.now() - sentAt)));
      }
    } finally {
      release();
    }
  }

  #join(principal: Principal, subscriber: Subscriber): Scope {
    const key = `${principal.labId}:${principal.orgId ?? '*'}`;
    let scope = this.#scopes.get(key);
    if (!scope) {
      scope = {
        key,
        labId: principal.labId,
        orgId: principal.orgId,
        subscribers: new Set(),
        count: undefined,
        timer: undefined,
        stopped: false,
        failing: false,
      };
      this.#scopes.set(key, scope);
      scopesGauge.set(this.#scopes.size);
      void this.#poll(scope);
    }
    scope.subscribers.add(subscriber);
    subscriber.latest = scope.count;
    return scope;
  }

  #leave(scope: Scope, subscriber: Subscriber): void {
    scope.subscribers.delete(subscriber);
    if (scope.subscribers.size > 0) return;
    scope.stopped = true;
    clearTimeout(scope.timer);
    if (this.#scopes.get(scope.key) === scope) this.#scopes.delete(scope.key);
    scopesGauge.set(this.#scopes.size);
  }

  async #poll(scope: Scope): Promise<void> {
    if (scope.stopped) return;
    try {
      const count = await readOpenCount(this.db, scope.labId, scope.orgId);
      pollsCounter.inc({ outcome: 'ok' });
      if (scope.failing) this.logger.info({ labId: scope.labId }, 'live counts: open count readable again');
      scope.failing = false;
      if (count !== scope.count) {
        scope.count = count;
        for (const subscriber of scope.subscribers) {
          subscriber.latest = count;
          subscriber.wake?.();
        }
      }
    } catch (error) {
      pollsCounter.inc({ outcome: 'failed' });
      // Logged once per failing streak; subscribers keep their last count until the database answers.
      if (!scope.failing)
        this.logger.warn({ err: error, labId: scope.labId }, 'live counts: open count unreadable');
      scope.failing = true;
    }
    if (scope.stopped) return;
    scope.timer = setTimeout(() => void this.#poll(scope), this.settings.pollIntervalMs);
    scope.timer.unref();
  }
}

function decrement<K>(map: Map<K, number>, key: K): void {
  const left = (map.get(key) ?? 1) - 1;
  if (left > 0) map.set(key, left);
  else map.delete(key);
}

/** Resolves on a new count, shutdown, the client leaving, or after `timeoutMs`. */
function waitForWake(
  subscriber: Subscriber,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      subscriber.wake = undefined;
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    signal?.addEventListener('abort', done, { once: true });
    subscriber.wake = done;
  });
}

/** The scope's open rows, counted on the list index (lab_id, [org_id,] is_resolved, …) alone. */
export async function readOpenCount(db: Database, labId: number, orgId: number | null): Promise<number> {
  return countOpenRows(sqlSession(db.em()), labId, orgId);
}

const hubs = new WeakMap<AppDeps, LiveCounts>();

/** The process's live-count hub of this app. */
export function liveCountsOf(deps: AppDeps): LiveCounts {
  let hub = hubs.get(deps);
  if (!hub) {
    hub = new LiveCounts(deps.db, deps.config.liveCounts, deps.logger);
    hubs.set(deps, hub);
  }
  return hub;
}
