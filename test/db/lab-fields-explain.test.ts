import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LAB_FIELDS_LIST_INDEXES,
  Migration20260102000100LabFieldsListIndex,
} from '../../migrations/20260102000100-lab-fields-list-index.js';
import type { Principal } from '../../src/auth/principal.js';
import { Database, type Em } from '../../src/db/database.js';
import { ensureDatabaseExists, initOrm, migrateUp } from '../../src/db/orm.js';
import { labFieldsPageQuery } from '../../src/repositories/lab-fields.repository.js';
import { patientGroupsQuery } from '../../src/repositories/work-queue.repository.js';
import { billFlags, patientFlags } from '../../src/services/flags.service.js';
import {
  encodeCursor,
  type LabFieldsFilters,
  listLabFieldsInput,
} from '../../src/services/lab-fields.service.js';
import { testDatabaseUrl } from '../support/env.js';
import { newLabId, statementsDuring } from '../support/fixtures.js';

const INDEX_NAMES: string[] = LAB_FIELDS_LIST_INDEXES.map((index) => index.name);
const [PLAIN_INDEX, ORG_INDEX, PATIENT_INDEX, BILL_INDEX] = INDEX_NAMES;

const SEEDED_ROWS_PER_LAB = 3000;
const OTHER_LABS = 3;

let db: Database;
let labId: number;
beforeAll(async () => {
  db = new Database(await initOrm({ databaseUrl: testDatabaseUrl(), poolSize: 2 }));
  labId = newLabId();
  // Enough rows that, without the list indexes, the optimizer reads the whole lab and sorts it.
  for (const lab of [labId, ...Array.from({ length: OTHER_LABS }, () => newLabId())]) {
    await seedLab(db.em(), lab, SEEDED_ROWS_PER_LAB);
  }
  await db.em().execute('ANALYZE TABLE LabMissingDetails');
});
afterAll(async () => {
  await db.close();
});

