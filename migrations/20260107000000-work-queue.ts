import { Migration } from '@mikro-orm/migrations';

/**
 * The front desk's work queue (contract "Additions", work queue): who owns a row and when it is due,
 * whether it was detected as a placeholder or as junk, and each lab's settings.
 *
 * The service's own columns go on the legacy tables, nullable with no default value to fill: legacy
 * reads and writes name their columns and never see them (test/migrations checks that every legacy
 * column and row stays as it was), and a row legacy writes reads as an unassigned placeholder with
 * no due time. On LabMissingDetails: `detected_as` (NULL = placeholder, 'junk'), `assignee_user_id`,
 * `due_at`. On LabMissingDetailsConfiguration: `due_in_hours` (1–720, NULL = no due time).
 *
 * Indexes, each serving one new read without touching table rows:
 * - (lab_id, is_resolved, assignee_user_id, due_at, org_id): the listing filtered by assignee, and the
 *   summary's open and overdue counts by assignee, from the index alone (organization users too);
 * - (lab_id, is_resolved, due_at): the overdue filter and the summary's overdue count (a range);
 * - (lab_id, is_resolved, user_details_id, org_id, created_at): the worklist by patient, grouped in
 *   the index's order from the index alone (organization users filter org_id in the index). Not
 *   (…, org_id, user_details_id, …): that prefix equals the org-scoped listing's, and the optimizer
 *   took it for the listing and sorted (test/db/lab-fields-explain.test.ts).
 *
 * `md_lab_settings`: one row per lab that changed its settings (no row = defaults: junk detection
 * off, no extra values). `extra_junk_values` is JSON text `{"<field_name>": ["value", …]}`.
 *
 * Reviewed SQL for MySQL 8 and MariaDB 10.11. Neither has `ADD COLUMN/INDEX IF NOT EXISTS` in
 * common, so existing columns and indexes are read first and a rerun after a partial failure (DDL
 * commits implicitly) adds only what is missing. The indexes build INPLACE with LOCK=NONE.
 */
export const WORK_QUEUE_INDEXES = [
  {
    name: 'LabMissingDetails_lab_resolved_assignee_due_idx',
    columns: ['lab_id', 'is_resolved', 'assignee_user_id', 'due_at', 'org_id'],
  },
  { name: 'LabMissingDetails_lab_resolved_due_idx', columns: ['lab_id', 'is_resolved', 'due_at'] },
  {
    name: 'LabMissingDetails_lab_resolved_patient_org_idx',
    columns: ['lab_id', 'is_resolved', 'user_details_id', 'org_id', 'created_at'],
  },
] as const;

const ROW_COLUMNS = [
  ['detected_as', 'varchar(16) DEFAULT NULL'],
  ['assignee_user_id', 'int DEFAULT NULL'],
  ['due_at', 'datetime(6) DEFAULT NULL'],
] as const;

const quote = (name: string) => `\`${name}\``;

export class Migration20260107000000WorkQueue extends Migration {
  async #names(what: 'COLUMNS' | 'STATISTICS', table: string): Promise<Set<string>> {
    const column = what === 'COLUMNS' ? 'COLUMN_NAME' : 'INDEX_NAME';
    const rows = await this.execute(
      `SELECT DISTINCT ${column} AS name FROM information_schema.${what}
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
      [table],
    );
    return new Set(rows.map((row) => String(row.name)));
  }

  override async up(): Promise<void> {
    const rowColumns = await this.#names('COLUMNS', 'LabMissingDetails');
    const addColumns = ROW_COLUMNS.filter(([name]) => !rowColumns.has(name));
    if (addColumns.length > 0) {
      this.addSql(
        `ALTER TABLE \`LabMissingDetails\` ${addColumns.map(([name, type]) => `ADD COLUMN ${quote(name)} ${type}`).join(', ')}`,
      );
    }
    const configColumns = await this.#names('COLUMNS', 'LabMissingDetailsConfiguration');
    if (!configColumns.has('due_in_hours')) {
      this.addSql(
        'ALTER TABLE `LabMissingDetailsConfiguration` ADD COLUMN `due_in_hours` smallint unsigned DEFAULT NULL',
      );
    }
    const indexes = await this.#names('STATISTICS', 'LabMissingDetails');
    const missing = WORK_QUEUE_INDEXES.filter((index) => !indexes.has(index.name));
    if (missing.length > 0) {
      const adds = missing.map(
        (index) => `ADD INDEX ${quote(index.name)} (${index.columns.map(quote).join(', ')})`,
      );
      this.addSql(`ALTER TABLE \`LabMissingDetails\` ${adds.join(', ')}, ALGORITHM=INPLACE, LOCK=NONE`);
    }
    this.addSql(`CREATE TABLE IF NOT EXISTS \`md_lab_settings\` (
  \`lab_id\` int NOT NULL,
  \`junk_detection\` tinyint(1) NOT NULL DEFAULT 0,
  \`extra_junk_values\` text NOT NULL,
  \`updated_by_user_id\` int DEFAULT NULL,
  \`updated_at\` datetime(6) NOT NULL,
  PRIMARY KEY (\`lab_id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
  }

  override async down(): Promise<void> {
    this.addSql('DROP TABLE IF EXISTS `md_lab_settings`');
    const indexes = await this.#names('STATISTICS', 'LabMissingDetails');
    const present = WORK_QUEUE_INDEXES.filter((index) => indexes.has(index.name));
    if (present.length > 0) {
      const drops = present.map((index) => `DROP INDEX ${quote(index.name)}`);
      this.addSql(`ALTER TABLE \`LabMissingDetails\` ${drops.join(', ')}, ALGORITHM=INPLACE, LOCK=NONE`);
    }
    const rowColumns = await this.#names('COLUMNS', 'LabMissingDetails');
    const dropColumns = ROW_COLUMNS.filter(([name]) => rowColumns.has(name));
    if (dropColumns.length > 0) {
      this.addSql(
        `ALTER TABLE \`LabMissingDetails\` ${dropColumns.map(([name]) => `DROP COLUMN ${quote(name)}`).join(', ')}`,
      );
    }
    const configColumns = await this.#names('COLUMNS', 'LabMissingDetailsConfiguration');
    if (configColumns.has('due_in_hours')) {
      this.addSql('ALTER TABLE `LabMissingDetailsConfiguration` DROP COLUMN `due_in_hours`');
    }
  }
}
