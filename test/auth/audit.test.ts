import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { buildApp, loggerOptions } from '../../src/app.js';
import { startBackgroundTasks } from '../../src/background.js';
import { Database } from '../../src/db/database.js';
import { initOrm } from '../../src/db/orm.js';
import { openBridgeDatabase } from '../support/bridge-fixtures.js';
import {
  authHeader,
  FIELD,
  newLabId,
  startTestApp,
  type TestApp,
  testConfig,
  tokenFor,
} from '../support/fixtures.js';
import { trpcRequest } from '../support/reliability-fixtures.js';

const CONFIGS = '/api-v3/registration/patients/lab-missing-details-config';
const LAB_FIELDS = '/api-v3/account/missing-details/lab-fields';

interface ActivityRow {
  lab_id: number;
  org_id: number | null;
  lab_user_id: number | null;
  doctor_id: number | null;
  action: string;
  object_type: string | null;
  message: string;
  details: string | null;
}

describe('the audit trail', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  const activity = (labId: number) =>
    t.db
      .em()
      .execute<ActivityRow[]>(
        'SELECT lab_id, org_id, lab_user_id, doctor_id, action, object_type, message, details FROM ActivityLog WHERE lab_id = ? ORDER BY id',
        [labId],
      );

  it('writes one config_saved row per config save, naming who, the lab, the fields and the counts', async () => {
    const labId = newLabId();
    const headers = await authHeader({ labId, userId: 41 });
    const first = await t.app.inject({
      method: 'POST',
      url: CONFIGS,
      headers,
      payload: { configs: [{ field_id: FIELD.email, field_value: 'noemail@lab.in' }] },
    });
    expect(first.statusCode).toBe(200);
    const second = await t.app.inject({
      method: 'POST',
      url: CONFIGS,
      headers,
      payload: {
        configs: [
          { field_id: FIELD.email, field_value: 'none@lab.in' },
          { field_id: FIELD.mobile, field_value: '0000000000' },
        ],
      },
    });
    expect(second.statusCode).toBe(200);
    const rows = await activity(labId);
    expect(rows.map((r) => r.action)).toEqual(['config_saved', 'config_saved']);
    expect(rows[1]).toMatchObject({ lab_id: labId, org_id: null, lab_user_id: 41, doctor_id: null });
    expect(JSON.parse(rows[1]!.details!)).toMatchObject({
      field_ids: [FIELD.email, FIELD.mobile],
      created_count: 1,
      updated_ids: [expect.any(Number)],
      disabled_ids: [],
    });
  });

  it('writes nothing for a save that is rejected and rolled back', async () => {
    const labId = newLabId();
    const headers = await authHeader({ labId, userId: 41 });
    const res = await t.app.inject({
      method: 'POST',
      url: CONFIGS,
      headers,
      payload: {
        configs: [
          { field_id: FIELD.insurance, field_value: 'Self pay' },
          { field_id: FIELD.passport_no, field_value: 'NA' },
        ],
      },
    });
    expect(res.statusCode).toBe(400);
    expect(await activity(labId)).toEqual([]);
  });

  it('writes one row per bulk resolve and unresolve with the caller, the count and the ids', async () => {
    const labId = newLabId();
    const headers = await authHeader({ labId, userId: 42, role: 'doctor' });
    // The lab's staff sets the placeholder; the doctor resolves.
    await t.app.inject({
      method: 'POST',
      url: CONFIGS,
      headers: await authHeader({ labId, userId: 3 }),
      payload: { configs: [{ field_id: FIELD.email, field_value: 'noemail@lab.in' }] },
    });
    for (const userDetailsId of [501, 502]) {
      await t.app.inject({
        ...trpcRequest('capture.patient', 'mutation', { userDetailsId, values: { email: 'noemail@lab.in' } }),
        headers,
      });
    }
    const list = await t.app.inject({ url: LAB_FIELDS, headers });
    const ids = list.json().results.map((r: { id: number }) => r.id);
    expect(ids).toHaveLength(2);
    for (const isResolved of [true, false]) {
      const res = await t.app.inject({
        method: 'PATCH',
        url: LAB_FIELDS,
        headers,
        payload: { ids, is_resolved: isResolved },
      });
      expect(res.json()).toEqual({ updated_count: 2 });
    }
    const rows = (await activity(labId)).filter((r) => r.action.startsWith('lab_fields_'));
    expect(rows.map((r) => [r.action, r.doctor_id, r.lab_user_id])).toEqual([
      ['lab_fields_resolved', 42, null],
      ['lab_fields_unresolved', 42, null],
    ]);
    expect(JSON.parse(rows[0]!.details!)).toMatchObject({
      updated_count: 2,
      updated_ids: [...ids].sort((a, b) => a - b),
    });
  });

  it('traces each entity creation outcome and each operator retry', async () => {
    const labId = newLabId();
    const headers = await authHeader({ labId, userId: 43 });
    await t.app.inject({
      method: 'POST',
      url: CONFIGS,
      headers,
      payload: {
        configs: [
          { field_id: FIELD.insurance, field_value: 'Self pay (missing)' },
          { field_id: FIELD.referral_doctor, field_value: 'Dr. Unknown' },
        ],
      },
    });
    const actions = (await activity(labId)).map((r) => r.action);
    expect(actions.filter((a) => a === 'entity_creation_succeeded')).toHaveLength(1);
    expect(actions.filter((a) => a === 'entity_creation_queued')).toHaveLength(1);
    // An operator retries a creation that finally failed.
    await t.db
      .em()
      .execute(
        "UPDATE md_entity_creation_outbox SET status = 'failed', failed_at = NOW(6) WHERE lab_id = ?",
        [labId],
      );
    const creations = await t.app.inject({ ...trpcRequest('entityCreations.list', 'query', {}), headers });
    const creationIds = creations.json().result.data.items.map((c: { id: number }) => c.id);
    const retry = await t.app.inject({
      ...trpcRequest('entityCreations.retry', 'mutation', { ids: creationIds }),
      headers,
    });
    expect(retry.statusCode).toBe(200);
    const retried = (await activity(labId)).filter((r) => r.action === 'entity_creation_retried');
    expect(retried).toHaveLength(creationIds.length);
    expect(retried[0]).toMatchObject({ lab_user_id: 43, lab_id: labId });
  });
});

