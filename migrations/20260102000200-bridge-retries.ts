import { Migration } from '@mikro-orm/migrations';

/**
 * Operator retries of failed PY-2 creations. `retried_at` restarts the give-up window
 * (BRIDGE_MAX_AGE_MS counts from it when set, else from `created_at`), so a creation retried days
 * after it failed gets a full window again; `retry_count` counts those retries for operators.
 * Plain ADD COLUMN with defaults: instant on InnoDB (MariaDB 10.11 and MySQL 8), no row rewrite.
 */
export class Migration20260102000200BridgeRetries extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE \`md_entity_creation_outbox\`
  ADD COLUMN \`retried_at\` datetime(6) DEFAULT NULL,
  ADD COLUMN \`retry_count\` int NOT NULL DEFAULT 0`);
  }

  override async down(): Promise<void> {
    this.addSql(`ALTER TABLE \`md_entity_creation_outbox\`
  DROP COLUMN \`retry_count\`,
  DROP COLUMN \`retried_at\``);
  }
}
