import { Migration } from '@mikro-orm/migrations';

/**
 * The legacy tables exactly as production has them (test/fixtures/legacy-schema.sql). On a database that
 * already holds them every statement is a no-op, so no legacy row or column changes; on an empty one
 * it creates them and the production template catalog.
 */
const LEGACY_TABLES: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS \`MissingDetailsTemplates\` (
  \`id\` int NOT NULL AUTO_INCREMENT,
  \`name\` varchar(100) NOT NULL,
  \`display_name\` varchar(255) NOT NULL,
  \`module\` varchar(32) NOT NULL,
  \`category\` varchar(32) NOT NULL,
  \`entity_type\` varchar(64) DEFAULT NULL,
  \`input_type\` varchar(32) NOT NULL DEFAULT 'text',
  \`sort_order\` int NOT NULL DEFAULT 0,
  \`is_active\` tinyint(1) NOT NULL DEFAULT 1,
  \`created_at\` datetime(6) NOT NULL,
  \`updated_at\` datetime(6) NOT NULL,
  PRIMARY KEY (\`id\`),
  UNIQUE KEY \`MissingDetailsTemplates_module_name_uniq\` (\`module\`, \`name\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
  `CREATE TABLE IF NOT EXISTS \`LabMissingDetailsConfiguration\` (
  \`id\` int NOT NULL AUTO_INCREMENT,
  \`lab_id\` int NOT NULL,
  \`field_id\` int NOT NULL,
  \`field_name\` varchar(100) NOT NULL,
  \`field_value\` varchar(255) NOT NULL,
  \`field_module\` varchar(32) NOT NULL,
  \`field_category\` varchar(32) NOT NULL,
  \`entity_object_id\` int DEFAULT NULL,
  \`is_disabled\` tinyint(1) NOT NULL DEFAULT 0,
  \`created_by_lab_user_id\` int DEFAULT NULL,
  \`updated_by_lab_user_id\` int DEFAULT NULL,
  \`created_at\` datetime(6) NOT NULL,
  \`updated_at\` datetime(6) NOT NULL,
  PRIMARY KEY (\`id\`),
  KEY \`LabMissingDetailsConfiguration_lab_id_idx\` (\`lab_id\`),
  KEY \`LabMissingDetailsConfiguration_field_id_fk\` (\`field_id\`),
  CONSTRAINT \`LabMissingDetailsConfiguration_field_id_fk\` FOREIGN KEY (\`field_id\`) REFERENCES \`MissingDetailsTemplates\` (\`id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
  `CREATE TABLE IF NOT EXISTS \`LabMissingDetails\` (
  \`id\` bigint NOT NULL AUTO_INCREMENT,
  \`lab_id\` int NOT NULL,
  \`org_id\` int DEFAULT NULL,
  \`user_details_id\` int NOT NULL,
  \`bill_id\` int DEFAULT NULL,
  \`field_id\` int NOT NULL,
  \`config_id\` int DEFAULT NULL,
  \`field_name\` varchar(100) NOT NULL,
  \`field_value\` varchar(255) NOT NULL,
  \`field_module\` varchar(32) NOT NULL,
  \`is_resolved\` tinyint(1) NOT NULL DEFAULT 0,
  \`resolved_at\` datetime(6) DEFAULT NULL,
  \`resolved_by_doctor_id\` int DEFAULT NULL,
  \`resolved_by_lab_user_id\` int DEFAULT NULL,
  \`created_at\` datetime(6) NOT NULL,
  \`updated_at\` datetime(6) NOT NULL,
  PRIMARY KEY (\`id\`),
  KEY \`LabMissingDetails_lab_id_user_details_id_idx\` (\`lab_id\`, \`user_details_id\`),
  KEY \`LabMissingDetails_field_id_fk\` (\`field_id\`),
  CONSTRAINT \`LabMissingDetails_field_id_fk\` FOREIGN KEY (\`field_id\`) REFERENCES \`MissingDetailsTemplates\` (\`id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
  `CREATE TABLE IF NOT EXISTS \`MissingDetailsEntityCreation\` (
  \`id\` int NOT NULL AUTO_INCREMENT,
  \`config_id\` int NOT NULL,
  \`entity_name\` varchar(64) NOT NULL,
  \`object_id\` int NOT NULL,
  \`lab_id\` int NOT NULL,
  \`org_id\` int DEFAULT NULL,
  \`created_at\` datetime(6) NOT NULL,
  PRIMARY KEY (\`id\`),
  KEY \`MissingDetailsEntityCreation_lab_id_idx\` (\`lab_id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
  `CREATE TABLE IF NOT EXISTS \`ActivityLog\` (
  \`id\` bigint NOT NULL AUTO_INCREMENT,
  \`lab_id\` int NOT NULL,
  \`org_id\` int DEFAULT NULL,
  \`lab_user_id\` int DEFAULT NULL,
  \`doctor_id\` int DEFAULT NULL,
  \`module\` varchar(64) NOT NULL,
  \`action\` varchar(64) NOT NULL,
  \`object_type\` varchar(64) DEFAULT NULL,
  \`object_id\` bigint DEFAULT NULL,
  \`message\` varchar(1024) NOT NULL,
  \`details\` longtext DEFAULT NULL,
  \`created_at\` datetime(6) NOT NULL,
  PRIMARY KEY (\`id\`),
  KEY \`ActivityLog_lab_id_created_at_idx\` (\`lab_id\`, \`created_at\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
  `CREATE TABLE IF NOT EXISTS \`LabInsurance\` (
  \`id\` int NOT NULL AUTO_INCREMENT,
  \`lab_id\` int NOT NULL,
  \`name\` varchar(255) NOT NULL,
  \`is_active\` tinyint(1) NOT NULL DEFAULT 1,
  \`created_at\` datetime(6) NOT NULL,
  PRIMARY KEY (\`id\`),
  KEY \`LabInsurance_lab_id_idx\` (\`lab_id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
  `CREATE TABLE IF NOT EXISTS \`LabGroup\` (
  \`id\` int NOT NULL AUTO_INCREMENT,
  \`lab_id\` int NOT NULL,
  \`name\` varchar(255) NOT NULL,
  \`is_active\` tinyint(1) NOT NULL DEFAULT 1,
  \`created_at\` datetime(6) NOT NULL,
  PRIMARY KEY (\`id\`),
  KEY \`LabGroup_lab_id_idx\` (\`lab_id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
];

const TEMPLATE_CATALOG = `INSERT INTO \`MissingDetailsTemplates\`
  (\`id\`, \`name\`, \`display_name\`, \`module\`, \`category\`, \`entity_type\`, \`input_type\`, \`sort_order\`, \`is_active\`, \`created_at\`, \`updated_at\`)
VALUES
  (1,  'email',           'Patient email',        'patient', 'text',   NULL,              'email',  10, 1, '2023-04-02 09:00:00.000000', '2023-04-02 09:00:00.000000'),
  (2,  'mobile',          'Patient mobile',       'patient', 'text',   NULL,              'phone',  20, 1, '2023-04-02 09:00:00.000000', '2023-04-02 09:00:00.000000'),
  (3,  'dob',             'Date of birth',        'patient', 'text',   NULL,              'date',   30, 1, '2023-04-02 09:00:00.000000', '2023-04-02 09:00:00.000000'),
  (4,  'address',         'Address',              'patient', 'text',   NULL,              'text',   40, 1, '2023-04-02 09:00:00.000000', '2023-04-02 09:00:00.000000'),
  (5,  'referral_doctor', 'Referring doctor',     'patient', 'entity', 'referral_doctor', 'entity', 50, 1, '2023-04-02 09:00:00.000000', '2023-04-02 09:00:00.000000'),
  (6,  'organization',    'Referring organization','patient','entity', 'organization',    'entity', 60, 1, '2023-04-02 09:00:00.000000', '2023-04-02 09:00:00.000000'),
  (7,  'insurance',       'Insurance company',    'bill',    'entity', 'insurance',       'entity', 70, 1, '2023-04-02 09:00:00.000000', '2023-04-02 09:00:00.000000'),
  (8,  'group',           'Patient group',        'bill',    'entity', 'group',           'entity', 80, 1, '2023-04-02 09:00:00.000000', '2023-04-02 09:00:00.000000'),
  (9,  'sample_collector','Sample collected by',  'bill',    'text',   NULL,              'text',   90, 1, '2023-04-02 09:00:00.000000', '2023-04-02 09:00:00.000000'),
  (10, 'passport_no',     'Passport number',      'patient', 'text',   NULL,              'text',  100, 0, '2023-04-02 09:00:00.000000', '2024-01-15 12:00:00.000000')`;

export class Migration20260101000000LegacyTables extends Migration {
  override async up(): Promise<void> {
    const existing = await this.execute(
      "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'MissingDetailsTemplates'",
    );
    for (const ddl of LEGACY_TABLES) this.addSql(ddl);
    // Only a catalog table this migration creates is seeded: production's own catalog is left exactly as it is.
    if (existing.length === 0) this.addSql(TEMPLATE_CATALOG);
  }

  /** The legacy tables belong to the legacy system and hold its rows: undoing the baseline never drops them. */
  override async down(): Promise<void> {}
}
