import type { SqlSession } from '../db/sql-session.js';

/**
 * The lab's own placeholder entities, `LabInsurance` and `LabGroup` (written as entities when first
 * created; see entity-creation-start.service.ts): found again by name, and reactivated.
 */

const TABLES = { insurance: '`LabInsurance`', group: '`LabGroup`' } as const;

export type PlaceholderEntityType = keyof typeof TABLES;

/** The lab's entity of that name (an active one first, else the oldest), locked; undefined when none. */
export async function lockPlaceholderEntityByName(
  sql: SqlSession,
  entityType: PlaceholderEntityType,
  labId: number,
  name: string,
): Promise<{ id: number; isActive: boolean } | undefined> {
  const [found] = await sql.query<{ id: number; is_active: number }>(
    `SELECT \`id\`, \`is_active\` FROM ${TABLES[entityType]} WHERE \`lab_id\` = ? AND \`name\` = ? ORDER BY \`is_active\` DESC, \`id\` LIMIT 1 FOR UPDATE`,
    [labId, name],
  );
  return found ? { id: Number(found.id), isActive: Boolean(found.is_active) } : undefined;
}

/** Makes a retired entity pickable again. */
export async function reactivatePlaceholderEntity(
  sql: SqlSession,
  entityType: PlaceholderEntityType,
  id: number,
): Promise<void> {
  await sql.execute(`UPDATE ${TABLES[entityType]} SET \`is_active\` = 1 WHERE \`id\` = ?`, [id]);
}