describe('the logs of a full run', () => {
  const PATIENT = {
    full_name: 'Asha Piiname Rao',
    email: 'asha.pii.rao@example.com',
    mobile: '9812345670',
    address: '42 Piistreet, Pune',
  };
  const SECRETS = {
    AUTH_JWT_SECRET: 'audit-test-jwt-secret-value-0042',
    LEGACY_PY2_TOKEN: 'audit-test-py2-token-value-0042',
    cookie: 'audit-test-session-cookie-0042',
  };
  let sim: LegacySimulator;
  const lines: string[] = [];

  beforeAll(async () => {
    sim = await startLegacySimulator({ py2Token: SECRETS.LEGACY_PY2_TOKEN });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('never contain patient values or secrets', async () => {
    // The background tasks drain every due creation and capture of their database: a database of this
    // test's own keeps them away from other files' rows.
    const isolated = await openBridgeDatabase('audit');
    await isolated.db.close();
    const config = testConfig({
      DATABASE_URL: isolated.url,
      LEGACY_PY3_URL: sim.py3Url,
      LEGACY_PY2_URL: sim.py2Url,
      LEGACY_PY2_TOKEN: SECRETS.LEGACY_PY2_TOKEN,
      AUTH_JWT_SECRET: SECRETS.AUTH_JWT_SECRET,
      BRIDGE_WORKER_ENABLED: 'true',
      BRIDGE_POLL_INTERVAL_MS: '20',
      LOG_LEVEL: 'trace',
    });
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    // As the server builds it (src/server.ts).
    const logger = pino(loggerOptions(config) as pino.LoggerOptions, sink);
    const orm = await initOrm({ databaseUrl: config.databaseUrl, poolSize: 5 });
    const db = new Database(orm);
    const app = await buildApp({ config, db, loggerInstance: logger });
    await app.ready();
    const tasks = await startBackgroundTasks({ config, db, logger });
    try {
      const labId = newLabId();
      const token = await tokenFor({ labId, userId: 44 }, SECRETS.AUTH_JWT_SECRET);
      const bearer = { authorization: `Bearer ${token}` };
      sim.state.sessions.set(SECRETS.cookie, { lab_id: labId, user_id: 45, is_doctor: false, org_id: null });
      const cookie = { cookie: `sessionid=${SECRETS.cookie}` };

      await app.inject({
        method: 'POST',
        url: CONFIGS,
        headers: bearer,
        payload: {
          configs: [
            { field_id: FIELD.email, field_value: 'noemail@lab.in' },
            { field_id: FIELD.referral_doctor, field_value: 'Dr. Unknown' },
          ],
        },
      });
      // A legacy patient save (captured), with and without placeholders, by cookie and by token.
      const saved = await app.inject({
        method: 'POST',
        url: '/api-v3/registration/patients/new',
        headers: cookie,
        payload: { user_details_id: null, ...PATIENT, email: 'noemail@lab.in' },
      });
      expect(saved.statusCode).toBe(200);
      const userDetailsId = saved.json().user_details_id;
      await app.inject({
        method: 'POST',
        url: '/api-v3/registration/patients/new',
        headers: bearer,
        payload: { user_details_id: userDetailsId, ...PATIENT },
      });
      await app.inject({ url: `/api-v3/registration/patients/${userDetailsId}`, headers: cookie });
      // Rejected inputs carrying patient values.
      await app.inject({
        ...trpcRequest('capture.patient', 'mutation', {
          userDetailsId: -1,
          values: { email: PATIENT.email },
        }),
        headers: bearer,
      });
      await app.inject({
        method: 'POST',
        url: CONFIGS,
        headers: bearer,
        payload: {
          configs: [{ field_id: FIELD.mobile, field_value: PATIENT.mobile, full_name: PATIENT.full_name }],
        },
      });
      await app.inject({
        url: `${LAB_FIELDS}?user_details_id=${encodeURIComponent(PATIENT.email)}`,
        headers: bearer,
      });
      // A legacy failure and a bad token.
      sim.state.py3Faults.push({ pathPrefix: '/api-v3/registration/patients/new', status: 500, times: 1 });
      await app.inject({
        method: 'POST',
        url: '/api-v3/registration/patients/new',
        headers: bearer,
        payload: { user_details_id: userDetailsId, ...PATIENT },
      });
      await app.inject({ url: LAB_FIELDS, headers: { authorization: `Bearer ${token}x` } });
      // The queued creation is delivered to PY-2 by the worker, with its token.
      await vi.waitFor(() => expect(sim.state.py2Calls.length).toBeGreaterThan(0), { timeout: 5000 });
    } finally {
      for (const task of tasks) await task.stop();
      await app.close();
      await db.close();
    }
    const log = lines.join('');
    expect(lines.length).toBeGreaterThan(10);
    const values = [...Object.values(PATIENT), ...Object.values(SECRETS), 'Piiname', 'Piistreet'];
    for (const value of [...values, ...values.map(encodeURIComponent)]) {
      expect(log, `the logs contain ${value}`).not.toContain(value);
    }
    expect(log).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
  });
});
