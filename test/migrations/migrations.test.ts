import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDatabaseExists, initOrm, migrateUp } from '../../src/db/orm.js';
import { testDatabaseUrl } from '../support/env.js';

/**
 * The migrations run on top of production's legacy tables. These tests use databases of their own
 * (created and dropped here) and compare only what legacy owns, so migrations that add the
 * service's own columns, indexes and tables do not disturb them.
 */

// The legacy tables as production has them: a copy of the schema the project carries with it.
const SCHEMA_SQL = new URL('../fixtures/legacy-schema.sql', import.meta.url);

const LEGACY_TABLES = [
  'MissingDetailsTemplates',
  'LabMissingDetailsConfiguration',
  'LabMissingDetails',
  'MissingDetailsEntityCreation',
  'ActivityLog',
  'LabInsurance',
  'LabGroup',
] as const;
type LegacyTable = (typeof LEGACY_TABLES)[number];

const MIGRATIONS_TABLE = 'md_mikro_orm_migrations';

interface ColumnDefinition {
  type: string;
  nullable: string;
  default: string | null;
  extra: string;
  collation: string | null;
}

interface LegacySnapshot {
  /** Per table: the legacy columns in their order, with their definitions. */
  columns: Record<LegacyTable, Record<string, ColumnDefinition>>;
  columnOrder: Record<LegacyTable, string[]>;
  /** Per table: every row, legacy columns only, ordered by id, values as MariaDB prints them. */
  rows: Record<LegacyTable, Record<string, unknown>[]>;
  /** Primary, unique and foreign keys: `table:constraint:type:columns[->referenced]`. */
  constraints: string[];
  tableOptions: Record<LegacyTable, { engine: string; collation: string }>;
}

function urlFor(database: string): string {
  const url = new URL(testDatabaseUrl().replace(/^mariadb:/, 'mysql:'));
  url.pathname = `/${database}`;
  return url.toString();
}

async function connect(database?: string): Promise<mysql.Connection> {
  const url = new URL(urlFor(database ?? ''));
  if (!database) url.pathname = '/';
  return mysql.createConnection({
    uri: url.toString(),
    multipleStatements: true,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    timezone: '+00:00',
  });
}

function scratchDatabaseName(kind: string): string {
  return `md_mig_${kind}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

async function dropDatabase(name: string): Promise<void> {
  const admin = await connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await admin.end();
  }
}

async function tablesOf(conn: mysql.Connection): Promise<string[]> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT TABLE_NAME AS name FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'`,
  );
  return rows.map((r) => String(r.name)).sort();
}

async function snapshot(
  conn: mysql.Connection,
  legacyColumnsOf?: Record<LegacyTable, string[]>,
): Promise<LegacySnapshot> {
  const [columnRows] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT TABLE_NAME AS t, COLUMN_NAME AS c, COLUMN_TYPE AS type, IS_NULLABLE AS nullable,
            COLUMN_DEFAULT AS dflt, EXTRA AS extra, COLLATION_NAME AS collation
       FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?)
      ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [LEGACY_TABLES],
  );
  const columns = {} as LegacySnapshot['columns'];
  const columnOrder = {} as LegacySnapshot['columnOrder'];
  for (const table of LEGACY_TABLES) {
    columns[table] = {};
    columnOrder[table] = [];
  }
  for (const row of columnRows) {
    const table = row.t as LegacyTable;
    const column = String(row.c);
    if (legacyColumnsOf && !legacyColumnsOf[table].includes(column)) continue;
    columns[table][column] = {
      type: String(row.type),
      nullable: String(row.nullable),
      default: row.dflt === null ? null : String(row.dflt),
      extra: String(row.extra),
      collation: row.collation === null ? null : String(row.collation),
    };
    columnOrder[table].push(column);
  }

  const rows = {} as LegacySnapshot['rows'];
  for (const table of LEGACY_TABLES) {
    const list = columnOrder[table].map((c) => `\`${c}\``).join(', ');
    const [data] = await conn.query<mysql.RowDataPacket[]>(`SELECT ${list} FROM \`${table}\` ORDER BY id`);
    rows[table] = data.map((r) => ({ ...r }));
  }

  const [keyRows] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT tc.TABLE_NAME AS t, tc.CONSTRAINT_NAME AS name, tc.CONSTRAINT_TYPE AS type,
            GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION) AS cols,
            MAX(k.REFERENCED_TABLE_NAME) AS ref_table,
            GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION) AS ref_cols
       FROM information_schema.TABLE_CONSTRAINTS tc
       JOIN information_schema.KEY_COLUMN_USAGE k
         ON k.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND k.TABLE_NAME = tc.TABLE_NAME
        AND k.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
      WHERE tc.TABLE_SCHEMA = DATABASE() AND tc.TABLE_NAME IN (?)
      GROUP BY tc.TABLE_NAME, tc.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE`,
    [LEGACY_TABLES],
  );
  const constraints = keyRows
    .map((k) => `${k.t}:${k.name}:${k.type}:${k.cols}${k.ref_table ? `->${k.ref_table}(${k.ref_cols})` : ''}`)
    .sort();

  const [tableRows] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT TABLE_NAME AS t, ENGINE AS engine, TABLE_COLLATION AS collation
       FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?)`,
    [LEGACY_TABLES],
  );
  const tableOptions = {} as LegacySnapshot['tableOptions'];
  for (const t of tableRows) {
    tableOptions[t.t as LegacyTable] = { engine: String(t.engine), collation: String(t.collation) };
  }
  return { columns, columnOrder, rows, constraints, tableOptions };
}

