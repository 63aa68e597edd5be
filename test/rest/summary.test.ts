import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Migration20260103000000ResolutionReasons,
  SUMMARY_INDEX,
} from '../../migrations/20260103000000-resolution-reasons.js';
import type { TokenClaims } from '../../src/auth/token.js';
import { ensureDatabaseExists, initOrm } from '../../src/db/orm.js';
import { openByFieldQuery, resolvedWindowQuery } from '../../src/repositories/summary.repository.js';
import { testDatabaseUrl } from '../support/env.js';
import {
  authHeader,
  dbTime,
  hoursAgo,
  insertRows,
  newLabId,
  principalFor,
  startTestApp,
  type TestApp,
} from '../support/fixtures.js';

const SUMMARY = '/api-v3/account/missing-details/summary';
const LIST = '/api-v3/account/missing-details/lab-fields';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

async function summary(claims: TokenClaims, query = '') {
  return t.app.inject({ url: `${SUMMARY}${query}`, headers: await authHeader(claims) });
}

async function post(claims: TokenClaims, url: string, body: unknown) {
  return t.app.inject({
    method: url.startsWith('/trpc') ? 'POST' : 'PATCH',
    url,
    headers: { ...(await authHeader(claims)), 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });
}

const aging = (underOneDay: number, oneToSevenDays: number, overSevenDays: number) => ({
  under_one_day: underOneDay,
  one_to_seven_days: oneToSevenDays,
  over_seven_days: overSevenDays,
});

describe('GET /api-v3/account/missing-details/summary: open rows', () => {
  it('counts the open rows by field and module, each with its age buckets', async () => {
    const labId = newLabId();
    await insertRows(t.db, [
      { labId, fieldId: 1, createdAt: hoursAgo(2) },
      { labId, fieldId: 1, createdAt: hoursAgo(3 * 24) },
      { labId, fieldId: 2, createdAt: hoursAgo(3 * 24) },
      { labId, fieldId: 7, createdAt: hoursAgo(10 * 24) },
      { labId, fieldId: 7, createdAt: hoursAgo(30 * 24) },
      // Resolved rows are not in the queue.
      { labId, fieldId: 1, createdAt: hoursAgo(5), resolvedAt: hoursAgo(1) },
    ]);
    const res = await summary({ labId, userId: 7 });
    expect(res.statusCode, res.body).toBe(200);
    const { open } = res.json();
    expect(open).toEqual({
      total: 5,
      aging: aging(1, 2, 2),
      by_module: [
        { module: 'patient', total: 3, aging: aging(1, 2, 0) },
        { module: 'bill', total: 2, aging: aging(0, 0, 2) },
      ],
      by_field: [
        {
          field_id: 1,
          field_name: 'email',
          display_name: 'Patient email',
          module: 'patient',
          total: 2,
          aging: aging(1, 1, 0),
        },
        {
          field_id: 2,
          field_name: 'mobile',
          display_name: 'Patient mobile',
          module: 'patient',
          total: 1,
          aging: aging(0, 1, 0),
        },
        {
          field_id: 7,
          field_name: 'insurance',
          display_name: 'Insurance company',
          module: 'bill',
          total: 2,
          aging: aging(0, 0, 2),
        },
      ],
      overdue: 0,
      by_assignee: [{ assignee_user_id: null, total: 5, overdue: 0 }],
    });
  });

  it('counts only the caller organization for an org-scoped caller, and nothing of another lab', async () => {
    const labId = newLabId();
    await insertRows(t.db, [
      { labId, orgId: 9, createdAt: hoursAgo(1) },
      { labId, orgId: 10, createdAt: hoursAgo(1) },
      { labId, orgId: null, createdAt: hoursAgo(1) },
      { labId: newLabId(), orgId: 9, createdAt: hoursAgo(1) },
    ]);
    expect((await summary({ labId, userId: 7, orgId: 9 })).json().open.total).toBe(1);
    expect((await summary({ labId, userId: 7 })).json().open.total).toBe(3);
    const empty = (await summary({ labId: newLabId(), userId: 7 })).json();
    expect(empty.open).toEqual({
      total: 0,
      aging: aging(0, 0, 0),
      by_module: [],
      by_field: [],
      overdue: 0,
      by_assignee: [],
    });
    expect(empty.resolved).toMatchObject({
      total: 0,
      by_hand_share: null,
      time_to_resolve_seconds: { median: null, p90: null },
    });
  });
});

describe('GET /api-v3/account/missing-details/summary: resolutions', () => {
  it('gives the median and p90 time to resolve over the chosen window (nearest rank)', async () => {
    const labId = newLabId();
    const resolvedAt = new Date('2023-06-15T12:00:00Z');
    await insertRows(t.db, [
      // Ten resolutions that took 1 … 10 hours, inside the window.
      ...Array.from({ length: 10 }, (_, i) => ({
        labId,
        createdAt: hoursAgo(i + 1, resolvedAt.getTime()),
        resolvedAt,
      })),
      // Outside the window on either side.
      { labId, createdAt: '2023-05-01 00:00:00.000000', resolvedAt: '2023-05-31 23:59:59.999999' },
      { labId, createdAt: '2023-06-01 00:00:00.000000', resolvedAt: '2023-07-01 00:00:00.000000' },
    ]);
    const res = await summary({ labId, userId: 7 }, '?resolved_from=2023-06-01&resolved_to=2023-06-30');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().resolved).toEqual({
      from: '2023-06-01T00:00:00.000000Z',
      to: '2023-06-30T23:59:59.999999Z',
      total: 10,
      by_hand: 0,
      automatic: 0,
      // Resolved long before the service recorded manual resolutions: not guessed either way.
      untracked: 10,
      by_hand_share: null,
      automatic_share: null,
      time_to_resolve_seconds: { median: 5 * 3600, p90: 9 * 3600 },
      by_reason: [],
      tracked_since: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/),
    });
  });

  it('tells resolutions by hand (with their reasons) from those the engine made when a real value arrived', async () => {
    const labId = newLabId();
    const claims = { labId, userId: 7 };
    const patient = 4_400_000 + Math.floor(Math.random() * 100_000);
    const [declined, plain, stillOpen, engineResolved] = await insertRows(t.db, [
      { labId, createdAt: hoursAgo(5) },
      { labId, createdAt: hoursAgo(5) },
      { labId, createdAt: hoursAgo(5) },
      { labId, userDetailsId: patient, createdAt: hoursAgo(5) },
    ]);
    expect(
      (await post(claims, LIST, { ids: [declined], is_resolved: true, reason_code: 'asked-declined' }))
        .statusCode,
    ).toBe(200);
    expect((await post(claims, LIST, { ids: [plain], is_resolved: true })).statusCode).toBe(200);
    // The runtime engine resolves the row when the patient is saved with a real email.
    const captured = await post(claims, '/trpc/capture.patient', {
      userDetailsId: patient,
      values: { email: 'asha@example.com' },
    });
    expect(captured.statusCode, captured.body).toBe(200);
    expect(captured.json().result.data).toMatchObject({ resolved: 1 });
    const rows = await t.db
      .em()
      .execute<Array<{ id: number; is_resolved: number }>>(
        'SELECT id, is_resolved FROM LabMissingDetails WHERE id IN (?, ?)',
        [stillOpen, engineResolved],
      );
    expect(rows.map((r) => [Number(r.id), r.is_resolved])).toEqual([
      [stillOpen, 0],
      [engineResolved, 1],
    ]);

    const { resolved, open } = (await summary(claims)).json();
    expect(open.total).toBe(1);
    expect(resolved).toMatchObject({
      total: 3,
      by_hand: 2,
      automatic: 1,
      untracked: 0,
      by_hand_share: 0.6667,
      automatic_share: 0.3333,
      by_reason: [
        { reason_code: 'asked-declined', count: 1 },
        { reason_code: null, count: 1 },
      ],
    });
    // About five hours each (the rows were opened five hours ago and resolved just now).
    expect(resolved.time_to_resolve_seconds.median).toBeGreaterThanOrEqual(5 * 3600);
    expect(resolved.time_to_resolve_seconds.median).toBeLessThan(5 * 3600 + 120);

    // A reopened row is no longer counted anywhere among the resolutions.
    await post(claims, LIST, { ids: [declined], is_resolved: false });
    expect((await summary(claims)).json().resolved).toMatchObject({
      total: 2,
      by_hand: 1,
      automatic: 1,
      by_reason: [{ reason_code: null, count: 1 }],
    });
  });

  it('counts a row reopened and then resolved by the engine as automatic, without its earlier reason', async () => {
    const labId = newLabId();
    const claims = { labId, userId: 7 };
    const patient = 4_500_000 + Math.floor(Math.random() * 100_000);
    const [id] = await insertRows(t.db, [{ labId, userDetailsId: patient, createdAt: hoursAgo(5) }]);
    await post(claims, LIST, { ids: [id], is_resolved: true, reason_code: 'asked-declined' });
    expect((await summary(claims)).json().resolved).toMatchObject({ by_hand: 1, automatic: 0 });

    await post(claims, LIST, { ids: [id], is_resolved: false });
    const captured = await post(claims, '/trpc/capture.patient', {
      userDetailsId: patient,
      values: { email: 'asha@example.com' },
    });
    expect(captured.json().result.data).toMatchObject({ resolved: 1 });

    expect((await summary(claims)).json().resolved).toMatchObject({
      total: 1,
      by_hand: 0,
      automatic: 1,
      by_reason: [],
    });
    const listed = await t.app.inject({ url: `${LIST}?is_resolved=true`, headers: await authHeader(claims) });
    expect(listed.json().results).toEqual([
      expect.objectContaining({ id, reason_code: null, reason_note: null }),
    ]);
  });

  it('scopes the resolutions and their reasons to the caller organization', async () => {
    const labId = newLabId();
    const [org9, org10] = await insertRows(t.db, [
      { labId, orgId: 9, createdAt: hoursAgo(1) },
      { labId, orgId: 10, createdAt: hoursAgo(1) },
    ]);
    await post({ labId, userId: 7 }, LIST, {
      ids: [org9, org10],
      is_resolved: true,
      reason_code: 'temp-unknown',
    });
    const scoped = (await summary({ labId, userId: 7, orgId: 9 })).json().resolved;
    expect(scoped).toMatchObject({
      total: 1,
      by_hand: 1,
      by_reason: [{ reason_code: 'temp-unknown', count: 1 }],
    });
    const whole = (await summary({ labId, userId: 7 })).json().resolved;
    expect(whole).toMatchObject({
      total: 2,
      by_hand: 2,
      by_reason: [{ reason_code: 'temp-unknown', count: 2 }],
    });
  });

  it('defaults the window to the last 30 days', async () => {
    const labId = newLabId();
    await insertRows(t.db, [
      { labId, createdAt: hoursAgo(24 * 40), resolvedAt: hoursAgo(24 * 29) },
      { labId, createdAt: hoursAgo(24 * 40), resolvedAt: hoursAgo(24 * 31) },
    ]);
    const before = Date.now();
    const { resolved, generated_at } = (await summary({ labId, userId: 7 })).json();
    expect(resolved.total).toBe(1);
    const from = Date.parse(resolved.from);
    const to = Date.parse(resolved.to);
    expect(to - from).toBe(30 * 24 * 3600_000);
    expect(to).toBeGreaterThanOrEqual(before - 1);
    expect(Date.parse(generated_at)).toBe(to);
  });
});

