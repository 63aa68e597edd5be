import type { FastifyBaseLogger } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import type { Principal } from '../auth/principal.js';
import type { ScannedList } from './json-flags.js';
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

/** Legacy's answer goes back as it came; a reason means the skip is logged and counted. */
export type Untouched = { kind: 'untouched'; reason?: UntouchedReason };

export type AugmentOutcome =
  /** Add `has_missing_fields` to the answer object. */
  | { kind: 'flag'; hasMissingFields: boolean }
  /** Add `has_missing_fields` to each item of the answer's array `key` that has a flag. */
  | { kind: 'flag_items'; key: string; flags: ReadonlyArray<boolean | undefined> }
  | Untouched;

/** What a text augmentation gets: the scanned list instead of the parsed answer. */
export interface ScannedInput extends Omit<AugmentInput, 'answer'> {
  readonly list: ScannedList;
}

export type ScannedOutcome =
  /** Add `has_missing_fields` to each object item of the scanned list that has a flag. */
  { kind: 'flag_items'; flags: ReadonlyArray<boolean | undefined> } | Untouched;

/**
 * A route that can work from legacy's text: `scan` reads the list it needs in one pass, so that its
 * common answer is never JSON.parse'd (parsing legacy's 200-item list was a fifth of a flagged
 * read's CPU).
 * When `scan` is unsure it returns undefined, and the answer is parsed and goes to `augment`.
 */
export interface TextAugmentation {
  scan(text: string): ScannedList | undefined;
  augment(input: ScannedInput): Promise<ScannedOutcome>;
}

/** A legacy path whose answer the service adds to: a captured write or a flagged read. */
export interface LegacyAugmentation {
  /** Metric label and log name. */
  readonly name: string;
  readonly method: 'GET' | 'POST';
  /** Matched against the raw upstream path (no query). */
  readonly path: RegExp;
  readonly readsRequestBody: boolean;
  augment(input: AugmentInput): Promise<AugmentOutcome>;
  /** The optional fast path from the answer's text; `augment` still handles what it cannot scan. */
  readonly fromText?: TextAugmentation;
}

const MAX_INT_ID = 2_147_483_647;

export const untouched = (reason?: UntouchedReason): Untouched =>
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
