import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenClaims } from '../../src/auth/token.js';
import { captureInTransaction } from '../../src/services/capture.service.js';
import {
  authHeader,
  newLabId,
  principalFor,
  seedConfigs,
  startTestApp,
  type TestApp,
} from '../support/fixtures.js';

const BASE = '/api-v3/account/missing-details';
const CONFIGS = '/api-v3/registration/patients/lab-missing-details-config';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const staff = (labId: number): TokenClaims => ({ labId, userId: 7 });

async function send(
  claims: TokenClaims,
  method: 'GET' | 'PUT' | 'PATCH' | 'POST',
  url: string,
  payload?: unknown,
) {
  return t.app.inject({ method, url, headers: await authHeader(claims), ...(payload ? { payload } : {}) });
}

async function capturePatient(labId: number, userDetailsId: number, values: Record<string, unknown>) {
  const res = await t.app.inject({
    method: 'POST',
    url: '/trpc/capture.patient',
    headers: await authHeader(staff(labId)),
    payload: { userDetailsId, values },
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().result.data as { opened: number; resolved: number; hasMissingFields: boolean };
}

async function openItems(claims: TokenClaims, query = '') {
  const res = await send(claims, 'GET', `${BASE}/lab-fields?${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json().results as Array<Record<string, unknown>>;
}

describe('junk detection', () => {
  it('is off by default: a junk value opens nothing and the settings say so', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'mobile', value: '0000000000' }]);
    expect((await send(staff(labId), 'GET', `${BASE}/settings`)).json()).toEqual({
      junk_detection: false,
      extra_junk_values: {},
    });
    expect(await capturePatient(labId, 101, { mobile: '1234567890' })).toMatchObject({ opened: 0 });
  });

  it('once on, opens a junk row like a placeholder, keeps it open for more junk, and resolves it on a real value', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'mobile', value: '0000000000' }]);
    const put = await send(staff(labId), 'PUT', `${BASE}/settings`, { junk_detection: true });
    expect(put.json()).toEqual({ junk_detection: true, extra_junk_values: {} });

    expect(await capturePatient(labId, 102, { mobile: '98' })).toMatchObject({
      opened: 1,
      hasMissingFields: true,
    });
    expect(await openItems(staff(labId))).toEqual([
      expect.objectContaining({ field_name: 'mobile', field_value: '98', detected_as: 'junk' }),
    ]);
    // Junk never resolves an open row, whether the row is junk or a placeholder.
    expect(await capturePatient(labId, 102, { mobile: '1111111' })).toMatchObject({ opened: 0, resolved: 0 });
    expect(await capturePatient(labId, 103, { mobile: '0000000000' })).toMatchObject({ opened: 1 });
    expect(await capturePatient(labId, 103, { mobile: 'n/a' })).toMatchObject({ resolved: 0 });
    const items = await openItems(staff(labId));
    expect(items.map((i) => [i.user_details_id, i.detected_as])).toEqual([
      [103, 'placeholder'],
      [102, 'junk'],
    ]);
    // A real value resolves both.
    expect(await capturePatient(labId, 102, { mobile: '+91 98450 12345' })).toMatchObject({ resolved: 1 });
    expect(await capturePatient(labId, 103, { mobile: '9845012345' })).toMatchObject({ resolved: 1 });
    expect(await openItems(staff(labId))).toEqual([]);
  });

  it('uses the lab’s own extra values per field, and takes effect at once on every instance', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'address', value: 'address unknown' }]);
    expect(await capturePatient(labId, 104, { address: 'Same as above' })).toMatchObject({ opened: 0 });
    await send(staff(labId), 'PUT', `${BASE}/settings`, {
      junk_detection: true,
      extra_junk_values: { address: ['same as above'] },
    });
    expect(await capturePatient(labId, 105, { address: ' SAME AS ABOVE ' })).toMatchObject({ opened: 1 });
    // Omitted keys keep their value.
    const off = await send(staff(labId), 'PUT', `${BASE}/settings`, { junk_detection: false });
    expect(off.json()).toEqual({ junk_detection: false, extra_junk_values: { address: ['same as above'] } });
    expect(await capturePatient(labId, 106, { address: 'same as above' })).toMatchObject({ opened: 0 });
  });

  it('lets only lab-wide staff change the settings, and refuses bad settings with a 400 naming them', async () => {
    const labId = newLabId();
    const doctor = await send({ labId, userId: 8, role: 'doctor' }, 'PUT', `${BASE}/settings`, {
      junk_detection: true,
    });
    expect(doctor.statusCode).toBe(403);
    const orgUser = await send({ labId, userId: 9, orgId: 3 }, 'PUT', `${BASE}/settings`, {
      junk_detection: true,
    });
    expect(orgUser.statusCode).toBe(403);
    expect((await send({ labId, userId: 9, orgId: 3 }, 'GET', `${BASE}/settings`)).statusCode).toBe(200);
    const cases: Array<[unknown, string]> = [
      [{}, ''],
      [{ junk_detection: 'yes' }, 'junk_detection'],
      [{ extra_junk_values: { passport: ['x'] } }, 'extra_junk_values.passport'],
      [
        { extra_junk_values: { email: Array.from({ length: 21 }, (_, i) => `v${i}`) } },
        'extra_junk_values.email',
      ],
      [{ extra_junk_values: { email: ['  '] } }, 'extra_junk_values.email.0'],
      [{ junk_detection: true, color: 'red' }, 'color'],
    ];
    for (const [payload, path] of cases) {
      const res = await send(staff(labId), 'PUT', `${BASE}/settings`, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.issues.map((i: { path: string }) => i.path)).toContain(path);
    }
  });

  it('answers the same settings over tRPC settings.get and settings.update', async () => {
    const labId = newLabId();
    const update = await t.app.inject({
      method: 'POST',
      url: '/trpc/settings.update',
      headers: await authHeader(staff(labId)),
      payload: { junkDetection: true, extraJunkValues: { email: ['desk@lab.in'] } },
    });
    expect(update.statusCode, update.body).toBe(200);
    const get = await t.app.inject({ url: '/trpc/settings.get', headers: await authHeader(staff(labId)) });
    expect(get.json().result.data).toEqual({
      junkDetection: true,
      extraJunkValues: { email: ['desk@lab.in'] },
    });
  });
});

describe('owning and ageing the work', () => {
  it('gives each row opened under a config with due_in_hours a due time, and lists it as overdue once past it', async () => {
    const labId = newLabId();
    const save = await send(staff(labId), 'POST', CONFIGS, {
      configs: [
        { field_id: 1, field_value: 'noemail@lab.in', due_in_hours: 24 },
        { field_id: 2, field_value: '0000000000' },
      ],
    });
    expect(save.statusCode, save.body).toBe(200);
    expect(save.json().configs.map((c: { due_in_hours: number | null }) => c.due_in_hours)).toEqual([
      24,
      null,
    ]);
    const twoDaysAgo = new Date(Date.now() - 48 * 3_600_000);
    await captureInTransaction(
      t.db.em(),
      principalFor(labId),
      {
        module: 'patient',
        userDetailsId: 201,
        billId: null,
        orgId: null,
        values: { email: 'noemail@lab.in' },
      },
      { now: twoDaysAgo },
    );
    await capturePatient(labId, 202, { email: 'noemail@lab.in', mobile: '0000000000' });
    const items = await openItems(staff(labId));
    const byPatient = (id: number, field: string) =>
      items.find((i) => i.user_details_id === id && i.field_name === field)!;
    expect(byPatient(201, 'email')).toMatchObject({
      due_at: new Date(twoDaysAgo.getTime() + 24 * 3_600_000).toISOString().replace('Z', '000Z'),
      is_overdue: true,
    });
    expect(byPatient(202, 'email')).toMatchObject({ is_overdue: false });
    expect(byPatient(202, 'mobile')).toMatchObject({ due_at: null, is_overdue: false });
    const overdue = await openItems(staff(labId), 'overdue=true');
    expect(overdue.map((i) => i.user_details_id)).toEqual([201]);
    const bad = await send(staff(labId), 'GET', `${BASE}/lab-fields?overdue=true&is_resolved=true`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.issues[0].path).toBe('overdue');
    for (const due of [0, 721, 1.5, '24']) {
      const res = await send(staff(labId), 'POST', CONFIGS, {
        configs: [{ field_id: 1, field_value: 'x@lab.in', due_in_hours: due }],
      });
      expect(res.statusCode, String(due)).toBe(400);
      expect(res.json().error.issues[0].path).toBe('configs.0.due_in_hours');
    }
  });

  it('assigns rows in the caller scope, filters by assignee, unassigns, and counts both in the summary', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'email', value: 'noemail@lab.in' }]);
    for (const patient of [301, 302, 303]) await capturePatient(labId, patient, { email: 'noemail@lab.in' });
    const otherLab = newLabId();
    await seedConfigs(t.db.em(), otherLab, [{ field: 'email', value: 'noemail@lab.in' }]);
    await capturePatient(otherLab, 304, { email: 'noemail@lab.in' });
    const ids = (await openItems(staff(labId))).map((i) => i.id as number);
    const foreign = (await openItems(staff(otherLab))).map((i) => i.id as number);

    const assign = await send(staff(labId), 'PATCH', `${BASE}/lab-fields/assignment`, {
      ids: [ids[0], ids[1], ...foreign],
      assignee_user_id: 42,
    });
    expect(assign.statusCode, assign.body).toBe(200);
    expect(assign.json()).toEqual({ updated_count: 2 });
    expect((await openItems(staff(otherLab)))[0]).toMatchObject({ assignee_user_id: null });
    const mine = await openItems(staff(labId), 'assignee_user_id=42');
    expect(mine.map((i) => i.id).sort()).toEqual([ids[0], ids[1]].sort());

    const summary = (await send(staff(labId), 'GET', `${BASE}/summary`)).json();
    expect(summary.open.by_assignee).toEqual([
      { assignee_user_id: null, total: 1, overdue: 0 },
      { assignee_user_id: 42, total: 2, overdue: 0 },
    ]);
    expect(summary.open.overdue).toBe(0);

    const unassign = await send(staff(labId), 'PATCH', `${BASE}/lab-fields/assignment`, {
      ids: [ids[0]],
      assignee_user_id: null,
    });
    expect(unassign.json()).toEqual({ updated_count: 1 });
    expect((await openItems(staff(labId), 'assignee_user_id=42')).map((i) => i.id)).toEqual([ids[1]]);
    const [logged] = await t.db
      .em()
      .execute<Array<{ action: string; details: string }>>(
        "SELECT action, details FROM ActivityLog WHERE lab_id = ? AND action LIKE 'lab_fields_%assigned' ORDER BY id DESC LIMIT 1",
        [labId],
      );
    expect(logged).toMatchObject({ action: 'lab_fields_unassigned' });
  });

  it('lets only lab-wide staff assign, and refuses a bad assignment with a 400 naming the field', async () => {
    const labId = newLabId();
    const body = { ids: [1], assignee_user_id: 3 };
    expect(
      (await send({ labId, userId: 8, role: 'doctor' }, 'PATCH', `${BASE}/lab-fields/assignment`, body))
        .statusCode,
    ).toBe(403);
    expect(
      (await send({ labId, userId: 9, orgId: 2 }, 'PATCH', `${BASE}/lab-fields/assignment`, body)).statusCode,
    ).toBe(403);
    const cases: Array<[unknown, string]> = [
      [{ ids: [1] }, 'assignee_user_id'],
      [{ ids: [], assignee_user_id: 3 }, 'ids'],
      [{ ids: [1, 1], assignee_user_id: 3 }, 'ids.1'],
      [{ ids: [1], assignee_user_id: 0 }, 'assignee_user_id'],
      [{ ids: [1], assignee_user_id: 'ravi' }, 'assignee_user_id'],
    ];
    for (const [payload, path] of cases) {
      const res = await send(staff(labId), 'PATCH', `${BASE}/lab-fields/assignment`, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.issues.map((i: { path: string }) => i.path)).toContain(path);
    }
  });
});
