import { randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../src/db/database.js';
import { initOrm } from '../../src/db/orm.js';
import { metricsRegistry } from '../../src/metrics.js';
import {
  type CaptureInput,
  captureDurably,
  captureRetryDelayMs,
  enqueueCaptures,
  type StoredCapture,
  storedCaptureSchema,
} from '../../src/services/capture.service.js';
import { CaptureRetrier, startCaptureRetrier } from '../../src/services/capture-retry.service.js';
import {
  FIELD,
  newLabId,
  principalFor,
  rowsOf,
  seedConfigs,
  sentStatements,
  startTestApp,
  type TestApp,
  testConfig,
} from '../support/fixtures.js';

/**
 * Faults are injected in the real database: while a lab id is in md_test_capture_faults, every
 * insert or update of that lab's LabMissingDetails rows fails (other labs are untouched).
 */
const FAULT_TABLE = 'md_test_capture_faults';
const TRIGGERS = ['md_test_capture_fault_insert', 'md_test_capture_fault_update'];

let t: TestApp;
let spoolDir: string;

beforeAll(async () => {
  t = await startTestApp();
  spoolDir = await mkdtemp(join(tmpdir(), 'capture-spool-'));
  const em = t.db.em();
  await em.execute(`CREATE TABLE IF NOT EXISTS ${FAULT_TABLE} (lab_id int NOT NULL PRIMARY KEY)`);
  for (const [name, event] of [
    [TRIGGERS[0], 'INSERT'],
    [TRIGGERS[1], 'UPDATE'],
  ] as const) {
    await em.execute(`DROP TRIGGER IF EXISTS ${name}`);
    await em.execute(`CREATE TRIGGER ${name} BEFORE ${event} ON LabMissingDetails FOR EACH ROW
BEGIN
  IF EXISTS (SELECT 1 FROM ${FAULT_TABLE} WHERE lab_id = NEW.lab_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected capture fault';
  END IF;
END`);
  }
});

afterAll(async () => {
  const em = t.db.em();
  for (const name of TRIGGERS) await em.execute(`DROP TRIGGER IF EXISTS ${name}`);
  await em.execute(`DROP TABLE IF EXISTS ${FAULT_TABLE}`);
  await t.close();
  await rm(spoolDir, { recursive: true, force: true });
});

async function breakLab(labId: number): Promise<void> {
  await t.db.em().execute(`INSERT INTO ${FAULT_TABLE} (lab_id) VALUES (?)`, [labId], 'run');
}

async function healLab(labId: number): Promise<void> {
  await t.db.em().execute(`DELETE FROM ${FAULT_TABLE} WHERE lab_id = ?`, [labId], 'run');
}

interface OutboxView {
  capture_key: string;
  status: string;
  attempts: number;
  last_error: string | null;
  next_attempt_at: string;
  principal_role: string;
  principal_user_id: number;
}

function outboxOf(labId: number): Promise<OutboxView[]> {
  return t.db
    .em()
    .execute<OutboxView[]>(
      'SELECT capture_key, status, attempts, last_error, next_attempt_at, principal_role, principal_user_id FROM md_capture_outbox WHERE lab_id = ? ORDER BY id',
      [labId],
    );
}

function patientSave(values: Record<string, unknown>): CaptureInput {
  return { module: 'patient', userDetailsId: 5, billId: null, orgId: 9, values };
}

function retrier(dir = spoolDir): CaptureRetrier {
  return new CaptureRetrier({
    db: t.db,
    logger: t.app.log,
    spoolDir: dir,
    pollIntervalMs: 20,
    maxBackoffMs: 30_000,
  });
}

const later = (seconds: number) => new Date(Date.now() + seconds * 1000);

async function outcomeCount(outcome: string): Promise<number> {
  const metric = await metricsRegistry.getSingleMetric('md_capture_outcomes_total')!.get();
  return metric.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

describe('a capture that fails', () => {
  it('is stored in the outbox and lands later through the retrier', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'email', value: 'noemail@lab.in' }]);
    await breakLab(labId);
    const queuedBefore = await outcomeCount('queued');

    const result = await captureDurably(
      t.db,
      principalFor(labId),
      patientSave({ email: 'noemail@lab.in' }),
      t.app.log,
      t.config.capture.spoolDir,
    );

    expect(result).toBeNull();
    expect(await outcomeCount('queued')).toBe(queuedBefore + 1);
    expect(await rowsOf(t.db.em(), labId)).toEqual([]);
    const [stored] = await outboxOf(labId);
    expect(stored).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: expect.stringContaining('injected'),
    });

    const stillBroken = await retrier().runOnce(later(60));
    expect(stillBroken.failed).toBeGreaterThanOrEqual(1);
    const [retried] = await outboxOf(labId);
    expect(retried).toMatchObject({ status: 'pending', attempts: 2 });
    expect(retried!.next_attempt_at > stored!.next_attempt_at).toBe(true);

    await healLab(labId);
    const healed = await retrier().runOnce(later(120));
    expect(healed.landed).toBeGreaterThanOrEqual(1);
    expect(await outboxOf(labId)).toEqual([expect.objectContaining({ status: 'landed', attempts: 3 })]);
    const rows = await rowsOf(t.db.em(), labId);
    expect(rows).toEqual([
      expect.objectContaining({ field_id: FIELD.email, is_resolved: 0, org_id: 9, user_details_id: 5 }),
    ]);
  });

  it('replays a resolution with the resolver of the original save', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'sample_collector', value: 'NA' }]);
    const bill = (collector: string): CaptureInput => ({
      module: 'bill',
      userDetailsId: 5,
      billId: 44,
      orgId: null,
      values: { sample_collector: collector },
    });
    const doctor = principalFor(labId, { role: 'doctor', userId: 31 });
    expect(await captureDurably(t.db, doctor, bill('NA'), t.app.log, t.config.capture.spoolDir)).toEqual({
      opened: 1,
      resolved: 0,
      hasMissingFields: true,
    });
    await breakLab(labId);
    expect(await captureDurably(t.db, doctor, bill('Ravi'), t.app.log, t.config.capture.spoolDir)).toBeNull();
    expect(await outboxOf(labId)).toEqual([
      expect.objectContaining({ principal_role: 'doctor', principal_user_id: 31, status: 'pending' }),
    ]);
    await healLab(labId);
    await retrier().runOnce(later(60));
    const [row] = await rowsOf(t.db.em(), labId);
    expect(row).toMatchObject({ is_resolved: 1, resolved_by_doctor_id: 31, resolved_by_lab_user_id: null });
  });

  it('is refused, logged and counted, not stored, when the saved object cannot be captured at all', async () => {
    const labId = newLabId();
    const before = await outcomeCount('rejected');
    const bad = { module: 'bill', userDetailsId: 5, billId: null, orgId: null, values: {} } as CaptureInput;
    expect(
      await captureDurably(t.db, principalFor(labId), bad, t.app.log, t.config.capture.spoolDir),
    ).toBeNull();
    expect(await outcomeCount('rejected')).toBe(before + 1);
    expect(await outboxOf(labId)).toEqual([]);
  });
});

