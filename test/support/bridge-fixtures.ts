import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { Py2Client } from '../../legacy-bridge/py2-client.js';
import { BridgeWorker, type BridgeWorkerSettings } from '../../legacy-bridge/worker.js';
import { Database } from '../../src/db/database.js';
import { dbTimestampOf } from '../../src/db/microsecond-timestamp.type.js';
import { databaseName, ensureDatabaseExists, initOrm, migrateUp } from '../../src/db/orm.js';
import { EntityCreationOutbox, LabMissingDetailsConfiguration } from '../../src/entities/index.js';
import { testDatabaseUrl } from './env.js';
import { newLabId } from './fixtures.js';

export const PY2_TOKEN = 'development-py2-token';

export const testLogger = pino({
  level: process.env.TEST_LOG_LEVEL ?? 'silent',
}) as unknown as FastifyBaseLogger;

/**
 * A database of the bridge tests' own, next to the test database (`<test db>_<suffix>`): workers
 * claim every due row of their database, so each test file that runs one gets a database no other
 * file (or engineer's test) queues creations in. Emptied of creations at the start of the file.
 */
export async function openBridgeDatabase(suffix: string): Promise<{ url: string; db: Database }> {
  const base = testDatabaseUrl();
  const url = base.replace(/\/[A-Za-z0-9_]+(\?.*)?$/, (_match, query: string | undefined) => {
    return `/${databaseName(base)}_${suffix}${query ?? ''}`;
  });
  await ensureDatabaseExists(url);
  const orm = await initOrm({ databaseUrl: url, poolSize: 10 });
  await migrateUp(orm);
  const db = new Database(orm);
  await db.em().getConnection().execute('DELETE FROM `md_entity_creation_outbox`');
  return { url, db };
}

export const FAST_SETTINGS: BridgeWorkerSettings = {
  concurrency: 4,
  pollIntervalMs: 20,
  baseBackoffMs: 20,
  maxBackoffMs: 200,
  maxAttempts: 1_000,
  maxAgeMs: 60_000,
  claimTtlMs: 3_000,
  breakerThreshold: 3,
  breakerHalfOpenMs: 200,
  shutdownGraceMs: 1_000,
  statsIntervalMs: 60_000,
};

export function startTestWorker(
  db: Database,
  py2Url: string,
  options: { settings?: Partial<BridgeWorkerSettings>; requestTimeoutMs?: number; workerId?: string } = {},
): BridgeWorker {
  const client = new Py2Client({
    baseUrl: py2Url,
    token: PY2_TOKEN,
    timeoutMs: options.requestTimeoutMs ?? 1_000,
  });
  return new BridgeWorker({
    db,
    logger: testLogger,
    settings: { ...FAST_SETTINGS, ...options.settings },
    client,
    ...(options.workerId ? { workerId: options.workerId } : {}),
  }).start();
}

export interface SeededCreation {
  id: number;
  labId: number;
  configId: number;
  entityType: string;
  name: string;
  idempotencyKey: string;
}

/**
 * Queues `count` creations the way a config save does: a config row of an entity template and its
 * outbox row. Each creation gets a lab of its own unless `labId` is given.
 */
export async function seedCreations(
  db: Database,
  options: {
    count: number;
    labId?: number;
    entityType?: string;
    status?: 'queued' | 'delivered' | 'failed';
    lastError?: string | null;
    now?: Date;
  },
): Promise<SeededCreation[]> {
  const now = options.now ?? new Date();
  const entityType = options.entityType ?? 'referral_doctor';
  const fieldId = entityType === 'organization' ? 6 : 5;
  const em = db.em();
  const drafts = Array.from({ length: options.count }, (_, i) => ({
    labId: options.labId ?? newLabId(),
    name: `Dr. Unknown ${i + 1}`,
    idempotencyKey: randomUUID(),
  }));
  // One insert per config: insertMany hands back only the first id on MySQL.
  const configIds: number[] = [];
  for (const d of drafts) {
    const id = await em.insert(LabMissingDetailsConfiguration, {
      labId: d.labId,
      fieldId,
      fieldName: entityType,
      fieldValue: d.name,
      fieldModule: 'patient',
      fieldCategory: 'entity',
      entityObjectId: null,
      isDisabled: false,
      createdByLabUserId: 7,
      updatedByLabUserId: 7,
      createdAt: dbTimestampOf(now),
      updatedAt: dbTimestampOf(now),
    });
    configIds.push(Number(id));
  }
  const status = options.status ?? 'queued';
  await em.insertMany(
    EntityCreationOutbox,
    drafts.map((d, i) => ({
      labId: d.labId,
      orgId: null,
      configId: Number(configIds[i]),
      entityType,
      name: d.name,
      idempotencyKey: d.idempotencyKey,
      status,
      attempts: status === 'queued' ? 0 : 1,
      nextAttemptAt: now,
      lastError: options.lastError ?? null,
      objectId: status === 'delivered' ? 4242 : null,
      requestedByLabUserId: 7,
      requestedByDoctorId: null,
      createdAt: now,
      updatedAt: now,
      deliveredAt: status === 'delivered' ? now : null,
      failedAt: status === 'failed' ? now : null,
    })),
  );
  const rows = await em.execute<Array<{ id: number | string; idempotency_key: string }>>(
    'SELECT id, idempotency_key FROM `md_entity_creation_outbox` WHERE idempotency_key IN (?)',
    [drafts.map((d) => d.idempotencyKey)],
  );
  const idByKey = new Map(rows.map((row) => [row.idempotency_key, Number(row.id)]));
  return drafts.map((d, i) => ({
    id: idByKey.get(d.idempotencyKey)!,
    labId: d.labId,
    configId: Number(configIds[i]),
    entityType,
    name: d.name,
    idempotencyKey: d.idempotencyKey,
  }));
}

