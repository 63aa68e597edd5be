import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

let sim: LegacySimulator;
let t: TestApp;

beforeAll(async () => {
  sim = await startLegacySimulator();
  t = await startTestApp({ LEGACY_PY3_URL: sim.py3Url, LEGACY_TIMEOUT_MS: '2000' });
});
afterAll(async () => {
  await t.close();
  await sim.close();
});
afterEach(() => {
  sim.state.py3Faults.length = 0;
});

const EMAIL = { id: 1, name: 'email', module: 'patient' };
const SAMPLE_COLLECTOR = { id: 9, name: 'sample_collector', module: 'bill' };

/** A patient or bill id no other test uses (the legacy tables are shared across runs). */
const newId = () => newLabId();

interface MissingRow {
  id: number;
  user_details_id: number;
  bill_id: number | null;
  org_id: number | null;
  field_id: number;
  field_value: string;
  is_resolved: number;
  resolved_by_lab_user_id: number | null;
  resolved_by_doctor_id: number | null;
}

async function configure(
  labId: number,
  field: { id: number; name: string; module: string },
  placeholder: string,
): Promise<void> {
  await t.db
    .em()
    .getConnection()
    .execute(
      `INSERT INTO LabMissingDetailsConfiguration
         (lab_id, field_id, field_name, field_value, field_module, field_category, is_disabled, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'text', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`,
      [labId, field.id, field.name, placeholder, field.module],
    );
}

async function rowsOf(where: { labId?: number; userDetailsId: number }): Promise<MissingRow[]> {
  const sql = where.labId
    ? 'SELECT * FROM LabMissingDetails WHERE lab_id = ? AND user_details_id = ? ORDER BY id'
    : 'SELECT * FROM LabMissingDetails WHERE user_details_id = ? ORDER BY id';
  const params = where.labId ? [where.labId, where.userDetailsId] : [where.userDetailsId];
  return t.db.em().getConnection().execute<MissingRow[]>(sql, params);
}

async function untouchedCount(path: string, reason: string): Promise<number> {
  const metrics = await t.app.inject({ url: '/metrics' });
  const line = metrics.body
    .split('\n')
    .find((l) =>
      l.startsWith(`missing_details_proxy_untouched_answers_total{path="${path}",reason="${reason}"}`),
    );
  return line ? Number(line.split(' ').at(-1)) : 0;
}

function savePatient(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return t.app.inject({
    method: 'POST',
    url: '/api-v3/registration/patients/new',
    headers: { 'content-type': 'application/json', ...headers },
    payload: JSON.stringify(body),
  });
}

