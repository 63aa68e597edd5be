import { randomUUID } from 'node:crypto';
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { Counter } from 'prom-client';
import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import { backoffDelayMs } from '../backoff.js';
import type { Database, Em } from '../db/database.js';
import { withDeadlockRetry } from '../db/deadlock-retry.js';
import { inTransaction, type SqlSession, sqlSession } from '../db/sql-session.js';
import { carriesAField, decideCapture, type Save, stillMissing, visibleTo } from '../engine/capture-rules.js';
import { onlyMappedValues } from '../engine/field-map.js';
import { utcDay } from '../engine/junk-values.js';
import {
  type CachedLabConfigs,
  type LabConfigCache,
  LabConfigs,
  NO_CONFIGS,
} from '../engine/lab-config-cache.js';
import { ForbiddenError, toAppError, ValidationError } from '../errors.js';
import { metricsRegistry } from '../metrics.js';
import {
  moveOpenRowsToOrganization,
  openRows,
  readForCapture,
  resolveOpenRows,
} from '../repositories/capture.repository.js';
import { insertStoredCaptures } from '../repositories/capture-outbox.repository.js';
import { type LabConfigRead, readLabConfigs } from '../repositories/lab-config.repository.js';
import { type FieldModule, MODULES } from './templates.service.js';

/** One save of a patient (module `patient`) or a bill (module `bill`), keyed like the legacy bodies. */
export interface CaptureInput {
  module: FieldModule;
  userDetailsId: number;
  /** Set for module `bill`; null for `patient`. */
  billId: number | null;
  /** The patient's organization (null when none). */
  orgId: number | null;
  /**
   * Whether `orgId` is known to be the patient's organization now (legacy's answer names it, or the
   * caller gave it): then the patient's open rows under another organization move to it.
   */
  orgIsCurrent?: boolean;
  values: Record<string, unknown>;
}

export interface CaptureResult {
  opened: number;
  resolved: number;
  /** After this capture: for a patient, any unresolved row of the patient; for a bill, of the bill or its patient. */
  hasMissingFields: boolean;
}

/** What the engine needs of the caller: the lab, and who resolves (a stored capture has no more). */
export type CapturePrincipal = Pick<Principal, 'labId' | 'userId' | 'role' | 'orgId'>;

export interface CaptureOptions {
  /** The clock, for tests. */
  now?: Date;
  /**
   * Set when a stored capture is replayed: the time of the original save. A field whose row was
   * opened or resolved after it has newer information, and the replay leaves that field alone.
   */
  capturedAt?: Date;
  /** This instance's copy of the labs' configs; without it, every capture reads the lab's configs. */
  configCache?: LabConfigCache;
}

