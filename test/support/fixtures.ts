import { randomBytes } from 'node:crypto';
import { tracingChannel } from 'node:diagnostics_channel';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import mysql from 'mysql2/promise';
import { buildApp } from '../../src/app.js';
import type { Principal } from '../../src/auth/principal.js';
import { mintToken, type TokenClaims } from '../../src/auth/token.js';
import { type AppConfig, DEVELOPMENT_JWT_SECRET, loadConfig, type RawEnv } from '../../src/config.js';
import { Database, type Em } from '../../src/db/database.js';
import { dbTimestampOf } from '../../src/db/microsecond-timestamp.type.js';
import { ensureDatabaseExists, initOrm } from '../../src/db/orm.js';
import {
  LabMissingDetails,
  LabMissingDetailsConfiguration,
  MissingDetailsEntityCreation,
  MissingDetailsTemplate,
} from '../../src/entities/index.js';
import { testDatabaseUrl } from './env.js';

/**
 * The tests' one fixture module: the app on the test database, lab ids, tokens, statement counts,
 * row and config factories, and scratch databases. Helpers of one area stay in their own files
 * (bridge-fixtures, reliability-fixtures, raw-http, otlp-receiver, service-process, private-mariadb,
 * path-spellings).
 */

// ---------------------------------------------------------------------------------------------
// The app and its callers

/** A lab id no other test (in this run or an earlier one) uses: tests never truncate shared tables. */
export function newLabId(): number {
  return 100_000_000 + Math.floor(Math.random() * 2_000_000_000);
}

export function testConfig(overrides: RawEnv = {}): AppConfig {
  return loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: testDatabaseUrl(),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    BRIDGE_WORKER_ENABLED: 'false',
    // Limits stay out of other tests' way; test/limits.test.ts sets them low.
    RATE_LIMIT_MAX: '10000000',
    UNDER_PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0',
    ...overrides,
  });
}

export interface TestApp {
  app: FastifyInstance;
  db: Database;
  config: AppConfig;
  close(): Promise<void>;
}

/** The real app on the real test database (migrated once by the global setup). */
export async function startTestApp(overrides: RawEnv = {}): Promise<TestApp> {
  const config = testConfig(overrides);
  const orm = await initOrm({ databaseUrl: config.databaseUrl, poolSize: 5 });
  const db = new Database(orm);
  const app = await buildApp({ config, db });
  await app.ready();
  return {
    app,
    db,
    config,
    async close() {
      await app.close();
      await db.close();
    },
  };
}

export function tokenFor(claims: TokenClaims, secret = DEVELOPMENT_JWT_SECRET): Promise<string> {
  return mintToken(secret, claims);
}

export async function authHeader(claims: TokenClaims): Promise<{ authorization: string }> {
  return { authorization: `Bearer ${await tokenFor(claims)}` };
}

/** REST PATCH of the lab-fields list (bulk resolve or reopen) as `claims`. */
export async function patchLabFields(
  t: TestApp,
  claims: TokenClaims,
  body: unknown,
): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'PATCH',
    url: '/api-v3/account/missing-details/lab-fields',
    headers: { ...(await authHeader(claims)), 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });
}

/** The SQL statements `call` sends, as the ORM's query logger sees them (the driver-SQL paths log there too). */
export async function statementsDuring(db: Database, call: () => Promise<unknown>): Promise<string[]> {
  const logger = db.orm.config.getLogger();
  const original = logger.logQuery;
  const statements: string[] = [];
  logger.logQuery = (context) => {
    statements.push(context.query ?? '');
    original.call(logger, context);
  };
  try {
    await call();
  } finally {
    logger.logQuery = original;
  }
  return statements;
}

/**
 * Every statement mysql2 sends in this process while `call` runs, transactions included (BEGIN,
 * COMMIT and the repositories' SQL inside `inTransaction`, which the ORM's logger never sees), read
 * from mysql2's diagnostics channels. Nothing else in the test process may touch the database meanwhile.
 */
export async function sentStatements(call: () => Promise<unknown>): Promise<string[]> {
  const statements: string[] = [];
  const ignore = () => undefined;
  const record = {
    start: (message: unknown) => statements.push(String((message as { query?: unknown }).query ?? '')),
    end: ignore,
    asyncStart: ignore,
    asyncEnd: ignore,
    error: ignore,
  };
  const channels = [tracingChannel('mysql2:query'), tracingChannel('mysql2:execute')];
  for (const channel of channels) channel.subscribe(record);
  try {
    await call();
  } finally {
    for (const channel of channels) channel.unsubscribe(record);
  }
  return statements;
}

// ---------------------------------------------------------------------------------------------
// Runtime rows, configs and principals (the engine's and the list's tests)