async function seedLab(em: Em, lab: number, count: number): Promise<void> {
  const chunk = 1000;
  for (let start = 0; start < count; start += chunk) {
    const rows = Array.from({ length: Math.min(chunk, count - start) }, (_, k) => start + k);
    const values = rows.flatMap((i) => {
      const bill = i % 3 === 0 ? 50_000 + i : null;
      const stamp = `2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')} 10:00:00.${String(i % 1_000_000).padStart(6, '0')}`;
      return [
        lab,
        i % 4 === 0 ? null : 9 + (i % 4),
        10_000 + i,
        bill,
        bill ? 7 : 1 + (i % 4),
        bill ? 'insurance' : 'email',
        'placeholder',
        bill ? 'bill' : 'patient',
        i % 2,
        i % 2 ? stamp : null,
        stamp,
        stamp,
      ];
    });
    await em.execute(
      `INSERT INTO LabMissingDetails (lab_id, org_id, user_details_id, bill_id, field_id, field_name, field_value,
  field_module, is_resolved, resolved_at, created_at, updated_at)
VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      values,
      'run',
    );
  }
}

interface PlanRow {
  table: string;
  type: string;
  key: string | null;
  Extra: string | null;
}

function principal(orgId: number | null = null): Principal {
  return { labId, userId: 7, role: 'lab_user', orgId, via: 'jwt' };
}

function filters(input: Record<string, unknown> = {}): LabFieldsFilters {
  return listLabFieldsInput.parse(input);
}

async function explain(who: Principal, f: LabFieldsFilters, ignoreListIndexes = false): Promise<PlanRow> {
  let { sql, params } = labFieldsPageQuery(who, f);
  if (ignoreListIndexes) {
    sql = sql.replace(
      'FROM LabMissingDetails',
      `FROM LabMissingDetails IGNORE INDEX (${INDEX_NAMES.map((n) => `\`${n}\``).join(', ')})`,
    );
  }
  // FORMAT=TRADITIONAL: MySQL 9 answers a bare EXPLAIN as a TREE text, without the columns read here.
  const plan = await db.em().execute<PlanRow[]>(`EXPLAIN FORMAT=TRADITIONAL ${sql}`, params);
  expect(plan).toHaveLength(1);
  return plan[0]!;
}

function expectServedBy(plan: PlanRow, index: string | undefined): void {
  const extra = plan.Extra ?? '';
  expect(plan.type, JSON.stringify(plan)).not.toBe('ALL');
  expect(plan.type, JSON.stringify(plan)).not.toBe('index');
  expect(extra, JSON.stringify(plan)).not.toMatch(/filesort|temporary/i);
  if (index) expect(plan.key, JSON.stringify(plan)).toBe(index);
  else expect(INDEX_NAMES, JSON.stringify(plan)).toContain(plan.key);
}

describe('the lab-fields list query plans', () => {
  it('read a lab page from the (lab, is_resolved, created_at, id) index without sorting', async () => {
    expectServedBy(await explain(principal(), filters()), PLAIN_INDEX);
    expectServedBy(await explain(principal(), filters({ isResolved: true })), PLAIN_INDEX);
  });

  it("read an org-scoped caller's page from the (lab, org, is_resolved, created_at, id) index", async () => {
    expectServedBy(await explain(principal(9), filters()), ORG_INDEX);
  });

  it("read a patient's page from the (lab, patient, is_resolved, created_at, id) index, also org-scoped", async () => {
    expectServedBy(await explain(principal(), filters({ userDetailsId: 10_004 })), PATIENT_INDEX);
    expectServedBy(await explain(principal(9), filters({ userDetailsId: 10_005 })), undefined);
  });

  it("read a bill's page from the (lab, bill, is_resolved, created_at, id) index", async () => {
    expectServedBy(await explain(principal(), filters({ billId: 50_003 })), BILL_INDEX);
  });

  it('stay on a list index for later pages, date ranges and residual filters', async () => {
    const cursor = encodeCursor({ createdAt: '2024-06-15 10:00:00.001500', id: 2 ** 40 });
    expectServedBy(await explain(principal(), filters({ cursor })), undefined);
    expectServedBy(await explain(principal(9), filters({ cursor, isResolved: true })), undefined);
    expectServedBy(
      await explain(
        principal(),
        filters({ createdFrom: '2024-03-01', createdTo: '2024-05-31', fieldId: [1, 2] }),
      ),
      undefined,
    );
    expectServedBy(await explain(principal(), filters({ fieldModule: 'bill', limit: 200 })), undefined);
  });

  it('would sort the whole lab without those indexes, so the checks above are not vacuous', async () => {
    for (const [who, f] of [
      [principal(), filters()],
      [principal(9), filters()],
      [principal(), filters({ userDetailsId: 10_004 })],
    ] as const) {
      const plan = await explain(who, f, true);
      expect(`${plan.type} ${plan.Extra}`, JSON.stringify(plan)).toMatch(/filesort|^ALL /);
    }
  });
});

describe('migration 20260102000100-lab-fields-list-index', () => {
  it('adds the list indexes, drops only them on down, and adds them again on up (reruns are no-ops)', async () => {
    const url = new URL(testDatabaseUrl().replace(/^mariadb:/, 'mysql:'));
    const scratch = `md_lfidx_${process.pid}_${randomBytes(3).toString('hex')}`;
    url.pathname = `/${scratch}`;
    await ensureDatabaseExists(url.toString());
    const orm = await initOrm({ databaseUrl: url.toString(), poolSize: 1 });
    try {
      await migrateUp(orm);
      const em = orm.em.fork();
      const indexes = async () =>
        new Set(
          (
            await em.execute<{ name: string }[]>(
              `SELECT DISTINCT INDEX_NAME AS name FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'LabMissingDetails'`,
            )
          ).map((r) => r.name),
        );
      const migration = new Migration20260102000100LabFieldsListIndex(orm.em.getDriver(), orm.config);
      const run = async (direction: 'up' | 'down') => {
        migration.reset();
        await migration[direction]();
        const queries = migration.getQueries();
        for (const query of queries) await em.execute(query as string);
        return queries.length;
      };

      const migrated = await indexes();
      for (const name of INDEX_NAMES) expect(migrated).toContain(name);

      expect(await run('down')).toBe(1);
      const down = await indexes();
      for (const name of INDEX_NAMES) expect(down).not.toContain(name);
      expect([...migrated].filter((name) => !INDEX_NAMES.includes(name)).sort()).toEqual([...down].sort());
      expect(await run('down')).toBe(0);

      expect(await run('up')).toBe(1);
      expect(await indexes()).toEqual(migrated);
      expect(await run('up')).toBe(0);
    } finally {
      await orm.close(true);
      const admin = await mysql.createConnection({ uri: url.toString().replace(`/${scratch}`, '/') });
      try {
        await admin.query(`DROP DATABASE IF EXISTS \`${scratch}\``);
      } finally {
        await admin.end();
      }
    }
  });
});

