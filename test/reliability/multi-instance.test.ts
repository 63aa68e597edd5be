import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Child, freePort, startChild, waitUntilReady, withTsx } from '../../bench/processes.js';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { openBridgeDatabase } from '../support/bridge-fixtures.js';
import { authHeader, newLabId } from '../support/fixtures.js';

/**
 * Two real service processes (`node --import tsx src/server.ts`) on one database, as N stateless
 * instances behind a load balancer run (docs/architecture.md): what one instance acknowledges, the
 * database holds exactly once, whichever instance the next request reaches.
 */

interface Instance {
  url: string;
  child: Child;
}

let sim: LegacySimulator;
let pool: mysql.Pool;
const instances: Instance[] = [];

let databaseUrl: string;

beforeAll(async () => {
  sim = await startLegacySimulator();
  // Both instances run the bridge worker and the capture retrier, which drain every due row of their
  // database: a database of this file's own keeps them off other files' queued rows.
  const isolated = await openBridgeDatabase('multi_instance');
  await isolated.db.close();
  databaseUrl = isolated.url;
  pool = mysql.createPool({ uri: databaseUrl, connectionLimit: 2 });
  const spoolDir = join(tmpdir(), `md-multi-instance-${process.pid}`);
  const started = await Promise.all(
    ['a', 'b'].map(async (name) => {
      const port = await freePort();
      const child = startChild(`service ${name}`, withTsx('src/server.ts'), {
        NODE_ENV: 'test',
        DATABASE_URL: databaseUrl,
        HOST: '127.0.0.1',
        PORT: String(port),
        LEGACY_PY3_URL: sim.py3Url,
        LEGACY_PY2_URL: sim.py2Url,
        LOG_LEVEL: 'error',
        SHUTDOWN_GRACE_MS: '0',
        BRIDGE_POLL_INTERVAL_MS: '100',
        CAPTURE_SPOOL_DIR: join(spoolDir, name),
      });
      const url = `http://127.0.0.1:${port}`;
      instances.push({ url, child });
      await waitUntilReady(child, `${url}/health`, 60_000);
      return { url, child };
    }),
  );
  expect(started).toHaveLength(2);
}, 90_000);

afterAll(async () => {
  await Promise.allSettled(instances.map((instance) => instance.child.stop()));
  await pool?.end();
  await sim?.close();
});

const A = () => instances[0]!;
const B = () => instances[1]!;

interface TrpcAnswer<T> {
  status: number;
  data?: T;
  error?: { message: string };
}

