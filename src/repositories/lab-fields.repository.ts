import type { Principal } from '../auth/principal.js';
import { dbTimestampOf } from '../db/microsecond-timestamp.type.js';
import type { SqlSession } from '../db/sql-session.js';
import type { DbTimestamp, LabFieldsFilters } from '../services/lab-fields.service.js';

/**
 * LabMissingDetails as the list page and manual (un)resolution read and write it. Capture's
 * statements on the same table are in capture.repository.ts, the flags' in flags.repository.ts.
 */

/** One row of a list page, timestamps as the database prints them (microseconds kept). */
export interface LabFieldRow {
  id: number | string;
  user_details_id: number;
  bill_id: number | null;
  org_id: number | null;
  field_id: number;
  field_name: string;
  field_value: string;
  field_module: string;
  is_resolved: number;
  created_at_text: DbTimestamp;
  resolved_at_text: DbTimestamp | null;
  resolved_by_doctor_id: number | null;
  resolved_by_lab_user_id: number | null;
  detected_as: string | null;
  assignee_user_id: number | null;
  due_at_text: DbTimestamp | null;
}

export interface SqlQuery {
  sql: string;
  params: unknown[];
}

/**
 * The one SELECT behind a page: newest first by (created_at, id), keyset-paged, one row more than asked
 * to know whether another page follows. Served by the list indexes of migration
 * 20260102000100-lab-fields-list-index (test/db/lab-fields-explain.test.ts holds it to that).
 */
export function labFieldsPageQuery(
  principal: Principal,
  filters: LabFieldsFilters,
  now: DbTimestamp = dbTimestampOf(new Date()),
): SqlQuery {
  const where = ['lab_id = ?', 'is_resolved = ?'];
  const params: unknown[] = [principal.labId, filters.isResolved ? 1 : 0];
  const add = (clause: string, ...values: unknown[]) => {
    where.push(clause);
    params.push(...values);
  };
  if (principal.orgId !== null) add('org_id = ?', principal.orgId);
  if (filters.userDetailsId !== undefined) add('user_details_id = ?', filters.userDetailsId);
  if (filters.billId !== undefined) add('bill_id = ?', filters.billId);
  if (filters.fieldIds?.length) {
    add(`field_id IN (${filters.fieldIds.map(() => '?').join(', ')})`, ...filters.fieldIds);
  }
  if (filters.fieldModule !== undefined) add('field_module = ?', filters.fieldModule);
  if (filters.createdFrom) add('created_at >= ?', filters.createdFrom.first);
  if (filters.createdTo) add('created_at <= ?', filters.createdTo.last);
  if (filters.assigneeUserId !== undefined) add('assignee_user_id = ?', filters.assigneeUserId);
  if (filters.overdue) add('due_at < ?', now);
  if (filters.cursor) {
    const { createdAt, id } = filters.cursor;
    add('(created_at < ? OR (created_at = ? AND id < ?))', createdAt, createdAt, id);
  }
  // The formatted timestamps must not be aliased `created_at`: ORDER BY would sort by the alias (a string
  // expression, so a filesort) instead of reading the index in order.
  const sql = `SELECT id, user_details_id, bill_id, org_id, field_id, field_name, field_value, field_module,
  is_resolved, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f') AS created_at_text,
  DATE_FORMAT(resolved_at, '%Y-%m-%d %H:%i:%s.%f') AS resolved_at_text,
  resolved_by_doctor_id, resolved_by_lab_user_id, detected_as, assignee_user_id,
  DATE_FORMAT(due_at, '%Y-%m-%d %H:%i:%s.%f') AS due_at_text
FROM LabMissingDetails
WHERE ${where.join('\n  AND ')}
ORDER BY created_at DESC, id DESC
LIMIT ?`;
  return { sql, params: [...params, filters.limit + 1] };
}

/** A page of rows and one more, when there is one (see `labFieldsPageQuery`). */
export function readLabFieldsPage(
  sql: SqlSession,
  principal: Principal,
  filters: LabFieldsFilters,
  now: DbTimestamp,
): Promise<LabFieldRow[]> {
  const query = labFieldsPageQuery(principal, filters, now);
  return sql.query<LabFieldRow>(query.sql, query.params);
}

/** A row as manual (un)resolution locks and judges it. */
export interface ScopedRow {
  id: number | string;
  user_details_id: number;
  bill_id: number | null;
  field_id: number;
  is_resolved: number;
}