/** The production catalog's template ids (migrations seed it). */
export const FIELD = {
  email: 1,
  mobile: 2,
  dob: 3,
  address: 4,
  referral_doctor: 5,
  organization: 6,
  insurance: 7,
  group: 8,
  sample_collector: 9,
  passport_no: 10,
} as const;
export type FieldName = keyof typeof FIELD;

export function principalFor(
  labId: number,
  options: { userId?: number; role?: Principal['role']; orgId?: number | null } = {},
): Principal {
  return {
    labId,
    userId: options.userId ?? 7,
    role: options.role ?? 'lab_user',
    orgId: options.orgId ?? null,
    via: 'jwt',
  };
}

export interface ConfigSeed {
  field: FieldName;
  value: string;
  disabled?: boolean;
  /** The config's `entity_object_id`. */
  entityObjectId?: number | null;
  /** Object ids of MissingDetailsEntityCreation rows for the config, oldest first. */
  createdEntityIds?: number[];
}

/** Writes a lab's configs (and their entity creation traces) directly, as a config save would leave them. */
export async function seedConfigs(em: Em, labId: number, seeds: readonly ConfigSeed[]): Promise<number[]> {
  const now = new Date();
  const ids: number[] = [];
  for (const seed of seeds) {
    const template = await em.findOneOrFail(MissingDetailsTemplate, { id: FIELD[seed.field] });
    const configId = (await em.insert(LabMissingDetailsConfiguration, {
      labId,
      fieldId: template.id,
      fieldName: template.name,
      fieldValue: seed.value,
      fieldModule: template.module,
      fieldCategory: template.category,
      entityObjectId: seed.entityObjectId ?? seed.createdEntityIds?.at(-1) ?? null,
      isDisabled: seed.disabled ?? false,
      createdAt: dbTimestampOf(now),
      updatedAt: dbTimestampOf(now),
    })) as number;
    for (const objectId of seed.createdEntityIds ?? []) {
      await em.insert(MissingDetailsEntityCreation, {
        configId,
        entityName: template.entityType ?? template.name,
        objectId,
        labId,
        orgId: null,
        createdAt: now,
      });
    }
    ids.push(configId);
  }
  return ids;
}

export interface RowView {
  id: number;
  user_details_id: number;
  bill_id: number | null;
  org_id: number | null;
  field_id: number;
  field_name: string;
  field_value: string;
  field_module: string;
  config_id: number | null;
  is_resolved: number;
  resolved_at: string | null;
  resolved_by_doctor_id: number | null;
  resolved_by_lab_user_id: number | null;
  created_at: string;
  updated_at: string;
}

/** Every LabMissingDetails row of a lab, oldest first. */
export function rowsOf(em: Em, labId: number): Promise<RowView[]> {
  return em.execute<RowView[]>(
    `SELECT id, user_details_id, bill_id, org_id, field_id, field_name, field_value, field_module, config_id,
  is_resolved, resolved_at, resolved_by_doctor_id, resolved_by_lab_user_id, created_at, updated_at
FROM LabMissingDetails WHERE lab_id = ? ORDER BY id`,
    [labId],
  );
}

/** Statement counters of the connection `em` is bound to (use inside a transaction: one connection). */
export async function statementCounts(em: Em): Promise<{ selects: number; writes: number }> {
  const rows = await em.execute<Array<{ Variable_name: string; Value: string }>>(
    "SHOW SESSION STATUS WHERE Variable_name IN ('Com_select', 'Com_insert', 'Com_update', 'Com_delete', 'Com_insert_select', 'Com_update_multi', 'Com_replace')",
  );
  let selects = 0;
  let writes = 0;
  for (const row of rows) {
    if (row.Variable_name === 'Com_select') selects += Number(row.Value);
    else writes += Number(row.Value);
  }
  return { selects, writes };
}

// ---------------------------------------------------------------------------------------------
// Bulk rows (list, summary and export tests)

/** A runtime row as the summary, reasons, export and live-count tests need it. */
export interface BeyondRow {
  labId: number;
  orgId?: number | null;
  userDetailsId?: number;
  billId?: number | null;
  /** Template id (1 email … 9 sample_collector). */
  fieldId?: number;
  fieldValue?: string;
  /** UTC `datetime(6)` or a Date. */
  createdAt?: string | Date;
  /** Set for a resolved row. */
  resolvedAt?: string | Date;
  resolvedByLabUserId?: number | null;
}

