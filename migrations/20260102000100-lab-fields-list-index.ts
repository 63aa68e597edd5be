import { Migration } from '@mikro-orm/migrations';

/**
 * Indexes serving the lab-fields list (newest first, keyset-paged on (created_at, id)) without a
 * filesort: one per equality prefix the list query can have. `id` is spelled out so the order
 * holds on any engine, although InnoDB would append the primary key anyway.
 * Also used by the flags (per patient / per bill) and by unresolving (open rows of a patient).
 */
export const LAB_FIELDS_LIST_INDEXES = [
  {
    name: 'LabMissingDetails_lab_resolved_created_idx',
    columns: ['lab_id', 'is_resolved', 'created_at', 'id'],
  },
  {
    name: 'LabMissingDetails_lab_org_resolved_created_idx',
    columns: ['lab_id', 'org_id', 'is_resolved', 'created_at', 'id'],
  },
  {
    name: 'LabMissingDetails_lab_patient_resolved_created_idx',
    columns: ['lab_id', 'user_details_id', 'is_resolved', 'created_at', 'id'],
  },
  {
    name: 'LabMissingDetails_lab_bill_resolved_created_idx',
    columns: ['lab_id', 'bill_id', 'is_resolved', 'created_at', 'id'],
  },
] as const;

const quote = (name: string) => `\`${name}\``;

/**
 * Reviewed SQL for MySQL 8 and MariaDB 10.11. Neither has `ADD INDEX IF NOT EXISTS` in common, so the
 * existing indexes are read first (a rerun after a partial failure only adds what is missing).
 * ALGORITHM=INPLACE, LOCK=NONE: the big production table stays writable while the indexes build, and
 * the statement fails rather than silently locking it if an engine cannot do that.
 */
export class Migration20260102000100LabFieldsListIndex extends Migration {
  async #existingIndexes(): Promise<Set<string>> {
    const rows = await this.execute(
      `SELECT DISTINCT INDEX_NAME AS name FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'LabMissingDetails'`,
    );
    return new Set(rows.map((row) => String(row.name)));
  }

  override async up(): Promise<void> {
    const existing = await this.#existingIndexes();
    const missing = LAB_FIELDS_LIST_INDEXES.filter((index) => !existing.has(index.name));
    if (missing.length === 0) return;
    const adds = missing.map(
      (index) => `ADD INDEX ${quote(index.name)} (${index.columns.map(quote).join(', ')})`,
    );
    this.addSql(`ALTER TABLE \`LabMissingDetails\` ${adds.join(', ')}, ALGORITHM=INPLACE, LOCK=NONE`);
  }

  override async down(): Promise<void> {
    const existing = await this.#existingIndexes();
    const present = LAB_FIELDS_LIST_INDEXES.filter((index) => existing.has(index.name));
    if (present.length === 0) return;
    const drops = present.map((index) => `DROP INDEX ${quote(index.name)}`);
    this.addSql(`ALTER TABLE \`LabMissingDetails\` ${drops.join(', ')}, ALGORITHM=INPLACE, LOCK=NONE`);
  }
}