describe('when the database is unreachable', () => {
  it('the capture is spooled to a file, which the retrier moves into the outbox and replays', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'mobile', value: '0000000000' }]);
    const dir = await mkdtemp(join(spoolDir, 'unreachable-'));
    const unreachable = new Database(
      await initOrm({ databaseUrl: 'mysql://root@127.0.0.1:1/md_unreachable' }),
    );
    const spooledBefore = await outcomeCount('spooled');
    try {
      const result = await captureDurably(
        unreachable,
        principalFor(labId),
        patientSave({ mobile: '0000000000' }),
        t.app.log,
        dir,
      );
      expect(result).toBeNull();
    } finally {
      await unreachable.close();
    }
    expect(await outcomeCount('spooled')).toBe(spooledBefore + 1);
    const files = await readdir(dir);
    expect(files).toHaveLength(1);
    const spooled = storedCaptureSchema.parse(JSON.parse(await readFile(join(dir, files[0]!), 'utf8')));
    expect(spooled).toMatchObject({
      principal: { labId, role: 'lab_user' },
      input: { values: { mobile: '0000000000' } },
    });
    const copy = join(spoolDir, `copy-${files[0]}`);
    await copyFile(join(dir, files[0]!), copy);

    const first = await retrier(dir).runOnce();
    expect(first.imported).toBe(1);
    expect(await readdir(dir)).toEqual([]);
    expect(await outboxOf(labId)).toEqual([expect.objectContaining({ capture_key: spooled.captureKey })]);

    // The same file imported again (say, a crash before its deletion) is still one capture.
    await copyFile(copy, join(dir, files[0]!));
    await rm(copy);
    await retrier(dir).runOnce(later(60));
    expect(await outboxOf(labId)).toEqual([expect.objectContaining({ status: 'landed' })]);
    expect(await rowsOf(t.db.em(), labId)).toEqual([expect.objectContaining({ field_id: FIELD.mobile })]);
  });

  it('an unreadable spool file is set aside, not lost and not retried', async () => {
    const dir = await mkdtemp(join(spoolDir, 'bad-'));
    await writeFile(join(dir, `${randomUUID()}.json`), '{"half":');
    const pass = await retrier(dir).runOnce();
    expect(pass.imported).toBe(0);
    expect((await readdir(dir)).every((name) => name.endsWith('.json.rejected'))).toBe(true);
  });
});