/** Rows a production database of some years could hold: history, soft-disabled configs, big ids. */
const SAMPLE_ROWS = `
INSERT INTO MissingDetailsTemplates
  (id, name, display_name, module, category, entity_type, input_type, sort_order, is_active, created_at, updated_at)
VALUES (11, 'pan_card', 'PAN card — नंबर', 'patient', 'text', NULL, 'text', 110, 0,
        '2023-05-01 10:11:12.123456', '2024-02-29 23:59:59.999999');

INSERT INTO LabMissingDetailsConfiguration
  (id, lab_id, field_id, field_name, field_value, field_module, field_category, entity_object_id, is_disabled,
   created_by_lab_user_id, updated_by_lab_user_id, created_at, updated_at)
VALUES
  (1, 1, 1, 'email', 'old@lab.in', 'patient', 'text', NULL, 1, 7, 8, '2023-06-01 08:00:00.000001', '2023-07-01 08:00:00.000002'),
  (2, 1, 1, 'email', 'older@lab.in', 'patient', 'text', NULL, 1, 7, NULL, '2023-06-02 08:00:00.000000', '2023-06-03 08:00:00.000000'),
  (3, 1, 1, 'email', 'noemail@lab.in', 'patient', 'text', NULL, 0, 7, 7, '2023-07-01 08:00:00.500000', '2023-07-01 08:00:00.500000'),
  (4, 1, 7, 'insurance', 'Self pay (missing)', 'bill', 'entity', 41, 0, NULL, NULL, '2023-07-02 09:30:00.000000', '2023-07-02 09:30:00.000000'),
  (5, 2, 5, 'referral_doctor', 'Dr. Unknown', 'patient', 'entity', NULL, 0, 3, 3, '2024-01-01 00:00:00.000000', '2024-01-01 00:00:00.000000');

INSERT INTO LabMissingDetails
  (id, lab_id, org_id, user_details_id, bill_id, field_id, config_id, field_name, field_value, field_module,
   is_resolved, resolved_at, resolved_by_doctor_id, resolved_by_lab_user_id, created_at, updated_at)
VALUES
  (1, 1, NULL, 123, NULL, 1, 1, 'email', 'old@lab.in', 'patient', 1, '2023-06-05 10:00:00.000001', NULL, 7, '2023-06-04 10:00:00.000000', '2023-06-05 10:00:00.000001'),
  (2, 1, 9, 123, NULL, 1, 3, 'email', 'noemail@lab.in', 'patient', 1, '2023-08-01 10:00:00.000000', 12, NULL, '2023-07-05 10:00:00.000000', '2023-08-01 10:00:00.000000'),
  (3, 1, 9, 123, NULL, 1, 3, 'email', 'noemail@lab.in', 'patient', 0, NULL, NULL, NULL, '2023-09-05 10:00:00.123456', '2023-09-05 10:00:00.123456'),
  (4, 1, 9, 123, 456, 7, 4, 'insurance', 'Self pay (missing)', 'bill', 0, NULL, NULL, NULL, '2023-09-05 10:00:00.123456', '2023-09-05 10:00:00.123456'),
  (5, 1, NULL, 124, 457, 7, NULL, 'insurance', 'Self pay (missing)', 'bill', 1, '2023-09-06 10:00:00.000000', NULL, 7, '2023-09-05 11:00:00.000000', '2023-09-06 10:00:00.000000'),
  (9007199254740993, 2, NULL, 77, NULL, 10, NULL, 'passport_no', 'NA', 'patient', 0, NULL, NULL, NULL, '2024-01-02 00:00:00.000000', '2024-01-02 00:00:00.000000');

INSERT INTO MissingDetailsEntityCreation (id, config_id, entity_name, object_id, lab_id, org_id, created_at)
VALUES (1, 4, 'insurance', 41, 1, NULL, '2023-07-02 09:30:00.000000'),
       (2, 5, 'referral_doctor', 991, 2, 9, '2024-01-01 00:00:05.000000');

INSERT INTO ActivityLog
  (id, lab_id, org_id, lab_user_id, doctor_id, module, action, object_type, object_id, message, details, created_at)
VALUES
  (1, 1, NULL, 7, NULL, 'missing_details', 'entity_creation_succeeded', 'insurance', 41, 'Created placeholder insurance', '{"config_id": 4}', '2023-07-02 09:30:00.000000'),
  (2, 1, NULL, NULL, NULL, 'billing', 'bill_updated', 'bill', 456, 'Bill updated ✓', NULL, '2023-09-05 10:00:00.000000'),
  (9007199254740995, 2, 9, NULL, 12, 'missing_details', 'entity_creation_failed', NULL, NULL, 'PY-2 said no', '{"reason":"400 {\\\\"error\\\\":\\\\"bad\\\\"}"}', '2024-01-01 00:00:05.000000');

INSERT INTO LabInsurance (id, lab_id, name, is_active, created_at)
VALUES (41, 1, 'Self pay (missing)', 1, '2023-07-02 09:30:00.000000'), (42, 1, 'Star Health', 0, '2022-01-01 00:00:00.000000');

INSERT INTO LabGroup (id, lab_id, name, is_active, created_at)
VALUES (3, 1, 'Walk-in', 1, '2022-03-04 05:06:07.080910');
`;

