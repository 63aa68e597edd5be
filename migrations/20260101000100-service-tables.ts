import { Migration } from '@mikro-orm/migrations';

/** Tables the service owns: idempotency keys of config saves, and the outbox of PY-2 entity creations. */
export class Migration20260101000100ServiceTables extends Migration {
  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS \`md_idempotency_keys\` (
  \`id\` bigint NOT NULL AUTO_INCREMENT,
  \`lab_id\` int NOT NULL,
  \`operation\` varchar(64) NOT NULL,
  \`idempotency_key\` varchar(255) NOT NULL,
  \`request_hash\` char(64) NOT NULL,
  \`response_body\` longtext DEFAULT NULL,
  \`created_at\` datetime(6) NOT NULL,
  \`expires_at\` datetime(6) NOT NULL,
  PRIMARY KEY (\`id\`),
  UNIQUE KEY \`md_idempotency_keys_lab_operation_key_uniq\` (\`lab_id\`, \`operation\`, \`idempotency_key\`),
  KEY \`md_idempotency_keys_expires_at_idx\` (\`expires_at\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);

    this.addSql(`CREATE TABLE IF NOT EXISTS \`md_entity_creation_outbox\` (
  \`id\` bigint NOT NULL AUTO_INCREMENT,
  \`lab_id\` int NOT NULL,
  \`org_id\` int DEFAULT NULL,
  \`config_id\` int NOT NULL,
  \`entity_type\` varchar(64) NOT NULL,
  \`name\` varchar(255) NOT NULL,
  \`idempotency_key\` varchar(64) NOT NULL,
  \`status\` varchar(16) NOT NULL,
  \`attempts\` int NOT NULL DEFAULT 0,
  \`next_attempt_at\` datetime(6) NOT NULL,
  \`claimed_by\` varchar(64) DEFAULT NULL,
  \`claim_expires_at\` datetime(6) DEFAULT NULL,
  \`last_error\` varchar(1024) DEFAULT NULL,
  \`object_id\` int DEFAULT NULL,
  \`requested_by_lab_user_id\` int DEFAULT NULL,
  \`requested_by_doctor_id\` int DEFAULT NULL,
  \`created_at\` datetime(6) NOT NULL,
  \`updated_at\` datetime(6) NOT NULL,
  \`delivered_at\` datetime(6) DEFAULT NULL,
  \`failed_at\` datetime(6) DEFAULT NULL,
  PRIMARY KEY (\`id\`),
  UNIQUE KEY \`md_entity_creation_outbox_idempotency_key_uniq\` (\`idempotency_key\`),
  KEY \`md_entity_creation_outbox_due_idx\` (\`status\`, \`next_attempt_at\`),
  KEY \`md_entity_creation_outbox_lab_idx\` (\`lab_id\`, \`created_at\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);

    // Serializes concurrent saves of one (lab, field) so that at most one active config row exists.
    this.addSql(`CREATE TABLE IF NOT EXISTS \`md_lab_field_locks\` (
  \`lab_id\` int NOT NULL,
  \`field_id\` int NOT NULL,
  PRIMARY KEY (\`lab_id\`, \`field_id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
  }

  override async down(): Promise<void> {
    this.addSql('DROP TABLE IF EXISTS `md_lab_field_locks`');
    this.addSql('DROP TABLE IF EXISTS `md_entity_creation_outbox`');
    this.addSql('DROP TABLE IF EXISTS `md_idempotency_keys`');
  }
}
