import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabConfigCache, LabConfigs } from '../../src/engine/lab-config-cache.js';
import {
  bumpLabConfigVersion,
  CATALOG_VERSION_LAB_ID,
} from '../../src/repositories/lab-config.repository.js';
import { recordEntityCreated } from '../../src/services/entity-trace.service.js';
import {
  authHeader,
  FIELD,
  newLabId,
  sentStatements,
  startTestApp,
  type TestApp,
} from '../support/fixtures.js';

/**
 * The per-lab config cache (docs/architecture.md): two app instances on one database, each with its own
 * cache, as two processes behind a load balancer would be.
 */
let a: TestApp;
let b: TestApp;

beforeAll(async () => {
  [a, b] = await Promise.all([startTestApp(), startTestApp()]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

interface CaptureAnswer {
  opened: number;
  resolved: number;
  hasMissingFields: boolean;
}

async function capturePatient(
  on: TestApp,
  labId: number,
  userDetailsId: number,
  values: Record<string, unknown>,
): Promise<CaptureAnswer> {
  const res = await on.app.inject({
    method: 'POST',
    url: '/trpc/capture.patient',
    headers: await authHeader({ labId, userId: 7 }),
    payload: { userDetailsId, values },
  });
  expect(res.statusCode).toBe(200);
  return res.json().result.data as CaptureAnswer;
}

async function saveConfigs(
  on: TestApp,
  labId: number,
  configs: Array<{ fieldId: number; fieldValue?: string; isDisabled?: boolean }>,
): Promise<Array<{ id: number; fieldId: number }>> {
  const res = await on.app.inject({
    method: 'POST',
    url: '/trpc/configs.save',
    headers: await authHeader({ labId, userId: 7 }),
    payload: { configs },
  });
  expect(res.statusCode).toBe(200);
  return res.json().result.data.configs;
}

/** Changes a config behind the service's back, as a writer that forgets the version would. */
async function setPlaceholderWithoutBump(on: TestApp, labId: number, value: string): Promise<void> {
  await on.db
    .em()
    .execute('UPDATE LabMissingDetailsConfiguration SET field_value = ? WHERE lab_id = ?', [value, labId]);
}

/** A statement that reads the lab's configs (the configs part of lab-config.repository.ts). */
const readsConfigs = (sql: string) => sql.includes('FROM `LabMissingDetailsConfiguration` c');

describe('the per-lab config cache', () => {
  it('uses a config saved through one instance in the other instance’s next capture', async () => {
    const labId = newLabId();
    await saveConfigs(a, labId, [{ fieldId: FIELD.email, fieldValue: 'old@lab.in' }]);
    expect((await capturePatient(b, labId, 1, { email: 'old@lab.in' })).opened).toBe(1);
    expect(b.db.labConfigs.lookup(labId)).toBeDefined();

    await saveConfigs(a, labId, [{ fieldId: FIELD.email, fieldValue: 'new@lab.in' }]);
    expect((await capturePatient(b, labId, 2, { email: 'new@lab.in' })).opened).toBe(1);
    expect((await capturePatient(b, labId, 3, { email: 'old@lab.in' })).opened).toBe(0);
  });

  it('stops opening rows on every instance once one disables the config', async () => {
    const labId = newLabId();
    await saveConfigs(a, labId, [{ fieldId: FIELD.mobile, fieldValue: '9999999999' }]);
    expect((await capturePatient(b, labId, 1, { mobile: '9999999999' })).opened).toBe(1);
    await saveConfigs(a, labId, [{ fieldId: FIELD.mobile, isDisabled: true }]);
    expect((await capturePatient(b, labId, 2, { mobile: '9999999999' })).opened).toBe(0);
    // The open row of the disabled config still resolves (contract: "even if the config was disabled since").
    expect(await capturePatient(b, labId, 1, { mobile: '9812345678' })).toEqual({
      opened: 0,
      resolved: 1,
      hasMissingFields: false,
    });
  });

  it('sees a placeholder entity that another instance’s bridge worker recorded later', async () => {
    const labId = newLabId();
    const [config] = await saveConfigs(a, labId, [
      { fieldId: FIELD.referral_doctor, fieldValue: 'Dr. Unknown' },
    ]);
    expect(
      (await capturePatient(b, labId, 1, { referral_doctor: { id: 991, name: 'Dr. Renamed' } })).opened,
    ).toBe(0);

    await a.db.em().transactional((tx) =>
      recordEntityCreated(tx, {
        labId,
        orgId: null,
        configId: config!.id,
        entityType: 'referral_doctor',
        objectId: 991,
        name: 'Dr. Unknown',
        track: 'legacy_bridge',
      }),
    );
    expect(
      (await capturePatient(b, labId, 2, { referral_doctor: { id: 991, name: 'Dr. Renamed' } })).opened,
    ).toBe(1);
  });

  it('honors a config written straight into the table by another writer on the next capture of every instance, with no statement more', async () => {
    const labId = newLabId();
    await saveConfigs(a, labId, [{ fieldId: FIELD.address, fieldValue: 'NA' }]);
    expect((await capturePatient(b, labId, 1, { address: 'NA' })).opened).toBe(1);
    const warm = await sentStatements(() => capturePatient(b, labId, 11, { mobile: '98' }));

    await setPlaceholderWithoutBump(a, labId, 'Unknown');
    expect((await capturePatient(b, labId, 2, { address: 'Unknown' })).opened).toBe(1);
    expect((await capturePatient(a, labId, 3, { address: 'Unknown' })).opened).toBe(1);
    expect((await capturePatient(b, labId, 4, { address: 'NA' })).opened).toBe(0);
    expect(await sentStatements(() => capturePatient(b, labId, 12, { mobile: '98' }))).toHaveLength(
      warm.length,
    );
  });

  it('reads the configs only when the lab’s state has moved: in the read of a cold capture, in one statement more after a change, never while warm', async () => {
    const labId = newLabId();
    await saveConfigs(a, labId, [{ fieldId: FIELD.address, fieldValue: 'NA' }]);
    const opened: number[] = [];
    const capture = async (userDetailsId: number, address: string) =>
      sentStatements(async () =>
        opened.push((await capturePatient(b, labId, userDetailsId, { address })).opened),
      );

    const cold = await capture(1, 'NA');
    const warm = await capture(2, 'NA');
    await setPlaceholderWithoutBump(a, labId, 'Unknown');
    const afterChange = await capture(3, 'Unknown');
    const warmAgain = await capture(4, 'Unknown');

    expect(opened).toEqual([1, 1, 1, 1]);
    expect(cold.filter(readsConfigs)).toHaveLength(1);
    expect(cold).toHaveLength(warm.length);
    expect(warm.filter(readsConfigs)).toHaveLength(0);
    expect(afterChange.filter(readsConfigs)).toHaveLength(1);
    expect(afterChange).toHaveLength(warm.length + 1);
    expect(warmAgain.filter(readsConfigs)).toHaveLength(0);
    expect(warmAgain).toHaveLength(warm.length);
  });

  it('honors an entity trace that legacy PY-2 wrote itself, on every instance', async () => {
    const labId = newLabId();
    const [config] = await saveConfigs(a, labId, [
      { fieldId: FIELD.referral_doctor, fieldValue: 'Dr. Unknown' },
    ]);
    expect(
      (await capturePatient(b, labId, 1, { referral_doctor: { id: 555_001, name: 'Dr. X' } })).opened,
    ).toBe(0);
    await a.db
      .em()
      .execute(
        'INSERT INTO MissingDetailsEntityCreation (config_id, entity_name, object_id, lab_id, org_id, created_at) VALUES (?, ?, ?, ?, NULL, NOW(6))',
        [config!.id, 'referral_doctor', 555_001, labId],
      );
    expect(
      (await capturePatient(b, labId, 2, { referral_doctor: { id: 555_001, name: 'Dr. X' } })).opened,
    ).toBe(1);
    expect(
      (await capturePatient(a, labId, 3, { referral_doctor: { id: 555_001, name: 'Dr. X' } })).opened,
    ).toBe(1);
  });

  it('reads every lab’s configs again after a bump of the template catalog’s version', async () => {
    const labId = newLabId();
    await saveConfigs(a, labId, [{ fieldId: FIELD.dob, fieldValue: '1900-01-01' }]);
    expect((await capturePatient(b, labId, 1, { dob: '1900-01-01' })).opened).toBe(1);
    await setPlaceholderWithoutBump(a, labId, '1901-01-01');

    await a.db.em().transactional((tx) => bumpLabConfigVersion(tx, CATALOG_VERSION_LAB_ID));
    expect((await capturePatient(b, labId, 2, { dob: '1901-01-01' })).opened).toBe(1);
  });

  it('opens nothing for a lab without configs, and then sees its first save', async () => {
    const labId = newLabId();
    expect((await capturePatient(b, labId, 1, { email: 'noemail@lab.in' })).opened).toBe(0);
    await saveConfigs(a, labId, [{ fieldId: FIELD.email, fieldValue: 'noemail@lab.in' }]);
    expect((await capturePatient(b, labId, 2, { email: 'noemail@lab.in' })).opened).toBe(1);
  });
});

describe('LabConfigCache', () => {
  const configs = new LabConfigs([]);

  it('evicts the least recently used lab past its size', () => {
    const cache = new LabConfigCache(2);
    cache.store(1, '1:1.0:0.0', configs);
    cache.store(2, '1:1.0:0.0', configs);
    cache.lookup(1);
    cache.store(3, '1:1.0:0.0', configs);
    expect(cache.lookup(2)).toBeUndefined();
    expect(cache.lookup(1)?.version).toBe('1:1.0:0.0');
    expect(cache.lookup(3)?.version).toBe('1:1.0:0.0');
    expect(cache.size).toBe(2);
  });

  it('keeps the newer copy when a capture with an older snapshot stores its own', () => {
    const cache = new LabConfigCache();
    cache.store(1, '5:2.77:0.0', configs);
    cache.store(1, '4:2.77:0.0', new LabConfigs([]));
    expect(cache.lookup(1)).toEqual({ version: '5:2.77:0.0', configs });
  });

  it('takes a state of the same version with another fingerprint (a row written by someone else)', () => {
    const cache = new LabConfigCache();
    const newer = new LabConfigs([]);
    cache.store(1, '5:2.77:0.0', configs);
    cache.store(1, '5:3.91:0.0', newer);
    expect(cache.lookup(1)).toEqual({ version: '5:3.91:0.0', configs: newer });
  });

  it('picks the newest active config of a field to open rows, and keeps disabled ones for open rows', () => {
    const row = {
      field_id: 1,
      template_name: 'email',
      template_module: 'patient',
      template_active: 1,
      entity_object_id: null,
      creation_object_id: null,
      input_type: 'email',
      due_in_hours: null,
    };
    const lab = new LabConfigs([
      { ...row, id: 3, field_value: 'older@lab.in', is_disabled: 0 },
      { ...row, id: 8, field_value: 'newer@lab.in', is_disabled: 0 },
      { ...row, id: 9, field_value: 'off@lab.in', is_disabled: 1 },
      {
        ...row,
        id: 10,
        field_id: 7,
        template_name: 'insurance',
        template_module: 'bill',
        field_value: 'X',
        is_disabled: 0,
        entity_object_id: 41,
        creation_object_id: 40,
      },
      {
        ...row,
        id: 10,
        field_id: 7,
        template_name: 'insurance',
        template_module: 'bill',
        field_value: 'X',
        is_disabled: 0,
        entity_object_id: 41,
        creation_object_id: 41,
      },
    ]);
    expect(lab.opening('patient').map((c) => c.id)).toEqual([8]);
    expect(lab.byId(9)?.active).toBe(false);
    expect([...lab.byId(10)!.entityIds].sort()).toEqual([40, 41]);
    expect(lab.opening('bill').map((c) => c.id)).toEqual([10]);
  });
});