let legacyDb: string;
let emptyDb: string;
/** The legacy database as schema.sql plus the sample rows made it, before any migration. */
let before: LegacySnapshot;

beforeAll(async () => {
  legacyDb = scratchDatabaseName('legacy');
  emptyDb = scratchDatabaseName('empty');
  const admin = await connect();
  try {
    await admin.query(`CREATE DATABASE \`${legacyDb}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await admin.end();
  }
  const conn = await connect(legacyDb);
  try {
    await conn.query(await readFile(SCHEMA_SQL, 'utf8'));
    await conn.query(SAMPLE_ROWS);
    before = await snapshot(conn);
  } finally {
    await conn.end();
  }
});

afterAll(async () => {
  await dropDatabase(legacyDb);
  await dropDatabase(emptyDb);
});

describe('migrations on a database that already holds the legacy tables', () => {
  it('leave every legacy row and every legacy column definition exactly as they were', async () => {
    expect(before.rows.LabMissingDetails).toHaveLength(6);
    expect(before.rows.MissingDetailsTemplates).toHaveLength(11);
    for (const table of LEGACY_TABLES) expect(before.rows[table].length).toBeGreaterThan(0);

    const orm = await initOrm({ databaseUrl: urlFor(legacyDb), poolSize: 2 });
    try {
      expect((await migrateUp(orm)).length).toBeGreaterThan(0);
      expect(await migrateUp(orm)).toEqual([]);
    } finally {
      await orm.close(true);
    }

    const conn = await connect(legacyDb);
    try {
      const after = await snapshot(conn, before.columnOrder);
      expect(after.columnOrder).toEqual(before.columnOrder);
      expect(after.columns).toEqual(before.columns);
      expect(after.rows).toEqual(before.rows);
      expect(after.tableOptions).toEqual(before.tableOptions);
      // Keys the legacy apps rely on stay; the service may add its own beside them.
      expect(after.constraints).toEqual(expect.arrayContaining(before.constraints));
    } finally {
      await conn.end();
    }
  });
});

describe('migrations on an empty database', () => {
  it('create the legacy tables as schema.sql does, go down to nothing of their own and up again', async () => {
    const databaseUrl = urlFor(emptyDb);
    await ensureDatabaseExists(databaseUrl);
    const orm = await initOrm({ databaseUrl, poolSize: 2 });
    const conn = await connect(emptyDb);
    try {
      await migrateUp(orm);
      const upTables = await tablesOf(conn);
      const serviceTables = upTables.filter(
        (t) => !(LEGACY_TABLES as readonly string[]).includes(t) && t !== MIGRATIONS_TABLE,
      );
      expect(upTables).toEqual(expect.arrayContaining([...LEGACY_TABLES, MIGRATIONS_TABLE]));
      expect(serviceTables).toEqual(
        expect.arrayContaining(['md_idempotency_keys', 'md_entity_creation_outbox', 'md_lab_field_locks']),
      );
      const catalog = before.rows.MissingDetailsTemplates.filter((r) => Number(r.id) <= 10);
      const fresh = await snapshot(conn, before.columnOrder);
      expect(fresh.columns).toEqual(before.columns);
      expect(fresh.columnOrder).toEqual(before.columnOrder);
      expect(fresh.tableOptions).toEqual(before.tableOptions);
      expect(fresh.constraints).toEqual(expect.arrayContaining(before.constraints));
      expect(fresh.rows.MissingDetailsTemplates).toEqual(catalog);

      await orm.getMigrator().down({ to: 0 });
      expect(await tablesOf(conn)).toEqual([...LEGACY_TABLES, MIGRATIONS_TABLE].sort());
      const [applied] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT COUNT(*) AS n FROM ${MIGRATIONS_TABLE}`,
      );
      expect(Number(applied[0]?.n)).toBe(0);
      // Down also takes back what the service added to legacy tables: only legacy's columns and keys remain.
      const down = await snapshot(conn);
      expect(down.columns).toEqual(before.columns);
      expect(down.constraints).toEqual(before.constraints);

      await migrateUp(orm);
      expect(await tablesOf(conn)).toEqual(upTables);
      const again = await snapshot(conn, before.columnOrder);
      expect(again.columns).toEqual(before.columns);
      expect(again.rows.MissingDetailsTemplates).toEqual(catalog);
    } finally {
      await conn.end();
      await orm.close(true);
    }
  });
});
