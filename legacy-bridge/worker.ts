import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhenResult,
} from 'cockatiel';
import type { FastifyBaseLogger } from 'fastify';
import type { BackgroundContext, BackgroundTask } from '../src/background.js';
import { backoffDelayMs } from '../src/backoff.js';
import type { AppConfig } from '../src/config.js';
import type { Database } from '../src/db/database.js';
import { withDeadlockRetry } from '../src/db/deadlock-retry.js';
import {
  bridgeCircuitStateGauge,
  bridgeCreationEvents,
  bridgeCreationsGauge,
  bridgeEventCounts,
  bridgeOldestPendingAgeGauge,
  bridgePy2Requests,
} from './metrics.js';
import {
  type ClaimedCreation,
  claimDueCreations,
  completeCreation,
  failCreation,
  readOutboxStats,
  releaseClaims,
  scheduleRetry,
} from './outbox.js';
import { Py2Client, type Py2Outcome } from './py2-client.js';

export interface BridgeWorkerSettings {
  /** Deliveries in flight at once in this process. */
  concurrency: number;
  pollIntervalMs: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
  maxAttempts: number;
  maxAgeMs: number;
  claimTtlMs: number;
  breakerThreshold: number;
  breakerHalfOpenMs: number;
  shutdownGraceMs: number;
  statsIntervalMs: number;
}

export function bridgeSettings(config: AppConfig): BridgeWorkerSettings {
  const b = config.bridge;
  return {
    concurrency: b.concurrency,
    pollIntervalMs: b.pollIntervalMs,
    baseBackoffMs: b.baseBackoffMs,
    maxBackoffMs: b.maxBackoffMs,
    maxAttempts: b.maxAttempts,
    maxAgeMs: b.maxAgeMs,
    claimTtlMs: b.claimTtlMs,
    breakerThreshold: b.breakerThreshold,
    breakerHalfOpenMs: b.breakerHalfOpenMs,
    shutdownGraceMs: b.shutdownGraceMs,
    statsIntervalMs: b.statsIntervalMs,
  };
}

/** A call given less time than this is not worth starting. */
const MIN_CALL_MS = 50;