describe('summary input, auth and tRPC', () => {
  it('rejects bad windows and unknown parameters with a 400 naming them', async () => {
    const claims = { labId: newLabId(), userId: 7 };
    const cases: Array<[string, string]> = [
      ['?resolved_from=2024-02-30', 'resolved_from'],
      ['?resolved_to=yesterday', 'resolved_to'],
      ['?resolved_from=2024-03-02&resolved_to=2024-03-01', 'resolved_to'],
      ['?resolved_from=2023-01-01&resolved_to=2024-06-01', 'resolved_to'],
      ['?resolved_from=2020-01-01', 'resolved_from'],
      ['?resolved_from=2999-01-01', 'resolved_from'],
      ['?lab_id=3', 'lab_id'],
      ['?limit=10', 'limit'],
    ];
    for (const [query, path] of cases) {
      const res = await summary(claims, query);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error).toMatchObject({
        code: 'BAD_REQUEST',
        issues: [expect.objectContaining({ path })],
      });
    }
  });

  it('answers 401 without a principal', async () => {
    const res = await t.app.inject({ url: SUMMARY });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('UNAUTHORIZED');
  });

  it('serves the same summary in camelCase as labFields.summary, with BAD_REQUEST issues for bad input', async () => {
    const labId = newLabId();
    await insertRows(t.db, [{ labId, fieldId: 9, createdAt: hoursAgo(30) }]);
    const headers = await authHeader({ labId, userId: 7 });
    const call = (input: unknown) =>
      t.app.inject({
        url: `/trpc/labFields.summary?input=${encodeURIComponent(JSON.stringify(input))}`,
        headers,
      });
    const res = await call({ resolvedFrom: '2024-01-01', resolvedTo: '2024-01-31' });
    expect(res.statusCode, res.body).toBe(200);
    const data = res.json().result.data;
    expect(data.open).toEqual({
      total: 1,
      aging: { underOneDay: 0, oneToSevenDays: 1, overSevenDays: 0 },
      byModule: [
        { module: 'bill', total: 1, aging: { underOneDay: 0, oneToSevenDays: 1, overSevenDays: 0 } },
      ],
      byField: [
        {
          fieldId: 9,
          fieldName: 'sample_collector',
          displayName: 'Sample collected by',
          module: 'bill',
          total: 1,
          aging: { underOneDay: 0, oneToSevenDays: 1, overSevenDays: 0 },
        },
      ],
      overdue: 0,
      byAssignee: [{ assigneeUserId: null, total: 1, overdue: 0 }],
    });
    expect(data.resolved).toMatchObject({
      from: '2024-01-01T00:00:00.000000Z',
      total: 0,
      byHand: 0,
      byReason: [],
    });
    expect((await t.app.inject({ url: '/trpc/labFields.summary' })).statusCode).toBe(401);
    const bad = await call({ resolvedFrom: '2024-02-01', resolvedTo: '2024-01-01' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.data).toMatchObject({ code: 'BAD_REQUEST', issues: [{ path: 'resolvedTo' }] });
  });
});

