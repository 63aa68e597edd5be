import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenClaims } from '../../src/auth/token.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

const CONFIG_URL = '/api-v3/registration/patients/lab-missing-details-config';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

type Headers = Record<string, string>;

async function save(headers: Headers, body: unknown, key?: string) {
  return t.app.inject({
    method: 'POST',
    url: CONFIG_URL,
    headers: key === undefined ? headers : { ...headers, 'idempotency-key': key },
    payload: body as object,
  });
}

async function trpcSave(headers: Headers, input: unknown) {
  return t.app.inject({
    method: 'POST',
    url: '/trpc/configs.save',
    headers: { ...headers, 'content-type': 'application/json' },
    payload: JSON.stringify(input),
  });
}

async function rows<T = Record<string, unknown>>(sql: string, params: unknown[]): Promise<T[]> {
  return t.db.em().execute<T[]>(sql, params);
}

async function count(table: string, labId: number): Promise<number> {
  const [row] = await rows<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE lab_id = ?`, [labId]);
  return Number(row!.n);
}

async function labUser(claims: Partial<TokenClaims> = {}) {
  const labId = claims.labId ?? newLabId();
  return { labId, headers: await authHeader({ labId, userId: 7, ...claims }) };
}

const insuranceSave = (value: string) => ({ configs: [{ field_id: 7, field_value: value }] });

describe('Idempotency-Key on a config save', () => {
  it('answers a retry with the first answer and does not apply it again', async () => {
    const { labId, headers } = await labUser();
    const first = await save(headers, insuranceSave('Self pay'), 'key-1');
    expect(first.statusCode).toBe(200);
    // Another change in between: the replay must still be the first answer, and must not undo it.
    await save(headers, insuranceSave('Cash'));

    const retry = await save(headers, insuranceSave('Self pay'), 'key-1');
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toEqual(first.json());
    expect(await count('LabInsurance', labId)).toBe(2);
    const [config] = await rows<{ field_value: string }>(
      'SELECT field_value FROM LabMissingDetailsConfiguration WHERE lab_id = ? AND is_disabled = 0',
      [labId],
    );
    expect(config!.field_value).toBe('Cash');
  });

  it('treats a body that differs only in whitespace around values as the same request', async () => {
    const { headers } = await labUser();
    const first = await save(headers, insuranceSave('Self pay'), 'spaced');
    const retry = await save(headers, insuranceSave('  Self pay  '), 'spaced');
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toEqual(first.json());
  });

  it('answers 409 CONFLICT when the key comes back with a different body', async () => {
    const { labId, headers } = await labUser();
    await save(headers, insuranceSave('Self pay'), 'key-2');
    const res = await save(headers, insuranceSave('Other'), 'key-2');
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ error: { code: 'CONFLICT', message: expect.stringContaining('key-2') } });
    expect(await count('LabInsurance', labId)).toBe(1);
  });

  it('answers CONFLICT on tRPC when the key comes back with a different input', async () => {
    const { headers } = await labUser();
    await trpcSave(headers, {
      configs: [{ fieldId: 1, fieldValue: 'a@lab.in' }],
      idempotencyKey: 'trpc-key',
    });
    const res = await trpcSave(headers, {
      configs: [{ fieldId: 1, fieldValue: 'b@lab.in' }],
      idempotencyKey: 'trpc-key',
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.data.code).toBe('CONFLICT');
  });

  it('keeps keys per lab: another lab may use the same key for its own save', async () => {
    const a = await labUser();
    const b = await labUser();
    const first = await save(a.headers, insuranceSave('Self pay'), 'shared-key');
    const other = await save(b.headers, insuranceSave('Self pay'), 'shared-key');
    expect(other.statusCode).toBe(200);
    expect(other.json().configs[0].id).not.toBe(first.json().configs[0].id);
    expect(await count('LabMissingDetailsConfiguration', b.labId)).toBe(1);
  });

  it('replays over REST an answer first given over tRPC, and the other way round', async () => {
    const { labId, headers } = await labUser();
    const viaTrpc = await trpcSave(headers, {
      configs: [{ fieldId: 7, fieldValue: 'Self pay' }],
      idempotencyKey: 'cross-1',
    });
    expect(viaTrpc.statusCode).toBe(200);
    const trpcData = viaTrpc.json().result.data;
    const viaRest = await save(headers, insuranceSave('Self pay'), 'cross-1');
    expect(viaRest.statusCode).toBe(200);
    expect(viaRest.json().configs[0]).toMatchObject({
      id: trpcData.configs[0].id,
      created_at: trpcData.configs[0].createdAt,
      entity_object_id: trpcData.configs[0].entityObjectId,
    });
    expect(viaRest.json().entity_creations).toEqual([
      {
        config_id: trpcData.entityCreations[0].configId,
        entity_type: 'insurance',
        status: 'created',
        object_id: trpcData.entityCreations[0].objectId,
      },
    ]);

    const restFirst = await save(headers, { configs: [{ field_id: 1, field_value: 'x@lab.in' }] }, 'cross-2');
    const trpcAgain = await trpcSave(headers, {
      configs: [{ fieldId: 1, fieldValue: 'x@lab.in' }],
      idempotencyKey: 'cross-2',
    });
    expect(trpcAgain.json().result.data.configs.map((c: { id: number }) => c.id)).toEqual(
      restFirst.json().configs.map((c: { id: number }) => c.id),
    );
    expect(await count('LabInsurance', labId)).toBe(1);
  });

  it('applies once when the same keyed save arrives many times at once', async () => {
    const { labId, headers } = await labUser();
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => save(headers, insuranceSave('Self pay'), 'burst')),
    );
    expect(answers.map((res) => res.statusCode)).toEqual(Array(8).fill(200));
    const bodies = answers.map((res) => res.json());
    for (const body of bodies) expect(body).toEqual(bodies[0]);
    expect(await count('LabMissingDetailsConfiguration', labId)).toBe(1);
    expect(await count('LabInsurance', labId)).toBe(1);
    expect(await count('md_idempotency_keys', labId)).toBe(1);
  });

  it('does not keep the key of a rejected save, so a corrected retry applies', async () => {
    const { labId, headers } = await labUser();
    const rejected = await save(
      headers,
      {
        configs: [
          { field_id: 7, field_value: 'Self pay' },
          { field_id: 999, field_value: 'x' },
        ],
      },
      'fix-me',
    );
    expect(rejected.statusCode).toBe(400);
    expect(await count('md_idempotency_keys', labId)).toBe(0);
    const corrected = await save(headers, insuranceSave('Self pay'), 'fix-me');
    expect(corrected.statusCode).toBe(200);
    const replay = await save(headers, insuranceSave('Self pay'), 'fix-me');
    expect(replay.json()).toEqual(corrected.json());
    expect(await count('LabInsurance', labId)).toBe(1);
  });

  it('counts a key older than 24 hours as new', async () => {
    const { labId, headers } = await labUser();
    await save(headers, insuranceSave('Self pay'), 'old-key');
    await save(headers, insuranceSave('Cash'));
    await rows('UPDATE md_idempotency_keys SET created_at = ?, expires_at = ? WHERE lab_id = ?', [
      new Date(Date.now() - 25 * 3600_000),
      new Date(Date.now() - 3600_000),
      labId,
    ]);
    const res = await save(headers, insuranceSave('Self pay'), 'old-key');
    expect(res.statusCode).toBe(200);
    expect(res.json().configs[0].field_value).toBe('Self pay');
    expect(res.json().entity_creations).toHaveLength(1);
    // Applied again, and "Self pay" is the lab's existing insurance of that name: still two in all.
    expect(await count('LabInsurance', labId)).toBe(2);
    const [key] = await rows<{ expires_at: Date }>(
      'SELECT expires_at FROM md_idempotency_keys WHERE lab_id = ?',
      [labId],
    );
    expect(new Date(key!.expires_at).getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
  });

  it('cleans up expired keys as it goes', async () => {
    const { labId, headers } = await labUser();
    await rows(
      `INSERT INTO md_idempotency_keys (lab_id, operation, idempotency_key, request_hash, response_body, created_at, expires_at)
       VALUES (?, 'configs.save', 'ancient', REPEAT('0', 64), '{}', '2001-01-01', '2001-01-02')`,
      [labId],
    );
    await save(headers, insuranceSave('Self pay'), 'fresh');
    const keys = await rows<{ idempotency_key: string }>(
      'SELECT idempotency_key FROM md_idempotency_keys WHERE lab_id = ?',
      [labId],
    );
    expect(keys.map((k) => k.idempotency_key)).toEqual(['fresh']);
  });

  it.each([
    ['empty', ''],
    ['longer than 255 characters', 'k'.repeat(256)],
    ['not printable ASCII', 'ключ'],
  ])('rejects a key that is %s with a 400 naming the header', async (_name, key) => {
    const { labId, headers } = await labUser();
    const res = await save(headers, insuranceSave('Self pay'), key);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues[0].path).toBe('idempotency-key');
    expect(await count('LabMissingDetailsConfiguration', labId)).toBe(0);
  });

  it('rejects a bad idempotencyKey on tRPC with BAD_REQUEST', async () => {
    const { headers } = await labUser();
    const res = await trpcSave(headers, {
      configs: [{ fieldId: 1, fieldValue: 'x' }],
      idempotencyKey: 'k'.repeat(256),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.data.issues).toEqual([{ path: 'idempotencyKey', message: expect.any(String) }]);
  });
});
