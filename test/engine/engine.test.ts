import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIELD_MAP, lookupKey } from '../../src/engine/field-map.js';
import { equalsPlaceholder, toComparable } from '../../src/engine/value-mapper.js';
import { LabMissingDetailsConfiguration } from '../../src/entities/index.js';
import {
  type CaptureInput,
  type CaptureResult,
  capture,
  captureInTransaction,
} from '../../src/services/capture.service.js';
import {
  authHeader,
  type ConfigSeed,
  FIELD,
  type FieldName,
  newLabId,
  principalFor,
  rowsOf,
  seedConfigs,
  startTestApp,
  statementCounts,
  type TestApp,
} from '../support/fixtures.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const PATIENT = 123;
const BILL = 456;

const CONFIGS: ConfigSeed[] = [
  { field: 'email', value: 'noemail@lab.in' },
  { field: 'mobile', value: '9999999999' },
  { field: 'dob', value: '1900-01-01' },
  { field: 'referral_doctor', value: 'Dr. Unknown' },
  { field: 'organization', value: 'Walk-in (missing)', entityObjectId: 60 },
  // Renamed once: 41 was created for the first value, 52 for the current one.
  { field: 'insurance', value: 'Self pay (missing)', createdEntityIds: [41, 52] },
  { field: 'group', value: 'No group' },
  { field: 'sample_collector', value: 'NA' },
];

function moduleOf(field: FieldName): 'patient' | 'bill' {
  return ['insurance', 'group', 'sample_collector'].includes(field) ? 'bill' : 'patient';
}

function inputFor(field: FieldName, values: Record<string, unknown>): CaptureInput {
  return moduleOf(field) === 'bill'
    ? { module: 'bill', userDetailsId: PATIENT, billId: BILL, orgId: 9, values }
    : { module: 'patient', userDetailsId: PATIENT, billId: null, orgId: 9, values };
}

async function newLab(seeds: ConfigSeed[] = CONFIGS): Promise<number> {
  const labId = newLabId();
  await seedConfigs(t.db.em(), labId, seeds);
  return labId;
}

function run(
  labId: number,
  input: CaptureInput,
  role: 'lab_user' | 'doctor' = 'lab_user',
): Promise<CaptureResult> {
  return captureInTransaction(
    t.db.em(),
    principalFor(labId, { role, userId: role === 'doctor' ? 31 : 7 }),
    input,
  );
}

const ABSENT = Symbol('absent');
type Incoming = unknown | typeof ABSENT;

function body(field: FieldName, value: Incoming): Record<string, unknown> {
  return value === ABSENT ? { full_name: 'Asha Rao' } : { full_name: 'Asha Rao', [field]: value };
}

describe('the field map', () => {
  it('maps every template of the production catalog to the key of the saved object', () => {
    expect(FIELD_MAP.map((m) => [m.module, m.templateName, m.key])).toEqual([
      ['patient', 'email', 'email'],
      ['patient', 'mobile', 'mobile'],
      ['patient', 'dob', 'dob'],
      ['patient', 'address', 'address'],
      ['patient', 'referral_doctor', 'referral_doctor'],
      ['patient', 'organization', 'organization'],
      ['bill', 'insurance', 'insurance'],
      ['bill', 'group', 'group'],
      ['bill', 'sample_collector', 'sample_collector'],
    ]);
    expect(lookupKey('bill', 'email')).toBeUndefined();
    expect(lookupKey('patient', 'passport_no')).toBeUndefined();
  });
});

describe('comparable values', () => {
  it.each([
    ['  NoEmail@Lab.IN ', { kind: 'text', text: 'noemail@lab.in' }],
    [9800000000, { kind: 'text', text: '9800000000' }],
    [1e21, { kind: 'text', text: '1000000000000000000000' }],
    [0.5, { kind: 'text', text: '0.5' }],
    [null, { kind: 'absent' }],
    ['', { kind: 'absent' }],
    ['  \t ', { kind: 'absent' }],
    [{ id: null, name: ' ' }, { kind: 'absent' }],
    [
      { id: 41, name: ' Self Pay ' },
      { kind: 'entity', id: 41, name: 'self pay' },
    ],
    [{ id: '41' }, { kind: 'entity', id: 41, name: null }],
    [['x'], { kind: 'other' }],
  ])('flattens %j to %j', (value, expected) => {
    expect(toComparable(value)).toEqual(expected);
  });

  it('matches an entity by id when both sides have ids, else by name', () => {
    const placeholder = { text: 'Self pay (missing)', entityIds: new Set([41]) };
    expect(equalsPlaceholder(toComparable({ id: 41, name: 'Renamed' }), placeholder)).toBe(true);
    expect(equalsPlaceholder(toComparable({ id: 42, name: 'Self pay (missing)' }), placeholder)).toBe(false);
    expect(equalsPlaceholder(toComparable({ name: 'self pay (missing)' }), placeholder)).toBe(true);
    const noIds = { text: 'Self pay (missing)', entityIds: new Set<number>() };
    expect(equalsPlaceholder(toComparable({ id: 99, name: 'SELF PAY (missing)' }), noIds)).toBe(true);
    expect(equalsPlaceholder(toComparable({ id: 99 }), noIds)).toBe(false);
  });
});