async function mutate<T>(
  instance: Instance,
  path: string,
  input: unknown,
  headers: Record<string, string>,
): Promise<TrpcAnswer<T>> {
  const response = await fetch(`${instance.url}/trpc/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  });
  const body = (await response.json()) as { result?: { data: T }; error?: { message: string } };
  return { status: response.status, data: body.result?.data, error: body.error };
}

interface CaptureResult {
  opened: number;
  resolved: number;
  hasMissingFields: boolean;
}

interface ConfigView {
  fieldId: number;
  fieldValue: string;
}

interface SaveResult {
  configs: ConfigView[];
  entityCreations: Array<{ configId: number; status: string }>;
}

const PLACEHOLDERS = { email: 'noemail@lab.in', mobile: '9999999999', dob: '1900-01-01', address: 'NA' };
const FIELD_IDS = { email: 1, mobile: 2, dob: 3, address: 4 } as const;

async function configureLab(labId: number): Promise<Record<string, string>> {
  const headers = await authHeader({ labId, userId: 7 });
  const saved = await mutate<SaveResult>(
    A(),
    'configs.save',
    {
      configs: Object.entries(PLACEHOLDERS).map(([name, value]) => ({
        fieldId: FIELD_IDS[name as keyof typeof FIELD_IDS],
        fieldValue: value,
      })),
    },
    headers,
  );
  expect(saved.status).toBe(200);
  return headers;
}

async function rows<T>(sql: string, params: unknown[]): Promise<T[]> {
  const [result] = await pool.query(sql, params);
  return result as T[];
}

const openRows = (labId: number) =>
  rows<{ user_details_id: number; field_id: number; open: number }>(
    `SELECT user_details_id, field_id, COUNT(*) AS open FROM LabMissingDetails
     WHERE lab_id = ? AND is_resolved = 0 GROUP BY user_details_id, field_id`,
    [labId],
  );

describe('two service instances on one database', () => {
  it('open each missing field once when both capture the same patients at the same moment', async () => {
    const labId = newLabId();
    const headers = await configureLab(labId);
    const patients = Array.from({ length: 12 }, (_, i) => 500 + i);

    const opening = await Promise.all(
      patients.flatMap((userDetailsId) =>
        [A(), B(), A(), B()].map((instance) =>
          mutate<CaptureResult>(
            instance,
            'capture.patient',
            { userDetailsId, values: PLACEHOLDERS },
            headers,
          ),
        ),
      ),
    );
    expect(opening.map((answer) => answer.status)).toEqual(opening.map(() => 200));
    // Every acknowledged opening is a row, and no row was counted by two captures.
    const opened = opening.reduce((sum, answer) => sum + answer.data!.opened, 0);
    const open = await openRows(labId);
    expect(open).toHaveLength(patients.length * 4);
    expect(open.filter((slot) => Number(slot.open) > 1)).toEqual([]);
    expect(opened).toBe(patients.length * 4);
    expect(opening.every((answer) => answer.data!.hasMissingFields)).toBe(true);

    // Each instance fixes different fields of the same patients at once: no fix is lost.
    const fixes = await Promise.all(
      patients.flatMap((userDetailsId) => [
        mutate<CaptureResult>(
          A(),
          'capture.patient',
          { userDetailsId, values: { email: 'a@b.in' } },
          headers,
        ),
        mutate<CaptureResult>(
          B(),
          'capture.patient',
          { userDetailsId, values: { mobile: '9800000001' } },
          headers,
        ),
        mutate<CaptureResult>(
          A(),
          'capture.patient',
          { userDetailsId, values: { dob: '1990-01-01' } },
          headers,
        ),
        mutate<CaptureResult>(
          B(),
          'capture.patient',
          { userDetailsId, values: { email: 'a@b.in' } },
          headers,
        ),
      ]),
    );
    expect(fixes.map((answer) => answer.status)).toEqual(fixes.map(() => 200));
    expect(fixes.reduce((sum, answer) => sum + answer.data!.resolved, 0)).toBe(patients.length * 3);
    const left = await openRows(labId);
    expect(left.map((slot) => slot.field_id)).toEqual(patients.map(() => FIELD_IDS.address));

    // The placeholder coming back on both instances reopens the field once per patient.
    const reopening = await Promise.all(
      patients.flatMap((userDetailsId) =>
        [A(), B()].map((instance) =>
          mutate<CaptureResult>(
            instance,
            'capture.patient',
            { userDetailsId, values: { email: PLACEHOLDERS.email } },
            headers,
          ),
        ),
      ),
    );
    expect(reopening.reduce((sum, answer) => sum + answer.data!.opened, 0)).toBe(patients.length);
    const reopened = await openRows(labId);
    expect(reopened).toHaveLength(patients.length * 2);
    expect(reopened.filter((slot) => Number(slot.open) > 1)).toEqual([]);
  });

  it('keep one active config per field when both save it at once, and apply every acknowledged save', async () => {
    const labId = newLabId();
    const headers = await authHeader({ labId, userId: 7 });
    const values = Array.from({ length: 12 }, (_, i) => `missing-${i}@lab.in`);

    const saves = await Promise.all(
      values.map((value, i) =>
        mutate<SaveResult>(
          i % 2 === 0 ? A() : B(),
          'configs.save',
          {
            configs: [
              { fieldId: FIELD_IDS.email, fieldValue: value },
              { fieldId: 2 + (i % 3), fieldValue: `v${i}` },
            ],
          },
          headers,
        ),
      ),
    );
    expect(saves.map((answer) => answer.status)).toEqual(saves.map(() => 200));
    // Each save answered with the lab's configs as its own transaction left them: its own value applied.
    saves.forEach((answer, i) => {
      expect(answer.data!.configs.find((c) => c.fieldId === FIELD_IDS.email)?.fieldValue).toBe(values[i]);
    });

    const stored = await rows<{ field_id: number; field_value: string; is_disabled: number }>(
      'SELECT field_id, field_value, is_disabled FROM LabMissingDetailsConfiguration WHERE lab_id = ? ORDER BY field_id',
      [labId],
    );
    expect(stored.map((row) => row.field_id)).toEqual([1, 2, 3, 4]);
    expect(stored.every((row) => row.is_disabled === 0)).toBe(true);
    expect(values).toContain(stored[0]!.field_value);
  });

  it('apply a save once when its retries reach both instances with one Idempotency-Key', async () => {
    const labId = newLabId();
    const headers = await authHeader({ labId, userId: 7 });
    const input = {
      configs: [{ fieldId: FIELD_IDS.mobile, fieldValue: '0000000000' }],
      idempotencyKey: `multi-instance-${labId}`,
    };
    const answers = await Promise.all(
      [A(), B(), A(), B(), A(), B()].map((instance) =>
        mutate<SaveResult>(instance, 'configs.save', input, headers),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
    const bodies = new Set(answers.map((answer) => JSON.stringify(answer.data)));
    expect(bodies.size).toBe(1);
    const stored = await rows<{ n: number }>(
      'SELECT COUNT(*) AS n FROM LabMissingDetailsConfiguration WHERE lab_id = ?',
      [labId],
    );
    expect(Number(stored[0]!.n)).toBe(1);
  });

  it('compare captures on one instance with a config saved on the other at once', async () => {
    const labId = newLabId();
    const headers = await authHeader({ labId, userId: 7 });
    const save = (fieldValue: string) =>
      mutate<SaveResult>(
        A(),
        'configs.save',
        { configs: [{ fieldId: FIELD_IDS.email, fieldValue }] },
        headers,
      );
    const captureOnB = (userDetailsId: number, email: string) =>
      mutate<CaptureResult>(B(), 'capture.patient', { userDetailsId, values: { email } }, headers);

    expect((await save('old@lab.in')).status).toBe(200);
    expect((await captureOnB(1, 'old@lab.in')).data?.opened).toBe(1);
    expect((await save('new@lab.in')).status).toBe(200);
    expect((await captureOnB(2, 'new@lab.in')).data?.opened).toBe(1);
    expect((await captureOnB(3, 'old@lab.in')).data?.opened).toBe(0);
  });

  it('deliver a queued PY-2 creation once while both instances run the bridge worker', async () => {
    const labId = newLabId();
    const headers = await authHeader({ labId, userId: 7 });
    const saved = await mutate<SaveResult>(
      B(),
      'configs.save',
      { configs: [{ fieldId: 5, fieldValue: 'Dr. Unknown' }] },
      headers,
    );
    expect(saved.data?.entityCreations).toEqual([expect.objectContaining({ status: 'queued' })]);
    const configId = saved.data!.entityCreations[0]!.configId;

    const traces = () =>
      rows<{ n: number }>(
        'SELECT COUNT(*) AS n FROM MissingDetailsEntityCreation WHERE config_id = ? AND lab_id = ?',
        [configId, labId],
      );
    const deadline = Date.now() + 20_000;
    while (Number((await traces())[0]!.n) === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // A few more poll intervals of both workers: still exactly one success trace.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(Number((await traces())[0]!.n)).toBe(1);
    const succeeded = await rows<{ n: number }>(
      `SELECT COUNT(*) AS n FROM ActivityLog WHERE lab_id = ? AND action = 'entity_creation_succeeded'`,
      [labId],
    );
    expect(Number(succeeded[0]!.n)).toBe(1);
  }, 30_000);
});
