import type { Principal } from '../auth/principal.js';
import { dbTimestampOf } from '../db/microsecond-timestamp.type.js';
import type { SqlSession } from '../db/sql-session.js';
import type { DbTimestamp } from '../services/lab-fields.service.js';
import type { ReasonCode } from '../services/resolution-reasons.service.js';
import type { SqlQuery } from './lab-fields.repository.js';

/** The work-queue summary's reads: LabMissingDetails, md_manual_resolutions, md_resolution_tracking. */

const DAY_MS = 24 * 3600_000;

/**
 * Open rows per field with their age, in one pass over the open rows of the lab: served by the
 * summary index (lab_id, is_resolved, resolved_at, field_id, created_at), which covers it; a principal
 * of one organization reads its own (smaller) slice through the org list index.
 */
export function openByFieldQuery(principal: Principal, now: Date): SqlQuery {
  const oneDayAgo = dbTimestampOf(new Date(now.getTime() - DAY_MS));
  const sevenDaysAgo = dbTimestampOf(new Date(now.getTime() - 7 * DAY_MS));
  const orgScope = principal.orgId === null ? '' : ' AND `org_id` = ?';
  return {
    sql: `SELECT g.field_id, t.\`name\` AS field_name, t.\`display_name\`, t.\`module\`,
  g.total, g.under_one_day, g.one_to_seven_days, g.over_seven_days
FROM (
  SELECT \`field_id\`, COUNT(*) AS total,
    SUM(\`created_at\` > ?) AS under_one_day,
    SUM(\`created_at\` <= ? AND \`created_at\` > ?) AS one_to_seven_days,
    SUM(\`created_at\` <= ?) AS over_seven_days
  FROM \`LabMissingDetails\`
  WHERE \`lab_id\` = ? AND \`is_resolved\` = 0${orgScope}
  GROUP BY \`field_id\`
) g
JOIN \`MissingDetailsTemplates\` t ON t.\`id\` = g.\`field_id\`
ORDER BY t.\`sort_order\`, t.\`id\``,
    params: [
      oneDayAgo,
      oneDayAgo,
      sevenDaysAgo,
      sevenDaysAgo,
      principal.labId,
      ...(principal.orgId === null ? [] : [principal.orgId]),
    ],
  };
}

/**
 * The window's resolutions in one statement of two parts. Part `d`: the durations, ranked in the
 * database (ROW_NUMBER over the index range of resolved_at), returning only ranks 1, ⌈n/2⌉ and ⌈0.9n⌉
 * with the window's count and how many predate the tracking; part `r`: manual resolutions by reason, the
 * rows of LabMissingDetails that a record of the window matches (one record per resolve call, read as a
 * range of its primary key (lab_id, resolved_at, …), each joined to its rows through the summary index
 * (lab_id, is_resolved, resolved_at)), so a row stamped again since, by any path, never counts; the
 * organization is the row's. The index is forced: for an org-scoped caller the optimizer may otherwise take
 * the org list index (lab_id, org_id, is_resolved, …), which reads every resolved row of the organization
 * for each record.
 */
export function resolvedWindowQuery(
  principal: Principal,
  from: DbTimestamp,
  to: DbTimestamp,
  trackedSince: DbTimestamp | null,
): SqlQuery {
  const org = principal.orgId === null ? [] : [principal.orgId];
  const durationOrg = principal.orgId === null ? '' : ' AND `org_id` = ?';
  const rowOrg = principal.orgId === null ? '' : ' AND d.`org_id` = ?';
  const duration = 'GREATEST(TIMESTAMPDIFF(MICROSECOND, `created_at`, `resolved_at`), 0)';
  return {
    sql: `SELECT 'd' AS part, x.rn, x.n, x.untracked, x.micros, NULL AS reason_code
FROM (
  SELECT ${duration} AS micros,
    ROW_NUMBER() OVER (ORDER BY ${duration}) AS rn,
    COUNT(*) OVER () AS n,
    SUM(\`resolved_at\` < ?) OVER () AS untracked
  FROM \`LabMissingDetails\`
  WHERE \`lab_id\` = ? AND \`is_resolved\` = 1 AND \`resolved_at\` >= ? AND \`resolved_at\` <= ?${durationOrg}
) x
WHERE x.rn = 1 OR x.rn = CEIL(x.n * 0.5) OR x.rn = CEIL(x.n * 0.9)
UNION ALL
SELECT 'r', NULL, COUNT(*), NULL, NULL, r.\`reason_code\`
FROM \`md_manual_resolutions\` r
STRAIGHT_JOIN \`LabMissingDetails\` d FORCE INDEX (\`LabMissingDetails_lab_resolved_at_field_idx\`) ON d.\`lab_id\` = r.\`lab_id\` AND d.\`is_resolved\` = 1
  AND d.\`resolved_at\` = r.\`resolved_at\`
  AND COALESCE(d.\`resolved_by_lab_user_id\`, 0) = r.\`resolved_by_lab_user_id\`
  AND COALESCE(d.\`resolved_by_doctor_id\`, 0) = r.\`resolved_by_doctor_id\`${rowOrg}
WHERE r.\`lab_id\` = ? AND r.\`resolved_at\` >= ? AND r.\`resolved_at\` <= ?
GROUP BY r.\`reason_code\``,
    params: [
      trackedSince ?? '9999-12-31 23:59:59.999999',
      principal.labId,
      from,
      to,
      ...org,
      ...org,
      principal.labId,
      from,
      to,
    ],
  };
}

export interface OpenRow {
  field_id: number;
  field_name: string;
  display_name: string;
  module: string;
  total: number | string;
  under_one_day: number | string;
  one_to_seven_days: number | string;
  over_seven_days: number | string;
}

export interface WindowRow {
  part: 'd' | 'r';
  rn: number | string | null;
  n: number | string;
  untracked: number | string | null;
  micros: number | string | null;
  reason_code: ReasonCode | null;
}

/** Open rows per field with their age (see `openByFieldQuery`). */
export function readOpenByField(sql: SqlSession, principal: Principal, now: Date): Promise<OpenRow[]> {
  const query = openByFieldQuery(principal, now);
  return sql.query<OpenRow>(query.sql, query.params);
}

/** The window's resolutions (see `resolvedWindowQuery`). */
export function readResolvedWindow(
  sql: SqlSession,
  principal: Principal,
  window: { from: DbTimestamp; to: DbTimestamp },
  trackedSince: DbTimestamp | null,
): Promise<WindowRow[]> {
  const query = resolvedWindowQuery(principal, window.from, window.to, trackedSince);
  return sql.query<WindowRow>(query.sql, query.params);
}

/** When the service started recording manual resolutions; null if never. */
export async function readTrackingStart(sql: SqlSession): Promise<DbTimestamp | null> {
  const [row] = await sql.query<{ started_at_text: DbTimestamp }>(
    "SELECT DATE_FORMAT(`started_at`, '%Y-%m-%d %H:%i:%s.%f') AS started_at_text FROM `md_resolution_tracking` WHERE `id` = 1",
    [],
  );
  return row?.started_at_text ?? null;
}