describe('capture opens a row when a saved value is the placeholder', () => {
  it.each<[string, FieldName, Incoming, boolean]>([
    ['the exact placeholder', 'email', 'noemail@lab.in', true],
    ['the placeholder in other case and with spaces', 'email', '  NoEmail@LAB.in ', true],
    ['a real value', 'email', 'asha@example.com', false],
    ['null', 'email', null, false],
    ['an empty string', 'email', '', false],
    ['whitespace', 'email', '   ', false],
    ['an absent key', 'email', ABSENT, false],
    ['a number equal to the placeholder', 'mobile', 9999999999, true],
    ['a different number', 'mobile', 9800000000, false],
    ['a date placeholder', 'dob', '1900-01-01', true],
    ['a bill text placeholder in lower case', 'sample_collector', 'na', true],
    ['the current placeholder entity by id, renamed since', 'insurance', { id: 52, name: 'Renamed' }, true],
    ['an older placeholder entity of the config', 'insurance', { id: 41, name: 'Self pay (old)' }, true],
    ['another entity named like the placeholder', 'insurance', { id: 77, name: 'Self pay (missing)' }, false],
    ['an entity without id named like the placeholder', 'insurance', { name: 'self pay (missing)' }, true],
    ['the placeholder as plain text for an entity field', 'insurance', 'Self pay (missing)', true],
    ['the entity_object_id of the config', 'organization', { id: 60, name: 'Anything' }, true],
    [
      'an entity by name when the config has no id yet',
      'referral_doctor',
      { id: 55, name: 'dr. unknown' },
      true,
    ],
    ['a real entity when the config has no id yet', 'referral_doctor', { id: 55, name: 'Dr. Rao' }, false],
    ['a group by name', 'group', { id: 3, name: 'No Group' }, true],
    ['an entity with neither id nor name', 'group', { id: null, name: null }, false],
  ])('%s', async (_what, field, value, opens) => {
    const labId = await newLab();
    const result = await run(labId, inputFor(field, body(field, value)));
    const rows = await rowsOf(t.db.em(), labId);
    expect(result).toEqual({ opened: opens ? 1 : 0, resolved: 0, hasMissingFields: opens });
    expect(rows.map((r) => r.field_id)).toEqual(opens ? [FIELD[field]] : []);
  });

  it('stores the config placeholder, the config, the organization and the bill on the new row', async () => {
    const labId = await newLab();
    const configs = await t.db
      .em()
      .find(LabMissingDetailsConfiguration, { labId }, { orderBy: { id: 'asc' } });
    await run(
      labId,
      inputFor('insurance', { insurance: { id: 41, name: 'Old name' }, sample_collector: ' na ' }),
    );
    const rows = await rowsOf(t.db.em(), labId);
    expect(rows).toEqual([
      expect.objectContaining({
        user_details_id: PATIENT,
        bill_id: BILL,
        org_id: 9,
        field_id: FIELD.insurance,
        field_name: 'insurance',
        field_value: 'Self pay (missing)',
        field_module: 'bill',
        config_id: configs.find((c) => c.fieldId === FIELD.insurance)!.id,
        is_resolved: 0,
        resolved_at: null,
      }),
      expect.objectContaining({ field_id: FIELD.sample_collector, field_value: 'NA', bill_id: BILL }),
    ]);
  });

  it('opens nothing for a disabled config, a field without config, or an inactive template', async () => {
    const labId = await newLab([
      { field: 'email', value: 'noemail@lab.in', disabled: true },
      { field: 'passport_no', value: 'NONE' },
    ]);
    const result = await run(
      labId,
      inputFor('email', { email: 'noemail@lab.in', mobile: '0', passport_no: 'NONE' }),
    );
    expect(result).toEqual({ opened: 0, resolved: 0, hasMissingFields: false });
    expect(await rowsOf(t.db.em(), labId)).toEqual([]);
  });

  it('looks only at the templates of the saved object’s module', async () => {
    const labId = await newLab();
    await run(labId, inputFor('email', { insurance: 'Self pay (missing)', sample_collector: 'NA' }));
    await run(labId, inputFor('insurance', { email: 'noemail@lab.in', mobile: '9999999999' }));
    expect(await rowsOf(t.db.em(), labId)).toEqual([]);
  });

  it('keeps the rows of each bill apart', async () => {
    const labId = await newLab();
    const bill = (billId: number, collector: string) =>
      run(labId, {
        module: 'bill',
        userDetailsId: PATIENT,
        billId,
        orgId: null,
        values: { sample_collector: collector },
      });
    await bill(1, 'NA');
    await bill(2, 'NA');
    await bill(1, 'Ravi');
    const rows = await rowsOf(t.db.em(), labId);
    expect(rows.map((r) => [r.bill_id, r.is_resolved])).toEqual([
      [1, 1],
      [2, 0],
    ]);
  });
});

