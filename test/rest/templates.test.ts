import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

describe('GET /api-v3/registration/patients/missing-details-templates', () => {
  it('lists the active templates in sort order, snake_case, for any lab user', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api-v3/registration/patients/missing-details-templates',
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(res.statusCode).toBe(200);
    const { templates } = res.json();
    expect(templates[0]).toEqual({
      id: 1,
      name: 'email',
      display_name: 'Patient email',
      module: 'patient',
      category: 'text',
      entity_type: null,
      input_type: 'email',
      sort_order: 10,
      is_active: true,
    });
    expect(templates.map((x: { id: number }) => x.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('filters by module and includes inactive templates when asked', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const bill = await t.app.inject({
      url: '/api-v3/registration/patients/missing-details-templates?module=bill',
      headers,
    });
    expect(bill.json().templates.map((x: { name: string }) => x.name)).toEqual([
      'insurance',
      'group',
      'sample_collector',
    ]);
    const all = await t.app.inject({
      url: '/api-v3/registration/patients/missing-details-templates?include_inactive=1',
      headers,
    });
    expect(all.json().templates.at(-1)).toMatchObject({ name: 'passport_no', is_active: false });
  });

  it('rejects unknown query parameters and bad values with a 400 naming them', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const unknown = await t.app.inject({
      url: '/api-v3/registration/patients/missing-details-templates?lab_id=3',
      headers,
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error).toMatchObject({ code: 'BAD_REQUEST', issues: [{ path: 'lab_id' }] });
    const badBool = await t.app.inject({
      url: '/api-v3/registration/patients/missing-details-templates?include_inactive=yes',
      headers,
    });
    expect(badBool.statusCode).toBe(400);
    expect(badBool.json().error.issues[0].path).toBe('include_inactive');
    const badModule = await t.app.inject({
      url: '/api-v3/registration/patients/missing-details-templates?module=lab',
      headers,
    });
    expect(badModule.statusCode).toBe(400);
  });

  it('answers 401 without a principal', async () => {
    const res = await t.app.inject({ url: '/api-v3/registration/patients/missing-details-templates' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
  });
});

describe('tRPC templates.list', () => {
  it('returns the same catalog in camelCase', async () => {
    const res = await t.app.inject({
      url: `/trpc/templates.list?input=${encodeURIComponent(JSON.stringify({ module: 'bill' }))}`,
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().result.data.templates[0]).toMatchObject({
      name: 'insurance',
      displayName: 'Insurance company',
      entityType: 'insurance',
    });
  });

  it('rejects unknown input keys with BAD_REQUEST and zod issues in data', async () => {
    const res = await t.app.inject({
      url: `/trpc/templates.list?input=${encodeURIComponent(JSON.stringify({ labId: 3 }))}`,
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.data).toMatchObject({
      code: 'BAD_REQUEST',
      issues: [expect.objectContaining({ path: '' })],
    });
  });

  it('answers UNAUTHORIZED without a principal', async () => {
    const res = await t.app.inject({ url: '/trpc/templates.list' });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.data.code).toBe('UNAUTHORIZED');
  });
});

describe('GET /health', () => {
  it('answers 200 when the database is reachable', async () => {
    const res = await t.app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
  });
});
