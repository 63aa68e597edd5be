import { Migration } from '@mikro-orm/migrations';

/**
 * Pre-existing duplicate open rows (the legacy engine could race): for each (lab, patient, bill,
 * field) with more than one unresolved row, the newest (highest id) stays open and the older ones
 * are resolved by the system (`resolved_at` = now, both resolver ids null). No row is deleted, and
 * each one is named in an ActivityLog `duplicate_open_row_resolved` row so it can be found again.
 * The derived table is materialized (it groups), so MySQL 8 accepts it next to the updated table.
 */
const OLDER_DUPLICATES = `JOIN (
  SELECT \`lab_id\`, \`user_details_id\`, \`field_id\`, IFNULL(\`bill_id\`, 0) AS bill_slot, MAX(\`id\`) AS keep_id
  FROM \`LabMissingDetails\`
  WHERE \`is_resolved\` = 0
  GROUP BY \`lab_id\`, \`user_details_id\`, \`field_id\`, IFNULL(\`bill_id\`, 0)
  HAVING COUNT(*) > 1
) k ON d.\`lab_id\` = k.\`lab_id\` AND d.\`user_details_id\` = k.\`user_details_id\`
  AND d.\`field_id\` = k.\`field_id\` AND IFNULL(d.\`bill_id\`, 0) = k.bill_slot`;
const ONLY_OLDER = 'd.`is_resolved` = 0 AND d.`id` < k.keep_id';

/**
 * Never two unresolved rows for one (lab, patient, bill, field), enforced by the database:
 * `open_slot` is the bill id (0 for patient fields) while a row is open and NULL once resolved, and
 * a UNIQUE key ignores NULLs, so resolved rows never collide. The column is VIRTUAL (no table
 * rebuild on MySQL 8 or MariaDB; INPLACE, LOCK=NONE keeps the big table writable, and fails rather
 * than locking it where an engine cannot) and is not mapped by the entity, so nothing writes it.
 *
 * Also: the outbox of captures that failed (`md_capture_outbox`), retried by the capture retrier.
 */
export class Migration20260102000000OpenRowGuard extends Migration {
  override async up(): Promise<void> {
    this.addSql(`INSERT INTO \`ActivityLog\`
  (\`lab_id\`, \`org_id\`, \`module\`, \`action\`, \`object_type\`, \`object_id\`, \`message\`, \`details\`, \`created_at\`)
SELECT d.\`lab_id\`, d.\`org_id\`, 'missing_details', 'duplicate_open_row_resolved', 'LabMissingDetails', d.\`id\`,
  CONCAT('Resolved duplicate open row ', d.\`id\`, ' (newest open row ', k.keep_id, ' kept) before adding the open-row guard'),
  CONCAT('{"kept_id":', k.keep_id, '}'), UTC_TIMESTAMP(6)
FROM \`LabMissingDetails\` d
${OLDER_DUPLICATES}
WHERE ${ONLY_OLDER}`);
    this.addSql(`UPDATE \`LabMissingDetails\` d
${OLDER_DUPLICATES}
SET d.\`is_resolved\` = 1, d.\`resolved_at\` = UTC_TIMESTAMP(6), d.\`resolved_by_doctor_id\` = NULL,
  d.\`resolved_by_lab_user_id\` = NULL, d.\`updated_at\` = UTC_TIMESTAMP(6)
WHERE ${ONLY_OLDER}`);

    // DDL commits implicitly on MySQL, so a run that stopped half-way must be able to run again.
    const existing = new Set(
      (
        (await this.execute(
          `SELECT column_name AS name FROM information_schema.columns
           WHERE table_schema = DATABASE() AND table_name = 'LabMissingDetails' AND column_name = 'open_slot'
           UNION SELECT DISTINCT index_name FROM information_schema.statistics
           WHERE table_schema = DATABASE() AND table_name = 'LabMissingDetails'`,
        )) as Array<{ name: string }>
      ).map((row) => row.name),
    );
    if (!existing.has('open_slot')) {
      this.addSql(`ALTER TABLE \`LabMissingDetails\`
  ADD COLUMN \`open_slot\` int GENERATED ALWAYS AS (IF(\`is_resolved\` = 0, IFNULL(\`bill_id\`, 0), NULL)) VIRTUAL,
  ALGORITHM=INPLACE, LOCK=NONE`);
    }
    if (!existing.has('LabMissingDetails_open_row_uniq')) {
      this.addSql(`ALTER TABLE \`LabMissingDetails\`
  ADD UNIQUE KEY \`LabMissingDetails_open_row_uniq\` (\`lab_id\`, \`user_details_id\`, \`field_id\`, \`open_slot\`),
  ALGORITHM=INPLACE, LOCK=NONE`);
    }

    this.addSql(`CREATE TABLE IF NOT EXISTS \`md_capture_outbox\` (
  \`id\` bigint NOT NULL AUTO_INCREMENT,
  \`capture_key\` char(36) NOT NULL,
  \`lab_id\` int NOT NULL,
  \`module\` varchar(32) NOT NULL,
  \`user_details_id\` int NOT NULL,
  \`bill_id\` int DEFAULT NULL,
  \`principal_user_id\` int NOT NULL,
  \`principal_role\` varchar(16) NOT NULL,
  \`principal_org_id\` int DEFAULT NULL,
  \`input\` longtext NOT NULL,
  \`status\` varchar(16) NOT NULL,
  \`attempts\` int NOT NULL DEFAULT 0,
  \`next_attempt_at\` datetime(6) NOT NULL,
  \`last_error\` varchar(1024) DEFAULT NULL,
  \`captured_at\` datetime(6) NOT NULL,
  \`created_at\` datetime(6) NOT NULL,
  \`updated_at\` datetime(6) NOT NULL,
  \`landed_at\` datetime(6) DEFAULT NULL,
  PRIMARY KEY (\`id\`),
  UNIQUE KEY \`md_capture_outbox_capture_key_uniq\` (\`capture_key\`),
  KEY \`md_capture_outbox_due_idx\` (\`status\`, \`next_attempt_at\`),
  KEY \`md_capture_outbox_lab_idx\` (\`lab_id\`, \`user_details_id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
  }

  /** Drops the guard and the outbox; rows resolved as duplicates stay resolved (nothing is lost). */
  override async down(): Promise<void> {
    this.addSql('DROP TABLE IF EXISTS `md_capture_outbox`');
    this.addSql('ALTER TABLE `LabMissingDetails` DROP KEY `LabMissingDetails_open_row_uniq`');
    this.addSql('ALTER TABLE `LabMissingDetails` DROP COLUMN `open_slot`');
  }
}
