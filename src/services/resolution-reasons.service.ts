import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Em, SqlReader } from '../db/database.js';
import { sqlSession } from '../db/sql-session.js';
import { readManualResolutions, upsertManualResolution } from '../repositories/resolutions.repository.js';

/** A UTC `datetime(6)` as the database prints it (see lab-fields.service). */
type DbTimestamp = string;

/**
 * Why a detail is still absent when staff resolve it by hand: the codes of FHIR R4's
 * DataAbsentReason value set (http://terminology.hl7.org/CodeSystem/data-absent-reason), so a
 * patient who declined leaves the queue as `asked-declined` instead of with a made-up value.
 */
export const REASON_CODES = [
  'unknown',
  'asked-unknown',
  'temp-unknown',
  'not-asked',
  'asked-declined',
  'masked',
  'not-applicable',
  'unsupported',
  'as-text',
  'error',
  'not-a-number',
  'negative-infinity',
  'positive-infinity',
  'not-performed',
  'not-permitted',
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

export const REASON_NOTE_MAX = 500;

export const reasonCodeSchema = z.enum(REASON_CODES, {
  error: `must be a FHIR data-absent-reason code: ${REASON_CODES.join(', ')}`,
});

/** A short free-text note; blank counts as none. */
export const reasonNoteSchema = z
  .string()
  .trim()
  .max(REASON_NOTE_MAX, `must be at most ${REASON_NOTE_MAX} characters`)
  .transform((note) => (note === '' ? undefined : note));

export interface ResolutionReason {
  reasonCode?: ReasonCode | undefined;
  reasonNote?: string | undefined;
}

/** A reason is only meaningful for resolving; naming `names.code` / `names.note` as sent. */
export function checkReasonOnlyWhenResolving(
  input: { isResolved: boolean; reasonCode?: unknown; reasonNote?: unknown },
  ctx: z.RefinementCtx,
  names: { code: string; note: string; isResolved: string },
): void {
  if (input.isResolved) return;
  for (const [key, name] of [
    ['reasonCode', names.code],
    ['reasonNote', names.note],
  ] as const) {
    if (input[key] != null) {
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `is only allowed with ${names.isResolved}: true`,
      });
    }
  }
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Microseconds since the epoch as a UTC `datetime(6)` literal. */
function dbTimestampOfMicros(micros: number): DbTimestamp {
  const date = new Date(Math.floor(micros / 1_000));
  return (
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}.${pad(micros % 1_000_000, 6)}`
  );
}

/** The time of a manual resolve: what its rows and its record are stamped with, and when it is logged. */
export interface ResolutionStamp {
  /** Written, as this very string, to the rows' `resolved_at` and to the record: identical values, no rounding. */
  resolvedAt: DbTimestamp;
  /** The same instant to the millisecond, for the ActivityLog. */
  at: Date;
}

let lastStampMicros = 0;

/**
 * A manual resolve's stamp, to the microsecond (the columns are datetime(6)), so that a record (keyed by
 * lab, resolved_at and resolver) stands for one call: the wall clock's millisecond with the monotonic
 * clock's sub-millisecond digits, never on a whole millisecond, and never the same twice in one process. Two calls of one resolver in
 * one lab can still share a stamp across instances (or with an injected clock): their record is upserted
 * and the later call's reason wins for the rows of both. An injected clock (`now`, tests) is taken as
 * it is, to the millisecond.
 */
export function manualResolutionStamp(now?: Date): ResolutionStamp {
  if (now) return { resolvedAt: dbTimestampOfMicros(now.getTime() * 1_000), at: now };
  const subMillisecond = Math.floor((performance.now() % 1) * 1_000);
  let micros = Math.max(Date.now() * 1_000 + subMillisecond, lastStampMicros + 1);
  // Never on a whole millisecond: the engine stamps rows with a Date (milliseconds) and the capturing
  // user as resolver, so such a stamp could otherwise match a record of the same user.
  if (micros % 1_000 === 0) micros += 1;
  lastStampMicros = micros;
  return { resolvedAt: dbTimestampOfMicros(micros), at: new Date(Math.floor(micros / 1_000)) };
}

/** How a record names its resolver: the principal's id in the column of its role, 0 in the other. */
export function resolverColumns(principal: Principal): { labUserId: number; doctorId: number } {
  return principal.role === 'doctor'
    ? { labUserId: 0, doctorId: principal.userId }
    : { labUserId: principal.userId, doctorId: 0 };
}

/**
 * Records that the caller's rows stamped `resolvedAt` (already updated in `tx`) were resolved by hand, with
 * the reason when one was given: one record for the whole call, whatever the number of rows (see migration
 * 20260105000000-manual-resolutions). A second call of the same resolver in the same lab with the same
 * stamp replaces the reason (upsertManualResolution, resolutions.repository.ts).
 */
export async function recordManualResolution(
  tx: Em,
  principal: Principal,
  reason: ResolutionReason,
  resolvedAt: DbTimestamp,
): Promise<void> {
  const resolver = resolverColumns(principal);
  await upsertManualResolution(sqlSession(tx), {
    labId: principal.labId,
    resolvedAt,
    labUserId: resolver.labUserId,
    doctorId: resolver.doctorId,
    reasonCode: reason.reasonCode ?? null,
    reasonNote: reason.reasonNote ?? null,
  });
}

export interface StoredReason {
  reasonCode: ReasonCode | null;
  reasonNote: string | null;
}

/** A resolved row as the listing reads it. */
export interface ResolvedRowKey {
  id: number;
  resolvedAt: DbTimestamp;
  resolvedByLabUserId: number | null;
  resolvedByDoctorId: number | null;
}

const recordKey = (resolvedAt: DbTimestamp, labUserId: number | null, doctorId: number | null) =>
  `${resolvedAt}|${labUserId ?? 0}|${doctorId ?? 0}`;

/**
 * The reasons of these resolved rows' manual resolutions, by row id: the records of the page's distinct
 * stamps (a primary-key range per stamp), matched to each row by stamp and resolver. A row stamped again by
 * any other path (legacy, the engine after a reopen) has another stamp or resolver, so it never shows the
 * reason of an earlier resolution.
 */
export async function reasonsOf(
  em: SqlReader,
  labId: number,
  rows: readonly ResolvedRowKey[],
): Promise<Map<number, StoredReason>> {
  if (rows.length === 0) return new Map();
  const stamps = [...new Set(rows.map((row) => row.resolvedAt))];
  const found = await readManualResolutions(sqlSession(em), labId, stamps);
  if (found.length === 0) return new Map();
  const records = new Map(
    found.map((record) => [
      recordKey(record.resolved_at_text, record.resolved_by_lab_user_id, record.resolved_by_doctor_id),
      { reasonCode: record.reason_code, reasonNote: record.reason_note },
    ]),
  );
  const reasons = new Map<number, StoredReason>();
  for (const row of rows) {
    const record = records.get(recordKey(row.resolvedAt, row.resolvedByLabUserId, row.resolvedByDoctorId));
    if (record) reasons.set(row.id, record);
  }
  return reasons;
}