const FIELDS: Record<number, { name: string; module: 'patient' | 'bill' }> = {
  1: { name: 'email', module: 'patient' },
  2: { name: 'mobile', module: 'patient' },
  3: { name: 'dob', module: 'patient' },
  4: { name: 'address', module: 'patient' },
  5: { name: 'referral_doctor', module: 'patient' },
  6: { name: 'organization', module: 'patient' },
  7: { name: 'insurance', module: 'bill' },
  8: { name: 'group', module: 'bill' },
  9: { name: 'sample_collector', module: 'bill' },
};

let nextPatient = 3_000_000 + Math.floor(Math.random() * 1_000_000) * 100;

/** A Date as a UTC `datetime(6)` literal. */
export function dbTime(date: Date): string {
  return `${date.toISOString().replace('T', ' ').replace('Z', '')}000`;
}

export const hoursAgo = (hours: number, now = Date.now()) => new Date(now - hours * 3600_000);

const TUPLE = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

/**
 * Inserts rows with multi-row INSERTs (chunks of `chunk`) and returns their ids in the order given.
 * Each row gets a patient of its own unless it names one (the open-row guard allows one open row per
 * patient, bill and field).
 */
export async function insertRows(db: Database, rows: readonly BeyondRow[], chunk = 5_000): Promise<number[]> {
  const ids: number[] = [];
  for (let from = 0; from < rows.length; from += chunk) {
    const part = rows.slice(from, from + chunk);
    const em = db.em();
    const values = part.flatMap((r) => {
      const field = FIELDS[r.fieldId ?? 1]!;
      const created = r.createdAt ?? new Date();
      const resolved = r.resolvedAt ?? null;
      return [
        r.labId,
        r.orgId ?? null,
        r.userDetailsId ?? nextPatient++,
        field.module === 'bill' ? (r.billId ?? nextPatient++) : null,
        r.fieldId ?? 1,
        field.name,
        r.fieldValue ?? 'noemail@lab.in',
        field.module,
        resolved ? 1 : 0,
        resolved instanceof Date ? dbTime(resolved) : resolved,
        resolved ? (r.resolvedByLabUserId ?? null) : null,
        created instanceof Date ? dbTime(created) : created,
        created instanceof Date ? dbTime(created) : created,
        null,
      ];
    });
    const result = await em.execute<{ insertId: number | string; affectedRows: number }>(
      `INSERT INTO LabMissingDetails (lab_id, org_id, user_details_id, bill_id, field_id, field_name, field_value,
  field_module, is_resolved, resolved_at, resolved_by_lab_user_id, created_at, updated_at, config_id)
VALUES ${part.map(() => TUPLE).join(', ')}`,
      values,
      'run',
    );
    // The test's labs are its own: their rows from the first new id on are this statement's, in order.
    const labs = [...new Set(part.map((r) => r.labId))];
    const inserted = await em.execute<Array<{ id: number | string }>>(
      `SELECT id FROM LabMissingDetails WHERE id >= ? AND lab_id IN (${labs.map(() => '?').join(', ')}) ORDER BY id LIMIT ?`,
      [Number(result.insertId), ...labs, part.length],
    );
    ids.push(...inserted.map((row) => Number(row.id)));
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Real HTTP and seeded open rows

/** Makes the test app listen on a free loopback port, for clients that speak real HTTP. */
export async function listen(t: TestApp): Promise<string> {
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}

/** Open missing-email rows of a lab, one per patient, as captures would leave them. */
export async function seedOpenEmailRows(
  db: Database,
  labId: number,
  patients: readonly number[],
): Promise<void> {
  const now = new Date();
  const em = db.em();
  for (const userDetailsId of patients) {
    await em.insert(LabMissingDetails, {
      labId,
      orgId: null,
      userDetailsId,
      billId: null,
      fieldId: 1,
      configId: null,
      fieldName: 'email',
      fieldValue: 'noemail@lab.in',
      fieldModule: 'patient',
      isResolved: false,
      createdAt: now,
      updatedAt: now,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Scratch databases

export interface ScratchDatabase {
  /** Its URL, next to the test database's. */
  url: string;
  /** Drops it (call once, after closing every connection to it). */
  drop(): Promise<void>;
}

/**
 * A database of a test file's own (`<prefix>_<pid>_<random>`), created empty, for migrations run
 * step by step or tables changed in ways other files must not see.
 */
export async function createScratchDatabase(prefix: string): Promise<ScratchDatabase> {
  const url = new URL(testDatabaseUrl().replace(/^mariadb:/, 'mysql:'));
  const name = `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
  url.pathname = `/${name}`;
  await ensureDatabaseExists(url.toString());
  return {
    url: url.toString(),
    async drop() {
      const admin = await mysql.createConnection({ uri: url.toString().replace(`/${name}`, '/') });
      try {
        await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await admin.end();
      }
    },
  };
}