describe('a replayed capture', () => {
  function stored(labId: number, values: Record<string, unknown>, capturedAt: Date): StoredCapture {
    return {
      captureKey: randomUUID(),
      principal: { labId, userId: 7, role: 'lab_user', orgId: null },
      input: patientSave(values),
      capturedAt: capturedAt.toISOString(),
      lastError: 'test',
    };
  }

  it('leaves alone a field that changed after the original save, and applies the others', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [
      { field: 'email', value: 'noemail@lab.in' },
      { field: 'mobile', value: '0000000000' },
    ]);
    const anHourAgo = new Date(Date.now() - 3600_000);
    const principal = principalFor(labId);
    await captureDurably(
      t.db,
      principal,
      patientSave({ email: 'noemail@lab.in' }),
      t.app.log,
      t.config.capture.spoolDir,
    );
    await captureDurably(
      t.db,
      principal,
      patientSave({ email: 'asha@example.com' }),
      t.app.log,
      t.config.capture.spoolDir,
    );
    await enqueueCaptures(
      t.db.em(),
      [stored(labId, { email: 'noemail@lab.in', mobile: '0000000000' }, anHourAgo)],
      anHourAgo,
    );
    await retrier().runOnce();
    const rows = await rowsOf(t.db.em(), labId);
    expect(rows.map((r) => [r.field_id, r.is_resolved])).toEqual([
      [FIELD.email, 1],
      [FIELD.mobile, 0],
    ]);
  });

  it('does not resolve a row opened after the original save', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'email', value: 'noemail@lab.in' }]);
    const anHourAgo = new Date(Date.now() - 3600_000);
    await captureDurably(
      t.db,
      principalFor(labId),
      patientSave({ email: 'noemail@lab.in' }),
      t.app.log,
      t.config.capture.spoolDir,
    );
    await enqueueCaptures(t.db.em(), [stored(labId, { email: 'old@example.com' }, anHourAgo)], anHourAgo);
    await retrier().runOnce();
    expect((await rowsOf(t.db.em(), labId)).map((r) => r.is_resolved)).toEqual([0]);
    expect(await outboxOf(labId)).toEqual([expect.objectContaining({ status: 'landed' })]);
  });
});

describe('the capture retrier', () => {
  it('backs off exponentially from one second, capped at thirty', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 50].map((failures) =>
      captureRetryDelayMs(failures, 30_000, () => 1),
    );
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(captureRetryDelayMs(1, 30_000, () => 0)).toBe(500);
  });

  it('runs in the background, replaying due captures until it is stopped', async () => {
    const labId = newLabId();
    await seedConfigs(t.db.em(), labId, [{ field: 'dob', value: '1900-01-01' }]);
    const config = testConfig({ CAPTURE_SPOOL_DIR: spoolDir, CAPTURE_RETRY_POLL_INTERVAL_MS: '20' });
    const aMinuteAgo = new Date(Date.now() - 60_000);
    await enqueueCaptures(
      t.db.em(),
      [
        {
          captureKey: randomUUID(),
          principal: { labId, userId: 7, role: 'lab_user', orgId: null },
          input: patientSave({ dob: '1900-01-01' }),
          capturedAt: aMinuteAgo.toISOString(),
          lastError: null,
        },
      ],
      aMinuteAgo,
    );
    const task = startCaptureRetrier({ config, db: t.db, logger: t.app.log });
    try {
      await expect.poll(async () => (await outboxOf(labId))[0]?.status, { timeout: 10_000 }).toBe('landed');
    } finally {
      await task.stop();
    }
    expect(await rowsOf(t.db.em(), labId)).toEqual([expect.objectContaining({ field_id: FIELD.dob })]);
  });

  it('polls with one plain read and no transaction while nothing is due', async () => {
    // Nothing is due before 1970: every instance's idle poll is this one statement.
    const statements = await sentStatements(() => retrier().replayDue(new Date(0)));
    expect(statements).toEqual([expect.stringMatching(/^SELECT 1 FROM `md_capture_outbox` WHERE/)]);
  });
});
