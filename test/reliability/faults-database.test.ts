import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ensureDatabaseExists, initOrm, migrateUp } from '../../src/db/orm.js';
import { testDatabaseIsMySql } from '../support/env.js';
import { authHeader, FIELD, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';
import { PrivateMariaDb } from '../support/private-mariadb.js';

const CONFIGS = '/api-v3/registration/patients/lab-missing-details-config';

// This test kills and restarts a private mariadbd of its own, whatever the test database is: in the mysql
// lane it would only repeat the MariaDB run, so it stays MariaDB-only (skipped, and reported as skipped).
const onMySql = await testDatabaseIsMySql();

let mariadb: PrivateMariaDb;
let t: TestApp;
beforeAll(async () => {
  if (onMySql) return;
  mariadb = await PrivateMariaDb.create();
  await ensureDatabaseExists(mariadb.url);
  const orm = await initOrm({ databaseUrl: mariadb.url });
  try {
    await migrateUp(orm);
  } finally {
    await orm.close(true);
  }
  t = await startTestApp({ DATABASE_URL: mariadb.url });
}, 60_000);
afterAll(async () => {
  await t?.close();
  await mariadb?.destroy();
});

async function save(labId: number, value: string) {
  const started = Date.now();
  const res = await t.app.inject({
    method: 'POST',
    url: CONFIGS,
    headers: await authHeader({ labId, userId: 7 }),
    payload: { configs: [{ field_id: FIELD.email, field_value: value }] },
  });
  return { status: res.statusCode, body: res.body, ms: Date.now() - started };
}

describe.skipIf(onMySql)('MariaDB stopped under load', () => {
  it('fails fast with 503, says so on /health, recovers without a restart and loses no acknowledged write', async () => {
    const acknowledged = new Map<number, string>();
    const whileDown: { status: number; ms: number }[] = [];
    const failures: { status: number; body: string }[] = [];
    let down = false;
    let stop = false;
    const worker = async (n: number) => {
      for (let i = 0; !stop; i++) {
        const labId = newLabId();
        const value = `ack-${n}-${i}@lab.in`;
        const wasDown = down;
        const res = await save(labId, value);
        if (res.status === 200) acknowledged.set(labId, value);
        else failures.push(res);
        if (wasDown && down) whileDown.push(res);
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));

    await vi.waitFor(() => expect(acknowledged.size).toBeGreaterThan(20), { timeout: 10_000 });
    await mariadb.kill();
    down = true;
    await vi.waitFor(() => expect(whileDown.length).toBeGreaterThan(20), { timeout: 10_000 });
    const health = await t.app.inject({ url: '/health' });
    expect(health.statusCode).toBe(503);
    const read = await t.app.inject({
      url: CONFIGS,
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(read.statusCode).toBe(503);
    expect(read.json().error.code).toBe('SERVICE_UNAVAILABLE');

    // Cleared before the restart: answers that arrive while it starts may already succeed.
    down = false;
    await mariadb.start();
    const restartedAt = Date.now();
    await vi.waitFor(
      async () => {
        expect((await save(newLabId(), 'back@lab.in')).status).toBe(200);
        expect((await t.app.inject({ url: '/health' })).statusCode).toBe(200);
      },
      { timeout: 5_000, interval: 100 },
    );
    const recoveredInMs = Date.now() - restartedAt;
    stop = true;
    await load;

    // Every failed request, also those caught mid-transaction by the crash, is a 503.
    expect(failures.filter((f) => f.status !== 503)).toEqual([]);
    expect(whileDown.every((r) => r.status === 503)).toBe(true);
    expect(Math.max(...whileDown.map((r) => r.ms))).toBeLessThan(2_000);
    expect(recoveredInMs).toBeLessThan(5_000);
    const labIds = [...acknowledged.keys()];
    const stored = await t.db
      .em()
      .execute<{ lab_id: number; field_value: string }[]>(
        `SELECT lab_id, field_value FROM LabMissingDetailsConfiguration WHERE is_disabled = 0 AND lab_id IN (${labIds.map(() => '?').join(',')})`,
        labIds,
      );
    const storedByLab = new Map(stored.map((r) => [Number(r.lab_id), r.field_value]));
    const missing = [...acknowledged].filter(([labId, value]) => storedByLab.get(labId) !== value);
    expect(missing).toEqual([]);
  }, 60_000);
});
