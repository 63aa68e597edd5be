import { type SessionSource, sqlSession } from '../db/sql-session.js';

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
     COALESCE(\`entity_object_id\`, 0)))), 0))
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
