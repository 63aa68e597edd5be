import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authHeader,
  newLabId,
  seedConfigs,
  startTestApp,
  statementsDuring,
  type TestApp,
} from '../support/fixtures.js';

const CHECK = '/api-v3/account/missing-details/placeholder-check';
const SETTINGS = '/api-v3/account/missing-details/settings';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

async function check(labId: number, values: unknown, claims: { orgId?: number } = {}) {
  return t.app.inject({
    method: 'POST',
    url: CHECK,
    headers: await authHeader({ labId, userId: 7, ...claims }),
    payload: { values },
  });
}

async function labWithPlaceholders(): Promise<number> {
  const labId = newLabId();
  await seedConfigs(t.db.em(), labId, [
    { field: 'email', value: 'noemail@lab.in' },
    { field: 'mobile', value: '0000000000' },
    { field: 'insurance', value: 'Self pay (missing)', createdEntityIds: [40, 41] },
    { field: 'address', value: 'old placeholder', disabled: true },
  ]);
  return labId;
}

describe('POST /api-v3/account/missing-details/placeholder-check', () => {
  it("answers, in the request's order, which values are the lab's placeholders, by the engine's rules", async () => {
    const labId = await labWithPlaceholders();
    const res = await check(labId, [
      { field_name: 'email', value: '  NoEmail@Lab.in ' },
      { field_name: 'email', value: 'priya@gmail.com' },
      { field_name: 'mobile', value: 0 },
      { field_name: 'mobile', value: '0000000000' },
      { field_name: 'insurance', value: { id: 40, name: 'renamed since' } },
      { field_name: 'insurance', value: { id: 77, name: 'Star Health' } },
      { field_name: 'insurance', value: { name: 'self pay (missing)' } },
      { field_name: 'address', value: 'old placeholder' },
      { field_name: 'dob', value: '1900-01-01' },
    ]);
    expect(res.statusCode, res.body).toBe(200);
    const placeholder = (field_name: string) => ({
      field_name,
      is_placeholder: true,
      detected_as: 'placeholder',
    });
    const real = (field_name: string) => ({ field_name, is_placeholder: false, detected_as: null });
    expect(res.json().results).toEqual([
      placeholder('email'),
      real('email'),
      real('mobile'),
      placeholder('mobile'),
      placeholder('insurance'),
      real('insurance'),
      placeholder('insurance'),
      // A disabled config is no placeholder any more; a field without a config holds none.
      real('address'),
      real('dob'),
    ]);
  });

  it('calls junk junk only once the lab turned junk detection on, with its own extra values', async () => {
    const labId = await labWithPlaceholders();
    const values = [
      { field_name: 'email', value: 'test@example.com' },
      { field_name: 'mobile', value: '1234567890' },
      { field_name: 'mobile', value: 'walk in' },
      { field_name: 'mobile', value: '+91 98450 12345' },
    ];
    const before = await check(labId, values);
    expect(before.json().results.map((r: { detected_as: string | null }) => r.detected_as)).toEqual([
      null,
      null,
      null,
      null,
    ]);
    const put = await t.app.inject({
      method: 'PUT',
      url: SETTINGS,
      headers: await authHeader({ labId, userId: 7 }),
      payload: { junk_detection: true, extra_junk_values: { mobile: ['Walk In'] } },
    });
    expect(put.statusCode, put.body).toBe(200);
    const after = await check(labId, values);
    expect(after.json().results).toEqual([
      { field_name: 'email', is_placeholder: true, detected_as: 'junk' },
      { field_name: 'mobile', is_placeholder: true, detected_as: 'junk' },
      { field_name: 'mobile', is_placeholder: true, detected_as: 'junk' },
      { field_name: 'mobile', is_placeholder: false, detected_as: null },
    ]);
  });

  it('sends at most one statement per call, however many values it checks', async () => {
    const labId = await labWithPlaceholders();
    const values = Array.from({ length: 100 }, (_, i) => ({ field_name: 'email', value: `p${i}@gmail.com` }));
    const first = await statementsDuring(t.db, () => check(labId, values));
    const second = await statementsDuring(t.db, () => check(labId, values));
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(1);
  });

  it("sees another instance's config change at once (the cache key is read in the call's one statement)", async () => {
    const labId = await labWithPlaceholders();
    const email = [{ field_name: 'email', value: 'desk@lab.in' }];
    expect((await check(labId, email)).json().results[0].is_placeholder).toBe(false);
    await seedConfigs(t.db.em(), labId, [{ field: 'email', value: 'desk@lab.in' }]);
    expect((await check(labId, email)).json().results[0].is_placeholder).toBe(true);
  });

  it('refuses bad input with a 400 naming the item, and answers 401 first without a principal', async () => {
    const labId = newLabId();
    const cases: Array<[unknown, string]> = [
      [[], 'values'],
      [Array.from({ length: 101 }, () => ({ field_name: 'email', value: 'x' })), 'values'],
      [[{ field_name: 'passport', value: 'x' }], 'values.0.field_name'],
      [[{ field_name: 'email', value: ['a'] }], 'values.0.value'],
      [[{ field_name: 'email' }], 'values.0.value'],
    ];
    for (const [values, path] of cases) {
      const res = await check(labId, values);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error.issues.map((i: { path: string }) => i.path)).toContain(path);
    }
    const anonymous = await t.app.inject({ method: 'POST', url: CHECK, payload: { values: 'nonsense' } });
    expect(anonymous.statusCode).toBe(401);
  });

  it('answers the same over tRPC placeholders.check in camelCase', async () => {
    const labId = await labWithPlaceholders();
    const res = await t.app.inject({
      method: 'POST',
      url: '/trpc/placeholders.check',
      headers: await authHeader({ labId, userId: 7, orgId: 9 }),
      payload: { values: [{ fieldName: 'email', value: 'noemail@lab.in' }] },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().result.data).toEqual([
      { fieldName: 'email', isPlaceholder: true, detectedAs: 'placeholder' },
    ]);
  });
});
