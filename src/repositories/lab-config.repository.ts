import { type SessionSource, type SqlSession, sqlSession } from '../db/sql-session.js';
import type { LabConfigRow, LabSettingsRow } from '../engine/lab-config-cache.js';

/**
 * The version and fingerprint of a lab's configs (`md_lab_config_versions`), which key every
 * instance's config cache. The configs themselves are entities (LabMissingDetailsConfiguration, see
 * placeholder-configs.service.ts); capture reads them with its one statement (capture.repository.ts).
 */

/** The row of `md_lab_config_versions` that stands for the template catalog (lab ids start at 1). */
export const CATALOG_VERSION_LAB_ID = 0;

/**
 * The version of what a lab's captures compare against: the lab's row plus the catalog's. Rows
 * only ever grow (never lower or delete one), so the sum changes with every bump of either and
 * never comes back to an earlier value. No row counts as 0. One parameter: the lab id.
 */
export const LAB_CONFIG_VERSION_SQL = `(SELECT COALESCE(SUM(\`version\`), 0) FROM \`md_lab_config_versions\` WHERE \`lab_id\` IN (${CATALOG_VERSION_LAB_ID}, ?))`;

/**
 * The key a lab's cached configs are held under: the version above, then a fingerprint of the
 * lab's config rows and entity traces as the tables hold them now. A row written by another writer
 * (legacy during the migration, a script, a DBA, PY-2's own trace), which bumps no version, still
 * changes the key, so the next capture on every instance reloads. It is read inside the capture's
 * one statement, on the tables' lab_id indexes: no statement of its own. Three parameters, each
 * the lab id. The number before the first colon only ever grows.
 */
export const LAB_CONFIG_STATE_SQL = `CONCAT(${LAB_CONFIG_VERSION_SQL}, ':',
  (SELECT CONCAT(COUNT(*), '.', COALESCE(SUM(CRC32(CONCAT_WS('|', \`id\`, \`field_id\`, \`field_value\`, \`is_disabled\`,
     COALESCE(\`entity_object_id\`, 0), COALESCE(\`due_in_hours\`, 0)))), 0))
   FROM \`LabMissingDetailsConfiguration\` WHERE \`lab_id\` = ?), ':',
  (SELECT CONCAT(COUNT(*), '.', COALESCE(MAX(\`id\`), 0)) FROM \`MissingDetailsEntityCreation\` WHERE \`lab_id\` = ?))`;

/**
 * Marks the lab's configs changed, for every instance's config cache. Call it inside the
 * transaction that changes a config or its placeholder entities, so that the new version commits
 * with the change and never before it; run it last there, as it holds the lab's row lock until
 * the commit.
 */
export async function bumpLabConfigVersion(em: SessionSource, labId: number): Promise<void> {
  await sqlSession(em).execute(
    `INSERT INTO \`md_lab_config_versions\` (\`lab_id\`, \`version\`) VALUES (?, 1)
ON DUPLICATE KEY UPDATE \`version\` = \`version\` + 1`,
    [labId],
  );
}

/**
 * Row-locks the (lab, field) pairs (`md_lab_field_locks`) until the transaction ends, in one sorted
 * order so that two saves never wait on each other crosswise.
 */
export async function lockLabFields(
  em: SessionSource,
  labId: number,
  fieldIds: readonly number[],
): Promise<void> {
  const sorted = [...new Set(fieldIds)].sort((a, b) => a - b);
  await sqlSession(em).execute(
    `INSERT INTO md_lab_field_locks (lab_id, field_id) VALUES ${sorted.map(() => '(?, ?)').join(', ')}
     ON DUPLICATE KEY UPDATE lab_id = lab_id`,
    sorted.flatMap((fieldId) => [labId, fieldId]),
  );
}

/**
 * The read of what a lab's captures compare against: its config state (version and fingerprint),
 * and, unless the caller already holds that state, every config of the lab with its template and
 * placeholder entities, and the lab's settings. Capture sends the parts after the patient's rows
 * (the configs only when it holds none; when its held state turns out stale, it reads them alone in a
 * second statement); the placeholder check sends them alone. One statement is one snapshot, so the
 * configs are exactly those of the state read with them.
 *
 * Every part selects the same columns (capture's row part ends with LAB_CONFIG_TAIL_NULLS), so the
 * parts UNION and one row type serves them all; `kind` says which part a row comes from.
 */
export interface LabConfigReadRow {
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
  input_type: string;
  due_in_hours: number | null;
  /** The lab's settings on each config row; null when the lab never changed them. */
  junk_detection: number | null;
  extra_junk_values: string;
}

/** The columns a part adds after `version` (rows and the version part select NULL for them). */
export const LAB_CONFIG_TAIL_NULLS =
  'NULL AS input_type, NULL AS due_in_hours, NULL AS junk_detection, NULL AS extra_junk_values';

