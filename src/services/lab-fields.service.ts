import { DeadlockException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { Counter } from 'prom-client';
import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Em, SqlReader } from '../db/database.js';
import { withDeadlockRetry } from '../db/deadlock-retry.js';
import { dbTimestampOf } from '../db/microsecond-timestamp.type.js';
import { slicesOf, sqlSession } from '../db/sql-session.js';
import { ConflictError } from '../errors.js';
import { metricsRegistry } from '../metrics.js';
import {
  type LabFieldRow,
  lockIdsInScope,
  lockOpenRowsOfPatients,
  lockRowsInScope,
  readLabFieldsPage,
  reopenRows,
  type ScopedRow,
  stampResolved,
} from '../repositories/lab-fields.repository.js';
import { writeActivity } from './activity-log.service.js';
import {
  checkReasonOnlyWhenResolving,
  manualResolutionStamp,
  type ReasonCode,
  reasonCodeSchema,
  reasonNoteSchema,
  reasonsOf,
  recordManualResolution,
} from './resolution-reasons.service.js';
import { type FieldModule, MODULES } from './templates.service.js';

export const LAB_FIELDS_DEFAULT_LIMIT = 50;
export const LAB_FIELDS_MAX_LIMIT = 200;
export const RESOLVE_MAX_IDS = 5000;
/** More field ids than templates exist would only ever be a client bug. */
export const FIELD_ID_FILTER_MAX = 100;

const resolutionRows = new Counter({
  name: 'md_lab_fields_resolution_rows_total',
  help: 'LabMissingDetails rows changed by manual (un)resolution, and rows skipped because the field was already open',
  labelNames: ['direction', 'outcome'] as const,
  registers: [metricsRegistry],
});

// ---------------------------------------------------------------------------------------------------
// Timestamps. The table stores UTC in datetime(6); JS Dates only hold milliseconds, so timestamps travel
// as `YYYY-MM-DD HH:MM:SS.ffffff` strings between SQL and this module and never as Date objects.
// ---------------------------------------------------------------------------------------------------

/** A UTC `datetime(6)` value as MariaDB/MySQL print and accept it: `2024-01-31 10:00:00.123456`. */
export type DbTimestamp = string;

const DB_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6})$/;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
/** `+05:30` arrives as ` 05:30` when the client forgot to URL-encode the plus sign. */
const UNENCODED_PLUS_OFFSET = /^\d{4}-\d{2}-\d{2}T[\d:.]+ \d{2}(?::?\d{2})?$/i;

const pad = (value: number, width = 2) => String(value).padStart(width, '0');

