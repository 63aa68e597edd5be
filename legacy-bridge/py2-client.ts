/**
 * The client of PY-2's entity controller (contract: "The bridge call"). It never throws: every
 * answer, network error and timeout becomes an outcome the worker can act on.
 */

import { randomUUID } from 'node:crypto';
import { REQUEST_ID_HEADER } from '../src/observability/request-id.js';

export const PY2_ENTITY_PATH = '/registration/api/missing-field-entity';

/** The longest PY-2 error text kept in a reason (the outbox column holds 1024 characters). */
const MAX_DETAIL_LENGTH = 300;

export interface Py2EntityRequest {
  labId: number;
  orgId: number | null;
  entityType: string;
  name: string;
  configId: number;
}

export type Py2Outcome =
  | { kind: 'created'; status: number; objectId: number }
  /** PY-2 refused this creation for good: retrying the same request cannot succeed. */
  | { kind: 'final'; status: number | null; reason: string }
  /** Worth sending again later; `retryAfterMs` when PY-2 said how long to wait. */
  | {
      kind: 'retryable';
      status: number | null;
      reason: string;
      retryAfterMs?: number;
      /** The caller's signal cut the request short (shutdown), which says nothing about PY-2. */
      interrupted?: boolean;
    };

export type Py2StatusClass = 'success' | 'final' | 'retryable';

/**
 * 2xx succeeds; 4xx is final except 408 and 429; everything else (5xx, and 1xx/3xx, which only a
 * misconfigured proxy or URL produces and an operator can fix) is retried.
 */
export function classifyPy2Status(status: number): Py2StatusClass {
  if (status >= 200 && status < 300) return 'success';
  if (status === 408 || status === 429) return 'retryable';
  if (status >= 400 && status < 500) return 'final';
  return 'retryable';
}

/** `Retry-After` in seconds or as an HTTP date, in milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface Py2ClientOptions {
  /** LEGACY_PY2_URL, without a trailing slash. */
  baseUrl: string;
  token: string;
  timeoutMs: number;
}

function networkErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function errorDetail(text: string): string {
  let detail = text;
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed?.error === 'string') detail = parsed.error;
  } catch {
    // Not JSON: keep the raw text.
  }
  detail = detail.replace(/\s+/g, ' ').trim();
  return detail.length > MAX_DETAIL_LENGTH ? `${detail.slice(0, MAX_DETAIL_LENGTH)}…` : detail;
}

export class Py2Client {
  readonly #endpoint: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(options: Py2ClientOptions) {
    this.#endpoint = `${options.baseUrl.replace(/\/+$/, '')}${PY2_ENTITY_PATH}`;
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * Asks PY-2 to create one placeholder entity. `idempotencyKey` is the creation's own key, the same
   * on every attempt, so PY-2 answers a repeated request with the object it already created.
   * `timeoutMs` may shorten the configured timeout (to end the call before the caller's claim does).
   */
  async createEntity(
    request: Py2EntityRequest,
    idempotencyKey: string,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<Py2Outcome> {
    const { signal } = options;
    const timeoutMs = Math.min(this.#timeoutMs, options.timeoutMs ?? this.#timeoutMs);
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.#endpoint, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.#token}`,
          'idempotency-key': idempotencyKey,
          // One id per call: a retried creation keeps its idempotency key but each attempt is its own request.
          [REQUEST_ID_HEADER]: randomUUID(),
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify({
          lab_id: request.labId,
          org_id: request.orgId,
          entity_type: request.entityType,
          name: request.name,
          config_id: request.configId,
        }),
        redirect: 'manual',
        signal: combined,
      });
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) {
        return {
          kind: 'retryable',
          status: null,
          reason: 'delivery interrupted by shutdown',
          interrupted: true,
        };
      }
      if (timeout.aborted) {
        return {
          kind: 'retryable',
          status: null,
          reason: `PY-2 did not answer within ${this.#timeoutMs} ms`,
        };
      }
      const code = networkErrorCode(error);
      if (code === 'ECONNREFUSED')
        return { kind: 'retryable', status: null, reason: 'PY-2 refused the connection' };
      return {
        kind: 'retryable',
        status: null,
        reason: `PY-2 could not be reached${code ? ` (${code})` : ''}`,
      };
    }

    const { status } = response;
    const verdict = classifyPy2Status(status);
    if (verdict === 'success') {
      let objectId: unknown;
      try {
        objectId = (JSON.parse(text) as { object_id?: unknown })?.object_id;
      } catch {
        objectId = undefined;
      }
      if (typeof objectId === 'number' && Number.isInteger(objectId) && objectId > 0) {
        return { kind: 'created', status, objectId };
      }
      // PY-2 says it succeeded but names no object: repeating the same key would repeat the same answer.
      return { kind: 'final', status, reason: `PY-2 answered ${status} without a valid object_id` };
    }
    const detail = errorDetail(text);
    const reason = `PY-2 answered ${status}${detail ? `: ${detail}` : ''}`;
    if (verdict === 'final') return { kind: 'final', status, reason };
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    return { kind: 'retryable', status, reason, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }
}
