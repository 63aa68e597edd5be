import { Migration } from '@mikro-orm/migrations';

/**
 * Serves the delivery's look-up of a newer creation of the same config (so a config keeps pointing
 * at its newest placeholder when an older creation lands late). The index is built online
 * (INPLACE, LOCK=NONE on MariaDB 10.11 and MySQL 8): the outbox stays writable meanwhile.
 */
export class Migration20260102000201BridgeConfigIndex extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE \`md_entity_creation_outbox\`
  ADD KEY \`md_entity_creation_outbox_config_idx\` (\`config_id\`, \`id\`),
  ALGORITHM=INPLACE, LOCK=NONE`);
  }

  override async down(): Promise<void> {
    this.addSql('ALTER TABLE `md_entity_creation_outbox` DROP KEY `md_entity_creation_outbox_config_idx`');
  }
}
