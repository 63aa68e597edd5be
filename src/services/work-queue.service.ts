import { z } from 'zod';
import { requirePermission } from '../auth/permissions.js';
import type { Principal } from '../auth/principal.js';
import type { Em, SqlReader } from '../db/database.js';
import { withDeadlockRetry } from '../db/deadlock-retry.js';
import { type DbTimestamp, isoMicros } from '../db/microsecond-timestamp.type.js';
import {
  assignRows,
  openFieldsOf,
  type PatientCursor,
  type PatientSort,
  patientGroupsPage,
} from '../repositories/work-queue.repository.js';
import { writeActivity } from './activity-log.service.js';
import { resolveIds, rowId } from './lab-fields.service.js';

const MAX_USER_ID = 2_147_483_647;

export const assignLabFieldsInput = z
  .object({ ids: resolveIds, assigneeUserId: rowId.max(MAX_USER_ID).nullable() })
  .strict();
export type AssignLabFieldsInput = z.infer<typeof assignLabFieldsInput>;

/**
 * Gives the caller's rows among `ids` to a user of the lab, or takes them back (null). Lab-wide staff
 * only; scoped like resolve (ids outside the caller's scope are ignored and not counted); one
 * ActivityLog row, in the same transaction.
 */
export async function assignLabFields(
  em: Em,
  principal: Principal,
  input: AssignLabFieldsInput,
  now = new Date(),
): Promise<{ updatedCount: number }> {
  requirePermission(principal, 'assign');
  const updatedCount = await withDeadlockRetry(() =>
    em.transactional(async (tx) => {
      const matched = await assignRows(tx, principal, input.ids, input.assigneeUserId, now);
      await writeActivity(
        tx,
        {
          labId: principal.labId,
          orgId: principal.orgId,
          actor: principal,
          action: input.assigneeUserId === null ? 'lab_fields_unassigned' : 'lab_fields_assigned',
          objectType: 'LabMissingDetails',
          message:
            input.assigneeUserId === null
              ? `Unassigned ${matched} missing-detail row(s)`
              : `Assigned ${matched} missing-detail row(s) to user ${input.assigneeUserId}`,
          details: {
            assignee_user_id: input.assigneeUserId,
            updated_count: matched,
            requested_count: input.ids.length,
          },
        },
        now,
      );
      return matched;
    }),
  );
  return { updatedCount };
}

// ---------------------------------------------------------------------------------------------------
// The worklist by patient
// ---------------------------------------------------------------------------------------------------

export const PATIENTS_DEFAULT_LIMIT = 50;
export const PATIENTS_MAX_LIMIT = 200;
export const PATIENT_SORTS = ['oldest', 'most'] as const;

const CURSOR_TEXT =
  /^p1\|(oldest|most)\|(\d{1,10})\|(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6})\|([1-9]\d{0,9})\|(\d{1,10})$/;

function encodePatientCursor(cursor: PatientCursor): string {
  const text = `p1|${cursor.sort}|${cursor.openCount}|${cursor.oldest}|${cursor.userDetailsId}|${cursor.orgId}`;
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** The cursor a previous page handed out, or null when the text was not one. */
export function decodePatientCursor(raw: string): PatientCursor | null {
  if (raw.length > 200 || !/^[A-Za-z0-9_-]+$/.test(raw)) return null;
  const bytes = Buffer.from(raw, 'base64url');
  if (bytes.toString('base64url') !== raw) return null;
  const match = CURSOR_TEXT.exec(bytes.toString('utf8'));
  if (!match) return null;
  const [, sort, openCount, oldest, userDetailsId, orgId] = match as unknown as string[];
  if (Number.isNaN(Date.parse(`${oldest!.replace(' ', 'T')}Z`))) return null;
  return {
    sort: sort as PatientSort,
    openCount: Number(openCount),
    oldest: oldest!,
    userDetailsId: Number(userDetailsId),
    orgId: Number(orgId),
  };
}

const patientCursor = z.string().transform((raw, ctx): PatientCursor => {
  const cursor = decodePatientCursor(raw);
  if (cursor) return cursor;
  ctx.addIssue({
    code: 'custom',
    message: 'is not a valid cursor: pass next_cursor of the previous page unchanged',
  });
  return z.NEVER;
});

export const patientWorklistParts = { sort: z.enum(PATIENT_SORTS), cursor: patientCursor };

export const patientWorklistInput = z
  .object({
    sort: patientWorklistParts.sort.default('oldest'),
    limit: z.int().min(1).max(PATIENTS_MAX_LIMIT).default(PATIENTS_DEFAULT_LIMIT),
    cursor: patientCursor.optional(),
  })
  .strict()
  .superRefine((input, ctx) => checkCursorSort(input, ctx))
  .prefault({});
export type PatientWorklistInput = z.output<typeof patientWorklistInput>;

/** A cursor belongs to the sort that made it. */
export function checkCursorSort(
  input: { sort: PatientSort; cursor?: PatientCursor | undefined },
  ctx: z.RefinementCtx,
) {
  if (input.cursor && input.cursor.sort !== input.sort) {
    ctx.addIssue({ code: 'custom', path: ['cursor'], message: `was made for sort=${input.cursor.sort}` });
  }
}

export interface PatientWorkItem {
  userDetailsId: number;
  orgId: number | null;
  openCount: number;
  /** ISO 8601 UTC with microseconds. */
  oldestCreatedAt: string;
  fields: Array<{ fieldId: number; fieldName: string; displayName: string; createdAt: string }>;
}

const groupKey = (userDetailsId: number, orgId: number | null) => `${userDetailsId}:${orgId ?? 0}`;

/**
 * The caller's open rows grouped by patient: the oldest waiting first (or the most open fields
 * first), keyset-paged. Two statements: the page of groups, then their open fields.
 */
export async function listPatientWorklist(
  em: SqlReader,
  principal: Principal,
  input: PatientWorklistInput,
): Promise<{ results: PatientWorkItem[]; nextCursor: string | null }> {
  const groups = await patientGroupsPage(em, principal, input.sort, input.limit, input.cursor);
  const page = groups.slice(0, input.limit);
  const fields = await openFieldsOf(em, principal, [...new Set(page.map((g) => g.user_details_id))]);
  const items = new Map<string, PatientWorkItem>();
  for (const group of page) {
    items.set(groupKey(group.user_details_id, group.org_id), {
      userDetailsId: group.user_details_id,
      orgId: group.org_id,
      openCount: Number(group.open_count),
      oldestCreatedAt: isoMicros(group.oldest_text),
      fields: [],
    });
  }
  for (const field of fields) {
    items.get(groupKey(field.user_details_id, field.org_id))?.fields.push({
      fieldId: field.field_id,
      fieldName: field.field_name,
      displayName: field.display_name,
      createdAt: isoMicros(field.created_text),
    });
  }
  const last = page.at(-1);
  const nextCursor =
    groups.length > input.limit && last
      ? encodePatientCursor({
          sort: input.sort,
          openCount: Number(last.open_count),
          oldest: last.oldest_text as DbTimestamp,
          userDetailsId: last.user_details_id,
          orgId: last.org_id ?? 0,
        })
      : null;
  return { results: [...items.values()], nextCursor };
}
