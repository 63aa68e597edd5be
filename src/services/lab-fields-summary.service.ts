import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Em } from '../db/database.js';
import { dbTimestampOf, isoMicros } from '../db/microsecond-timestamp.type.js';
import { sqlSession } from '../db/sql-session.js';
import {
  type OpenRow,
  readOpenByField,
  readResolvedWindow,
  readTrackingStart,
  type WindowRow,
} from '../repositories/summary.repository.js';
import { type AssigneeCountRow, openByAssignee } from '../repositories/work-queue.repository.js';
import {
  checkCreatedRange,
  type DbTimestamp,
  isoFromDbTimestamp,
  labFieldsFilterParts,
  type TimeBound,
} from './lab-fields.service.js';
import type { ReasonCode } from './resolution-reasons.service.js';

const DAY_MS = 24 * 3600_000;
export const SUMMARY_DEFAULT_WINDOW_DAYS = 30;
/** A year and a day: a longer window is a report, not a work-queue summary. */
export const SUMMARY_MAX_WINDOW_DAYS = 366;

export interface SummaryWindow {
  resolvedFrom?: TimeBound | undefined;
  resolvedTo?: TimeBound | undefined;
}

const epochMs = (stamp: DbTimestamp) => Date.parse(`${stamp.replace(' ', 'T')}Z`);

/**
 * Rejects a window longer than the maximum (naming `names.to`, or `names.from` when the end is the
 * default, now), and a start after now when no end is given; call after checkCreatedRange.
 */
export function checkWindowLength(
  window: SummaryWindow,
  ctx: z.RefinementCtx,
  names: { from: string; to: string },
  now = Date.now(),
): void {
  if (!window.resolvedFrom) return;
  const from = epochMs(window.resolvedFrom.first);
  const to = window.resolvedTo ? epochMs(window.resolvedTo.last) : now;
  const blame = window.resolvedTo ? names.to : names.from;
  if (!window.resolvedTo && from > now) {
    ctx.addIssue({
      code: 'custom',
      path: [names.from],
      message: `must not be in the future without ${names.to}`,
    });
  } else if (to - from > SUMMARY_MAX_WINDOW_DAYS * DAY_MS) {
    ctx.addIssue({
      code: 'custom',
      path: [blame],
      message: `the window from ${names.from} to ${window.resolvedTo ? names.to : 'now'} may span at most ${SUMMARY_MAX_WINDOW_DAYS} days`,
    });
  }
}

export const labFieldsSummaryInput = z
  .object({
    resolvedFrom: labFieldsFilterParts.timeBound.optional(),
    resolvedTo: labFieldsFilterParts.timeBound.optional(),
  })
  .strict()
  .superRefine((input, ctx) => {
    const names = { from: 'resolvedFrom', to: 'resolvedTo' };
    checkCreatedRange(input.resolvedFrom, input.resolvedTo, ctx, names);
    checkWindowLength(input, ctx, names);
  })
  .prefault({});

export interface Aging {
  /** Opened less than a day ago. */
  underOneDay: number;
  oneToSevenDays: number;
  /** Open for more than seven days. */
  overSevenDays: number;
}

export interface OpenByField {
  fieldId: number;
  fieldName: string;
  displayName: string;
  module: string;
  total: number;
  aging: Aging;
}

export interface LabFieldsSummary {
  /** ISO 8601 UTC: the instant the ages are measured from. */
  generatedAt: string;
  open: {
    total: number;
    aging: Aging;
    byModule: Array<{ module: string; total: number; aging: Aging }>;
    byField: OpenByField[];
    /** Open rows past their due time (configs with due_in_hours). */
    overdue: number;
    /** Open rows by assignee (null: unassigned), with how many of them are overdue. */
    byAssignee: Array<{ assigneeUserId: number | null; total: number; overdue: number }>;
  };
  resolved: {
    /** The window on `resolved_at`, inclusive, ISO 8601 UTC. */
    from: string;
    to: string;
    total: number;
    /** Resolved through the list's resolve (REST PATCH, labFields.resolve). */
    byHand: number;
    /** Resolved by the runtime engine when a real value arrived. */
    automatic: number;
    /** Resolved before the service recorded manual resolutions (`trackedSince`): cannot be told apart. */
    untracked: number;
    /** Shares of byHand and automatic among the resolutions that can be told apart; null when none. */
    byHandShare: number | null;
    automaticShare: number | null;
    /** Nearest-rank percentiles of resolved_at - created_at over the window; null when nothing resolved. */
    timeToResolveSeconds: { median: number | null; p90: number | null };
    /** Manual resolutions in the window by data-absent reason (null: resolved by hand without a reason). */
    byReason: Array<{ reasonCode: ReasonCode | null; count: number }>;
    /** When the service started recording manual resolutions (ISO 8601 UTC), null if never. */
    trackedSince: string | null;
  };
}

const emptyAging = (): Aging => ({ underOneDay: 0, oneToSevenDays: 0, overSevenDays: 0 });
const addAging = (into: Aging, more: Aging) => {
  into.underOneDay += more.underOneDay;
  into.oneToSevenDays += more.oneToSevenDays;
  into.overSevenDays += more.overSevenDays;
};
const share = (part: number, whole: number) =>
  whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000;
const seconds = (micros: number | string | null | undefined) =>
  micros === null || micros === undefined ? null : Math.round(Number(micros) / 1_000) / 1_000;

