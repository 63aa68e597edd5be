import mysql from 'mysql2/promise';
import { databaseName, ensureDatabaseExists, initOrm, migrateUp } from '../src/db/orm.js';
import { BENCH_FIELDS } from './bench-fields.js';
import { ProgressBar } from './progress.js';

/**
 * The benchmark's dataset: every lab with its configs, and LabMissingDetails rows as a lab system
 * accumulates them (patients saved with placeholders, bills with placeholder insurances, most rows
 * resolved later, a few fields reopened after an earlier resolution). Deterministic for a profile:
 * a seeded generator, rows inserted in `created_at` order so ids grow with time across labs as they
 * do in production.
 */

export interface DatasetProfile {
  readonly name: 'full' | 'quick';
  readonly labs: number;
  readonly rows: number;
  /** Lab 1, the large lab every list scenario reads. */
  readonly largeLabRows: number;
  /** Share of the large lab's rows that are resolved: enough for the deep page of the resolved list. */
  readonly largeLabResolvedShare: number;
  /** Share of all rows that are resolved. */
  readonly resolvedShare: number;
  /** How deep (rows) the deep-page scenario pages into the large lab's resolved list. */
  readonly deepPageDepth: number;
}

export const PROFILES: Readonly<Record<DatasetProfile['name'], DatasetProfile>> = {
  full: {
    name: 'full',
    labs: 1_000,
    rows: 1_000_000,
    largeLabRows: 200_000,
    largeLabResolvedShare: 0.8,
    resolvedShare: 0.7,
    deepPageDepth: 150_000,
  },
  quick: {
    name: 'quick',
    labs: 100,
    rows: 100_000,
    largeLabRows: 20_000,
    largeLabResolvedShare: 0.8,
    resolvedShare: 0.7,
    deepPageDepth: 15_000,
  },
};

/** Bumped whenever the generator changes what it builds, so an older dataset is rebuilt. */
export const GENERATOR_VERSION = 1;
export const LARGE_LAB_ID = 1;
const SEED = 20_260_101;
const DEFAULT_BENCH_DATABASE_URL = 'mysql://root@127.0.0.1:3306/md_bench';

/**
 * The benchmark's own database: BENCH_DATABASE_URL (default md_bench), and `<name>_quick` for the quick
 * profile, so a quick run never replaces the full dataset. Never a test or development database.
 */
export function benchDatabaseUrl(profile: DatasetProfile, env = process.env): string {
  const base = env.BENCH_DATABASE_URL || DEFAULT_BENCH_DATABASE_URL;
  const url = new URL(base.replace(/^mariadb:/, 'mysql:'));
  if (profile.name === 'quick') url.pathname = `${url.pathname}_quick`;
  const name = databaseName(url.toString());
  if (!/^[A-Za-z0-9_]+$/.test(name) || /test/i.test(name) || name === 'missing_details') {
    throw new Error(
      `BENCH_DATABASE_URL must name a database of the benchmark's own (got "${name}"): never the test or development database`,
    );
  }
  return url.toString();
}

/** The templates of the catalog (migration 20260101000000) with the placeholder every bench lab uses. */
export const BENCH_TEMPLATES = [
  { id: 1, name: 'email', module: 'patient', category: 'text', placeholder: 'noemail@lab.in' },
  { id: 2, name: 'mobile', module: 'patient', category: 'text', placeholder: '9999999999' },
  { id: 3, name: 'dob', module: 'patient', category: 'text', placeholder: '1900-01-01' },
  { id: 4, name: 'address', module: 'patient', category: 'text', placeholder: 'NA' },
  { id: 5, name: 'referral_doctor', module: 'patient', category: 'entity', placeholder: 'Dr. Unknown' },
  { id: 6, name: 'organization', module: 'patient', category: 'entity', placeholder: 'Unknown organization' },
  { id: 7, name: 'insurance', module: 'bill', category: 'entity', placeholder: 'Self pay (missing)' },
  { id: 8, name: 'group', module: 'bill', category: 'entity', placeholder: 'General (missing)' },
  { id: 9, name: 'sample_collector', module: 'bill', category: 'text', placeholder: 'NA' },
] as const;
export type BenchTemplate = (typeof BENCH_TEMPLATES)[number];