export interface OutboxState {
  id: number;
  status: string;
  attempts: number;
  claimed_by: string | null;
  claim_expires_at: string | null;
  next_attempt_at: string;
  last_error: string | null;
  object_id: number | null;
  retry_count: number;
}

export async function outboxStates(db: Database, ids: readonly number[]): Promise<OutboxState[]> {
  const rows = await db
    .em()
    .execute<OutboxState[]>(
      'SELECT id, status, attempts, claimed_by, claim_expires_at, next_attempt_at, last_error, object_id, retry_count FROM `md_entity_creation_outbox` WHERE id IN (?) ORDER BY id',
      [[...ids]],
    );
  return rows.map((row) => ({ ...row, id: Number(row.id) }));
}

export async function countDelivered(db: Database, ids: readonly number[]): Promise<number> {
  const [row] = await db
    .em()
    .execute<Array<{ n: number | string }>>(
      "SELECT COUNT(*) AS n FROM `md_entity_creation_outbox` WHERE id IN (?) AND status = 'delivered'",
      [[...ids]],
    );
  return Number(row?.n ?? 0);
}

export interface TraceSummary {
  /** MissingDetailsEntityCreation rows per config id. */
  traces: Map<number, { count: number; objectIds: number[] }>;
  /** ActivityLog rows per action, over the creations' labs. */
  activity: Map<string, number>;
  /** entity_object_id per config id. */
  entityObjectIds: Map<number, number | null>;
}

export async function traceSummary(
  db: Database,
  creations: readonly SeededCreation[],
): Promise<TraceSummary> {
  const em = db.em();
  const configIds = creations.map((c) => c.configId);
  const labIds = [...new Set(creations.map((c) => c.labId))];
  const traceRows = await em.execute<Array<{ config_id: number; object_id: number }>>(
    'SELECT config_id, object_id FROM `MissingDetailsEntityCreation` WHERE config_id IN (?)',
    [configIds],
  );
  const traces = new Map<number, { count: number; objectIds: number[] }>();
  for (const row of traceRows) {
    const entry = traces.get(row.config_id) ?? { count: 0, objectIds: [] };
    entry.count += 1;
    entry.objectIds.push(row.object_id);
    traces.set(row.config_id, entry);
  }
  const activityRows = await em.execute<Array<{ action: string; n: number | string }>>(
    "SELECT action, COUNT(*) AS n FROM `ActivityLog` WHERE module = 'missing_details' AND lab_id IN (?) GROUP BY action",
    [labIds],
  );
  const activity = new Map(activityRows.map((row) => [row.action, Number(row.n)]));
  const configRows = await em.execute<Array<{ id: number; entity_object_id: number | null }>>(
    'SELECT id, entity_object_id FROM `LabMissingDetailsConfiguration` WHERE id IN (?)',
    [configIds],
  );
  const entityObjectIds = new Map(configRows.map((row) => [row.id, row.entity_object_id]));
  return { traces, activity, entityObjectIds };
}

export async function activityMessages(db: Database, labId: number, action: string): Promise<string[]> {
  const rows = await db
    .em()
    .execute<Array<{ message: string }>>(
      "SELECT message FROM `ActivityLog` WHERE module = 'missing_details' AND lab_id = ? AND action = ? ORDER BY id",
      [labId, action],
    );
  return rows.map((row) => row.message);
}

/** Polls `check` until it returns true (real time; the bridge runs on real HTTP and a real database). */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
