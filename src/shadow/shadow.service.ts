import type { FastifyBaseLogger } from 'fastify';
import { Counter } from 'prom-client';
import { metricsRegistry } from '../metrics.js';

/**
 * Shadow mode: a sampled share of the shim's GET answers is also asked of legacy PY-3, after the
 * client already has its answer, and the two are compared. Differences are counted and logged by
 * key path only (never values: they can be patient data). Nothing here may change or hold up an
 * answer: the legacy call is bounded by a timeout and by a cap on calls in flight.
 */

export type ShadowOutcome =
  | 'match'
  | 'mismatch'
  | 'legacy_error'
  | 'timeout'
  | 'unreachable'
  | 'skipped_busy'
  /** The app closed while legacy was still answering: not counted. */
  | 'abandoned';

export const shadowComparisons = new Counter({
  name: 'md_shadow_comparisons_total',
  help: 'Shadow comparisons of shim GET answers with legacy PY-3, by route and outcome: match, mismatch, legacy_error (non-2xx or not JSON), timeout, unreachable, skipped_busy',
  labelNames: ['route', 'outcome'] as const,
  registers: [metricsRegistry],
});

/**
 * Keys whose values legitimately differ between the two systems: opaque, system-specific tokens,
 * and what only the new service records (resolution reasons, which legacy has no notion of).
 */
const IGNORED_KEYS = new Set(['next_cursor', 'reason_code', 'reason_note']);
/** At most this many differing key paths are logged per comparison. */
const MAX_LOGGED_KEYS = 50;
/** Legacy answers larger than this are not compared. */
const MAX_LEGACY_ANSWER_BYTES = 8 * 1024 * 1024;

const ISO_TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * A timestamp in the one form both systems can be compared in: UTC, microseconds (the tables'
 * `datetime(6)`), whatever offset notation or fraction length the writer used.
 */