/** The caller's scope on LabMissingDetails as `d`: their lab, and their organization when they have one. */
export function scopeOf(principal: Principal): { sql: string; values: number[] } {
  return principal.orgId === null
    ? { sql: 'd.lab_id = ?', values: [principal.labId] }
    : { sql: 'd.lab_id = ? AND d.org_id = ?', values: [principal.labId, principal.orgId] };
}

/**
 * Locks the lab's open rows of these patients' fields (one slice of patients, see ID_SLICE).
 * Lab-wide, not org-scoped: the one-open-row rule holds whoever can see the other row. FOR UPDATE
 * also holds back a capture that would open a row for these patients until the transaction ends.
 * Through the patient index: for a lab with few open rows the optimizer would rather read, and so
 * lock, every open row of the lab, which holds back captures of all its patients.
 */
export function lockOpenRowsOfPatients(
  sql: SqlSession,
  labId: number,
  patientIds: readonly number[],
  fieldIds: readonly number[],
): Promise<ScopedRow[]> {
  return sql.query<ScopedRow>(
    `SELECT id, user_details_id, bill_id, field_id, is_resolved
FROM LabMissingDetails FORCE INDEX (LabMissingDetails_lab_id_user_details_id_idx)
WHERE lab_id = ? AND is_resolved = 0 AND user_details_id IN (?) AND field_id IN (?)
FOR UPDATE`,
    [labId, patientIds, fieldIds],
  );
}

/** Who resolved, from the caller's role: [doctor id, lab user id], the other one null. */
function resolverOf(principal: Principal): [number | null, number | null] {
  return [
    principal.role === 'doctor' ? principal.userId : null,
    principal.role === 'lab_user' ? principal.userId : null,
  ];
}

/** Stamps the caller's rows among `ids` resolved; answers how many rows matched. */
export async function stampResolved(
  sql: SqlSession,
  principal: Principal,
  ids: readonly number[],
  resolvedAt: DbTimestamp,
): Promise<number> {
  const scope = scopeOf(principal);
  const result = await sql.execute(
    `UPDATE LabMissingDetails d SET d.is_resolved = 1, d.resolved_at = ?, d.resolved_by_doctor_id = ?, d.resolved_by_lab_user_id = ?, d.updated_at = ? WHERE ${scope.sql} AND d.id IN (?)`,
    [resolvedAt, ...resolverOf(principal), resolvedAt, ...scope.values, ids],
  );
  return result.affectedRows;
}

/** The ids among `ids` in the caller's scope, locked. */
export async function lockIdsInScope(
  sql: SqlSession,
  principal: Principal,
  ids: readonly number[],
): Promise<number[]> {
  const scope = scopeOf(principal);
  const rows = await sql.query<{ id: number | string }>(
    `SELECT d.id FROM LabMissingDetails d WHERE ${scope.sql} AND d.id IN (?) FOR UPDATE`,
    [...scope.values, ids],
  );
  return rows.map((row) => Number(row.id));
}

/** The caller's rows among `ids`, locked. */
export function lockRowsInScope(
  sql: SqlSession,
  principal: Principal,
  ids: readonly number[],
): Promise<ScopedRow[]> {
  const scope = scopeOf(principal);
  return sql.query<ScopedRow>(
    `SELECT d.id, d.user_details_id, d.bill_id, d.field_id, d.is_resolved FROM LabMissingDetails d
WHERE ${scope.sql} AND d.id IN (?)
FOR UPDATE`,
    [...scope.values, ids],
  );
}

/** Opens the lab's rows `ids` again (read in scope and locked by the caller); answers how many. */
export async function reopenRows(
  sql: SqlSession,
  labId: number,
  ids: readonly number[],
  now: DbTimestamp,
): Promise<number> {
  const result = await sql.execute(
    `UPDATE LabMissingDetails
SET is_resolved = 0, resolved_at = NULL, resolved_by_doctor_id = NULL, resolved_by_lab_user_id = NULL, updated_at = ?
WHERE lab_id = ? AND id IN (?)`,
    [now, labId, ids],
  );
  return result.affectedRows;
}

/** The scope's open rows, counted on the list index (lab_id, [org_id,] is_resolved, …) alone. */
export async function countOpenRows(sql: SqlSession, labId: number, orgId: number | null): Promise<number> {
  const [row] = await sql.query<{ n: number | string }>(
    `SELECT COUNT(*) AS n FROM \`LabMissingDetails\` WHERE \`lab_id\` = ?${orgId === null ? '' : ' AND `org_id` = ?'} AND \`is_resolved\` = 0`,
    orgId === null ? [labId] : [labId, orgId],
  );
  return Number(row?.n ?? 0);
}
