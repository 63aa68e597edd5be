import type { Principal } from '../auth/principal.js';
import type { DbTimestamp } from '../db/microsecond-timestamp.type.js';
import { type SessionSource, slicesOf, sqlSession } from '../db/sql-session.js';
import { scopeOf } from './lab-fields.repository.js';

const MICROS = "'%Y-%m-%d %H:%i:%s.%f'";

/**
 * Sets (or clears) the assignee of the caller's rows among `ids`, in id-ordered slices so that two
 * calls lock rows in the same order. Answers the ids found in scope (the driver counts matched rows).
 */
export async function assignRows(
  tx: SessionSource,
  principal: Principal,
  ids: readonly number[],
  assigneeUserId: number | null,
  now: Date,
): Promise<number> {
  const scope = scopeOf(principal);
  let matched = 0;
  for (const slice of slicesOf([...ids].sort((a, b) => a - b))) {
    const result = await sqlSession(tx).execute(
      `UPDATE LabMissingDetails d SET d.assignee_user_id = ?, d.updated_at = ? WHERE ${scope.sql} AND d.id IN (?)`,
      [assigneeUserId, now, ...scope.values, slice],
    );
    matched += result.affectedRows;
  }
  return matched;
}

export interface AssigneeCountRow {
  assignee_user_id: number | null;
  total: number | string;
  overdue: number | string;
}

/** Open rows by assignee, with how many of them are past their due time; from one index. */
export function openByAssignee(
  em: SessionSource,
  principal: Principal,
  now: DbTimestamp,
): Promise<AssigneeCountRow[]> {
  const scope = scopeOf(principal);
  return sqlSession(em).query<AssigneeCountRow>(
    `SELECT d.assignee_user_id, COUNT(*) AS total, COALESCE(SUM(d.due_at < ?), 0) AS overdue
FROM LabMissingDetails d FORCE INDEX (LabMissingDetails_lab_resolved_assignee_due_idx)
WHERE ${scope.sql} AND d.is_resolved = 0
GROUP BY d.assignee_user_id
ORDER BY d.assignee_user_id`,
    [now, ...scope.values],
  );
}

export type PatientSort = 'oldest' | 'most';

/** Where the previous page of the patient worklist ended. */
export interface PatientCursor {
  sort: PatientSort;
  openCount: number;
  oldest: DbTimestamp;
  userDetailsId: number;
  /** The group's org_id, 0 for none. */
  orgId: number;
}

export interface PatientGroupRow {
  user_details_id: number;
  org_id: number | null;
  open_count: number | string;
  oldest_text: DbTimestamp;
}

/**
 * One page of the caller's open rows grouped by patient (and organization), read from one index
 * (lab_id, is_resolved, user_details_id, org_id, created_at) without touching table rows; only the
 * groups are sorted. Keyset-paged on the sort key, then patient and organization.
 */
export function patientGroupsQuery(
  principal: Principal,
  sort: PatientSort,
  limit: number,
  cursor: PatientCursor | undefined,
): { sql: string; params: unknown[] } {
  const scope = scopeOf(principal);
  const params: unknown[] = [...scope.values];
  let having = '';
  if (cursor) {
    const after =
      'oldest > ? OR (oldest = ? AND (user_details_id > ? OR (user_details_id = ? AND org_key > ?)))';
    const afterParams = [
      cursor.oldest,
      cursor.oldest,
      cursor.userDetailsId,
      cursor.userDetailsId,
      cursor.orgId,
    ];
    if (sort === 'most') {
      having = `HAVING open_count < ? OR (open_count = ? AND (${after}))`;
      params.push(cursor.openCount, cursor.openCount, ...afterParams);
    } else {
      having = `HAVING ${after}`;
      params.push(...afterParams);
    }
  }
  const order =
    sort === 'most'
      ? 'open_count DESC, oldest, user_details_id, org_key'
      : 'oldest, user_details_id, org_key';
  return {
    sql: `SELECT user_details_id, org_id, open_count, DATE_FORMAT(oldest, ${MICROS}) AS oldest_text FROM (
  SELECT d.user_details_id, d.org_id, COALESCE(d.org_id, 0) AS org_key, COUNT(*) AS open_count, MIN(d.created_at) AS oldest
  FROM LabMissingDetails d FORCE INDEX (LabMissingDetails_lab_resolved_patient_org_idx)
  WHERE ${scope.sql} AND d.is_resolved = 0
  GROUP BY d.user_details_id, d.org_id
  ${having}
) g
ORDER BY ${order}
LIMIT ?`,
    params: [...params, limit + 1],
  };
}

export function patientGroupsPage(
  em: SessionSource,
  principal: Principal,
  sort: PatientSort,
  limit: number,
  cursor: PatientCursor | undefined,
): Promise<PatientGroupRow[]> {
  const { sql, params } = patientGroupsQuery(principal, sort, limit, cursor);
  return sqlSession(em).query<PatientGroupRow>(sql, params);
}

export interface PatientFieldRow {
  user_details_id: number;
  org_id: number | null;
  field_id: number;
  field_name: string;
  display_name: string;
  created_text: DbTimestamp;
}

/** The open fields of the page's patients, oldest first, with their templates' display names. */
export function openFieldsQuery(
  principal: Principal,
  userDetailsIds: readonly number[],
): { sql: string; params: unknown[] } {
  const scope = scopeOf(principal);
  return {
    sql: `SELECT d.user_details_id, d.org_id, d.field_id, d.field_name, t.display_name,
  DATE_FORMAT(d.created_at, ${MICROS}) AS created_text
FROM LabMissingDetails d FORCE INDEX (LabMissingDetails_lab_patient_resolved_created_idx)
JOIN MissingDetailsTemplates t ON t.id = d.field_id
WHERE ${scope.sql} AND d.is_resolved = 0 AND d.user_details_id IN (?)
ORDER BY d.created_at, d.id`,
    params: [...scope.values, userDetailsIds],
  };
}

export function openFieldsOf(
  em: SessionSource,
  principal: Principal,
  userDetailsIds: readonly number[],
): Promise<PatientFieldRow[]> {
  if (userDetailsIds.length === 0) return Promise.resolve([]);
  const { sql, params } = openFieldsQuery(principal, userDetailsIds);
  return sqlSession(em).query<PatientFieldRow>(sql, params);
}
