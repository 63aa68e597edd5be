import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenClaims } from '../../src/auth/token.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

const CONFIG_URL = '/api-v3/registration/patients/lab-missing-details-config';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

type Headers = Record<string, string>;

async function save(headers: Headers, body: unknown) {
  return t.app.inject({ method: 'POST', url: CONFIG_URL, headers, payload: body as object });
}

async function list(headers: Headers, query = '') {
  return t.app.inject({ method: 'GET', url: `${CONFIG_URL}${query}`, headers });
}

async function trpcSave(headers: Headers, input: unknown) {
  return t.app.inject({
    method: 'POST',
    url: '/trpc/configs.save',
    headers: { ...headers, 'content-type': 'application/json' },
    payload: JSON.stringify(input),
  });
}

async function trpcList(headers: Headers, input?: unknown) {
  const query = input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`;
  return t.app.inject({ method: 'GET', url: `/trpc/configs.list${query}`, headers });
}

async function rows<T = Record<string, unknown>>(sql: string, params: unknown[]): Promise<T[]> {
  return t.db.em().execute<T[]>(sql, params);
}

interface ConfigRow {
  id: number;
  field_id: number;
  field_value: string;
  is_disabled: number;
  created_by_lab_user_id: number | null;
  updated_by_lab_user_id: number | null;
  created_at: Date;
  updated_at: Date;
}

function configRows(labId: number): Promise<ConfigRow[]> {
  return rows<ConfigRow>('SELECT * FROM LabMissingDetailsConfiguration WHERE lab_id = ? ORDER BY id', [
    labId,
  ]);
}

async function labUser(claims: Partial<TokenClaims> = {}) {
  const labId = claims.labId ?? newLabId();
  return { labId, headers: await authHeader({ labId, userId: 7, ...claims }) };
}

describe('POST /api-v3/registration/patients/lab-missing-details-config', () => {
  it('creates configs from the templates and answers the lab’s active configs in snake_case', async () => {
    const { labId, headers } = await labUser();
    const res = await save(headers, {
      configs: [
        { field_id: 9, field_value: 'NA' },
        { field_id: 1, field_value: '  noemail@lab.in  ' },
      ],
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.entity_creations).toEqual([]);
    expect(body.configs).toEqual([
      {
        id: expect.any(Number),
        field_id: 1,
        field_name: 'email',
        field_value: 'noemail@lab.in',
        field_module: 'patient',
        field_category: 'text',
        entity_object_id: null,
        is_disabled: false,
        due_in_hours: null,
        created_at: expect.stringMatching(ISO),
        updated_at: expect.stringMatching(ISO),
      },
      expect.objectContaining({ field_id: 9, field_name: 'sample_collector', field_module: 'bill' }),
    ]);
    const stored = await configRows(labId);
    expect(stored).toHaveLength(2);
    expect(stored.every((row) => row.created_by_lab_user_id === 7 && row.updated_by_lab_user_id === 7)).toBe(
      true,
    );
  });

  it('updates the active row in place and records who changed it and when', async () => {
    const { labId, headers } = await labUser();
    const first = (await save(headers, { configs: [{ field_id: 2, field_value: '9800000000' }] })).json();
    const other = await authHeader({ labId, userId: 8 });
    const res = await save(other, { configs: [{ field_id: 2, field_value: '0000000000' }] });
    expect(res.statusCode).toBe(200);
    const [config] = res.json().configs;
    expect(config).toMatchObject({ id: first.configs[0].id, field_value: '0000000000' });
    expect(config.updated_at >= first.configs[0].updated_at).toBe(true);
    expect(config.created_at).toBe(first.configs[0].created_at);
    const stored = await configRows(labId);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ created_by_lab_user_id: 7, updated_by_lab_user_id: 8 });
  });

  it('leaves config writes to lab-wide staff: a doctor gets 403 and nothing is written', async () => {
    const { labId, headers } = await labUser({ role: 'doctor' });
    const res = await save(headers, { configs: [{ field_id: 3, field_value: '1900-01-01' }] });
    expect(res.statusCode).toBe(403);
    expect(await configRows(labId)).toEqual([]);
  });

  it('soft-disables a config, keeps the row, and re-enabling creates a new active row', async () => {
    const { labId, headers } = await labUser();
    const created = (await save(headers, { configs: [{ field_id: 4, field_value: 'Not given' }] })).json();
    const oldId = created.configs[0].id;

    const disabled = await save(headers, { configs: [{ field_id: 4, is_disabled: true }] });
    expect(disabled.statusCode).toBe(200);
    expect(disabled.json().configs).toEqual([]);
    expect(await configRows(labId)).toEqual([expect.objectContaining({ id: oldId, is_disabled: 1 })]);

    const again = await save(headers, {
      configs: [{ field_id: 4, is_disabled: true, field_value: 'ignored' }],
    });
    expect(again.statusCode).toBe(200);

    const withDisabled = (await list(headers, '?include_disabled=true')).json().configs;
    expect(withDisabled).toEqual([
      expect.objectContaining({ id: oldId, is_disabled: true, field_value: 'Not given' }),
    ]);

    const reenabled = await save(headers, { configs: [{ field_id: 4, field_value: 'Unknown address' }] });
    expect(reenabled.json().configs).toEqual([
      expect.objectContaining({ field_id: 4, field_value: 'Unknown address', is_disabled: false }),
    ]);
    expect(reenabled.json().configs[0].id).not.toBe(oldId);
    const stored = await configRows(labId);
    expect(stored.map((row) => [row.id === oldId, row.is_disabled])).toEqual([
      [true, 1],
      [false, 0],
    ]);
  });

  it('treats disabling a field that has no active config as nothing to do', async () => {
    const { labId, headers } = await labUser();
    const res = await save(headers, { configs: [{ field_id: 1, is_disabled: true }] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ configs: [], entity_creations: [] });
    expect(await configRows(labId)).toEqual([]);
  });

  it('applies creates, updates and disables of one save together', async () => {
    const { labId, headers } = await labUser();
    await save(headers, {
      configs: [
        { field_id: 1, field_value: 'a@lab.in' },
        { field_id: 2, field_value: '1' },
      ],
    });
    const res = await save(headers, {
      configs: [
        { field_id: 2, is_disabled: true },
        { field_id: 1, field_value: 'b@lab.in' },
        { field_id: 3, field_value: '1900-01-01' },
      ],
    });
    expect(res.statusCode).toBe(200);
    expect(
      res.json().configs.map((c: { field_id: number; field_value: string }) => [c.field_id, c.field_value]),
    ).toEqual([
      [1, 'b@lab.in'],
      [3, '1900-01-01'],
    ]);
    expect((await configRows(labId)).map((row) => [row.field_id, row.is_disabled])).toEqual([
      [1, 0],
      [2, 1],
      [3, 0],
    ]);
  });

  it('lets a lab disable the config of a template that has been retired since', async () => {
    const { labId, headers } = await labUser();
    await rows(
      `INSERT INTO LabMissingDetailsConfiguration (lab_id, field_id, field_name, field_value, field_module,
         field_category, is_disabled, created_at, updated_at)
       VALUES (?, 10, 'passport_no', 'NA', 'patient', 'text', 0, NOW(6), NOW(6))`,
      [labId],
    );
    const res = await save(headers, { configs: [{ field_id: 10, is_disabled: true }] });
    expect(res.statusCode).toBe(200);
    expect((await configRows(labId))[0]).toMatchObject({ is_disabled: 1, updated_by_lab_user_id: 7 });
  });

  it('heals legacy duplicates: the newest active row is updated and the older ones are disabled', async () => {
    const { labId, headers } = await labUser();
    for (const value of ['old', 'newer']) {
      await rows(
        `INSERT INTO LabMissingDetailsConfiguration (lab_id, field_id, field_name, field_value, field_module,
           field_category, is_disabled, created_at, updated_at)
         VALUES (?, 1, 'email', ?, 'patient', 'text', 0, NOW(6), NOW(6))`,
        [labId, value],
      );
    }
    const res = await save(headers, { configs: [{ field_id: 1, field_value: 'x@lab.in' }] });
    expect(res.json().configs).toHaveLength(1);
    expect((await configRows(labId)).map((row) => [row.field_value, row.is_disabled])).toEqual([
      ['old', 1],
      ['x@lab.in', 0],
    ]);
  });

  it('ends with exactly one active row per field when many saves of the same fields race', async () => {
    const { labId, headers } = await labUser();
    const saves = Array.from({ length: 12 }, (_, i) =>
      save(headers, {
        configs:
          i % 2 === 0
            ? [
                { field_id: 1, field_value: `racer-${i}@lab.in` },
                { field_id: 2, field_value: `${i}` },
              ]
            : [
                { field_id: 2, field_value: `${i}` },
                { field_id: 1, field_value: `racer-${i}@lab.in` },
              ],
      }),
    );
    const answers = await Promise.all(saves);
    expect(answers.map((res) => res.statusCode)).toEqual(Array(12).fill(200));
    const stored = await configRows(labId);
    expect(stored.map((row) => [row.field_id, row.is_disabled]).sort()).toEqual([
      [1, 0],
      [2, 0],
    ]);
  });

  it('rolls the whole save back when one item is invalid', async () => {
    const { labId, headers } = await labUser();
    await save(headers, {
      configs: [
        { field_id: 1, field_value: 'keep@lab.in' },
        { field_id: 2, field_value: '1' },
      ],
    });
    const before = await configRows(labId);
    const res = await save(headers, {
      configs: [
        { field_id: 1, field_value: 'changed@lab.in' },
        { field_id: 2, is_disabled: true },
        { field_id: 3, field_value: '1900-01-01' },
        { field_id: 999, field_value: 'x' },
      ],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues).toEqual([{ path: 'configs.3.field_id', message: expect.any(String) }]);
    expect(await configRows(labId)).toEqual(before);
  });
});

describe('lab isolation of configs', () => {
  it('never shows or changes another lab’s configs', async () => {
    const a = await labUser();
    const b = await labUser();
    await save(a.headers, { configs: [{ field_id: 1, field_value: 'a@lab.in' }] });
    expect((await list(b.headers)).json().configs).toEqual([]);

    await save(b.headers, { configs: [{ field_id: 1, field_value: 'b@lab.in' }] });
    await save(b.headers, { configs: [{ field_id: 1, is_disabled: true }] });
    expect((await list(a.headers)).json().configs).toEqual([
      expect.objectContaining({ field_id: 1, field_value: 'a@lab.in', is_disabled: false }),
    ]);
    expect((await configRows(a.labId)).map((row) => row.field_value)).toEqual(['a@lab.in']);
  });

  it('rejects a lab_id in the body or the query as an unknown field', async () => {
    const { headers } = await labUser();
    const body = await save(headers, { lab_id: 1, configs: [{ field_id: 1, field_value: 'x@lab.in' }] });
    expect(body.statusCode).toBe(400);
    expect(body.json().error).toMatchObject({ code: 'BAD_REQUEST', issues: [{ path: 'lab_id' }] });
    const item = await save(headers, { configs: [{ field_id: 1, field_value: 'x@lab.in', lab_id: 1 }] });
    expect(item.json().error.issues).toEqual([{ path: 'configs.0.lab_id', message: expect.any(String) }]);
    const query = await list(headers, '?lab_id=1');
    expect(query.statusCode).toBe(400);
    expect(query.json().error.issues[0].path).toBe('lab_id');
  });
});

describe('GET /api-v3/registration/patients/lab-missing-details-config', () => {
  it('lists active configs by field, filters by module, and includes disabled ones when asked', async () => {
    const { headers } = await labUser();
    await save(headers, {
      configs: [
        { field_id: 9, field_value: 'NA' },
        { field_id: 1, field_value: 'x@lab.in' },
        { field_id: 2, field_value: '0' },
      ],
    });
    await save(headers, { configs: [{ field_id: 2, is_disabled: true }] });
    const active = (await list(headers)).json().configs;
    expect(active.map((c: { field_id: number }) => c.field_id)).toEqual([1, 9]);
    const bill = (await list(headers, '?module=bill')).json().configs;
    expect(bill.map((c: { field_id: number }) => c.field_id)).toEqual([9]);
    const all = (await list(headers, '?include_disabled=1')).json().configs;
    expect(all.map((c: { field_id: number; is_disabled: boolean }) => [c.field_id, c.is_disabled])).toEqual([
      [1, false],
      [2, true],
      [9, false],
    ]);
  });

  it('rejects bad query values with a 400 naming them', async () => {
    const { headers } = await labUser();
    const badBool = await list(headers, '?include_disabled=yes');
    expect(badBool.statusCode).toBe(400);
    expect(badBool.json().error.issues[0].path).toBe('include_disabled');
    const badModule = await list(headers, '?module=lab');
    expect(badModule.json().error.issues[0].path).toBe('module');
  });
});

describe('validation of a save', () => {
  const longValue = 'x'.repeat(256);
  const cases: Array<[string, unknown, string]> = [
    ['wrong types', { configs: [{ field_id: '1', field_value: 5 }] }, 'configs.0.field_id'],
    ['a non-positive field id', { configs: [{ field_id: 0, field_value: 'x' }] }, 'configs.0.field_id'],
    ['configs that is not a list', { configs: { field_id: 1 } }, 'configs'],
    ['no configs at all', {}, 'configs'],
    ['an empty configs list', { configs: [] }, 'configs'],
    [
      '51 items',
      { configs: Array.from({ length: 51 }, (_, i) => ({ field_id: i + 1, field_value: 'x' })) },
      'configs',
    ],
    [
      'a value of 256 characters',
      { configs: [{ field_id: 1, field_value: longValue }] },
      'configs.0.field_value',
    ],
    ['a whitespace-only value', { configs: [{ field_id: 1, field_value: ' \t ' }] }, 'configs.0.field_value'],
    ['a missing value', { configs: [{ field_id: 1 }] }, 'configs.0.field_value'],
    ['a null value', { configs: [{ field_id: 1, field_value: null }] }, 'configs.0.field_value'],
    [
      'a duplicate field_id',
      {
        configs: [
          { field_id: 1, field_value: 'a' },
          { field_id: 2, field_value: 'b' },
          { field_id: 1, is_disabled: true },
        ],
      },
      'configs.2.field_id',
    ],
    [
      'an inactive template',
      {
        configs: [
          { field_id: 1, field_value: 'a' },
          { field_id: 10, field_value: 'NA' },
        ],
      },
      'configs.1.field_id',
    ],
    [
      'a missing template',
      {
        configs: [
          { field_id: 1, field_value: 'a' },
          { field_id: 2, field_value: 'b' },
          { field_id: 999, field_value: 'x' },
        ],
      },
      'configs.2.field_id',
    ],
    [
      'an unknown item field',
      { configs: [{ field_id: 1, field_value: 'a', value: 'a' }] },
      'configs.0.value',
    ],
  ];

  it.each(cases)('answers 400 naming the problem for %s', async (_name, body, path) => {
    const { labId, headers } = await labUser();
    const res = await save(headers, body);
    expect(res.statusCode).toBe(400);
    const { error } = res.json();
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message).toEqual(expect.any(String));
    expect(error.issues.map((issue: { path: string }) => issue.path)).toContain(path);
    expect(await configRows(labId)).toEqual([]);
  });

  it('accepts a value of exactly 255 characters, counting characters rather than bytes', async () => {
    const { headers } = await labUser();
    const value = 'é'.repeat(200) + '😀'.repeat(55);
    const res = await save(headers, { configs: [{ field_id: 4, field_value: value }] });
    expect(res.statusCode).toBe(200);
    expect(res.json().configs[0].field_value).toBe(value);
  });

  it('answers 400 for malformed JSON and 415 for a body that is not JSON', async () => {
    const { headers } = await labUser();
    const malformed = await t.app.inject({
      method: 'POST',
      url: CONFIG_URL,
      headers: { ...headers, 'content-type': 'application/json' },
      payload: '{"configs": [',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('BAD_REQUEST');
    const text = await t.app.inject({
      method: 'POST',
      url: CONFIG_URL,
      headers: { ...headers, 'content-type': 'application/xml' },
      payload: '<configs/>',
    });
    expect(text.statusCode).toBe(415);
  });

  it('answers 401 without a principal, whatever the body holds', async () => {
    const get = await list({});
    expect(get.statusCode).toBe(401);
    expect(get.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
    const post = await save({}, { configs: [] });
    expect(post.statusCode).toBe(401);
    const expired = await save(await authHeader({ labId: newLabId(), userId: 7, expiresInSeconds: -60 }), {
      configs: [{ field_id: 1, field_value: 'x' }],
    });
    expect(expired.statusCode).toBe(401);
  });
});

describe('tRPC configs.save and configs.list', () => {
  it('saves and lists in camelCase, the same data as the REST shim', async () => {
    const { headers } = await labUser();
    const res = await trpcSave(headers, {
      configs: [
        { fieldId: 1, fieldValue: ' t@lab.in ' },
        { fieldId: 9, fieldValue: 'NA', isDisabled: false },
      ],
    });
    expect(res.statusCode).toBe(200);
    const data = res.json().result.data;
    expect(data.entityCreations).toEqual([]);
    expect(data.configs[0]).toEqual({
      id: expect.any(Number),
      fieldId: 1,
      fieldName: 'email',
      fieldValue: 't@lab.in',
      fieldModule: 'patient',
      fieldCategory: 'text',
      entityObjectId: null,
      isDisabled: false,
      dueInHours: null,
      createdAt: expect.stringMatching(ISO),
      updatedAt: expect.stringMatching(ISO),
    });
    await trpcSave(headers, { configs: [{ fieldId: 9, isDisabled: true }] });
    const listed = (await trpcList(headers)).json().result.data.configs;
    expect(listed.map((c: { fieldId: number }) => c.fieldId)).toEqual([1]);
    const all = (await trpcList(headers, { includeDisabled: true, module: 'bill' })).json().result.data
      .configs;
    expect(all).toEqual([expect.objectContaining({ fieldId: 9, isDisabled: true })]);
    const rest = (await list(headers, '?include_disabled=true')).json().configs;
    expect(rest.map((c: { id: number }) => c.id)).toEqual(
      (await trpcList(headers, { includeDisabled: true }))
        .json()
        .result.data.configs.map((c: { id: number }) => c.id),
    );
  });

  it('answers BAD_REQUEST with zod issues for invalid input', async () => {
    const { headers } = await labUser();
    const duplicate = await trpcSave(headers, {
      configs: [
        { fieldId: 1, fieldValue: 'a' },
        { fieldId: 1, fieldValue: 'b' },
      ],
    });
    expect(duplicate.statusCode).toBe(400);
    expect(duplicate.json().error.data).toMatchObject({
      code: 'BAD_REQUEST',
      issues: [{ path: 'configs.1.fieldId', message: expect.any(String) }],
    });
    const blank = await trpcSave(headers, { configs: [{ fieldId: 1, fieldValue: '   ' }] });
    expect(blank.json().error.data.issues).toEqual([
      { path: 'configs.0.fieldValue', message: expect.any(String) },
    ]);
    const unknown = await trpcSave(headers, { labId: 1, configs: [{ fieldId: 1, fieldValue: 'a' }] });
    expect(unknown.statusCode).toBe(400);
  });

  it('answers BAD_REQUEST naming the item for a missing or inactive template', async () => {
    const { labId, headers } = await labUser();
    const res = await trpcSave(headers, {
      configs: [
        { fieldId: 1, fieldValue: 'a' },
        { fieldId: 10, fieldValue: 'NA' },
      ],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.data.code).toBe('BAD_REQUEST');
    expect(res.json().error.message).toContain('configs.1.field_id');
    expect(await configRows(labId)).toEqual([]);
  });

  it('answers UNAUTHORIZED without a principal', async () => {
    const res = await trpcSave({}, { configs: [{ fieldId: 1, fieldValue: 'a' }] });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.data.code).toBe('UNAUTHORIZED');
    expect((await trpcList({})).statusCode).toBe(401);
  });
});