function isCalendarDate(year: number, month: number, day: number): boolean {
  if (year < 1000 || year > 9999 || month < 1 || month > 12 || day < 1) return false;
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function formatDbTimestamp(epochMs: number, micros: string): DbTimestamp {
  const d = new Date(epochMs);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${micros}`
  );
}

/** `2024-01-31 10:00:00.123456` (UTC) to ISO 8601 `2024-01-31T10:00:00.123456Z`, keeping the microseconds. */
export function isoFromDbTimestamp(value: DbTimestamp): string {
  return `${value.replace(' ', 'T')}Z`;
}

/** The inclusive bounds one `created_from` / `created_to` value stands for. */
export interface TimeBound {
  first: DbTimestamp;
  last: DbTimestamp;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const DATE_FORMAT_HINT = 'use an ISO 8601 date (2024-01-31) or date-time (2024-01-31T10:00:00Z)';

/**
 * Parses an ISO 8601 date or date-time. A plain date is the whole UTC day; a date-time is one instant
 * (UTC when it carries no offset) at microsecond precision.
 */
export function parseTimeBound(raw: string): Parsed<TimeBound> {
  const date = ISO_DATE.exec(raw);
  if (date) {
    const [, y, m, d] = date.map(Number) as [number, number, number, number];
    if (!isCalendarDate(y, m, d)) return { ok: false, message: `"${raw}" is not a valid date` };
    const day = `${pad(y, 4)}-${pad(m)}-${pad(d)}`;
    return { ok: true, value: { first: `${day} 00:00:00.000000`, last: `${day} 23:59:59.999999` } };
  }
  const dt = ISO_DATE_TIME.exec(raw);
  if (!dt) {
    if (UNENCODED_PLUS_OFFSET.test(raw)) {
      return { ok: false, message: `"${raw}": encode the "+" of a UTC offset as %2B in the query string` };
    }
    return { ok: false, message: `"${raw}" is not a date or date-time: ${DATE_FORMAT_HINT}` };
  }
  const [y, mo, d, h, mi] = dt.slice(1, 6).map(Number) as [number, number, number, number, number];
  const s = Number(dt[6] ?? 0);
  const micros = (dt[7] ?? '').padEnd(6, '0');
  if (!isCalendarDate(y, mo, d) || h > 23 || mi > 59 || s > 59) {
    return { ok: false, message: `"${raw}" is not a valid date-time` };
  }
  let offsetMinutes = 0;
  const zone = dt[8];
  if (zone && zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2) || 0);
    if (oh > 23 || om > 59) return { ok: false, message: `"${raw}" has an invalid UTC offset` };
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const epochMs = Date.UTC(y, mo - 1, d, h, mi, s) - offsetMinutes * 60_000;
  const year = new Date(epochMs).getUTCFullYear();
  if (year < 1000 || year > 9999) return { ok: false, message: `"${raw}" is out of range` };
  const instant = formatDbTimestamp(epochMs, micros);
  return { ok: true, value: { first: instant, last: instant } };
}

const timeBound = z.string().transform((raw, ctx): TimeBound => {
  const parsed = parseTimeBound(raw.trim());
  if (parsed.ok) return parsed.value;
  ctx.addIssue({ code: 'custom', message: parsed.message });
  return z.NEVER;
});

// ---------------------------------------------------------------------------------------------------
// Cursor: base64url of `v1|<created_at with microseconds>|<id>` of the last row of the page.
// ---------------------------------------------------------------------------------------------------

export interface LabFieldsCursor {
  createdAt: DbTimestamp;
  id: number;
}

const CURSOR_TEXT = /^v1\|(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6})\|([1-9]\d{0,15})$/;

export function encodeCursor(cursor: LabFieldsCursor): string {
  return Buffer.from(`v1|${cursor.createdAt}|${cursor.id}`, 'utf8').toString('base64url');
}

/** The cursor a previous page handed out, or null when the text was not one (garbage, truncated, edited). */
export function decodeCursor(raw: string): LabFieldsCursor | null {
  if (raw.length > 200 || !/^[A-Za-z0-9_-]+$/.test(raw)) return null;
  const bytes = Buffer.from(raw, 'base64url');
  // Only the canonical encoding is accepted, so an edited cursor cannot decode to something near a real one.
  if (bytes.toString('base64url') !== raw) return null;
  const match = CURSOR_TEXT.exec(bytes.toString('utf8'));
  if (!match) return null;
  const [, createdAt, id] = match as unknown as [string, string, string];
  const stamp = DB_TIMESTAMP.exec(createdAt);
  const [, y, mo, d, h, mi, s] = (stamp ?? []).map(Number);
  if (!stamp || !isCalendarDate(y!, mo!, d!) || h! > 23 || mi! > 59 || s! > 59) return null;
  const idNumber = Number(id);
  if (!Number.isSafeInteger(idNumber)) return null;
  return { createdAt, id: idNumber };
}

const cursorSchema = z.string().transform((raw, ctx): LabFieldsCursor => {
  const cursor = decodeCursor(raw);
  if (cursor) return cursor;
  ctx.addIssue({
    code: 'custom',
    message: 'is not a valid cursor: pass next_cursor of the previous page unchanged',
  });
  return z.NEVER;
});

// ---------------------------------------------------------------------------------------------------
// Inputs. The tRPC schemas are camelCase; the REST shim builds its snake_case query from the same parts.
// ---------------------------------------------------------------------------------------------------

export const rowId = z.int().positive();

export interface LabFieldsFilters {
  isResolved: boolean;
  userDetailsId?: number | undefined;
  billId?: number | undefined;
  fieldIds?: number[] | undefined;
  fieldModule?: FieldModule | undefined;
  createdFrom?: TimeBound | undefined;
  createdTo?: TimeBound | undefined;
  limit: number;
  cursor?: LabFieldsCursor | undefined;
  /** Rows assigned to this user (work queue). */
  assigneeUserId?: number | undefined;
  /** Open rows past their due time only (work queue). */
  overdue?: boolean | undefined;
}

export const labFieldsFilterParts = {
  timeBound,
  cursor: cursorSchema,
  fieldModule: z.enum(MODULES),
};

/** Rejects `created_from` after `created_to` (compared as the bounds they stand for), naming `names.to`. */
export function checkCreatedRange(
  from: TimeBound | undefined,
  to: TimeBound | undefined,
  ctx: z.RefinementCtx,
  names: { from: string; to: string },
): void {
  if (from && to && from.first > to.last) {
    ctx.addIssue({ code: 'custom', path: [names.to], message: `must not be before ${names.from}` });
  }
}

/** Only open rows can be overdue: `overdue=true` with resolved rows is a contradiction worth naming. */
export function checkOverdueOnOpen(
  input: { isResolved: boolean; overdue?: boolean | undefined },
  ctx: z.RefinementCtx,
  name: string,
): void {
  if (input.isResolved && input.overdue) {
    ctx.addIssue({
      code: 'custom',
      path: [name],
      message: 'only open rows can be overdue: drop it or list open rows',
    });
  }
}

const distinctFieldIds = (ids: number | number[]) => [...new Set(Array.isArray(ids) ? ids : [ids])];

export const listLabFieldsInput = z
  .object({
    isResolved: z.boolean().default(false),
    userDetailsId: rowId.optional(),
    billId: rowId.optional(),
    fieldId: z
      .union([rowId, z.array(rowId).min(1).max(FIELD_ID_FILTER_MAX)])
      .transform(distinctFieldIds)
      .optional(),
    fieldModule: labFieldsFilterParts.fieldModule.optional(),
    createdFrom: timeBound.optional(),
    createdTo: timeBound.optional(),
    limit: z.int().min(1).max(LAB_FIELDS_MAX_LIMIT).default(LAB_FIELDS_DEFAULT_LIMIT),
    cursor: cursorSchema.optional(),
    assigneeUserId: rowId.optional(),
    overdue: z.boolean().optional(),
  })
  .strict()
  .superRefine((input, ctx) => {
    checkCreatedRange(input.createdFrom, input.createdTo, ctx, { from: 'createdFrom', to: 'createdTo' });
    checkOverdueOnOpen(input, ctx, 'overdue');
  })
  .transform(({ fieldId, ...rest }): LabFieldsFilters => ({ ...rest, fieldIds: fieldId }))
  .prefault({});
export type ListLabFieldsInput = z.input<typeof listLabFieldsInput>;

/** 1..5000 distinct positive ids: a repeated id is a client bug worth naming. */
export const resolveIds = z
  .array(rowId)
  .min(1)
  .max(RESOLVE_MAX_IDS)
  .superRefine(namingRepeatedIds((id) => `duplicate id ${id}`));

/**
 * A refinement that names every repeat of an id in a list, at its index. A list without repeats
 * costs one sort of a typed copy: for 5,000 ids a third of what a Set costs (which was half of a bulk
 * resolve's validation); the Set only runs to name the repeats of a list that has some.
 */
export function namingRepeatedIds(message: (id: number) => string) {
  return (ids: readonly number[], ctx: z.RefinementCtx): void => {
    if (allDistinct(ids)) return;
    const seen = new Set<number>();
    ids.forEach((id, index) => {
      if (seen.has(id)) ctx.addIssue({ code: 'custom', path: [index], message: message(id) });
      seen.add(id);
    });
  };
}

function allDistinct(ids: readonly number[]): boolean {
  const sorted = Float64Array.from(ids).sort();
  for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) return false;
  return true;
}

export const resolveLabFieldsInput = z
  .object({
    ids: resolveIds,
    isResolved: z.boolean(),
    reasonCode: reasonCodeSchema.nullish(),
    reasonNote: reasonNoteSchema.nullish(),
  })
  .strict()
  .superRefine((input, ctx) =>
    checkReasonOnlyWhenResolving(input, ctx, {
      code: 'reasonCode',
      note: 'reasonNote',
      isResolved: 'isResolved',
    }),
  );
export type ResolveLabFieldsInput = z.infer<typeof resolveLabFieldsInput>;

// ---------------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------------

export interface LabFieldView {
  id: number;
  userDetailsId: number;
  billId: number | null;
  orgId: number | null;
  fieldId: number;
  fieldName: string;
  fieldValue: string;
  fieldModule: string;
  isResolved: boolean;
  /** ISO 8601 UTC with microseconds. */
  createdAt: string;
  resolvedAt: string | null;
  resolvedByDoctorId: number | null;
  resolvedByLabUserId: number | null;
  /**
   * On resolved listings only (every item, null when none): the data-absent reason and note of a manual
   * resolution. Open listings keep the legacy item exactly.
   */
  reasonCode?: ReasonCode | null;
  reasonNote?: string | null;
  /** How the row was detected: a placeholder, or junk (junk detection on). */
  detectedAs: 'placeholder' | 'junk';
  assigneeUserId: number | null;
  /** ISO 8601 UTC with microseconds; null when the config had no due time. */
  dueAt: string | null;
  /** Open and past its due time. */
  isOverdue: boolean;
}

export interface LabFieldsPage {
  results: LabFieldView[];
  /** Null on the last page. */
  nextCursor: string | null;
}

function toView(row: LabFieldRow, now: DbTimestamp): LabFieldView {
  return {
    id: Number(row.id),
    userDetailsId: row.user_details_id,
    billId: row.bill_id,
    orgId: row.org_id,
    fieldId: row.field_id,
    fieldName: row.field_name,
    fieldValue: row.field_value,
    fieldModule: row.field_module,
    isResolved: Boolean(row.is_resolved),
    createdAt: isoFromDbTimestamp(row.created_at_text),
    resolvedAt: row.resolved_at_text === null ? null : isoFromDbTimestamp(row.resolved_at_text),
    resolvedByDoctorId: row.resolved_by_doctor_id,
    resolvedByLabUserId: row.resolved_by_lab_user_id,
    detectedAs: row.detected_as === 'junk' ? 'junk' : 'placeholder',
    assigneeUserId: row.assignee_user_id,
    dueAt: row.due_at_text === null ? null : isoFromDbTimestamp(row.due_at_text),
    isOverdue: !row.is_resolved && row.due_at_text !== null && row.due_at_text < now,
  };
}

/** One page of the caller's runtime rows (their lab, and their organization when they have one). */
export async function listLabFields(
  em: SqlReader,
  principal: Principal,
  filters: LabFieldsFilters,
  clock = new Date(),
): Promise<LabFieldsPage> {
  const now = dbTimestampOf(clock);
  const rows = await readLabFieldsPage(sqlSession(em), principal, filters, now);
  const page = rows.slice(0, filters.limit);
  const last = page.at(-1);
  const nextCursor =
    rows.length > filters.limit && last
      ? encodeCursor({ createdAt: last.created_at_text, id: Number(last.id) })
      : null;
  if (!filters.isResolved) return { results: page.map((row) => toView(row, now)), nextCursor };
  const reasons = await reasonsOf(
    em,
    principal.labId,
    page.flatMap((row) =>
      row.resolved_at_text === null
        ? []
        : [
            {
              id: Number(row.id),
              resolvedAt: row.resolved_at_text,
              resolvedByLabUserId: row.resolved_by_lab_user_id,
              resolvedByDoctorId: row.resolved_by_doctor_id,
            },
          ],
    ),
  );
  const results = page.map((row) => {
    const reason = reasons.get(Number(row.id));
    // Completed in place rather than copied: a page is up to 200 rows.
    const view = toView(row, now);
    view.reasonCode = reason?.reasonCode ?? null;
    view.reasonNote = reason?.reasonNote ?? null;
    return view;
  });
  return { results, nextCursor };
}

// ---------------------------------------------------------------------------------------------------
// Manual resolution
// ---------------------------------------------------------------------------------------------------

/** The engine keeps at most one unresolved row per (lab, patient, bill, field). */
const openSlotKey = (row: Pick<ScopedRow, 'user_details_id' | 'bill_id' | 'field_id'>) =>
  `${row.user_details_id}:${row.bill_id ?? 0}:${row.field_id}`;

const ascending = (a: number, b: number) => a - b;

/**
 * Which resolved rows may be reopened without a second unresolved row for the same (patient, bill, field):
 * none where one is already open (the field is flagged already), and of several resolved rows of one
 * field only the newest.
 */
async function reopenableIds(tx: Em, labId: number, resolved: ScopedRow[]): Promise<Set<number>> {
  if (resolved.length === 0) return new Set();
  const patients = [...new Set(resolved.map((r) => r.user_details_id))].sort(ascending);
  const fields = [...new Set(resolved.map((r) => r.field_id))];
  const open: ScopedRow[] = [];
  for (const slice of slicesOf(patients)) {
    open.push(...(await lockOpenRowsOfPatients(sqlSession(tx), labId, slice, fields)));
  }
  const taken = new Set(open.map(openSlotKey));
  const reopen = new Set<number>();
  for (const row of [...resolved].sort((a, b) => Number(b.id) - Number(a.id))) {
    const key = openSlotKey(row);
    if (taken.has(key)) continue;
    taken.add(key);
    reopen.add(Number(row.id));
  }
  return reopen;
}

interface ResolutionOutcome {
  updatedIds: number[];
  updatedCount: number;
  skippedIds: number[];
}

/**
 * Resolving, in slices of ids taken in ascending order (see ID_SLICE): rows are locked in id order, so two
 * bulk resolves never deadlock on each other. Then the call's one manual-resolution record, after every
 * row is locked, as on every other path.
 */
async function resolveRows(
  tx: Em,
  principal: Principal,
  input: ResolveLabFieldsInput,
  resolvedAt: DbTimestamp,
): Promise<ResolutionOutcome> {
  const sql = sqlSession(tx);
  const updatedIds: number[] = [];
  for (const slice of slicesOf([...input.ids].sort(ascending))) {
    const matched = await stampResolved(sql, principal, slice, resolvedAt);
    // Usually every id is in scope, and the slice is the list of updated ids. Otherwise the matched ones are
    // read back: exactly those, since under REPEATABLE READ the UPDATE keeps its locks on every row it
    // looked up, in scope or not, so none can have entered or left the scope since.
    const inScope =
      matched === slice.length ? slice : (await lockIdsInScope(sql, principal, slice)).sort(ascending);
    updatedIds.push(...inScope);
  }
  // The service's own record of who resolved by hand (and why), matching every row just stamped; a resolved
  // row that no record matches was resolved by the engine (or legacy). Only when some row went through.
  if (updatedIds.length > 0) {
    await recordManualResolution(
      tx,
      principal,
      { reasonCode: input.reasonCode ?? undefined, reasonNote: input.reasonNote ?? undefined },
      resolvedAt,
    );
  }
  return { updatedIds, updatedCount: updatedIds.length, skippedIds: [] };
}

/** Unresolving: the rows are read and locked first, since which of them may reopen depends on them. */
async function unresolveRows(
  tx: Em,
  principal: Principal,
  input: ResolveLabFieldsInput,
  now: DbTimestamp,
): Promise<ResolutionOutcome> {
  const sql = sqlSession(tx);
  const found: ScopedRow[] = [];
  for (const slice of slicesOf([...input.ids].sort(ascending))) {
    found.push(...(await lockRowsInScope(sql, principal, slice)));
  }
  found.sort((a, b) => Number(a.id) - Number(b.id));
  const resolved = found.filter((row) => row.is_resolved);
  const reopen = await reopenableIds(tx, principal.labId, resolved);
  const skippedIds = resolved.map((row) => Number(row.id)).filter((id) => !reopen.has(id));
  const skipped = new Set(skippedIds);
  const updatedIds = found.map((row) => Number(row.id)).filter((id) => !skipped.has(id));
  let updatedCount = 0;
  // The ids were read in scope and row-locked just above.
  for (const slice of slicesOf(updatedIds)) {
    updatedCount += await reopenRows(sql, principal.labId, slice, now);
  }
  // The rows' records need no change: an open row matches none (no resolved_at), and a later resolution
  // of the row gets a new stamp.
  return { updatedIds, updatedCount, skippedIds };
}

/**
 * Marks the caller's rows resolved or unresolved, as the old system did: every id found in the caller's
 * scope counts, an already resolved row is stamped again. Ids outside the scope are ignored silently.
 * Unresolving skips (and does not count) a row whose field is already open for that patient and bill,
 * since reopening it would flag the same missing field twice. All in one transaction, with one
 * ActivityLog row. `now` is an injected clock (tests); by default the stamp is the current microsecond.
 */
export async function resolveLabFields(
  em: Em,
  principal: Principal,
  input: ResolveLabFieldsInput,
  now?: Date,
): Promise<{ updatedCount: number }> {
  const direction = input.isResolved ? 'resolve' : 'unresolve';
  const stamp = manualResolutionStamp(now);
  try {
    const outcome = await withDeadlockRetry(() =>
      em.transactional(async (tx) => {
        const result = input.isResolved
          ? await resolveRows(tx, principal, input, stamp.resolvedAt)
          : await unresolveRows(tx, principal, input, stamp.resolvedAt);
        await writeActivity(
          tx,
          {
            labId: principal.labId,
            orgId: principal.orgId,
            actor: principal,
            action: input.isResolved ? 'lab_fields_resolved' : 'lab_fields_unresolved',
            objectType: 'LabMissingDetails',
            objectId: result.updatedIds.length === 1 ? result.updatedIds[0] : null,
            message:
              `Marked ${result.updatedCount} missing-detail row(s) ${input.isResolved ? 'resolved' : 'unresolved'}` +
              (input.reasonCode ? ` (${input.reasonCode})` : '') +
              (result.skippedIds.length
                ? `; ${result.skippedIds.length} left resolved because the field is open again`
                : ''),
            details: {
              is_resolved: input.isResolved,
              updated_count: result.updatedCount,
              updated_ids: result.updatedIds,
              requested_count: input.ids.length,
              ...(input.reasonCode ? { reason_code: input.reasonCode } : {}),
              ...(input.reasonNote ? { reason_note: input.reasonNote } : {}),
              ...(result.skippedIds.length ? { skipped_open_field_ids: result.skippedIds } : {}),
            },
          },
          stamp.at,
        );
        return result;
      }),
    );
    resolutionRows.inc({ direction, outcome: 'updated' }, outcome.updatedCount);
    if (outcome.skippedIds.length) {
      resolutionRows.inc({ direction, outcome: 'skipped_open_field' }, outcome.skippedIds.length);
    }
    return { updatedCount: outcome.updatedCount };
  } catch (error) {
    // A deadlock past the retries, or a duplicate open row: only reachable when a capture opened the
    // same field between the check and the update despite the locks (READ COMMITTED takes no gap locks).
    if (error instanceof UniqueConstraintViolationException || error instanceof DeadlockException) {
      throw new ConflictError('These rows were changed at the same moment by another request; retry');
    }
    throw error;
  }
}
