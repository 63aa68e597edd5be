import type { FastifyBaseLogger } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import type { Principal } from '../auth/principal.js';
import type { UntouchedReason } from './proxy-metrics.js';

/** What an augmentation gets once legacy has answered 2xx with JSON and the caller has a principal. */
export interface AugmentInput {
  readonly deps: AppDeps;
  readonly principal: Principal;
  /** The capture groups of the matched legacy path, e.g. the bill id. */
  readonly params: readonly string[];
  /** Legacy's parsed JSON answer. */
  readonly answer: unknown;
  /** The parsed JSON request body, for augmentations that read it. */
  readonly requestBody: Record<string, unknown> | undefined;
  readonly log: FastifyBaseLogger;
}

export type AugmentOutcome =
  /** Add `has_missing_fields` to the answer object. */
  | { kind: 'flag'; hasMissingFields: boolean }
  /** Add `has_missing_fields` to each item of the answer's array `key` that has a flag. */
  | { kind: 'flag_items'; key: string; flags: ReadonlyArray<boolean | undefined> }
  /** Legacy's answer goes back as it came; a reason means the skip is logged and counted. */
  | { kind: 'untouched'; reason?: UntouchedReason };

/** A legacy path whose answer the service adds to: a captured write or a flagged read. */
export interface LegacyAugmentation {
  /** Metric label and log name. */
  readonly name: string;
  readonly method: 'GET' | 'POST';
  /** Matched against the raw upstream path (no query). */
  readonly path: RegExp;
  readonly readsRequestBody: boolean;
  augment(input: AugmentInput): Promise<AugmentOutcome>;
}

const MAX_INT_ID = 2_147_483_647;

export const untouched = (reason?: UntouchedReason): AugmentOutcome =>
  reason ? { kind: 'untouched', reason } : { kind: 'untouched' };

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A positive int-column id (from JSON or a path segment), else undefined. */
export function positiveId(value: unknown): number | undefined {
  const id = typeof value === 'string' && /^\d{1,10}$/.test(value) ? Number(value) : value;
  return typeof id === 'number' && Number.isInteger(id) && id > 0 && id <= MAX_INT_ID ? id : undefined;
}

/** An optional id: absent or null is null; anything but a positive id is undefined (invalid). */
export function optionalId(value: unknown): number | null | undefined {
  return value === undefined || value === null ? null : positiveId(value);
}
