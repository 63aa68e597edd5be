import { Migration } from '@mikro-orm/migrations';

/**
 * Whether a row's current resolution was made by hand, as ONE record per resolve call instead of one per
 * row: a 5,000-id PATCH then writes one record, not 5,000 (bench `bulk-resolve`). A LabMissingDetails row's
 * current resolution is manual, with the record's reason, exactly when a record matches its lab,
 * `resolved_at` and resolver. Everything that changes a row's resolution (a later stamp, an unresolve, the
 * engine resolving it after an unresolve, legacy writing the shared table) changes its `resolved_at` or
 * resolver, so a stale record stops matching by itself: nothing is written per row, nothing deleted on
 * unresolve. The resolver columns are 0 for "none" (NOT NULL, so that they can be in the primary key);
 * a principal is always exactly one of lab user or doctor, so a record never has both 0 and never matches
 * a row the engine resolved (both resolver columns NULL).
 *
 * The primary key (lab_id, resolved_at, resolver) serves both readers: the listing looks up the stamps
 * of a page, the summary reads a lab's records of its window as a range and joins each to its rows
 * through the summary index (lab_id, is_resolved, resolved_at, …). No other index: every resolve call
 * writes this table. No foreign key to the legacy table, as for the per-row records.
 *
 * `up` copies the per-row records of `md_lab_field_resolutions` that still match their row: one record
 * per distinct (lab, resolved_at, resolver). Rows of one group can only disagree on the reason when two
 * resolve calls by one resolver shared a millisecond (the old stamp's precision); the record then takes
 * the reason of the group's row with the highest id, so the copy is deterministic. The copy reads each
 * per-row record once and its row by primary key; until it commits it holds shared record locks on the
 * rows resolved by hand (no gap locks), which only a resolve or a legacy write of those rows waits for.
 *
 * `md_lab_field_resolutions` is kept, no longer written or read by this release: during a rolling
 * deploy the previous release's instances still resolve through it (dropping it would fail their
 * resolves), and a rollback finds it in place. The next release drops it (migration
 * 20260106000000-drop-lab-field-resolutions), after running COPY_PER_ROW_RECORDS once more to pick up
 * what the previous release's instances recorded during the rollout.
 *
 * `down` copies the records back into `md_lab_field_resolutions` (one per row they still match), so the
 * previous release shows the reasons given since, then drops the new table.
 *
 * Reviewed SQL for MySQL 8 and MariaDB 10.11 (window functions: MySQL 8.0, MariaDB 10.2). DDL commits
 * implicitly on MySQL, so each step can run again after a partial failure: IF [NOT] EXISTS, and copies
 * that upsert without changing what is already there.
 */

/** The per-row records that still match their row, one per (lab, resolved_at, resolver) group. */
export const COPY_PER_ROW_RECORDS = `INSERT INTO \`md_manual_resolutions\`
  (\`lab_id\`, \`resolved_at\`, \`resolved_by_lab_user_id\`, \`resolved_by_doctor_id\`, \`reason_code\`, \`reason_note\`)
SELECT g.\`lab_id\`, g.\`resolved_at\`, g.\`lab_user_id\`, g.\`doctor_id\`, g.\`reason_code\`, g.\`reason_note\`
FROM (
  SELECT r.\`lab_id\`, r.\`resolved_at\`,
    COALESCE(r.\`resolved_by_lab_user_id\`, 0) AS \`lab_user_id\`, COALESCE(r.\`resolved_by_doctor_id\`, 0) AS \`doctor_id\`,
    r.\`reason_code\`, r.\`reason_note\`,
    ROW_NUMBER() OVER (
      PARTITION BY r.\`lab_id\`, r.\`resolved_at\`, r.\`resolved_by_lab_user_id\`, r.\`resolved_by_doctor_id\`
      ORDER BY r.\`lab_missing_details_id\` DESC
    ) AS \`rn\`
  FROM \`md_lab_field_resolutions\` r
  JOIN \`LabMissingDetails\` d ON d.\`id\` = r.\`lab_missing_details_id\` AND d.\`lab_id\` = r.\`lab_id\`
    AND d.\`is_resolved\` = 1 AND d.\`resolved_at\` = r.\`resolved_at\`
    AND d.\`resolved_by_lab_user_id\` <=> r.\`resolved_by_lab_user_id\`
    AND d.\`resolved_by_doctor_id\` <=> r.\`resolved_by_doctor_id\`
) g
WHERE g.\`rn\` = 1
ON DUPLICATE KEY UPDATE \`lab_id\` = \`md_manual_resolutions\`.\`lab_id\``;