describe('capture resolves an open row when the saved value is no longer the placeholder', () => {
  it.each<[string, FieldName, unknown, Incoming, boolean]>([
    ['a real value', 'email', 'noemail@lab.in', 'asha@example.com', true],
    ['the placeholder again, in other case', 'email', 'noemail@lab.in', ' NOEMAIL@lab.in', false],
    ['null', 'email', 'noemail@lab.in', null, false],
    ['an empty string', 'email', 'noemail@lab.in', '', false],
    ['whitespace', 'email', 'noemail@lab.in', '  ', false],
    ['an absent key', 'email', 'noemail@lab.in', ABSENT, false],
    ['a real number', 'mobile', '9999999999', 9800000000, true],
    ['the placeholder as a number', 'mobile', '9999999999', 9999999999, false],
    ['a real entity', 'insurance', 'Self pay (missing)', { id: 88, name: 'Star Health' }, true],
    [
      'the renamed placeholder entity',
      'insurance',
      { id: 52, name: 'Self pay (missing)' },
      { id: 52, name: 'Renamed' },
      false,
    ],
    [
      'an older placeholder entity',
      'insurance',
      { id: 52, name: 'x' },
      { id: 41, name: 'Self pay (old)' },
      false,
    ],
    [
      'another entity named like the placeholder',
      'insurance',
      { id: 52 },
      { id: 99, name: 'Self pay (missing)' },
      true,
    ],
    [
      'a real entity by name when the config has no id',
      'referral_doctor',
      'Dr. Unknown',
      { name: 'Dr. Rao' },
      true,
    ],
    [
      'the placeholder by name when the config has no id',
      'referral_doctor',
      'Dr. Unknown',
      { id: 5, name: 'DR. UNKNOWN' },
      false,
    ],
  ])('%s', async (_what, field, placeholderValue, value, resolves) => {
    const labId = await newLab();
    const opened = await run(labId, inputFor(field, body(field, placeholderValue)));
    expect(opened.opened).toBe(1);
    const result = await run(labId, inputFor(field, body(field, value)));
    expect(result).toEqual({ opened: 0, resolved: resolves ? 1 : 0, hasMissingFields: !resolves });
    const [row] = await rowsOf(t.db.em(), labId);
    expect(row!.is_resolved).toBe(resolves ? 1 : 0);
  });

  it.each([
    ['lab_user', { resolved_by_lab_user_id: 7, resolved_by_doctor_id: null }],
    ['doctor', { resolved_by_lab_user_id: null, resolved_by_doctor_id: 31 }],
  ] as const)('records a %s as the resolver, the other resolver empty', async (role, resolver) => {
    const labId = await newLab();
    await run(labId, inputFor('email', { email: 'noemail@lab.in' }));
    const [before] = await rowsOf(t.db.em(), labId);
    await run(labId, inputFor('email', { email: 'asha@example.com' }), role);
    const [after] = await rowsOf(t.db.em(), labId);
    expect(after).toMatchObject({ is_resolved: 1, ...resolver });
    expect(after!.resolved_at).not.toBeNull();
    expect(after!.updated_at > before!.updated_at).toBe(true);
  });

  it('resolves even after the config was disabled', async () => {
    const labId = await newLab();
    await run(labId, inputFor('insurance', { insurance: { id: 52, name: 'Self pay (missing)' } }));
    await t.db.em().nativeUpdate(LabMissingDetailsConfiguration, { labId }, { isDisabled: true });
    const placeholderAgain = await run(labId, inputFor('insurance', { insurance: { id: 41, name: 'Old' } }));
    expect(placeholderAgain).toEqual({ opened: 0, resolved: 0, hasMissingFields: true });
    const result = await run(labId, inputFor('insurance', { insurance: { id: 88, name: 'Star Health' } }));
    expect(result).toEqual({ opened: 0, resolved: 1, hasMissingFields: false });
  });

  it('keeps a resolved row resolved, and opens a new row when the placeholder comes back', async () => {
    const labId = await newLab();
    await run(labId, inputFor('email', { email: 'noemail@lab.in' }));
    await run(labId, inputFor('email', { email: 'asha@example.com' }));
    const stillReal = await run(labId, inputFor('email', { email: 'asha@example.com' }));
    expect(stillReal).toEqual({ opened: 0, resolved: 0, hasMissingFields: false });
    const reopened = await run(labId, inputFor('email', { email: 'NOEMAIL@lab.in' }));
    expect(reopened).toEqual({ opened: 1, resolved: 0, hasMissingFields: true });
    const rows = await rowsOf(t.db.em(), labId);
    expect(rows.map((r) => r.is_resolved)).toEqual([1, 0]);
  });

  it('resolves a row seen with an older placeholder and opens one for the current placeholder', async () => {
    const labId = await newLab();
    await run(labId, inputFor('email', { email: 'noemail@lab.in' }));
    await t.db
      .em()
      .nativeUpdate(
        LabMissingDetailsConfiguration,
        { labId, fieldId: FIELD.email },
        { fieldValue: 'none@lab.in' },
      );
    const result = await run(labId, inputFor('email', { email: 'none@lab.in' }));
    expect(result).toEqual({ opened: 1, resolved: 1, hasMissingFields: true });
    const rows = await rowsOf(t.db.em(), labId);
    expect(rows.map((r) => [r.field_value, r.is_resolved])).toEqual([
      ['noemail@lab.in', 1],
      ['none@lab.in', 0],
    ]);
  });
});

