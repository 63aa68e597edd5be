import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenClaims } from '../../src/auth/token.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

const CONFIG_URL = '/api-v3/registration/patients/lab-missing-details-config';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

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

async function labUser(claims: Partial<TokenClaims> = {}) {
  const labId = claims.labId ?? newLabId();
  return { labId, headers: await authHeader({ labId, userId: 7, ...claims }) };
}

/** Everything a config save may write for a lab, to compare before and after. */
async function labState(labId: number) {
  const [configs, insurances, groups, outbox, traces, activity] = await Promise.all([
    rows('SELECT * FROM LabMissingDetailsConfiguration WHERE lab_id = ? ORDER BY id', [labId]),
    rows('SELECT * FROM LabInsurance WHERE lab_id = ? ORDER BY id', [labId]),
    rows('SELECT * FROM LabGroup WHERE lab_id = ? ORDER BY id', [labId]),
    rows('SELECT * FROM md_entity_creation_outbox WHERE lab_id = ? ORDER BY id', [labId]),
    rows('SELECT * FROM MissingDetailsEntityCreation WHERE lab_id = ? ORDER BY id', [labId]),
    // The save's own audit row (config_saved) is covered by test/audit.test.ts.
    rows("SELECT * FROM ActivityLog WHERE lab_id = ? AND action <> 'config_saved' ORDER BY id", [labId]),
  ]);
  return { configs, insurances, groups, outbox, traces, activity };
}

describe('entity creation for local entity templates', () => {
  it('creates a placeholder insurance in the save and traces it', async () => {
    const { labId, headers } = await labUser();
    const res = await save(headers, { configs: [{ field_id: 7, field_value: ' Self pay (missing) ' }] });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const config = body.configs[0];
    expect(body.entity_creations).toEqual([
      { config_id: config.id, entity_type: 'insurance', status: 'created', object_id: expect.any(Number) },
    ]);
    const objectId = body.entity_creations[0].object_id;
    expect(config).toMatchObject({ field_id: 7, field_category: 'entity', entity_object_id: objectId });

    const state = await labState(labId);
    expect(state.insurances).toEqual([
      expect.objectContaining({ id: objectId, lab_id: labId, name: 'Self pay (missing)', is_active: 1 }),
    ]);
    expect(state.traces).toEqual([
      expect.objectContaining({
        config_id: config.id,
        entity_name: 'insurance',
        object_id: objectId,
        org_id: null,
      }),
    ]);
    expect(state.configs).toEqual([expect.objectContaining({ id: config.id, entity_object_id: objectId })]);
    expect(state.activity).toEqual([
      expect.objectContaining({
        module: 'missing_details',
        action: 'entity_creation_succeeded',
        object_type: 'insurance',
        object_id: objectId,
        lab_user_id: 7,
        doctor_id: null,
        org_id: null,
      }),
    ]);
    expect(state.outbox).toEqual([]);
  });

  it('creates a placeholder group through tRPC the same way', async () => {
    const { labId, headers } = await labUser();
    const res = await trpcSave(headers, { configs: [{ fieldId: 8, fieldValue: 'General (missing)' }] });
    expect(res.statusCode).toBe(200);
    const { configs, entityCreations } = res.json().result.data;
    expect(entityCreations).toEqual([
      { configId: configs[0].id, entityType: 'group', status: 'created', objectId: expect.any(Number) },
    ]);
    expect(configs[0].entityObjectId).toBe(entityCreations[0].objectId);
    const state = await labState(labId);
    expect(state.groups).toEqual([
      expect.objectContaining({ id: entityCreations[0].objectId, name: 'General (missing)', is_active: 1 }),
    ]);
    expect(state.insurances).toEqual([]);
    expect(state.traces).toHaveLength(1);
  });
});

