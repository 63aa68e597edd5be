import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenClaims } from '../../src/auth/token.js';
import {
  authHeader,
  insertRows,
  newLabId,
  startTestApp,
  statementsDuring,
  type TestApp,
} from '../support/fixtures.js';

const PATIENTS = '/api-v3/account/missing-details/patients';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

async function worklist(claims: TokenClaims, query = '') {
  const res = await t.app.inject({ url: `${PATIENTS}?${query}`, headers: await authHeader(claims) });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as {
    results: Array<{
      user_details_id: number;
      org_id: number | null;
      open_count: number;
      oldest_created_at: string;
      fields: unknown[];
    }>;
    next_cursor: string | null;
  };
}

/** Patient 1: three open fields since March; patient 2: one since January; patient 3 (org 9): two since February. */
async function seededLab(): Promise<number> {
  const labId = newLabId();
  await insertRows(t.db, [
    { labId, userDetailsId: 1, fieldId: 1, createdAt: '2024-03-01 10:00:00.000001' },
    { labId, userDetailsId: 1, fieldId: 2, createdAt: '2024-03-02 10:00:00.000000' },
    { labId, userDetailsId: 1, fieldId: 3, createdAt: '2024-03-03 10:00:00.000000' },
    { labId, userDetailsId: 2, fieldId: 1, createdAt: '2024-01-01 10:00:00.000000' },
    { labId, userDetailsId: 3, orgId: 9, fieldId: 1, createdAt: '2024-02-01 10:00:00.000000' },
    { labId, userDetailsId: 3, orgId: 9, fieldId: 4, createdAt: '2024-02-02 10:00:00.000000' },
    // Resolved rows are no work.
    {
      labId,
      userDetailsId: 4,
      fieldId: 1,
      createdAt: '2023-01-01 10:00:00.000000',
      resolvedAt: '2023-01-02 10:00:00.000000',
    },
  ]);
  return labId;
}

describe('GET /api-v3/account/missing-details/patients', () => {
  it('groups the open rows by patient, longest waiting first, with the open fields and their display names', async () => {
    const labId = await seededLab();
    const page = await worklist({ labId, userId: 7 });
    expect(page.results.map((r) => [r.user_details_id, r.open_count])).toEqual([
      [2, 1],
      [3, 2],
      [1, 3],
    ]);
    expect(page.results[1]).toEqual({
      user_details_id: 3,
      org_id: 9,
      open_count: 2,
      oldest_created_at: '2024-02-01T10:00:00.000000Z',
      fields: [
        {
          field_id: 1,
          field_name: 'email',
          display_name: 'Patient email',
          created_at: '2024-02-01T10:00:00.000000Z',
        },
        {
          field_id: 4,
          field_name: 'address',
          display_name: 'Address',
          created_at: '2024-02-02T10:00:00.000000Z',
        },
      ],
    });
    expect(page.next_cursor).toBeNull();
  });

  it('sorts by most open fields with sort=most, and pages through every patient once with the cursor', async () => {
    const labId = await seededLab();
    const most = await worklist({ labId, userId: 7 }, 'sort=most');
    expect(most.results.map((r) => r.user_details_id)).toEqual([1, 3, 2]);
    for (const sort of ['oldest', 'most']) {
      const seen: number[] = [];
      let cursor: string | null = null;
      do {
        const page = await worklist(
          { labId, userId: 7 },
          `sort=${sort}&limit=1${cursor ? `&cursor=${cursor}` : ''}`,
        );
        seen.push(...page.results.map((r) => r.user_details_id));
        cursor = page.next_cursor;
      } while (cursor);
      expect(seen).toEqual(sort === 'most' ? [1, 3, 2] : [2, 3, 1]);
    }
  });

  it("shows an organization user its organization's patients only, and reads in two statements", async () => {
    const labId = await seededLab();
    const page = await worklist({ labId, userId: 7, orgId: 9 });
    expect(page.results.map((r) => r.user_details_id)).toEqual([3]);
    const statements = await statementsDuring(t.db, () => worklist({ labId, userId: 7 }));
    expect(statements).toHaveLength(2);
  });

  it('refuses bad paging with a 400 naming the parameter, and answers 401 first', async () => {
    const labId = await seededLab();
    const first = await worklist({ labId, userId: 7 }, 'sort=most&limit=1');
    const cases: Array<[string, string]> = [
      ['sort=newest', 'sort'],
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['cursor=garbage', 'cursor'],
      [`sort=oldest&cursor=${first.next_cursor}`, 'cursor'],
      ['is_resolved=true', 'is_resolved'],
      ['color=red', 'color'],
    ];
    for (const [query, path] of cases) {
      const res = await t.app.inject({
        url: `${PATIENTS}?${query}`,
        headers: await authHeader({ labId, userId: 7 }),
      });
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error.issues.map((i: { path: string }) => i.path)).toContain(path);
    }
    expect((await t.app.inject({ url: `${PATIENTS}?sort=nonsense` })).statusCode).toBe(401);
  });

  it('answers the same page over tRPC labFields.byPatient in camelCase', async () => {
    const labId = await seededLab();
    const input = encodeURIComponent(JSON.stringify({ sort: 'most', limit: 2 }));
    const res = await t.app.inject({
      url: `/trpc/labFields.byPatient?input=${input}`,
      headers: await authHeader({ labId, userId: 7 }),
    });
    expect(res.statusCode, res.body).toBe(200);
    const data = res.json().result.data;
    expect(
      data.results.map((r: { userDetailsId: number; openCount: number }) => [r.userDetailsId, r.openCount]),
    ).toEqual([
      [1, 3],
      [3, 2],
    ]);
    expect(data.nextCursor).toEqual(expect.any(String));
  });
});
