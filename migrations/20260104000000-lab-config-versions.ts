import { Migration } from '@mikro-orm/migrations';

/**
 * The per-lab config version behind each instance's config cache (docs/architecture.md, "The per-lab
 * config cache"). Every transaction that changes what a capture compares against (a lab's configs,
 * their placeholder entities) bumps its lab's row; row 0 stands for the template catalog. A capture
 * reads the sum for (0, its lab) in the statement that reads the patient's rows, so an instance
 * whose cached copy is older sees it in the same snapshot and reads the configs again.
 *
 * No row means version 0: labs whose configs predate this table start there and need no backfill.
 * Reviewed SQL for MySQL 8 and MariaDB 10.11; IF [NOT] EXISTS so that either step can run again.
 */
export class Migration20260104000000LabConfigVersions extends Migration {
  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS \`md_lab_config_versions\` (
  \`lab_id\` int NOT NULL,
  \`version\` bigint unsigned NOT NULL,
  PRIMARY KEY (\`lab_id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
  }

  override async down(): Promise<void> {
    this.addSql('DROP TABLE IF EXISTS `md_lab_config_versions`');
  }
}