describe('entity creation for entities made by the legacy bridge', () => {
  it('queues a referral doctor in the outbox and logs that it is queued', async () => {
    const { labId, headers } = await labUser();
    const before = Date.now();
    const res = await save(headers, { configs: [{ field_id: 5, field_value: 'Dr. Unknown' }] });
    expect(res.statusCode).toBe(200);
    const config = res.json().configs[0];
    expect(res.json().entity_creations).toEqual([
      { config_id: config.id, entity_type: 'referral_doctor', status: 'queued', object_id: null },
    ]);
    expect(config.entity_object_id).toBeNull();

    const state = await labState(labId);
    expect(state.outbox).toEqual([
      expect.objectContaining({
        lab_id: labId,
        org_id: null,
        config_id: config.id,
        entity_type: 'referral_doctor',
        name: 'Dr. Unknown',
        idempotency_key: expect.stringMatching(UUID),
        status: 'queued',
        attempts: 0,
        requested_by_lab_user_id: 7,
        requested_by_doctor_id: null,
        object_id: null,
      }),
    ]);
    const dueAt = new Date(state.outbox[0]!.next_attempt_at as Date).getTime();
    expect(dueAt).toBeGreaterThanOrEqual(before - 1000);
    expect(dueAt).toBeLessThanOrEqual(Date.now());
    expect(state.activity).toEqual([
      expect.objectContaining({
        action: 'entity_creation_queued',
        object_type: 'referral_doctor',
        lab_user_id: 7,
        org_id: null,
      }),
    ]);
    expect(JSON.parse(state.activity[0]!.details as string)).toMatchObject({
      config_id: config.id,
      idempotency_key: state.outbox[0]!.idempotency_key,
    });
    expect(state.traces).toEqual([]);
  });

  it('refuses a config save of a doctor or an organization user with 403, and writes nothing', async () => {
    for (const who of [{ role: 'doctor' as const, userId: 55 }, { orgId: 9 }]) {
      const { labId, headers } = await labUser(who);
      const res = await save(headers, { configs: [{ field_id: 6, field_value: 'Walk-in' }] });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('FORBIDDEN');
      const state = await labState(labId);
      expect(state.outbox).toEqual([]);
      expect(state.activity).toEqual([]);
    }
  });
});

describe('when entity creations start', () => {
  it('starts one per entity item, in item order, and none for text fields', async () => {
    const { headers } = await labUser();
    const res = await save(headers, {
      configs: [
        { field_id: 8, field_value: 'G' },
        { field_id: 1, field_value: 'x@lab.in' },
        { field_id: 5, field_value: 'Dr. X' },
        { field_id: 7, field_value: 'I' },
      ],
    });
    expect(
      res
        .json()
        .entity_creations.map((c: { entity_type: string; status: string }) => [c.entity_type, c.status]),
    ).toEqual([
      ['group', 'created'],
      ['referral_doctor', 'queued'],
      ['insurance', 'created'],
    ]);
  });

  it('starts a new creation when the value changes, and none when it stays or the config is disabled', async () => {
    const { labId, headers } = await labUser();
    const first = (await save(headers, { configs: [{ field_id: 7, field_value: 'Self pay' }] })).json();
    const firstObject = first.entity_creations[0].object_id;

    const same = await save(headers, { configs: [{ field_id: 7, field_value: '  Self pay ' }] });
    expect(same.json().entity_creations).toEqual([]);
    expect(same.json().configs[0].entity_object_id).toBe(firstObject);

    const renamed = (
      await save(headers, { configs: [{ field_id: 7, field_value: 'Cash (missing)' }] })
    ).json();
    expect(renamed.entity_creations).toEqual([
      expect.objectContaining({ config_id: first.configs[0].id, status: 'created' }),
    ]);
    const secondObject = renamed.entity_creations[0].object_id;
    expect(secondObject).not.toBe(firstObject);
    expect(renamed.configs[0].entity_object_id).toBe(secondObject);

    const disabled = await save(headers, { configs: [{ field_id: 7, is_disabled: true }] });
    expect(disabled.json().entity_creations).toEqual([]);

    const state = await labState(labId);
    expect(state.insurances.map((row) => row.name)).toEqual(['Self pay', 'Cash (missing)']);
    expect(state.traces.map((row) => row.object_id)).toEqual([firstObject, secondObject]);
  });

  it('starts a creation for the new row when a disabled entity config is enabled again', async () => {
    const { labId, headers } = await labUser();
    await save(headers, { configs: [{ field_id: 5, field_value: 'Dr. A' }] });
    await save(headers, { configs: [{ field_id: 5, is_disabled: true }] });
    const res = (await save(headers, { configs: [{ field_id: 5, field_value: 'Dr. A' }] })).json();
    expect(res.entity_creations).toEqual([
      expect.objectContaining({ config_id: res.configs[0].id, status: 'queued' }),
    ]);
    const state = await labState(labId);
    expect(state.outbox.map((row) => row.config_id)).toEqual([state.configs[0]!.id, state.configs[1]!.id]);
  });
});

describe('an entity save that fails', () => {
  it('writes nothing at all: no config, entity, outbox, trace or activity row', async () => {
    const { labId, headers } = await labUser();
    await save(headers, { configs: [{ field_id: 7, field_value: 'Self pay' }] });
    const before = await labState(labId);
    const res = await save(headers, {
      configs: [
        { field_id: 7, field_value: 'Cash' },
        { field_id: 8, field_value: 'General' },
        { field_id: 5, field_value: 'Dr. Unknown' },
        { field_id: 6, field_value: 'Walk-in' },
        { field_id: 10, field_value: 'NA' },
      ],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues).toEqual([{ path: 'configs.4.field_id', message: expect.any(String) }]);
    expect(await labState(labId)).toEqual(before);
  });
});