describe('POST /api-v3/registration/patients/new (captured)', () => {
  it('opens a row and adds has_missing_fields true when a patient is saved with the placeholder', async () => {
    const labId = newLabId();
    const patientId = newId();
    await configure(labId, EMAIL, 'noemail@lab.in');
    const res = await savePatient(
      {
        user_details_id: patientId,
        full_name: 'Asha Rao',
        email: ' NoEmail@lab.in ',
        organization: { id: 9, name: 'City Clinic' },
      },
      await authHeader({ labId, userId: 7 }),
    );
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      status: 'success',
      user_details_id: patientId,
      org_id: 9,
      has_missing_fields: true,
    });
    expect(res.headers['set-cookie']).toEqual([
      'csrftoken=sim-csrf; Path=/',
      `last_patient=${patientId}; Path=/`,
    ]);
    expect(sim.state.patients.get(patientId)).toMatchObject({
      email: ' NoEmail@lab.in ',
      full_name: 'Asha Rao',
    });
    const rows = await rowsOf({ labId, userDetailsId: patientId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      field_id: EMAIL.id,
      field_value: 'noemail@lab.in',
      org_id: 9,
      bill_id: null,
      is_resolved: 0,
    });
  });

  it('resolves the row and answers false once the real value is saved', async () => {
    const labId = newLabId();
    const patientId = newId();
    const headers = await authHeader({ labId, userId: 41 });
    await configure(labId, EMAIL, 'noemail@lab.in');
    expect(
      (await savePatient({ user_details_id: patientId, email: 'noemail@lab.in' }, headers)).json(),
    ).toMatchObject({
      has_missing_fields: true,
    });
    const res = await savePatient({ user_details_id: patientId, email: 'asha@example.com' }, headers);
    expect(res.json()).toEqual({
      status: 'success',
      user_details_id: patientId,
      org_id: null,
      has_missing_fields: false,
    });
    const rows = await rowsOf({ labId, userDetailsId: patientId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      is_resolved: 1,
      resolved_by_lab_user_id: 41,
      resolved_by_doctor_id: null,
    });
  });

  it('captures for the principal of a legacy session cookie', async () => {
    const labId = newLabId();
    const patientId = newId();
    await configure(labId, EMAIL, 'noemail@lab.in');
    sim.state.sessions.set(`sess-${labId}`, { lab_id: labId, user_id: 12, is_doctor: false, org_id: null });
    const res = await savePatient(
      { user_details_id: patientId, email: 'noemail@lab.in' },
      { cookie: `sessionid=sess-${labId}; other=1`, 'accept-encoding': 'gzip, br' },
    );
    expect(res.json()).toMatchObject({ user_details_id: patientId, has_missing_fields: true });
    expect(await rowsOf({ labId, userDetailsId: patientId })).toHaveLength(1);
    const forwarded = sim.state.py3Requests.find(
      (r) =>
        r.url === '/api-v3/registration/patients/new' &&
        r.headers.cookie === `sessionid=sess-${labId}; other=1`,
    );
    expect(forwarded).toBeDefined();
    // The answer is rewritten, so legacy is not invited to compress it.
    expect(forwarded?.headers['accept-encoding']).toBeUndefined();
  });

  it('captures a form-encoded save like a JSON one', async () => {
    const labId = newLabId();
    await configure(labId, EMAIL, 'noemail@lab.in');
    const res = await t.app.inject({
      method: 'POST',
      url: '/api-v3/registration/patients/new',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(await authHeader({ labId, userId: 7 })),
      },
      payload: 'email=noemail%40lab.in',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toHaveProperty('has_missing_fields', true);
  });

  it('forwards a body it cannot read and leaves the answer untouched, counting the miss', async () => {
    const labId = newLabId();
    await configure(labId, EMAIL, 'noemail@lab.in');
    const before = await untouchedCount('patient_save', 'unreadable_request_body');
    const res = await t.app.inject({
      method: 'POST',
      url: '/api-v3/registration/patients/new',
      headers: { 'content-type': 'application/json', ...(await authHeader({ labId, userId: 7 })) },
      payload: '["email", "noemail@lab.in"]',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).not.toHaveProperty('has_missing_fields');
    expect(await untouchedCount('patient_save', 'unreadable_request_body')).toBe(before + 1);
  });

  it('forwards a save larger than 1 MiB to legacy, which decides, without capturing it', async () => {
    const labId = newLabId();
    const patientId = newId();
    await configure(labId, EMAIL, 'noemail@lab.in');
    const res = await savePatient(
      { user_details_id: patientId, email: 'noemail@lab.in', address: 'x'.repeat(1_200_000) },
      await authHeader({ labId, userId: 7 }),
    );
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'success', user_details_id: patientId, org_id: null });
    expect(String(sim.state.patients.get(patientId)?.address).length).toBe(1_200_000);
    expect(await rowsOf({ labId, userDetailsId: patientId })).toEqual([]);
  });

  it('passes legacy’s answer through untouched without a principal, and counts it', async () => {
    const patientId = newId();
    const before = await untouchedCount('patient_save', 'no_principal');
    const payload = JSON.stringify({ user_details_id: patientId, email: 'noemail@lab.in' });
    const res = await t.app.inject({
      method: 'POST',
      url: '/api-v3/registration/patients/new',
      headers: { 'content-type': 'application/json' },
      payload,
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(JSON.stringify({ status: 'success', user_details_id: patientId, org_id: null }));
    expect(await rowsOf({ userDetailsId: patientId })).toEqual([]);
    expect(await untouchedCount('patient_save', 'no_principal')).toBe(before + 1);
  });

  it('treats an invalid bearer token as no principal', async () => {
    const patientId = newId();
    const res = await savePatient(
      { user_details_id: patientId, email: 'noemail@lab.in' },
      { authorization: 'Bearer not.a.token' },
    );
    expect(res.json()).toEqual({ status: 'success', user_details_id: patientId, org_id: null });
    expect(await rowsOf({ userDetailsId: patientId })).toEqual([]);
  });

  it('passes a legacy 4xx through untouched and captures nothing', async () => {
    const labId = newLabId();
    const patientId = newId();
    await configure(labId, EMAIL, 'noemail@lab.in');
    sim.state.py3Faults.push({ pathPrefix: '/api-v3/registration/patients/new', status: 422, times: 1 });
    const res = await savePatient(
      { user_details_id: patientId, email: 'noemail@lab.in' },
      await authHeader({ labId, userId: 7 }),
    );
    expect(res.statusCode).toBe(422);
    expect(res.json()).toEqual({ error: 'simulated failure 422' });
    expect(await rowsOf({ labId, userDetailsId: patientId })).toEqual([]);
  });

  it('still returns legacy’s answer when the session check fails after the write', async () => {
    const labId = newLabId();
    const patientId = newId();
    await configure(labId, EMAIL, 'noemail@lab.in');
    const before = await untouchedCount('patient_save', 'session_check_failed');
    sim.state.py3Faults.push({ pathPrefix: '/api-v3/account/session', status: 500, times: 1 });
    const res = await savePatient(
      { user_details_id: patientId, email: 'noemail@lab.in' },
      { cookie: `sessionid=broken-${labId}` },
    );
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'success', user_details_id: patientId, org_id: null });
    expect(sim.state.patients.has(patientId)).toBe(true);
    expect(await untouchedCount('patient_save', 'session_check_failed')).toBe(before + 1);
  });
});

