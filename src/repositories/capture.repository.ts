import type { SqlSession } from '../db/sql-session.js';
import type { PatientRow, RowToOpen } from '../engine/capture-rules.js';
import {
  LAB_CONFIG_TAIL_NULLS,
  type LabConfigRead,
  type LabConfigReadRow,
  labConfigParts,
  splitLabConfigRead,
} from './lab-config.repository.js';

/** LabMissingDetails as the runtime engine reads and writes it, in the capture's transaction. */

/** Whose rows one capture reads. */
export interface CaptureScope {
  labId: number;
  module: 'patient' | 'bill';
  userDetailsId: number;
  /** For a bill: its id (the read covers the bill's rows and the patient's own); null for a patient. */
  billId: number | null;
  /** On a replay: the time of the original save (rows changed after it are read too, marked newer). */
  capturedAt: Date | undefined;
}

/** What the engine's one read answers: the patient's rows, and the lab's config state (and configs). */
export interface CaptureRead extends LabConfigRead {
  rows: PatientRow[];
}

function toPatientRow(row: LabConfigReadRow): PatientRow {
  return {
    id: row.id,
    billId: row.bill_id,
    fieldId: row.field_id,
    configId: row.config_id,
    fieldValue: row.field_value,
    orgId: row.org_id,
    isResolved: Boolean(Number(row.is_resolved)),
    changedSinceSave: Boolean(Number(row.newer)),
    templateName: row.template_name,
    templateModule: row.template_module,
  };
}

/**
 * The engine's read, in one statement: the unresolved rows of the patient (for a bill: of the bill
 * and the patient's own fields) with their templates, which also serve hasMissingFields, and on a
 * replay the rows changed after the original save; then the lab's config state and, with
 * `withConfigs`, its configs and settings (labConfigParts, lab-config.repository.ts).
 */
export async function readForCapture(
  sql: SqlSession,
  scope: CaptureScope,
  configs: { withConfigs: boolean },
): Promise<CaptureRead> {
  const { labId, capturedAt } = scope;
  const params: unknown[] = [];
  let newer = '0';
  let state = 'd.`is_resolved` = 0';
  if (capturedAt) {
    newer = '(d.`is_resolved` = 1 OR d.`created_at` > ?)';
    state = '(d.`is_resolved` = 0 OR d.`resolved_at` > ?)';
    params.push(capturedAt);
  }
  params.push(labId, scope.userDetailsId);
  if (capturedAt) params.push(capturedAt);
  let billScope = '';
  if (scope.module === 'bill') {
    billScope = ' AND (d.`bill_id` = ? OR d.`bill_id` IS NULL)';
    params.push(scope.billId);
  }
  const labConfig = labConfigParts(labId, { withConfigs: configs.withConfigs, heldVersion: '' });
  const result = await sql.query<LabConfigReadRow>(
    `SELECT 'row' AS kind, d.\`id\`, d.\`bill_id\`, d.\`field_id\`, d.\`config_id\`, d.\`field_value\`, d.\`org_id\`,
  d.\`is_resolved\`, ${newer} AS newer, t.\`name\` AS template_name, t.\`module\` AS template_module,
  NULL AS is_disabled, NULL AS template_active, NULL AS entity_object_id, NULL AS creation_object_id, NULL AS version,
  ${LAB_CONFIG_TAIL_NULLS}
FROM \`LabMissingDetails\` d
JOIN \`MissingDetailsTemplates\` t ON t.\`id\` = d.\`field_id\`
WHERE d.\`lab_id\` = ? AND d.\`user_details_id\` = ? AND ${state}${billScope}
UNION ALL
${labConfig.sql}`,
    [...params, ...labConfig.params],
  );
  const rows: PatientRow[] = [];
  return { ...splitLabConfigRead(result, (row) => rows.push(toPatientRow(row))), rows };
}

/** Who resolves: a doctor's id or a lab user's id (the other column stays null). */
export interface Resolver {
  doctorId: number | null;
  labUserId: number | null;
}

/** Resolves the lab's open rows `ids` (one set-based update); answers how many. */
export async function resolveOpenRows(
  sql: SqlSession,
  labId: number,
  ids: readonly number[],
  resolver: Resolver,
  now: Date,
): Promise<number> {
  const result = await sql.execute(
    `UPDATE \`LabMissingDetails\`
SET \`is_resolved\` = 1, \`resolved_at\` = ?, \`resolved_by_doctor_id\` = ?, \`resolved_by_lab_user_id\` = ?, \`updated_at\` = ?
WHERE \`id\` IN (${ids.map(() => '?').join(', ')}) AND \`lab_id\` = ? AND \`is_resolved\` = 0`,
    [now, resolver.doctorId, resolver.labUserId, now, ...ids, labId],
  );
  return result.affectedRows;
}

/** Whose rows a capture opens. */
export interface OpenedRowOwner {
  labId: number;
  orgId: number | null;
  userDetailsId: number;
  billId: number | null;
  module: string;
}

/**
 * Opens the rows the engine decided on (one multi-row insert); answers how many. A row opened under
 * a config with `due_in_hours` is due that many hours later. IGNORE: a racing capture that opened
 * the same row first wins the open-row guard; ours is a no-op.
 */
export async function openRows(
  sql: SqlSession,
  owner: OpenedRowOwner,
  rows: readonly RowToOpen[],
  now: Date,
): Promise<number> {
  const result = await sql.execute(
    `INSERT IGNORE INTO \`LabMissingDetails\`
  (\`lab_id\`, \`org_id\`, \`user_details_id\`, \`bill_id\`, \`field_id\`, \`config_id\`, \`field_name\`, \`field_value\`,
   \`field_module\`, \`is_resolved\`, \`created_at\`, \`updated_at\`, \`detected_as\`, \`due_at\`)
VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)').join(', ')}`,
    rows.flatMap(({ config, fieldValue, detectedAs }) => [
      owner.labId,
      owner.orgId,
      owner.userDetailsId,
      owner.billId,
      config.fieldId,
      config.id,
      config.templateName,
      fieldValue,
      owner.module,
      now,
      now,
      detectedAs,
      config.dueInHours === null ? null : new Date(now.getTime() + config.dueInHours * 3_600_000),
    ]),
  );
  return result.affectedRows;
}

/** Moves the lab's open rows `ids` to organization `orgId` (one statement); answers how many. */
export async function moveOpenRowsToOrganization(
  sql: SqlSession,
  labId: number,
  ids: readonly number[],
  orgId: number | null,
  now: Date,
): Promise<number> {
  const result = await sql.execute(
    `UPDATE \`LabMissingDetails\` SET \`org_id\` = ?, \`updated_at\` = ?
WHERE \`id\` IN (${ids.map(() => '?').join(', ')}) AND \`lab_id\` = ? AND \`is_resolved\` = 0`,
    [orgId, now, ...ids, labId],
  );
  return result.affectedRows;
}