/**
 * The records written back as per-row records of the rows they still match (for the previous release). The
 * update names the SELECT's columns rather than `VALUES(col)`, which MySQL deprecated (8.0.20) and whose
 * replacement (`AS new`) MariaDB lacks: this form runs on both.
 */
export const COPY_RECORDS_BACK_PER_ROW = `INSERT INTO \`md_lab_field_resolutions\`
  (\`lab_missing_details_id\`, \`lab_id\`, \`org_id\`, \`reason_code\`, \`reason_note\`, \`resolved_at\`,
   \`resolved_by_lab_user_id\`, \`resolved_by_doctor_id\`)
SELECT d.\`id\`, d.\`lab_id\`, d.\`org_id\`, m.\`reason_code\`, m.\`reason_note\`, m.\`resolved_at\`,
  d.\`resolved_by_lab_user_id\`, d.\`resolved_by_doctor_id\`
FROM \`md_manual_resolutions\` m
JOIN \`LabMissingDetails\` d ON d.\`lab_id\` = m.\`lab_id\` AND d.\`is_resolved\` = 1
  AND d.\`resolved_at\` = m.\`resolved_at\`
  AND COALESCE(d.\`resolved_by_lab_user_id\`, 0) = m.\`resolved_by_lab_user_id\`
  AND COALESCE(d.\`resolved_by_doctor_id\`, 0) = m.\`resolved_by_doctor_id\`
ON DUPLICATE KEY UPDATE \`org_id\` = d.\`org_id\`, \`reason_code\` = m.\`reason_code\`,
  \`reason_note\` = m.\`reason_note\`, \`resolved_at\` = m.\`resolved_at\`,
  \`resolved_by_lab_user_id\` = d.\`resolved_by_lab_user_id\`,
  \`resolved_by_doctor_id\` = d.\`resolved_by_doctor_id\``;

export class Migration20260105000000ManualResolutions extends Migration {
  async #tableExists(name: string): Promise<boolean> {
    const rows = await this.execute(
      `SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
      [name],
    );
    return Number(rows[0]?.n ?? 0) > 0;
  }

  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS \`md_manual_resolutions\` (
  \`lab_id\` int NOT NULL,
  \`resolved_at\` datetime(6) NOT NULL,
  \`resolved_by_lab_user_id\` int NOT NULL DEFAULT 0,
  \`resolved_by_doctor_id\` int NOT NULL DEFAULT 0,
  \`reason_code\` varchar(32) DEFAULT NULL,
  \`reason_note\` varchar(500) DEFAULT NULL,
  PRIMARY KEY (\`lab_id\`, \`resolved_at\`, \`resolved_by_lab_user_id\`, \`resolved_by_doctor_id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
    if (await this.#tableExists('md_lab_field_resolutions')) this.addSql(COPY_PER_ROW_RECORDS);
  }

  override async down(): Promise<void> {
    if (!(await this.#tableExists('md_manual_resolutions'))) return;
    if (await this.#tableExists('md_lab_field_resolutions')) {
      this.addSql(COPY_RECORDS_BACK_PER_ROW);
    }
    this.addSql('DROP TABLE IF EXISTS `md_manual_resolutions`');
  }
}