const trackedSinceMemo = new WeakMap<object, Promise<DbTimestamp | null>>();

/** The tracking start never changes once written: read once per process and database. */
function trackedSince(em: Em): Promise<DbTimestamp | null> {
  const driver = em.getDriver();
  let since = trackedSinceMemo.get(driver);
  if (!since) {
    since = readTrackingStart(sqlSession(em));
    trackedSinceMemo.set(driver, since);
    since.catch(() => trackedSinceMemo.delete(driver));
  }
  return since;
}

/** The open part of the summary: rows per field, module and in all, with their age; by assignee. */
function openSummary(
  openRows: readonly OpenRow[],
  assigneeRows: readonly AssigneeCountRow[],
): LabFieldsSummary['open'] {
  const byAssignee = assigneeRows.map((row) => ({
    assigneeUserId: row.assignee_user_id,
    total: Number(row.total),
    overdue: Number(row.overdue),
  }));
  const byField: OpenByField[] = openRows.map((row) => ({
    fieldId: row.field_id,
    fieldName: row.field_name,
    displayName: row.display_name,
    module: row.module,
    total: Number(row.total),
    aging: {
      underOneDay: Number(row.under_one_day),
      oneToSevenDays: Number(row.one_to_seven_days),
      overSevenDays: Number(row.over_seven_days),
    },
  }));
  const totalAging = emptyAging();
  const modules = new Map<string, { module: string; total: number; aging: Aging }>();
  for (const field of byField) {
    addAging(totalAging, field.aging);
    const entry = modules.get(field.module) ?? { module: field.module, total: 0, aging: emptyAging() };
    entry.total += field.total;
    addAging(entry.aging, field.aging);
    modules.set(field.module, entry);
  }
  return {
    total: byField.reduce((sum, field) => sum + field.total, 0),
    aging: totalAging,
    byModule: [...modules.values()],
    byField,
    overdue: byAssignee.reduce((sum, row) => sum + row.overdue, 0),
    byAssignee,
  };
}

/** Manual resolutions by reason: most frequent first; on a tie, named reasons before "no reason", then alphabetically. */
function byReasonOf(windowRows: readonly WindowRow[]): LabFieldsSummary['resolved']['byReason'] {
  return windowRows
    .filter((row) => row.part === 'r')
    .map((row) => ({ reasonCode: row.reason_code, count: Number(row.n) }))
    .sort(
      (a, b) =>
        b.count - a.count ||
        Number(a.reasonCode === null) - Number(b.reasonCode === null) ||
        String(a.reasonCode).localeCompare(String(b.reasonCode)),
    );
}

/** The resolved part of the summary, from the window's two-part read. */
function resolvedSummary(
  windowRows: readonly WindowRow[],
  window: { from: DbTimestamp; to: DbTimestamp },
  tracked: DbTimestamp | null,
): LabFieldsSummary['resolved'] {
  const durations = windowRows.filter((row) => row.part === 'd');
  const first = durations.find((row) => Number(row.rn) === 1);
  const total = first ? Number(first.n) : 0;
  const untracked = first ? Number(first.untracked ?? 0) : 0;
  const atRank = (rank: number) => durations.find((row) => Number(row.rn) === rank)?.micros;
  const byReason = byReasonOf(windowRows);
  const manual = Math.min(
    byReason.reduce((sum, row) => sum + row.count, 0),
    total - untracked,
  );
  const automatic = total - untracked - manual;
  return {
    from: isoFromDbTimestamp(window.from),
    to: isoFromDbTimestamp(window.to),
    total,
    byHand: manual,
    automatic,
    untracked,
    byHandShare: share(manual, manual + automatic),
    automaticShare: share(automatic, manual + automatic),
    timeToResolveSeconds: {
      median: total ? seconds(atRank(Math.ceil(total * 0.5))) : null,
      p90: total ? seconds(atRank(Math.ceil(total * 0.9))) : null,
    },
    byReason,
    trackedSince: tracked === null ? null : isoFromDbTimestamp(tracked),
  };
}

/**
 * The caller's work-queue summary (their lab, their organization when they have one): open rows by
 * field and module with their age, and the window's resolutions — how fast, by hand or automatically,
 * and why; open and overdue rows by assignee. Three statements run together, each index-served
 * (test/rest/summary.test.ts holds the first two to that; the third reads only its index).
 */
export async function summarizeLabFields(
  em: Em,
  principal: Principal,
  window: SummaryWindow,
  now = new Date(),
): Promise<LabFieldsSummary> {
  const to = window.resolvedTo?.last ?? dbTimestampOf(now);
  const from =
    window.resolvedFrom?.first ?? dbTimestampOf(new Date(epochMs(to) - SUMMARY_DEFAULT_WINDOW_DAYS * DAY_MS));
  const tracked = await trackedSince(em);
  const sql = sqlSession(em);
  const [openRows, windowRows, assigneeRows] = await Promise.all([
    readOpenByField(sql, principal, now),
    readResolvedWindow(sql, principal, { from, to }, tracked),
    openByAssignee(em, principal, dbTimestampOf(now)),
  ]);
  return {
    generatedAt: isoMicros(dbTimestampOf(now)),
    open: openSummary(openRows, assigneeRows),
    resolved: resolvedSummary(windowRows, { from, to }, tracked),
  };
}