/** Aliased, as the first part of the placeholder check's read names the columns of every part. */
const STATE_PART = `SELECT 'version' AS kind, NULL AS id, NULL AS bill_id, NULL AS field_id, NULL AS config_id,
  NULL AS field_value, NULL AS org_id, NULL AS is_resolved, NULL AS newer, NULL AS template_name,
  NULL AS template_module, NULL AS is_disabled, NULL AS template_active, NULL AS entity_object_id,
  NULL AS creation_object_id, ${LAB_CONFIG_STATE_SQL} AS version, ${LAB_CONFIG_TAIL_NULLS}`;

/**
 * The configs part, read only when the state differs from `heldVersion` (always when that is
 * empty): every config of the lab with its template, each placeholder entity, and the lab's
 * settings (the same on every row; junk detection only ever applies to a field with a config). A
 * config's placeholder entities are every entity ever traced for its field in the lab, under this
 * config row or an earlier one (disabled, or since changed): a bill saved with the first "Self pay
 * (missing)" still opens a row.
 */
function configPart(labId: number, heldVersion: string): { sql: string; params: unknown[] } {
  const sql = `
UNION ALL
SELECT 'config', c.\`id\`, NULL, c.\`field_id\`, NULL, c.\`field_value\`, NULL, NULL, NULL, t.\`name\`, t.\`module\`,
  c.\`is_disabled\`, t.\`is_active\`, c.\`entity_object_id\`, e.\`object_id\`, NULL, t.\`input_type\`, c.\`due_in_hours\`,
  s.\`junk_detection\`, s.\`extra_junk_values\`
FROM \`LabMissingDetailsConfiguration\` c
JOIN \`MissingDetailsTemplates\` t ON t.\`id\` = c.\`field_id\`
LEFT JOIN (
  SELECT f.\`field_id\`, x.\`object_id\`
  FROM \`MissingDetailsEntityCreation\` x
  JOIN \`LabMissingDetailsConfiguration\` f ON f.\`id\` = x.\`config_id\` AND f.\`lab_id\` = x.\`lab_id\`
  WHERE x.\`lab_id\` = ?
) e ON e.\`field_id\` = c.\`field_id\`
LEFT JOIN \`md_lab_settings\` s ON s.\`lab_id\` = c.\`lab_id\`
WHERE c.\`lab_id\` = ?`;
  // A caller that holds no state gets the configs without the state computed a second time.
  if (heldVersion === '') return { sql, params: [labId, labId] };
  return {
    sql: `${sql} AND ${LAB_CONFIG_STATE_SQL} <> ?`,
    params: [labId, labId, labId, labId, labId, heldVersion],
  };
}

/** The state part, then the configs part (only when `withConfigs`). */
export function labConfigParts(
  labId: number,
  options: { withConfigs: boolean; heldVersion: string },
): { sql: string; params: unknown[] } {
  if (!options.withConfigs) return { sql: STATE_PART, params: [labId, labId, labId] };
  const parts = configPart(labId, options.heldVersion);
  return { sql: `${STATE_PART}${parts.sql}`, params: [labId, labId, labId, ...parts.params] };
}

/** What the lab-config parts of a read answered. */
export interface LabConfigRead {
  /** The lab's config state (LAB_CONFIG_STATE_SQL), in the same snapshot as the configs. */
  version: string;
  /** The lab's configs; empty when the caller's held state is current (or none were asked for). */
  configRows: LabConfigRow[];
  settings: LabSettingsRow | undefined;
}

/** Sorts a read's lab-config rows into a LabConfigRead; other rows go to `other`. */
export function splitLabConfigRead(
  rows: readonly LabConfigReadRow[],
  other?: (row: LabConfigReadRow) => void,
): LabConfigRead {
  const read: LabConfigRead = { version: '', configRows: [], settings: undefined };
  for (const row of rows) {
    if (row.kind === 'config') {
      read.configRows.push(row as unknown as LabConfigRow);
      if (row.junk_detection !== null && !read.settings) {
        read.settings = { junk_detection: row.junk_detection, extra_junk_values: row.extra_junk_values };
      }
    } else if (row.kind === 'version') read.version = String(row.version);
    else other?.(row);
  }
  return read;
}

/**
 * The lab's config state alone, with its configs and settings when `heldVersion` is stale (always
 * when it is empty): one statement. The placeholder check's read, and a capture's second one.
 */
export async function readLabConfigs(
  sql: SqlSession,
  labId: number,
  heldVersion: string,
): Promise<LabConfigRead> {
  const parts = labConfigParts(labId, { withConfigs: true, heldVersion });
  return splitLabConfigRead(await sql.query<LabConfigReadRow>(parts.sql, parts.params));
}