function canonicalTimestamp(value: string): string | undefined {
  const match = ISO_TIMESTAMP.exec(value);
  if (!match) return undefined;
  const [, date, time, fraction = '', offset = 'Z'] = match;
  const offsetNotation = offset === 'Z' ? 'Z' : offset.replace(/^([+-]\d{2})(\d{2})$/, '$1:$2');
  const seconds = Date.parse(`${date}T${time}${offsetNotation}`);
  if (Number.isNaN(seconds)) return undefined;
  return `${new Date(seconds).toISOString().slice(0, 19)}.${fraction.padEnd(6, '0').slice(0, 6)}Z`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function idOf(value: unknown): string | undefined {
  if (!isPlainObject(value)) return undefined;
  const id = value.id;
  return typeof id === 'number' || typeof id === 'string' ? String(id) : undefined;
}

/** An array whose items all carry a distinct `id` is compared as a set keyed by id. */
function keyedById(items: readonly unknown[]): Map<string, unknown> | undefined {
  if (items.length === 0) return undefined;
  const byId = new Map<string, unknown>();
  for (const item of items) {
    const id = idOf(item);
    if (id === undefined || byId.has(id)) return undefined;
    byId.set(id, item);
  }
  return byId;
}

/** Timestamps in canonical form, ignored keys dropped; array order is handled by the comparison. */
export function normalizeForComparison(value: unknown): unknown {
  if (typeof value === 'string') return canonicalTimestamp(value) ?? value;
  if (Array.isArray(value)) return value.map(normalizeForComparison);
  if (isPlainObject(value)) {
    const normalized: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      if (!IGNORED_KEYS.has(key)) normalized[key] = normalizeForComparison(inner);
    }
    return normalized;
  }
  return value;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function collectDifferences(ours: unknown, legacy: unknown, path: string, into: string[]): void {
  if (Array.isArray(ours) && Array.isArray(legacy)) {
    const oursById = keyedById(ours);
    const legacyById = keyedById(legacy);
    if (oursById && legacyById) {
      for (const id of new Set([...oursById.keys(), ...legacyById.keys()])) {
        collectDifferences(oursById.get(id), legacyById.get(id), `${path}[id=${id}]`, into);
      }
      return;
    }
    for (let i = 0; i < Math.max(ours.length, legacy.length); i++) {
      collectDifferences(ours[i], legacy[i], `${path}[${i}]`, into);
    }
    return;
  }
  if (isPlainObject(ours) && isPlainObject(legacy)) {
    for (const key of new Set([...Object.keys(ours), ...Object.keys(legacy)])) {
      collectDifferences(ours[key], legacy[key], join(path, key), into);
    }
    return;
  }
  if (!Object.is(ours, legacy)) into.push(path || '(root)');
}

/**
 * The key paths where two answers differ after normalization, e.g. `configs[id=3].field_value`:
 * arrays of objects with ids are matched by id (their order does not count), timestamps compare as
 * instants, `next_cursor` is ignored. Empty when they agree.
 */
export function differingKeys(ours: unknown, legacy: unknown): string[] {
  const differences: string[] = [];
  collectDifferences(normalizeForComparison(ours), normalizeForComparison(legacy), '', differences);
  return differences;
}

export interface ShadowSettings {
  /** Share of eligible answers compared, 0 to 1 (0: off). */
  readonly sampleRate: number;
  readonly timeoutMs: number;
  readonly maxInFlight: number;
  readonly legacyPy3Url: string;
}

export interface ShadowRequest {
  /** The route pattern, for the metric and the log (never the query: it can hold patient ids). */
  readonly route: string;
  /** Path and query as the client sent them. */
  readonly url: string;
  readonly requestId: string;
  readonly authorization: string | undefined;
  readonly cookie: string | undefined;
  /** The answer the client got. */
  readonly answer: string;
}

export class ShadowComparer {
  readonly #settings: ShadowSettings;
  readonly #log: FastifyBaseLogger;
  readonly #random: () => number;
  readonly #closing = new AbortController();
  readonly #inFlight = new Set<Promise<ShadowOutcome>>();

  constructor(settings: ShadowSettings, log: FastifyBaseLogger, random: () => number = Math.random) {
    this.#settings = settings;
    this.#log = log;
    this.#random = random;
  }

  /** Whether this request is one of the sampled share. */
  sampled(): boolean {
    return this.#settings.sampleRate > 0 && this.#random() < this.#settings.sampleRate;
  }

  /** Compares in the background; never throws. */
  start(request: ShadowRequest): void {
    if (this.#closing.signal.aborted) return;
    if (this.#inFlight.size >= this.#settings.maxInFlight) {
      this.#record(request.route, 'skipped_busy');
      return;
    }
    const comparison = this.compare(request).finally(() => this.#inFlight.delete(comparison));
    this.#inFlight.add(comparison);
  }

  /** Asks legacy for the same GET and compares its answer with the client's. */
  async compare(request: ShadowRequest): Promise<ShadowOutcome> {
    const { route } = request;
    const timeout = AbortSignal.timeout(this.#settings.timeoutMs);
    let legacy: unknown;
    try {
      const response = await fetch(`${this.#settings.legacyPy3Url}${request.url}`, {
        headers: {
          accept: 'application/json',
          'x-request-id': request.requestId,
          // Lets legacy tell these reads from the clients' own.
          'x-shadow-request': '1',
          ...(request.authorization ? { authorization: request.authorization } : {}),
          ...(request.cookie ? { cookie: request.cookie } : {}),
        },
        signal: AbortSignal.any([timeout, this.#closing.signal]),
        redirect: 'manual',
      });
      const declaredLength = Number(response.headers.get('content-length') ?? 0);
      if (response.status < 200 || response.status >= 300 || declaredLength > MAX_LEGACY_ANSWER_BYTES) {
        await response.body?.cancel();
        return this.#legacyError(route, { legacyStatus: response.status });
      }
      const text = await response.text();
      try {
        legacy = JSON.parse(text);
      } catch {
        return this.#legacyError(route, { legacyStatus: response.status, reason: 'not_json' });
      }
    } catch (error) {
      if (timeout.aborted) {
        this.#log.warn(
          { shadow: { path: route, timeoutMs: this.#settings.timeoutMs } },
          'shadow: legacy timed out',
        );
        return this.#record(route, 'timeout');
      }
      if (this.#closing.signal.aborted) return 'abandoned';
      this.#log.warn({ shadow: { path: route }, err: error }, 'shadow: legacy unreachable');
      return this.#record(route, 'unreachable');
    }

    let ours: unknown;
    try {
      ours = JSON.parse(request.answer);
    } catch {
      return this.#legacyError(route, { reason: 'our answer is not JSON' });
    }
    const keys = differingKeys(ours, legacy);
    if (keys.length === 0) return this.#record(route, 'match');
    this.#log.warn(
      {
        shadow: {
          path: route,
          differingKeyCount: keys.length,
          differingKeys: keys.slice(0, MAX_LOGGED_KEYS),
        },
      },
      'shadow: legacy answer differs',
    );
    return this.#record(route, 'mismatch');
  }

  /** Stops accepting comparisons and abandons those in flight. */
  async close(): Promise<void> {
    this.#closing.abort();
    await Promise.allSettled([...this.#inFlight]);
  }

  #legacyError(route: string, details: Record<string, unknown>): ShadowOutcome {
    this.#log.warn({ shadow: { path: route, ...details } }, 'shadow: legacy gave no comparable answer');
    return this.#record(route, 'legacy_error');
  }

  #record(route: string, outcome: ShadowOutcome): ShadowOutcome {
    shadowComparisons.inc({ route, outcome });
    return outcome;
  }
}