describe('summary queries', () => {
  interface PlanRow {
    table: string | null;
    type: string | null;
    key: string | null;
    ref?: string | null;
    Extra?: string | null;
  }
  // FORMAT=TRADITIONAL: MySQL 9 answers a bare EXPLAIN as a TREE text, without the columns read here.
  const explain = (sql: string, params: unknown[]) =>
    t.db.em().execute<PlanRow[]>(`EXPLAIN FORMAT=TRADITIONAL ${sql}`, params);

  it('read LabMissingDetails and the resolution records through indexes, never by scanning a table', async () => {
    const labId = newLabId();
    // Enough rows in the lab for the optimizer to care which index it takes.
    const rows = Array.from({ length: 400 }, (_, i) => ({
      labId,
      fieldId: (i % 9) + 1,
      createdAt: hoursAgo(i),
      ...(i % 2 ? { resolvedAt: hoursAgo(i / 2) } : {}),
    }));
    await insertRows(t.db, rows);
    // Fresh statistics: InnoDB's sampled ones lag bulk inserts by seconds, and a plan from stale ones
    // says nothing about production's.
    await t.db.em().execute('ANALYZE TABLE LabMissingDetails');
    for (const principal of [principalFor(labId), principalFor(labId, { orgId: 9 })]) {
      const open = openByFieldQuery(principal, new Date());
      const window = resolvedWindowQuery(
        principal,
        dbTime(hoursAgo(24 * 30)),
        dbTime(new Date()),
        dbTime(new Date()),
      );
      for (const query of [open, window]) {
        const plan = await explain(query.sql, query.params);
        const tables = plan.filter(
          (row) => row.table === 'LabMissingDetails' || row.table === 'r' || row.table === 'd',
        );
        expect(tables.length, JSON.stringify(plan)).toBeGreaterThan(0);
        for (const row of tables) {
          expect(row.type, JSON.stringify(plan)).not.toBe('ALL');
          expect(row.key, JSON.stringify(plan)).not.toBeNull();
        }
      }
      // The manual records of the window as a range of their primary key, each joined to its rows on
      // (lab_id, is_resolved, resolved_at) of the summary index, whatever the caller's scope.
      const windowPlan = await explain(window.sql, window.params);
      expect(
        windowPlan.find((row) => row.table === 'r'),
        JSON.stringify(windowPlan),
      ).toMatchObject({
        type: 'range',
        key: 'PRIMARY',
      });
      expect(
        windowPlan.find((row) => row.table === 'd'),
        JSON.stringify(windowPlan),
      ).toMatchObject({
        type: 'ref',
        key: SUMMARY_INDEX.name,
        ref: expect.stringMatching(/r\.resolved_at$/),
      });
      if (principal.orgId === null) {
        const plan = await explain(open.sql, open.params);
        expect(plan.find((row) => row.table === 'LabMissingDetails')).toMatchObject({
          key: SUMMARY_INDEX.name,
          Extra: expect.stringContaining('Using index'),
        });
      }
    }
  });
});

