import type { SqlSession } from '../db/sql-session.js';
import type { PatientRow } from '../engine/capture-rules.js';
import type { LabConfigRow, PlaceholderConfig } from '../engine/lab-config-cache.js';
import { LAB_CONFIG_STATE_SQL } from './lab-config.repository.js';

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

/** One row of the engine's read; `kind` says which of its three parts it comes from. */
interface EngineReadRow {
  kind: 'row' | 'version' | 'config';
  id: number;
  bill_id: number | null;
  field_id: number;
  config_id: number | null;
  field_value: string;
  org_id: number | null;
  is_resolved: number;
  /** 1 when a replayed capture is older than what the row says about its field. */
  newer: number;
  template_name: string;
  template_module: string;
  is_disabled: number;
  template_active: number;
  entity_object_id: number | null;
  creation_object_id: number | null;
  version: number | string | null;
}

/** What the engine's one read answers. */
export interface CaptureRead {
  rows: PatientRow[];
  /** The lab's config state (LAB_CONFIG_STATE_SQL) in the same snapshot as `configRows`. */
  version: string;
  /** The lab's configs; empty when the caller's cached version is current (or none were asked for). */
  configRows: LabConfigRow[];
}

function toPatientRow(row: EngineReadRow): PatientRow {
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
 * The engine's one read, in one statement so that it costs one round trip however the cache
 * stands: the unresolved rows of the patient (for a bill: of the bill and the patient's own
 * fields) with their templates, which also serve hasMissingFields, and on a replay the rows
 * changed after the original save; the lab's config version; and, unless `heldVersion` is that
 * version (or `withConfigs` is false), every config of the lab with its template and each
 * placeholder entity created for it. One statement is one snapshot, so the configs are exactly
 * those of the version read with them. A config's placeholder entities are every entity ever
 * traced for its field in the lab, under this config row or an earlier one (disabled, or since
 * changed): a bill saved with the first "Self pay (missing)" still opens a row.
 */
export async function readForCapture(
  sql: SqlSession,
  scope: CaptureScope,
  configs: { withConfigs: boolean; heldVersion: string },
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
  params.push(labId, labId, labId);
  let configPart = '';
  if (configs.withConfigs) {
    configPart = `
UNION ALL
SELECT 'config', c.\`id\`, NULL, c.\`field_id\`, NULL, c.\`field_value\`, NULL, NULL, NULL, t.\`name\`, t.\`module\`,
  c.\`is_disabled\`, t.\`is_active\`, c.\`entity_object_id\`, e.\`object_id\`, NULL
FROM \`LabMissingDetailsConfiguration\` c
JOIN \`MissingDetailsTemplates\` t ON t.\`id\` = c.\`field_id\`
LEFT JOIN (
  SELECT f.\`field_id\`, x.\`object_id\`
  FROM \`MissingDetailsEntityCreation\` x
  JOIN \`LabMissingDetailsConfiguration\` f ON f.\`id\` = x.\`config_id\` AND f.\`lab_id\` = x.\`lab_id\`
  WHERE x.\`lab_id\` = ?
) e ON e.\`field_id\` = c.\`field_id\`
WHERE c.\`lab_id\` = ? AND ${LAB_CONFIG_STATE_SQL} <> ?`;
    params.push(labId, labId, labId, labId, labId, configs.heldVersion);
  }
  const result = await sql.query<EngineReadRow>(
    `SELECT 'row' AS kind, d.\`id\`, d.\`bill_id\`, d.\`field_id\`, d.\`config_id\`, d.\`field_value\`, d.\`org_id\`,
  d.\`is_resolved\`, ${newer} AS newer, t.\`name\` AS template_name, t.\`module\` AS template_module,
  NULL AS is_disabled, NULL AS template_active, NULL AS entity_object_id, NULL AS creation_object_id, NULL AS version
FROM \`LabMissingDetails\` d
JOIN \`MissingDetailsTemplates\` t ON t.\`id\` = d.\`field_id\`
WHERE d.\`lab_id\` = ? AND d.\`user_details_id\` = ? AND ${state}${billScope}
UNION ALL
SELECT 'version', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  ${LAB_CONFIG_STATE_SQL}${configPart}`,
    params,
  );
  const read: CaptureRead = { rows: [], version: '', configRows: [] };
  for (const row of result) {
    if (row.kind === 'row') read.rows.push(toPatientRow(row));
    else if (row.kind === 'config') read.configRows.push(row as unknown as LabConfigRow);
    else read.version = String(row.version);
  }
  return read;
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
 * Opens one row per config (one multi-row insert); answers how many. IGNORE: a racing capture that
 * opened the same row first wins the open-row guard; ours is a no-op.
 */
export async function openRows(
  sql: SqlSession,
  owner: OpenedRowOwner,
  configs: readonly PlaceholderConfig[],
  now: Date,
): Promise<number> {
  const result = await sql.execute(
    `INSERT IGNORE INTO \`LabMissingDetails\`
  (\`lab_id\`, \`org_id\`, \`user_details_id\`, \`bill_id\`, \`field_id\`, \`config_id\`, \`field_name\`, \`field_value\`,
   \`field_module\`, \`is_resolved\`, \`created_at\`, \`updated_at\`)
VALUES ${configs.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)').join(', ')}`,
    configs.flatMap((config) => [
      owner.labId,
      owner.orgId,
      owner.userDetailsId,
      owner.billId,
      config.fieldId,
      config.id,
      config.templateName,
      config.text,
      owner.module,
      now,
      now,
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
