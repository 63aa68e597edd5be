import { type SessionSource, sqlSession } from '../db/sql-session.js';
import type { LabSettingsRow } from '../engine/lab-config-cache.js';

/** The lab's stored settings; undefined when it never changed them (the defaults apply). */
export async function findLabSettings(em: SessionSource, labId: number): Promise<LabSettingsRow | undefined> {
  const rows = await sqlSession(em).query<LabSettingsRow>(
    'SELECT `junk_detection`, `extra_junk_values` FROM `md_lab_settings` WHERE `lab_id` = ?',
    [labId],
  );
  return rows[0];
}

/** Writes the lab's settings whole (one row per lab), in the caller's transaction. */
export async function storeLabSettings(
  tx: SessionSource,
  labId: number,
  settings: LabSettingsRow,
  userId: number,
  now: Date,
): Promise<void> {
  const values = [settings.junk_detection, settings.extra_junk_values, userId, now];
  // The values are repeated rather than taken from VALUES(), which MySQL deprecates.
  await sqlSession(tx).execute(
    `INSERT INTO \`md_lab_settings\` (\`junk_detection\`, \`extra_junk_values\`, \`updated_by_user_id\`, \`updated_at\`, \`lab_id\`)
VALUES (?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE \`junk_detection\` = ?, \`extra_junk_values\` = ?, \`updated_by_user_id\` = ?, \`updated_at\` = ?`,
    [...values, labId, ...values],
  );
}