const ENTITY_TYPE_BY_TEMPLATE: Record<string, string> = {
  referral_doctor: 'referral_doctor',
  organization: 'organization',
  insurance: 'insurance',
  group: 'group',
};

/** Config ids are fixed by the generator: lab L, template T has id (L - 1) * 9 + T. */
export function configIdOf(labId: number, fieldId: number): number {
  return (labId - 1) * BENCH_TEMPLATES.length + fieldId;
}
export const userDetailsIdOf = (labId: number, patient: number) => labId * 1_000_000 + patient;
const billIdOf = (labId: number, bill: number) => labId * 1_000_000 + 500_000 + bill;
const orgIdOf = (labId: number, org: number) => labId * 100 + org;
const labUserIdOf = (labId: number, user: number) => labId * 1_000 + user;

/** mulberry32: small, fast, and the same sequence on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const pad = (value: number, width = 2) => String(value).padStart(width, '0');

/** Microseconds since the epoch to a UTC `datetime(6)` literal. */
export function dbTimestamp(micros: number): string {
  const d = new Date(Math.floor(micros / 1000));
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(micros % 1_000_000, 6)}`
  );
}

/** Rows held column-wise in typed arrays: a million rows stay around 40 MB. */
class RowColumns {
  readonly lab: Int32Array;
  readonly patient: Int32Array;
  readonly bill: Int32Array;
  readonly org: Int32Array;
  readonly field: Uint8Array;
  readonly resolved: Uint8Array;
  readonly createdAt: Float64Array;
  readonly resolvedAt: Float64Array;
  /** 1: a lab user resolved it, 2: a doctor. */
  readonly resolverKind: Uint8Array;
  readonly resolverId: Int32Array;
  length = 0;

  constructor(readonly capacity: number) {
    this.lab = new Int32Array(capacity);
    this.patient = new Int32Array(capacity);
    this.bill = new Int32Array(capacity);
    this.org = new Int32Array(capacity);
    this.field = new Uint8Array(capacity);
    this.resolved = new Uint8Array(capacity);
    this.createdAt = new Float64Array(capacity);
    this.resolvedAt = new Float64Array(capacity);
    this.resolverKind = new Uint8Array(capacity);
    this.resolverId = new Int32Array(capacity);
  }
}

/** How many rows each lab gets: the large lab its share, the others a skewed (log-normal) spread. */
function rowsPerLab(profile: DatasetProfile, random: () => number): number[] {
  const others = profile.labs - 1;
  const weights = Array.from({ length: others }, () => {
    const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    return Math.exp(normal);
  });
  const total = weights.reduce((sum, w) => sum + w, 0);
  const remaining = profile.rows - profile.largeLabRows;
  const counts = weights.map((w) => Math.max(10, Math.floor((remaining * w) / total)));
  // Rounding and the floor of 10 leave a difference: the biggest of the other labs absorbs it.
  const diff = remaining - counts.reduce((sum, c) => sum + c, 0);
  const biggest = counts.indexOf(Math.max(...counts));
  counts[biggest] = (counts[biggest] ?? 0) + diff;
  return [profile.largeLabRows, ...counts];
}

const HISTORY_SHARE = 0.1;
const TWO_YEARS_MICROS = 2 * 365 * 24 * 3600 * 1_000_000;
const HOUR_MICROS = 3600 * 1_000_000;

/**
 * Generates one lab's rows: patients saved one after another, each save leaving 1 to 5 fields on a
 * placeholder (bill fields on one of the patient's bills), all rows of one save sharing its
 * `created_at`. Each open slot (patient, bill, field) holds one row at most; a tenth of the slots also
 * carry an older, resolved row (the field was missing before, was fixed, and came back).
 */
function generateLab(
  rows: RowColumns,
  labId: number,
  count: number,
  resolvedShare: number,
  endMicros: number,
  random: () => number,
): void {
  const target = rows.length + count;
  const primaryResolvedChance = (resolvedShare - HISTORY_SHARE) / (1 - HISTORY_SHARE);
  const orgs = 1 + Math.floor(random() * 20);
  const users = 1 + Math.floor(random() * 30);
  let patient = 0;
  let bill = 0;
  const push = (p: number, b: number, org: number, field: number, created: number, resolved: boolean) => {
    const i = rows.length++;
    rows.lab[i] = labId;
    rows.patient[i] = userDetailsIdOf(labId, p);
    rows.bill[i] = b === 0 ? 0 : billIdOf(labId, b);
    rows.org[i] = org;
    rows.field[i] = field;
    rows.createdAt[i] = created;
    if (resolved) {
      rows.resolved[i] = 1;
      const after = HOUR_MICROS + Math.floor(random() * 30 * 24 * HOUR_MICROS);
      rows.resolvedAt[i] = Math.min(endMicros - 1, created + after);
      const doctor = random() < 0.3;
      rows.resolverKind[i] = doctor ? 2 : 1;
      rows.resolverId[i] = doctor
        ? labId * 1_000 + 900 + Math.floor(random() * 50)
        : labUserIdOf(labId, 1 + Math.floor(random() * users));
    }
  };
  while (rows.length < target) {
    patient += 1;
    const org = random() < 0.4 ? orgIdOf(labId, 1 + Math.floor(random() * orgs)) : 0;
    // Recent months are busier than two years ago.
    const age = Math.floor(random() ** 2 * TWO_YEARS_MICROS);
    const savedAt = endMicros - age - 1 - Math.floor(random() * 1_000_000);
    const fields = 1 + Math.min(4, Math.floor(-Math.log(1 - random()) * 1.2));
    const taken = new Set<number>();
    const patientBill = random() < 0.5 ? ++bill : 0;
    for (let f = 0; f < fields && rows.length < target; f++) {
      let field = 1 + Math.floor(random() * (patientBill ? 9 : 6));
      while (taken.has(field)) field = (field % (patientBill ? 9 : 6)) + 1;
      taken.add(field);
      const slotBill = field >= 7 ? patientBill : 0;
      if (random() < HISTORY_SHARE / (1 - HISTORY_SHARE) && rows.length + 1 < target) {
        const earlier = savedAt - HOUR_MICROS - Math.floor(random() * 60 * 24 * HOUR_MICROS);
        push(patient, slotBill, org, field, Math.max(endMicros - TWO_YEARS_MICROS, earlier), true);
      }
      push(patient, slotBill, org, field, savedAt, random() < primaryResolvedChance);
    }
  }
}

export interface DatasetInfo {
  profile: DatasetProfile['name'];
  labs: number;
  rows: number;
  resolvedRows: number;
  largeLabId: number;
  largeLabRows: number;
  deepPageDepth: number;
  generatorVersion: number;
  builtAt: string;
  buildSeconds: number;
}

const INFO_TABLE = 'bench_dataset_info';

/** The dataset the database holds, or null when it holds none (or an older generator's). */
export async function readDatasetInfo(databaseUrl: string): Promise<DatasetInfo | null> {
  let connection: mysql.Connection;
  try {
    connection = await mysql.createConnection({ uri: databaseUrl, connectTimeout: 2_000 });
  } catch (error) {
    if ((error as { code?: string }).code === 'ER_BAD_DB_ERROR') return null;
    throw error;
  }
  try {
    const [rows] = await connection.query(`SELECT info FROM ${INFO_TABLE}`);
    const info = (rows as Array<{ info: string }>)[0]?.info;
    if (!info) return null;
    const parsed = JSON.parse(info) as DatasetInfo;
    return parsed.generatorVersion === GENERATOR_VERSION ? parsed : null;
  } catch (error) {
    if ((error as { code?: string }).code === 'ER_NO_SUCH_TABLE') return null;
    throw error;
  } finally {
    await connection.end();
  }
}

const ROW_COLUMNS =
  '(lab_id, org_id, user_details_id, bill_id, field_id, config_id, field_name, field_value, field_module, ' +
  'is_resolved, resolved_at, resolved_by_doctor_id, resolved_by_lab_user_id, created_at, updated_at)';

function rowValues(rows: RowColumns, i: number, literals: readonly string[]): string {
  const lab = rows.lab[i]!;
  const field = rows.field[i]!;
  const created = `'${dbTimestamp(rows.createdAt[i]!)}'`;
  const resolved = rows.resolved[i] === 1;
  const resolvedAt = resolved ? `'${dbTimestamp(rows.resolvedAt[i]!)}'` : 'NULL';
  const doctor = resolved && rows.resolverKind[i] === 2 ? rows.resolverId[i] : 'NULL';
  const labUser = resolved && rows.resolverKind[i] === 1 ? rows.resolverId[i] : 'NULL';
  const bill = rows.bill[i] === 0 ? 'NULL' : rows.bill[i];
  const org = rows.org[i] === 0 ? 'NULL' : rows.org[i];
  return `(${lab},${org},${rows.patient[i]},${bill},${field},${configIdOf(lab, field)},${literals[field]},${resolved ? 1 : 0},${resolvedAt},${doctor},${labUser},${created},${resolved ? resolvedAt : created})`;
}

export interface BuildOptions {
  /** Rows per INSERT statement. */
  batchRows?: number;
  /** INSERT statements in flight at once. */
  parallel?: number;
  progress?: boolean;
}

/**
 * Builds the profile's dataset from scratch in its own database: drops and recreates it, runs the
 * service's migrations, inserts configs and rows with multi-row INSERTs, then records what it built.
 */
export async function buildDataset(
  profile: DatasetProfile,
  databaseUrl: string,
  options: BuildOptions = {},
): Promise<DatasetInfo> {
  const started = performance.now();
  const batchRows = options.batchRows ?? 2_000;
  const parallel = options.parallel ?? 2;
  const name = databaseName(databaseUrl);
  const server = new URL(databaseUrl);
  server.pathname = '/';
  const admin = await mysql.createConnection({ uri: server.toString() });
  await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await admin.end();
  await ensureDatabaseExists(databaseUrl);
  const orm = await initOrm({ databaseUrl, poolSize: 2 });
  try {
    await migrateUp(orm);
  } finally {
    await orm.close(true);
  }

  const random = seededRandom(SEED + (profile.name === 'full' ? 0 : 1));
  const endMicros = Math.floor(Date.UTC(2026, 0, 1) / 1000) * 1000 * 1000;
  const counts = rowsPerLab(profile, random);
  const rows = new RowColumns(profile.rows);
  const otherShare =
    (profile.resolvedShare * profile.rows - profile.largeLabResolvedShare * profile.largeLabRows) /
    (profile.rows - profile.largeLabRows);
  counts.forEach((count, index) => {
    const labId = index + 1;
    const share = labId === LARGE_LAB_ID ? profile.largeLabResolvedShare : otherShare;
    generateLab(rows, labId, count, share, endMicros, random);
  });

  // Time order, so that ids grow with created_at across labs as they do in production.
  const order = new Uint32Array(rows.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => rows.createdAt[a]! - rows.createdAt[b]! || a - b);

  const pool = mysql.createPool({
    uri: databaseUrl,
    connectionLimit: parallel + 1,
    multipleStatements: false,
  });
  try {
    await insertBenchTemplates(pool);
    await insertConfigs(pool, profile, endMicros);
    const literals = [
      '',
      ...BENCH_TEMPLATES.map(
        (t) => `${pool.escape(t.name)},${pool.escape(t.placeholder)},${pool.escape(t.module)}`,
      ),
    ];
    const bar =
      options.progress === false ? undefined : new ProgressBar('LabMissingDetails rows', rows.length);
    let next = 0;
    const worker = async () => {
      const connection = await pool.getConnection();
      try {
        await connection.query('SET SESSION foreign_key_checks = 0');
        while (next < order.length) {
          const from = next;
          const to = Math.min(order.length, from + batchRows);
          next = to;
          const values: string[] = [];
          for (let k = from; k < to; k++) values.push(rowValues(rows, order[k]!, literals));
          await connection.query(`INSERT INTO LabMissingDetails ${ROW_COLUMNS} VALUES ${values.join(',')}`);
          bar?.tick(to - from);
        }
      } finally {
        connection.release();
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    bar?.done();

    let resolvedRows = 0;
    for (let i = 0; i < rows.length; i++) resolvedRows += rows.resolved[i]!;
    const info: DatasetInfo = {
      profile: profile.name,
      labs: profile.labs,
      rows: rows.length,
      resolvedRows,
      largeLabId: LARGE_LAB_ID,
      largeLabRows: counts[0]!,
      deepPageDepth: profile.deepPageDepth,
      generatorVersion: GENERATOR_VERSION,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((performance.now() - started) / 100) / 10,
    };
    await pool.query('ANALYZE TABLE LabMissingDetails, LabMissingDetailsConfiguration');
    await pool.query(`CREATE TABLE ${INFO_TABLE} (info longtext NOT NULL)`);
    await pool.query(`INSERT INTO ${INFO_TABLE} (info) VALUES (?)`, [JSON.stringify(info)]);
    return info;
  } finally {
    await pool.end();
  }
}

/** The synthetic patient templates of the capture scenarios (bench/bench-fields.ts); no dataset lab uses them. */
async function insertBenchTemplates(pool: mysql.Pool): Promise<void> {
  const at = `'2025-01-01 00:00:00.000000'`;
  const values = BENCH_FIELDS.map(
    (f, i) =>
      `(${f.id},${pool.escape(f.name)},${pool.escape(`Benchmark field ${i + 1}`)},'patient','text',NULL,'text',${1_000 + i},1,${at},${at})`,
  );
  await pool.query(
    `INSERT INTO MissingDetailsTemplates (id, name, display_name, module, category, entity_type, input_type, sort_order,
       is_active, created_at, updated_at) VALUES ${values.join(',')}`,
  );
}

/**
 * Every lab configures every active template; one config in twelve is disabled. Entity configs have
 * their placeholder entity (LabInsurance / LabGroup rows for the local types, an id from PY-2 for the
 * others) and its MissingDetailsEntityCreation trace, as a config save leaves them.
 */
async function insertConfigs(pool: mysql.Pool, profile: DatasetProfile, endMicros: number): Promise<void> {
  const random = seededRandom(SEED + 7);
  const configuredAt = `'${dbTimestamp(endMicros - TWO_YEARS_MICROS - 30 * 24 * HOUR_MICROS)}'`;
  const configs: string[] = [];
  const traces: string[] = [];
  const insurances: string[] = [];
  const groups: string[] = [];
  for (let labId = 1; labId <= profile.labs; labId++) {
    for (const template of BENCH_TEMPLATES) {
      const id = configIdOf(labId, template.id);
      const entityType = ENTITY_TYPE_BY_TEMPLATE[template.name];
      const objectId = entityType ? id : null;
      const disabled = labId !== LARGE_LAB_ID && random() < 1 / 12 ? 1 : 0;
      configs.push(
        `(${id},${labId},${template.id},${pool.escape(template.name)},${pool.escape(template.placeholder)},` +
          `${pool.escape(template.module)},${pool.escape(template.category)},${objectId ?? 'NULL'},${disabled},` +
          `${labUserIdOf(labId, 1)},${labUserIdOf(labId, 1)},${configuredAt},${configuredAt})`,
      );
      if (entityType && objectId !== null) {
        traces.push(`(${id},${pool.escape(entityType)},${objectId},${labId},NULL,${configuredAt})`);
        const entity = `(${objectId},${labId},${pool.escape(template.placeholder)},1,${configuredAt})`;
        if (entityType === 'insurance') insurances.push(entity);
        if (entityType === 'group') groups.push(entity);
      }
    }
  }
  const chunks = <T>(items: T[], size: number) =>
    Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
  for (const part of chunks(configs, 2_000)) {
    await pool.query(
      `INSERT INTO LabMissingDetailsConfiguration (id, lab_id, field_id, field_name, field_value, field_module,
        field_category, entity_object_id, is_disabled, created_by_lab_user_id, updated_by_lab_user_id, created_at, updated_at)
       VALUES ${part.join(',')}`,
    );
  }
  for (const part of chunks(traces, 2_000)) {
    await pool.query(
      `INSERT INTO MissingDetailsEntityCreation (config_id, entity_name, object_id, lab_id, org_id, created_at) VALUES ${part.join(',')}`,
    );
  }
  for (const [table, entities] of [
    ['LabInsurance', insurances],
    ['LabGroup', groups],
  ] as const) {
    for (const part of chunks(entities, 2_000)) {
      await pool.query(
        `INSERT INTO ${table} (id, lab_id, name, is_active, created_at) VALUES ${part.join(',')}`,
      );
    }
  }
}