describe('POST /api-v3/finance/bill/{labBillId}/update (captured)', () => {
  it('opens a bill row under the path’s bill id and answers has_missing_fields true', async () => {
    const labId = newLabId();
    const patientId = newId();
    const billId = newId();
    await configure(labId, SAMPLE_COLLECTOR, 'NA');
    const res = await t.app.inject({
      method: 'POST',
      url: `/api-v3/finance/bill/${billId}/update`,
      headers: { 'content-type': 'application/json', ...(await authHeader({ labId, userId: 7 })) },
      payload: JSON.stringify({
        user_details_id: patientId,
        insurance: null,
        group: null,
        sample_collector: 'na',
      }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      status: 'success',
      bill_id: billId,
      user_details_id: patientId,
      org_id: null,
      has_missing_fields: true,
    });
    const rows = await rowsOf({ labId, userDetailsId: patientId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      bill_id: billId,
      field_id: SAMPLE_COLLECTOR.id,
      field_value: 'NA',
      is_resolved: 0,
    });
  });

  it('passes legacy’s 400 through untouched and captures nothing', async () => {
    const labId = newLabId();
    await configure(labId, SAMPLE_COLLECTOR, 'NA');
    const res = await t.app.inject({
      method: 'POST',
      url: '/api-v3/finance/bill/77/update',
      headers: { 'content-type': 'application/json', ...(await authHeader({ labId, userId: 7 })) },
      payload: JSON.stringify({ sample_collector: 'NA' }),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      status: 'error',
      message: 'user_details_id and a numeric bill id are required',
    });
    const rows = await t.db
      .em()
      .getConnection()
      .execute('SELECT id FROM LabMissingDetails WHERE lab_id = ?', [labId]);
    expect(rows).toEqual([]);
  });
});