const statementsOf = (call: () => Promise<unknown>) => statementsDuring(db, call);

async function explainAll(sql: string): Promise<PlanRow[]> {
  // FORMAT=TRADITIONAL: MySQL 9 answers a bare EXPLAIN as a TREE text, without the columns read here.
  return db.em().execute<PlanRow[]>(`EXPLAIN FORMAT=TRADITIONAL ${sql}`);
}

describe('the flag query plans', () => {
  const patients = Array.from({ length: 200 }, (_, i) => 10_000 + i * 7);
  const bills = Array.from({ length: 200 }, (_, i) => ({
    billId: 50_000 + i * 3,
    userDetailsId: 10_000 + i * 3,
  }));

  it("read a list's patient flags as index ranges of (lab, patient, is_resolved), never the whole lab", async () => {
    for (const who of [principal(), principal(10)]) {
      const [sql] = await statementsOf(() => patientFlags(db.rootEm(), who, patients));
      const plans = await explainAll(sql!);
      expect(plans).toHaveLength(1);
      expect(plans[0]!.type, JSON.stringify(plans)).toBe('range');
      expect(plans[0]!.key, JSON.stringify(plans)).toBe(PATIENT_INDEX);
    }
  });

  it("read a list's bill flags through the bill and patient indexes, never the whole lab", async () => {
    for (const who of [principal(), principal(10)]) {
      const [sql] = await statementsOf(() => billFlags(db.rootEm(), who, bills));
      const plans = await explainAll(sql!);
      // The bill range, then the patient range of the UNION ALL.
      expect(
        plans.filter((plan) => plan.table === 'LabMissingDetails').map((plan) => [plan.type, plan.key]),
      ).toEqual([
        ['range', BILL_INDEX],
        ['range', PATIENT_INDEX],
      ]);
    }
  });
});

describe('the worklist by patient query plan', () => {
  it('groups the open rows from the (lab, is_resolved, patient, org, created_at) index alone, for every caller and sort', async () => {
    const cursor = {
      sort: 'oldest' as const,
      openCount: 1,
      oldest: '2024-03-01 10:00:00.000000',
      userDetailsId: 10_010,
      orgId: 0,
    };
    for (const who of [principal(), principal(10)]) {
      for (const [sort, after] of [
        ['oldest', undefined],
        ['most', undefined],
        ['oldest', cursor],
        ['most', { ...cursor, sort: 'most' as const }],
      ] as const) {
        const { sql, params } = patientGroupsQuery(who, sort, 50, after);
        const plans = await db.em().execute<PlanRow[]>(`EXPLAIN FORMAT=TRADITIONAL ${sql}`, params);
        const inner = plans.find((plan) => plan.table === 'd')!;
        const label = `${sort} ${JSON.stringify(plans)}`;
        expect(inner.key, label).toBe('LabMissingDetails_lab_resolved_patient_org_idx');
        expect(inner.type, label).toBe('ref');
        // Covering: no table row is read; grouped in index order, so no temporary table.
        expect(inner.Extra ?? '', label).toMatch(/Using index/);
        expect(inner.Extra ?? '', label).not.toMatch(/temporary/i);
      }
    }
  });
});
