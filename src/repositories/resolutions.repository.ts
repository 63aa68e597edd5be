import type { SqlSession } from '../db/sql-session.js';
import type { DbTimestamp } from '../services/lab-fields.service.js';
import type { ReasonCode } from '../services/resolution-reasons.service.js';

/**
 * `md_manual_resolutions`: one record per manual resolution call (lab, stamp, resolver), with its
 * data-absent reason (migration 20260105000000-manual-resolutions).
 */

export interface ManualResolutionRecord {
  labId: number;
  resolvedAt: DbTimestamp;
  /** The resolver's id in the column of its role, 0 in the other. */
  labUserId: number;
  doctorId: number;
  reasonCode: ReasonCode | null;
  reasonNote: string | null;
}

/**
 * Writes the record; a second call of the same resolver in the same lab with the same stamp replaces
 * the reason. The update repeats the parameters rather than `VALUES(col)`, which MySQL deprecated
 * (8.0.20) and whose replacement (`AS new`) MariaDB lacks: this form runs on both.
 */
export async function upsertManualResolution(sql: SqlSession, record: ManualResolutionRecord): Promise<void> {
  await sql.execute(
    `INSERT INTO \`md_manual_resolutions\`
  (\`lab_id\`, \`resolved_at\`, \`resolved_by_lab_user_id\`, \`resolved_by_doctor_id\`, \`reason_code\`, \`reason_note\`)
VALUES (?, ?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE \`reason_code\` = ?, \`reason_note\` = ?`,
    [
      record.labId,
      record.resolvedAt,
      record.labUserId,
      record.doctorId,
      record.reasonCode,
      record.reasonNote,
      record.reasonCode,
      record.reasonNote,
    ],
  );
}

export interface ManualResolutionRow {
  resolved_at_text: DbTimestamp;
  resolved_by_lab_user_id: number;
  resolved_by_doctor_id: number;
  reason_code: ReasonCode | null;
  reason_note: string | null;
}

/** The lab's records of these stamps (`stamps` non-empty): a primary-key range per stamp. */
export function readManualResolutions(
  sql: SqlSession,
  labId: number,
  stamps: readonly DbTimestamp[],
): Promise<ManualResolutionRow[]> {
  return sql.query<ManualResolutionRow>(
    `SELECT DATE_FORMAT(\`resolved_at\`, '%Y-%m-%d %H:%i:%s.%f') AS resolved_at_text,
  \`resolved_by_lab_user_id\`, \`resolved_by_doctor_id\`, \`reason_code\`, \`reason_note\`
FROM \`md_manual_resolutions\`
WHERE \`lab_id\` = ? AND \`resolved_at\` IN (${stamps.map(() => '?').join(', ')})`,
    [labId, ...stamps],
  );
}