describe('migration 20260103000000-resolution-reasons', () => {
  it('adds its two tables and the summary index, removes exactly them on down, and reruns as no-ops', async () => {
    const url = new URL(testDatabaseUrl().replace(/^mariadb:/, 'mysql:'));
    const scratch = `md_reasons_${process.pid}_${randomBytes(3).toString('hex')}`;
    url.pathname = `/${scratch}`;
    await ensureDatabaseExists(url.toString());
    const orm = await initOrm({ databaseUrl: url.toString(), poolSize: 1 });
    try {
      // Up to this migration: a later one drops md_lab_field_resolutions.
      await orm.getMigrator().up({ to: 'Migration20260103000000ResolutionReasons' });
      const em = orm.em.fork();
      const schema = async () =>
        (
          await em.execute<Array<{ name: string }>>(
            `SELECT CONCAT('table:', TABLE_NAME) AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
UNION SELECT DISTINCT CONCAT('index:', TABLE_NAME, '.', INDEX_NAME) FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE()`,
          )
        )
          .map((row) => row.name)
          .sort();
      const migration = new Migration20260103000000ResolutionReasons(orm.em.getDriver(), orm.config);
      const run = async (direction: 'up' | 'down') => {
        migration.reset();
        await migration[direction]();
        for (const query of migration.getQueries()) await em.execute(query as string);
      };
      const ours = [
        'table:md_lab_field_resolutions',
        'table:md_resolution_tracking',
        `index:LabMissingDetails.${SUMMARY_INDEX.name}`,
      ];

      const migrated = await schema();
      for (const name of ours) expect(migrated).toContain(name);
      const [tracking] = await em.execute<Array<{ n: number }>>(
        'SELECT COUNT(*) AS n FROM md_resolution_tracking',
      );
      expect(Number(tracking!.n)).toBe(1);

      await run('down');
      const down = await schema();
      expect(
        migrated.filter((name) => !down.includes(name)).filter((name) => !name.startsWith('index:md_')),
      ).toEqual(ours.sort());
      await run('down');
      expect(await schema()).toEqual(down);

      await run('up');
      expect(await schema()).toEqual(migrated);
      await run('up');
      expect(await schema()).toEqual(migrated);
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
