import { Migration } from '@mikro-orm/migrations';
import { COPY_PER_ROW_RECORDS, COPY_RECORDS_BACK_PER_ROW } from './20260105000000-manual-resolutions.js';

/**
 * Finishes the move of manual resolutions to one record per resolve call (20260105000000-manual-resolutions):
 * drops the per-row records table `md_lab_field_resolutions`, which no release since that one writes or
 * reads. Instances of the release before it may have written per-row records during that rollout, after
 * its copy ran: `up` copies once more (COPY_PER_ROW_RECORDS: the per-row records that still match their
 * row, one record per lab, `resolved_at` and resolver; a record already there is kept as it is), then
 * drops the table. Deploy it from the release that brought `md_manual_resolutions`: that release no
 * longer touches the old table, so neither a rolling deploy nor a rollback to it needs the table.
 *
 * `down` recreates the table as 20260103000000-resolution-reasons made it (its definition is repeated
 * here: a migration is a record of what ran) and copies the records back as per-row records of the rows
 * they still match (COPY_RECORDS_BACK_PER_ROW), so a rollback past 20260105 shows the reasons given since.
 * Records that match no row any more (stamped again, reopened) cannot be told to a row and stay only in
 * `md_manual_resolutions` and the ActivityLog, as they would have with the old table.
 *
 * Reviewed SQL for MySQL 8 and MariaDB 10.11. DDL commits implicitly on MySQL, so each step can run again
 * after a partial failure: the copy only while the old table exists, IF [NOT] EXISTS, copies that upsert.
 */
export class Migration20260106000000DropLabFieldResolutions extends Migration {
  async #tableExists(name: string): Promise<boolean> {
    const rows = await this.execute(
      `SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
      [name],
    );
    return Number(rows[0]?.n ?? 0) > 0;
  }

  override async up(): Promise<void> {
    if (!(await this.#tableExists('md_lab_field_resolutions'))) return;
    if (await this.#tableExists('md_manual_resolutions')) this.addSql(COPY_PER_ROW_RECORDS);
    this.addSql('DROP TABLE IF EXISTS `md_lab_field_resolutions`');
  }

  override async down(): Promise<void> {
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
    if (await this.#tableExists('md_manual_resolutions')) this.addSql(COPY_RECORDS_BACK_PER_ROW);
  }
}
