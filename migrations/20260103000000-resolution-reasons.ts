import { Migration } from '@mikro-orm/migrations';

/** The index serving the summary: open rows by field with their age, resolved rows by resolution time. */
export const SUMMARY_INDEX = {
  name: 'LabMissingDetails_lab_resolved_at_field_idx',
  columns: ['lab_id', 'is_resolved', 'resolved_at', 'field_id', 'created_at'],
} as const;

const quote = (name: string) => `\`${name}\``;

/**
 * Manual resolutions and their reasons (the FHIR data-absent-reason codes), in a table of the service's
 * own (superseded by one record per resolve call, migration 20260105000000-manual-resolutions, which
 * moves these records there; 20260106000000-drop-lab-field-resolutions drops the table): one row per LabMissingDetails row whose current resolution was made by hand through the list's
 * resolve (REST PATCH or tRPC labFields.resolve). Unresolving deletes it, so a resolved row without one
 * was resolved automatically (the runtime engine). No foreign key to the legacy table: legacy may archive
 * its rows, and the service must never block that.
 *
 * One secondary index serves the summary's count by reason for a lab and, filtering inside the same
 * range, for one organization: every manual resolve writes this table, so it carries no more indexes.
 *
 * `md_resolution_tracking` remembers when manual resolutions started being recorded: before it, a
 * resolved row cannot be told apart, and the summary says so instead of calling it automatic.
 *
 * Reviewed SQL for MySQL 8 and MariaDB 10.11. DDL commits implicitly on MySQL, so each step can run
 * again after a partial failure (IF NOT EXISTS, and the index only when missing). The index is built
 * INPLACE with LOCK=NONE: the large table stays writable, and the statement fails rather than lock it.
 */
export class Migration20260103000000ResolutionReasons extends Migration {
  async #hasSummaryIndex(): Promise<boolean> {
    const rows = await this.execute(
      `SELECT COUNT(*) AS n FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'LabMissingDetails' AND INDEX_NAME = ?`,
      [SUMMARY_INDEX.name],
    );
    return Number(rows[0]?.n ?? 0) > 0;
  }

  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS \`md_lab_field_resolutions\` (
  \`lab_missing_details_id\` bigint NOT NULL,
  \`lab_id\` int NOT NULL,
  \`org_id\` int DEFAULT NULL,
  \`reason_code\` varchar(32) DEFAULT NULL,
  \`reason_note\` varchar(500) DEFAULT NULL,
  \`resolved_at\` datetime(6) NOT NULL,
  \`resolved_by_lab_user_id\` int DEFAULT NULL,
  \`resolved_by_doctor_id\` int DEFAULT NULL,
  PRIMARY KEY (\`lab_missing_details_id\`),
  KEY \`md_lab_field_resolutions_lab_resolved_idx\` (\`lab_id\`, \`resolved_at\`, \`org_id\`, \`reason_code\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);

    this.addSql(`CREATE TABLE IF NOT EXISTS \`md_resolution_tracking\` (
  \`id\` tinyint NOT NULL,
  \`started_at\` datetime(6) NOT NULL,
  PRIMARY KEY (\`id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
    this.addSql(
      'INSERT IGNORE INTO `md_resolution_tracking` (`id`, `started_at`) VALUES (1, UTC_TIMESTAMP(6))',
    );

    if (!(await this.#hasSummaryIndex())) {
      this.addSql(`ALTER TABLE \`LabMissingDetails\`
  ADD INDEX ${quote(SUMMARY_INDEX.name)} (${SUMMARY_INDEX.columns.map(quote).join(', ')}),
  ALGORITHM=INPLACE, LOCK=NONE`);
    }
  }

  /** Drops the index and both tables: the reasons given so far are lost (the ActivityLog keeps them). */
  override async down(): Promise<void> {
    if (await this.#hasSummaryIndex()) {
      this.addSql(
        `ALTER TABLE \`LabMissingDetails\` DROP INDEX ${quote(SUMMARY_INDEX.name)}, ALGORITHM=INPLACE, LOCK=NONE`,
      );
    }
    this.addSql('DROP TABLE IF EXISTS `md_resolution_tracking`');
    this.addSql('DROP TABLE IF EXISTS `md_lab_field_resolutions`');
  }
}