/** Capture outcomes, by what happened to the save: landed now, stored for retry, or (never silently) not stored. */
export const captureOutcomes = new Counter({
  name: 'md_capture_outcomes_total',
  help: 'Runtime-engine captures by outcome: captured, queued (outbox), spooled (file), rejected, lost; replayed, retry_failed, spool_imported, spool_rejected (retrier)',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

/** The columns are signed int in the legacy tables. */
const MAX_ID = 2_147_483_647;
const positiveId = z.number().int().positive().max(MAX_ID);
// Any keys: the engine keeps only the field map's (onlyMappedValues), the rest is ignored.
const captureValues = z.record(z.string(), z.unknown());

export const capturePatientInput = z
  .object({ userDetailsId: positiveId, orgId: positiveId.nullish(), values: captureValues })
  .strict();
export const captureBillInput = z
  .object({
    userDetailsId: positiveId,
    billId: positiveId,
    orgId: positiveId.nullish(),
    values: captureValues,
  })
  .strict();

const storedInput = z.object({
  module: z.enum(MODULES),
  userDetailsId: positiveId,
  billId: positiveId.nullable(),
  orgId: positiveId.nullable(),
  values: captureValues,
});

function checkInput(input: CaptureInput): void {
  const parsed = storedInput.safeParse(input);
  const issues = parsed.success
    ? []
    : parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  if (parsed.success && input.module === 'bill' && input.billId === null) {
    issues.push({ path: 'billId', message: 'a bill capture needs the bill id' });
  }
  if (parsed.success && input.module === 'patient' && input.billId !== null) {
    issues.push({ path: 'billId', message: 'a patient capture has no bill id' });
  }
  const first = issues[0];
  if (first) throw new ValidationError(`Invalid capture: ${first.path}: ${first.message}`, issues);
}

/**
 * The runtime engine: opens and resolves LabMissingDetails rows for one save (contract: "The
 * runtime engine"). One read (two on the first capture after the lab's configs changed), one
 * set-based update and one multi-row insert; nothing is written when nothing changed. Run it inside
 * a transaction (see `captureInTransaction`).
 */
export async function capture(
  em: Em,
  principal: CapturePrincipal,
  input: CaptureInput,
  options: CaptureOptions = {},
): Promise<CaptureResult> {
  return captureOn(sqlSession(em), principal, input, options);
}

/** The reads and writes around the engine's decisions (src/engine/capture-rules.ts). */
async function captureOn(
  sql: SqlSession,
  principal: CapturePrincipal,
  input: CaptureInput,
  options: CaptureOptions,
): Promise<CaptureResult> {
  checkInput(input);
  const labId = principal.labId;
  const save: Save = {
    module: input.module,
    billId: input.module === 'bill' ? input.billId : null,
    orgId: input.orgId,
    orgIsCurrent: input.orgIsCurrent === true,
    values: input.values,
    today: utcDay(options.now ?? new Date()),
  };
  const now = options.now ?? new Date();
  const cache = options.configCache;
  const withConfigs = carriesAField(save.module, save.values);
  const held = withConfigs ? cache?.lookup(labId) : undefined;
  const read = await readForCapture(
    sql,
    {
      labId,
      module: input.module,
      userDetailsId: input.userDetailsId,
      billId: input.billId,
      capturedAt: options.capturedAt,
    },
    { withConfigs: withConfigs && held === undefined },
  );
  const configs = withConfigs ? await configsAsOf(sql, labId, cache, held, read) : NO_CONFIGS;
  const visible = visibleTo(principal.orgId);
  const rows = read.rows.filter((row) => visible(row.orgId));
  const decision = decideCapture(save, configs, rows);

  let resolved = 0;
  if (decision.resolve.length > 0) {
    const isDoctor = principal.role === 'doctor';
    const resolver = {
      doctorId: isDoctor ? principal.userId : null,
      labUserId: isDoctor ? null : principal.userId,
    };
    resolved = await resolveOpenRows(sql, labId, decision.resolve, resolver, now);
  }
  let opened = 0;
  if (decision.open.length > 0) {
    const owner = {
      labId,
      orgId: input.orgId,
      userDetailsId: input.userDetailsId,
      billId: save.billId,
      module: save.module,
    };
    opened = await openRows(sql, owner, decision.open, now);
  }
  // A patient who changed organization: rows still open under another one follow the patient, so
  // listings, flags and counts do; resolved rows keep the organization they were resolved under.
  const moved =
    decision.move.length > 0
      ? await moveOpenRowsToOrganization(sql, labId, decision.move, input.orgId, now)
      : 0;
  return { opened, resolved, hasMissingFields: stillMissing(save, principal.orgId, rows, decision, moved) };
}

/**
 * The lab's configs for a capture whose read came back with `read`: the held ones while the lab's
 * state is the one they were read under (the steady state: the read carried no configs, which made
 * it cheaper by a third), else those read with the state. After a config change the first capture
 * on each instance reads them with a second statement (`readLabConfigs`, the state again with them):
 * the rows and the configs then come from two snapshots of one transaction, as for any capture
 * racing that change.
 */
async function configsAsOf(
  sql: SqlSession,
  labId: number,
  cache: LabConfigCache | undefined,
  held: CachedLabConfigs | undefined,
  read: LabConfigRead,
): Promise<LabConfigs> {
  if (!cache) return new LabConfigs(read.configRows, read.settings);
  if (held === undefined || held.version === read.version) return cache.adopt(labId, held, read);
  return cache.adopt(labId, held, await readLabConfigs(sql, labId, ''));
}

/**
 * Runs `capture` in its own READ COMMITTED transaction, again after a deadlock (withDeadlockRetry). Its
 * statements are all the repositories' SQL, so the transaction runs on one pooled connection without
 * the ORM's unit of work (see `inTransaction`); errors arrive converted as the ORM converts them.
 */
export async function captureInTransaction(
  em: Em,
  principal: CapturePrincipal,
  input: CaptureInput,
  options: CaptureOptions = {},
): Promise<CaptureResult> {
  // A lock wait timeout is retried too: the save has happened in legacy, its capture must land.
  return withDeadlockRetry(
    () => inTransaction(em, 'READ COMMITTED', (sql) => captureOn(sql, principal, input, options)),
    { lockWaitTimeouts: true },
  );
}

/**
 * The tRPC capture (for callers that save outside the proxy): a principal limited to one
 * organization may only capture that organization's patients, and its organization is the default.
 */
export async function captureForCaller(
  db: Database,
  principal: Principal,
  input: Omit<CaptureInput, 'orgId'> & { orgId?: number | null | undefined },
): Promise<CaptureResult> {
  if (principal.orgId !== null && input.orgId != null && input.orgId !== principal.orgId) {
    throw new ForbiddenError(`orgId: you may only capture patients of organization ${principal.orgId}`);
  }
  const orgId = input.orgId ?? principal.orgId;
  const orgIsCurrent = input.orgId !== undefined;
  const values = onlyMappedValues(input.module, input.values);
  return captureInTransaction(
    db.rootEm(),
    principal,
    { ...input, orgId, orgIsCurrent, values },
    { configCache: db.labConfigs },
  );
}

// ---------------------------------------------------------------------------------------------
// Durability: a capture that cannot land now is stored (outbox table, else a spool file) and
// replayed by the capture retrier until it lands.

/** A capture waiting to be replayed, as the outbox and the spool files hold it. */
export interface StoredCapture {
  /** Unique per capture: a spool file imported twice still becomes one outbox row. */
  captureKey: string;
  principal: CapturePrincipal;
  input: CaptureInput;
  /** ISO 8601 UTC: when the save happened. */
  capturedAt: string;
  lastError: string | null;
}

export const storedCaptureSchema = z.object({
  captureKey: z.uuid(),
  principal: z.object({
    labId: positiveId,
    userId: positiveId,
    role: z.enum(['lab_user', 'doctor']),
    orgId: positiveId.nullable(),
  }),
  input: storedInput,
  capturedAt: z.iso.datetime(),
  lastError: z.string().nullable(),
});

/** Backoff after `failures` failed tries: 1 s, 2 s, 4 s… capped (30 s by default), jittered (src/backoff.ts). */
export function captureRetryDelayMs(failures: number, maxBackoffMs: number, random = Math.random): number {
  return backoffDelayMs(failures, { baseMs: 1_000, maxMs: maxBackoffMs }, random);
}

const DEFAULT_MAX_BACKOFF_MS = 30_000;

function errorText(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, 1024);
}

/** Stores captures in the outbox, due after the first backoff; a capture key already stored is skipped. */
export async function enqueueCaptures(
  em: Em,
  captures: readonly StoredCapture[],
  now = new Date(),
  maxBackoffMs = DEFAULT_MAX_BACKOFF_MS,
): Promise<void> {
  if (captures.length === 0) return;
  const nextAttemptAt = new Date(now.getTime() + captureRetryDelayMs(1, maxBackoffMs));
  await insertStoredCaptures(sqlSession(em), captures, nextAttemptAt, now);
}

/** Writes one capture to its own spool file, atomically (temp file, fsync, rename). */
export async function spoolCapture(spoolDir: string, stored: StoredCapture): Promise<string> {
  await mkdir(spoolDir, { recursive: true });
  const path = join(spoolDir, `${stored.captureKey}.json`);
  const temp = `${path}.tmp`;
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writeFile(JSON.stringify(stored));
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  return path;
}

/**
 * Runs `capture` in its own transaction. When it fails, the capture is stored durably for the
 * retrier (it is never dropped), the failure is logged and counted, and `null` is returned.
 * Never throws: the proxy calls it after legacy has already answered.
 */
export async function captureDurably(
  db: Database,
  principal: Principal,
  input: CaptureInput,
  log: FastifyBaseLogger,
  /** Where the capture goes when even the database is unreachable (CAPTURE_SPOOL_DIR). */
  spoolDir: string,
): Promise<CaptureResult | null> {
  // Only what the engine reads is kept, stored or replayed: never the rest of the patient's record.
  input = { ...input, values: onlyMappedValues(input.module, input.values) };
  const capturedAt = new Date();
  const where = {
    labId: principal.labId,
    module: input.module,
    userDetailsId: input.userDetailsId,
    billId: input.billId,
  };
  let failure: unknown;
  try {
    const result = await captureInTransaction(db.rootEm(), principal, input, {
      now: capturedAt,
      configCache: db.labConfigs,
    });
    captureOutcomes.inc({ outcome: 'captured' });
    return result;
  } catch (error) {
    failure = error;
  }
  const stored: StoredCapture = {
    captureKey: randomUUID(),
    principal: {
      labId: principal.labId,
      userId: principal.userId,
      role: principal.role,
      orgId: principal.orgId,
    },
    input,
    capturedAt: capturedAt.toISOString(),
    lastError: errorText(failure),
  };
  if (failure instanceof ValidationError) {
    // Retrying cannot fix a save the engine cannot read. Logged without its values (patient data).
    captureOutcomes.inc({ outcome: 'rejected' });
    log.error(
      { issues: failure.issues?.map((i) => i.path), ...where },
      'capture rejected: the saved object cannot be captured',
    );
    return null;
  }
  log.warn({ err: failure, ...where }, 'capture failed; storing it for retry');
  // An unreachable database is not asked twice: the caller is waiting, the spool file is at hand.
  if (toAppError(failure).code !== 'SERVICE_UNAVAILABLE') {
    try {
      await enqueueCaptures(db.em(), [stored], capturedAt);
      captureOutcomes.inc({ outcome: 'queued' });
      log.info({ captureKey: stored.captureKey, ...where }, 'capture queued for retry');
      return null;
    } catch (error) {
      log.warn({ err: error, captureKey: stored.captureKey }, 'capture outbox unavailable; spooling to disk');
    }
  }
  try {
    const path = await spoolCapture(spoolDir, stored);
    captureOutcomes.inc({ outcome: 'spooled' });
    log.warn({ captureKey: stored.captureKey, path, ...where }, 'capture spooled to disk for retry');
  } catch (error) {
    captureOutcomes.inc({ outcome: 'lost' });
    // The values stay out of the log (patient data); the capture is counted as lost.
    log.error(
      { err: error, captureKey: stored.captureKey, ...where },
      'capture could not be stored anywhere',
    );
  }
  return null;
}