describe('capture writes nothing when nothing changed', () => {
  it('runs one read and no write for a save that repeats the open placeholders', async () => {
    const labId = await newLab();
    const values = { email: 'noemail@lab.in', mobile: 9999999999, address: '12 MG Road' };
    await run(labId, inputFor('email', values));
    const before = await rowsOf(t.db.em(), labId);
    const result = await t.db.em().transactional(async (tx) => {
      const start = await statementCounts(tx);
      const outcome = await capture(tx, principalFor(labId), inputFor('email', values));
      const end = await statementCounts(tx);
      return { outcome, selects: end.selects - start.selects, writes: end.writes - start.writes };
    });
    expect(result.outcome).toEqual({ opened: 0, resolved: 0, hasMissingFields: true });
    expect(result.writes).toBe(0);
    expect(result.selects).toBe(1);
    expect(await rowsOf(t.db.em(), labId)).toEqual(before);
  });

  it('runs one read and no write for a save that carries no mapped field', async () => {
    const labId = await newLab();
    const counts = await t.db.em().transactional(async (tx) => {
      const start = await statementCounts(tx);
      await capture(tx, principalFor(labId), inputFor('email', { full_name: 'Asha', email: ' ' }));
      const end = await statementCounts(tx);
      return { selects: end.selects - start.selects, writes: end.writes - start.writes };
    });
    expect(counts).toEqual({ selects: 1, writes: 0 });
  });

  it('opens and resolves many fields with one read, one insert and one update', async () => {
    const labId = await newLab();
    await run(labId, inputFor('email', { email: 'noemail@lab.in', mobile: '9999999999' }));
    const counts = await t.db.em().transactional(async (tx) => {
      const start = await statementCounts(tx);
      const outcome = await capture(
        tx,
        principalFor(labId),
        inputFor('email', {
          email: 'a@b.in',
          mobile: '98',
          dob: '1900-01-01',
          referral_doctor: { name: 'Dr. Unknown' },
        }),
      );
      const end = await statementCounts(tx);
      return { outcome, selects: end.selects - start.selects, writes: end.writes - start.writes };
    });
    expect(counts).toEqual({
      outcome: { opened: 2, resolved: 2, hasMissingFields: true },
      selects: 1,
      writes: 2,
    });
  });
});