function defaultWorkerId(): string {
  return `${hostname().slice(0, 40)}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/** A PY-2 answer that says PY-2 is unwell, as opposed to one refusing this creation. */
function isPy2Failure(outcome: unknown): boolean {
  const o = outcome as Py2Outcome;
  return o?.kind === 'retryable' && !o.interrupted;
}

const CIRCUIT_STATE_VALUE: Record<CircuitState, number> = {
  [CircuitState.Closed]: 0,
  [CircuitState.Open]: 1,
  [CircuitState.HalfOpen]: 2,
  [CircuitState.Isolated]: 1,
};

export interface BridgeWorkerOptions {
  db: Database;
  logger: FastifyBaseLogger;
  settings: BridgeWorkerSettings;
  client: Py2Client;
  workerId?: string;
  /** The clock for the outbox's timestamps; tests may pass their own. */
  clock?: () => Date;
  random?: () => number;
}

/**
 * Drains the outbox: claims due creations, sends each to PY-2 behind a circuit breaker, and
 * records the verdict (delivered, retry later, failed). On stop it lets deliveries in flight
 * finish for `shutdownGraceMs`, then interrupts them and releases their claims.
 */
export class BridgeWorker implements BackgroundTask {
  readonly name = 'legacy-bridge';
  readonly workerId: string;
  readonly breaker: CircuitBreakerPolicy;

  readonly #db: Database;
  readonly #log: FastifyBaseLogger;
  readonly #settings: BridgeWorkerSettings;
  readonly #client: Py2Client;
  readonly #clock: () => Date;
  readonly #random: () => number;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #interrupt = new AbortController();
  #loop: Promise<void> | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #wakeUp: (() => void) | undefined;
  #wakePending = false;
  #breakerOpenedAt = 0;
  #statsTimer: NodeJS.Timeout | undefined;

  constructor(options: BridgeWorkerOptions) {
    this.#db = options.db;
    this.#settings = options.settings;
    this.#client = options.client;
    this.#clock = options.clock ?? (() => new Date());
    this.#random = options.random ?? Math.random;
    this.workerId = (options.workerId ?? defaultWorkerId()).slice(0, 64);
    this.#log = options.logger.child({ component: 'legacy-bridge', workerId: this.workerId });
    this.breaker = circuitBreaker(handleWhenResult(isPy2Failure), {
      halfOpenAfter: this.#settings.breakerHalfOpenMs,
      breaker: new ConsecutiveBreaker(this.#settings.breakerThreshold),
    });
    this.breaker.onBreak(() => {
      this.#breakerOpenedAt = Date.now();
      this.#log.warn(
        { retryProbeInMs: this.#settings.breakerHalfOpenMs },
        'PY-2 keeps failing: circuit breaker opened, deliveries paused',
      );
    });
    this.breaker.onHalfOpen(() =>
      this.#log.info('circuit breaker half-open: probing PY-2 with one delivery'),
    );
    this.breaker.onReset(() =>
      this.#log.info('PY-2 answers again: circuit breaker closed, deliveries resume'),
    );
    this.breaker.onStateChange((state) => bridgeCircuitStateGauge.set(CIRCUIT_STATE_VALUE[state]));
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  start(): this {
    if (this.#loop) return this;
    bridgeCircuitStateGauge.set(CIRCUIT_STATE_VALUE[this.breaker.state]);
    this.#loop = this.#run();
    void this.#reportStats();
    this.#statsTimer = setInterval(() => void this.#reportStats(), this.#settings.statsIntervalMs);
    this.#statsTimer.unref();
    this.#log.info({ concurrency: this.#settings.concurrency }, 'legacy bridge worker started');
    return this;
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#drain();
    return this.#stopped;
  }

  async #drain(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#statsTimer);
    this.#wake();
    await this.#loop;
    if (this.#inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        Promise.allSettled([...this.#inFlight]).then(() => true),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), this.#settings.shutdownGraceMs);
        }),
      ]);
      clearTimeout(timer);
      if (!finished) {
        this.#log.warn(
          { inFlight: this.#inFlight.size },
          'deliveries still in flight at shutdown: interrupting them and releasing their claims',
        );
        this.#interrupt.abort();
        await Promise.allSettled([...this.#inFlight]);
      }
    }
    this.#log.info('legacy bridge worker stopped');
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      const wanted = this.#slotsToClaim();
      if (wanted > 0) {
        try {
          const creations = await claimDueCreations(this.#db.em(), {
            workerId: this.workerId,
            limit: wanted,
            now: this.#clock(),
            claimTtlMs: this.#settings.claimTtlMs,
          });
          for (const creation of creations) this.#launch(creation);
        } catch (error) {
          this.#log.warn({ err: error }, 'could not claim due creations; retrying after the poll interval');
        }
      }
      // A finished delivery (a free slot) or stop() cuts the wait short.
      await this.#sleep(this.#pollDelayMs());
    }
  }

  #slotsToClaim(): number {
    const free = this.#settings.concurrency - this.#inFlight.size;
    if (free <= 0 || this.#stopping) return 0;
    switch (this.breaker.state) {
      case CircuitState.Closed:
        return free;
      case CircuitState.Open:
        // Once the break has lasted its time, one delivery goes through as the breaker's probe.
        return this.#inFlight.size === 0 && this.#breakerOpenFor() >= this.#settings.breakerHalfOpenMs
          ? 1
          : 0;
      default:
        return 0;
    }
  }

  #breakerOpenFor(): number {
    return Date.now() - this.#breakerOpenedAt;
  }

  #pollDelayMs(): number {
    if (this.breaker.state !== CircuitState.Open) return this.#settings.pollIntervalMs;
    const untilProbe = this.#settings.breakerHalfOpenMs - this.#breakerOpenFor();
    return Math.max(10, Math.min(this.#settings.pollIntervalMs, untilProbe));
  }

  #launch(creation: ClaimedCreation): void {
    const delivery: Promise<void> = this.#deliver(creation)
      .catch((error: unknown) => {
        this.#log.error(
          { err: error, creationId: creation.id },
          'could not record the outcome of a delivery; its claim will expire and it will be retried',
        );
      })
      .finally(() => {
        this.#inFlight.delete(delivery);
        this.#wake();
      });
    this.#inFlight.add(delivery);
  }

  /** Kept between the end of a call and the end of its claim, for recording the outcome. */
  #claimMarginMs(): number {
    return Math.min(2_000, this.#settings.claimTtlMs / 10);
  }

  async #send(creation: ClaimedCreation, timeoutMs: number): Promise<Py2Outcome | 'circuit_open'> {
    try {
      return await this.breaker.execute(() =>
        this.#client.createEntity(
          {
            labId: creation.labId,
            orgId: creation.orgId,
            entityType: creation.entityType,
            name: creation.name,
            configId: creation.configId,
          },
          creation.idempotencyKey,
          { signal: this.#interrupt.signal, timeoutMs },
        ),
      );
    } catch (error) {
      if (error instanceof BrokenCircuitError) return 'circuit_open';
      throw error;
    }
  }

  async #deliver(creation: ClaimedCreation): Promise<void> {
    const log = this.#log.child({
      creationId: creation.id,
      labId: creation.labId,
      configId: creation.configId,
      attempt: creation.attempts,
    });
    // The call must end before the claim does, or another worker could send the creation meanwhile.
    const claimLeftMs = creation.claimExpiresAt.getTime() - this.#clock().getTime() - this.#claimMarginMs();
    if (claimLeftMs < MIN_CALL_MS) {
      log.warn('claim (nearly) expired before the delivery started; leaving it to whoever claims it next');
      return;
    }
    const outcome = await this.#send(creation, claimLeftMs);
    const now = this.#clock();
    const { workerId } = this;

    if (outcome === 'circuit_open') {
      bridgePy2Requests.inc({ outcome: 'circuit_open' });
      bridgeCreationEvents.inc({ event: 'released' });
      // Due again at once: this worker claims nothing while its breaker is open, but another
      // instance whose breaker is closed may deliver it.
      await this.#recording(() =>
        releaseClaims(this.#db.em(), [creation.id], {
          workerId,
          nextAttemptAt: now,
          refundAttempt: true,
          now,
        }),
      );
      return;
    }
    bridgePy2Requests.inc({ outcome: outcome.kind });

    if (outcome.kind === 'created') {
      const recorded = await this.#recording(() =>
        completeCreation(this.#db.em(), creation, { workerId, objectId: outcome.objectId, now }),
      );
      if (recorded) bridgeCreationEvents.inc({ event: 'delivered' });
      log.info({ objectId: outcome.objectId, recorded }, 'entity creation delivered to PY-2');
      return;
    }

    if (outcome.kind === 'final') {
      if (
        await this.#recording(() =>
          failCreation(this.#db.em(), creation, { workerId, reason: outcome.reason, now }),
        )
      ) {
        bridgeCreationEvents.inc({ event: 'failed' });
      }
      log.warn({ reason: outcome.reason }, 'PY-2 refused the entity creation: failed, not retried');
      return;
    }

    if (outcome.interrupted) {
      bridgeCreationEvents.inc({ event: 'released' });
      await this.#recording(() =>
        releaseClaims(this.#db.em(), [creation.id], {
          workerId,
          nextAttemptAt: now,
          refundAttempt: false,
          now,
        }),
      );
      log.info('delivery interrupted by shutdown: claim released');
      return;
    }

    const age = now.getTime() - creation.windowStartedAt.getTime();
    if (creation.attempts >= this.#settings.maxAttempts || age >= this.#settings.maxAgeMs) {
      const reason = `${outcome.reason} (gave up after ${creation.attempts} attempts over ${Math.round(age / 1000)} s)`;
      if (await this.#recording(() => failCreation(this.#db.em(), creation, { workerId, reason, now }))) {
        bridgeCreationEvents.inc({ event: 'failed' });
      }
      log.warn({ reason }, 'entity creation failed: out of attempts or time');
      return;
    }

    const backoff = backoffDelayMs(
      creation.attempts,
      { baseMs: this.#settings.baseBackoffMs, maxMs: this.#settings.maxBackoffMs },
      this.#random,
    );
    const waitMs = Math.max(backoff, Math.min(outcome.retryAfterMs ?? 0, this.#settings.maxBackoffMs));
    const nextAttemptAt = new Date(now.getTime() + waitMs);
    if (
      await this.#recording(() =>
        scheduleRetry(this.#db.em(), creation, { workerId, nextAttemptAt, error: outcome.reason, now }),
      )
    ) {
      bridgeCreationEvents.inc({ event: 'retry_scheduled' });
    }
    log.info({ reason: outcome.reason, retryInMs: waitMs }, 'PY-2 delivery failed; will retry');
  }

  /**
   * Records an outcome, again on a deadlock or lock wait timeout (transient under concurrency):
   * an outcome that cannot be recorded costs a second call to PY-2 once the claim expires.
   */
  async #recording<T>(record: () => Promise<T>): Promise<T> {
    return withDeadlockRetry(record, {
      lockWaitTimeouts: true,
      random: this.#random,
      onRetry: (error, attempt) =>
        this.#log.info(
          { err: error, attempt },
          'recording a delivery outcome hit a lock conflict; trying again',
        ),
    });
  }

  async #reportStats(): Promise<void> {
    try {
      const stats = await readOutboxStats(this.#db.em(), this.#clock());
      bridgeCreationsGauge.set({ status: 'queued' }, stats.queued);
      bridgeCreationsGauge.set({ status: 'failed' }, stats.failed);
      bridgeOldestPendingAgeGauge.set(stats.oldestPendingAgeSeconds);
      const events = await bridgeEventCounts();
      this.#log.info(
        {
          queued: stats.queued,
          failedInOutbox: stats.failed,
          oldestPendingAgeSeconds: Math.round(stats.oldestPendingAgeSeconds),
          delivered: events.delivered,
          failed: events.failed,
          retried: events.retried,
          retriesScheduled: events.retry_scheduled,
          circuit: CircuitState[this.breaker.state],
        },
        'legacy bridge status',
      );
    } catch (error) {
      this.#log.warn({ err: error }, 'could not read the outbox stats');
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#wakePending || this.#stopping) {
      this.#wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakeUp = done;
    });
  }

  #wake(): void {
    const wakeUp = this.#wakeUp;
    if (wakeUp) wakeUp();
    else this.#wakePending = true;
  }
}

/** Starts the worker of this process from the configuration (server and `npm run worker` alike). */
export function startBridgeWorker(
  context: Pick<BackgroundContext, 'config' | 'db' | 'logger'>,
  options: Partial<Pick<BridgeWorkerOptions, 'workerId' | 'clock' | 'random'>> = {},
): BridgeWorker {
  const { config } = context;
  const settings = bridgeSettings(config);
  if (config.bridge.requestTimeoutMs >= settings.claimTtlMs) {
    context.logger.warn(
      { requestTimeoutMs: config.bridge.requestTimeoutMs, claimTtlMs: settings.claimTtlMs },
      'BRIDGE_REQUEST_TIMEOUT_MS should be well below BRIDGE_CLAIM_TTL_MS, or a slow delivery may be sent again by another worker',
    );
  }
  const client = new Py2Client({
    baseUrl: config.legacyPy2Url,
    token: config.legacyPy2Token,
    timeoutMs: config.bridge.requestTimeoutMs,
  });
  return new BridgeWorker({ db: context.db, logger: context.logger, settings, client, ...options }).start();
}