describe('hasMissingFields after a capture', () => {
  it('counts the patient’s bill rows for a patient save, and the patient’s rows for a bill save', async () => {
    const labId = await newLab();
    await run(labId, inputFor('insurance', { insurance: 'Self pay (missing)' }));
    expect(await run(labId, inputFor('email', { email: 'asha@example.com' }))).toMatchObject({
      hasMissingFields: true,
    });
    const other = newLabId();
    await seedConfigs(t.db.em(), other, CONFIGS);
    await run(other, inputFor('email', { email: 'noemail@lab.in' }));
    expect(await run(other, inputFor('insurance', { insurance: 'Star Health' }))).toMatchObject({
      hasMissingFields: true,
    });
    const otherBill = await run(other, {
      module: 'bill',
      userDetailsId: PATIENT + 1,
      billId: BILL + 1,
      orgId: null,
      values: { insurance: 'Star Health' },
    });
    expect(otherBill.hasMissingFields).toBe(false);
  });
});

describe('tRPC capture.patient and capture.bill', () => {
  async function call(
    path: string,
    labId: number,
    input: unknown,
    claims: { orgId?: number; role?: 'doctor' } = {},
  ) {
    return t.app.inject({
      method: 'POST',
      url: `/trpc/${path}`,
      headers: { ...(await authHeader({ labId, userId: 7, ...claims })), 'content-type': 'application/json' },
      payload: JSON.stringify(input),
    });
  }

  it('captures a patient save and answers with what changed', async () => {
    const labId = await newLab();
    const res = await call('capture.patient', labId, {
      userDetailsId: 5,
      orgId: 9,
      values: { email: 'noemail@lab.in', referral_doctor: { id: 3, name: 'Dr. Unknown' } },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().result.data).toEqual({ opened: 2, resolved: 0, hasMissingFields: true });
    const rows = await rowsOf(t.db.em(), labId);
    expect(rows.map((r) => [r.user_details_id, r.org_id, r.bill_id])).toEqual([
      [5, 9, null],
      [5, 9, null],
    ]);
  });

  it('captures a bill save for that bill, resolving as a doctor', async () => {
    const labId = await newLab();
    await call('capture.bill', labId, { userDetailsId: 5, billId: 77, values: { group: 'No group' } });
    const res = await call(
      'capture.bill',
      labId,
      { userDetailsId: 5, billId: 77, values: { group: { id: 4, name: 'Staff' } } },
      { role: 'doctor' },
    );
    expect(res.json().result.data).toEqual({ opened: 0, resolved: 1, hasMissingFields: false });
    const [row] = await rowsOf(t.db.em(), labId);
    expect(row).toMatchObject({
      bill_id: 77,
      org_id: null,
      resolved_by_doctor_id: 7,
      resolved_by_lab_user_id: null,
    });
  });

  it('uses the organization of a principal limited to one, and refuses another organization', async () => {
    const labId = await newLab();
    const own = await call(
      'capture.patient',
      labId,
      { userDetailsId: 5, values: { email: 'noemail@lab.in' } },
      { orgId: 12 },
    );
    expect(own.json().result.data.hasMissingFields).toBe(true);
    expect((await rowsOf(t.db.em(), labId))[0]!.org_id).toBe(12);
    const other = await call(
      'capture.patient',
      labId,
      { userDetailsId: 6, orgId: 13, values: {} },
      { orgId: 12 },
    );
    expect(other.statusCode).toBe(403);
    expect(other.json().error.data.code).toBe('FORBIDDEN');
  });

  it.each([
    ['capture.patient', { values: {} }, 'userDetailsId'],
    ['capture.patient', { userDetailsId: -1, values: {} }, 'userDetailsId'],
    ['capture.patient', { userDetailsId: '5', values: {} }, 'userDetailsId'],
    ['capture.patient', { userDetailsId: 5, values: {}, labId: 3 }, ''],
    ['capture.patient', { userDetailsId: 5, values: [] }, 'values'],
    ['capture.patient', { userDetailsId: 5 }, 'values'],
    ['capture.patient', { userDetailsId: 5, orgId: 0, values: {} }, 'orgId'],
    ['capture.patient', { userDetailsId: 2 ** 31, values: {} }, 'userDetailsId'],
    ['capture.bill', { userDetailsId: 5, values: {} }, 'billId'],
    ['capture.bill', { userDetailsId: 5, billId: 1.5, values: {} }, 'billId'],
  ])('rejects %s %j with BAD_REQUEST naming %j', async (path, input, issuePath) => {
    const res = await call(path, newLabId(), input);
    expect(res.statusCode).toBe(400);
    const { data } = res.json().error;
    expect(data.code).toBe('BAD_REQUEST');
    expect(data.issues.map((i: { path: string }) => i.path)).toContain(issuePath);
  });

  it('answers UNAUTHORIZED without a principal', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/trpc/capture.patient',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ userDetailsId: 5, values: {} }),
    });
    expect(res.statusCode).toBe(401);
  });
});
