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
import { emSession, inRawTransaction, type SqlSession } from '../db/driver-sql.js';
import { lookupKey, mappedKeys, onlyMappedValues } from '../engine/field-map.js';
import { utcDay } from '../engine/junk-values.js';
import {
  type LabConfigCache,
  LabConfigs,
  NO_CONFIGS,
  type PlaceholderConfig,
} from '../engine/lab-config-cache.js';
import { type Comparable, equalsPlaceholder, isPresent, toComparable } from '../engine/value-mapper.js';
import { ForbiddenError, toAppError, ValidationError } from '../errors.js';
import { metricsRegistry } from '../metrics.js';
import {
  LAB_CONFIG_TAIL_NULLS,
  type LabConfigRead,
  type LabConfigReadRow,
  labConfigParts,
  splitLabConfigRead,
} from '../repositories/lab-config.repository.js';
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

type PatientRow = Pick<
  LabConfigReadRow,
  | 'id'
  | 'bill_id'
  | 'field_id'
  | 'config_id'
  | 'field_value'
  | 'org_id'
  | 'is_resolved'
  | 'newer'
  | 'template_name'
  | 'template_module'
>;

/** What the engine's one read answers: the patient's rows, and the lab's config state (and configs). */
interface EngineRead extends LabConfigRead {
  rows: PatientRow[];
}

/**
 * The engine's one read, in one statement so that it costs one round trip however the cache
 * stands: the unresolved rows of the patient (for a bill: of the bill and the patient's own
 * fields) with their templates, which also serve hasMissingFields, and on a replay the rows
 * changed after the original save; then the lab's config state and, unless `heldVersion` is that
 * state (or `withConfigs` is false), its configs and settings (src/repositories/lab-config.repository.ts).
 */
async function readForCapture(
  sql: SqlSession,
  labId: number,
  input: CaptureInput,
  capturedAt: Date | undefined,
  configs: { withConfigs: boolean; heldVersion: string },
): Promise<EngineRead> {
  const params: unknown[] = [];
  let newer = '0';
  let state = 'd.`is_resolved` = 0';
  if (capturedAt) {
    newer = '(d.`is_resolved` = 1 OR d.`created_at` > ?)';
    state = '(d.`is_resolved` = 0 OR d.`resolved_at` > ?)';
    params.push(capturedAt);
  }
  params.push(labId, input.userDetailsId);
  if (capturedAt) params.push(capturedAt);
  let billScope = '';
  if (input.module === 'bill') {
    billScope = ' AND (d.`bill_id` = ? OR d.`bill_id` IS NULL)';
    params.push(input.billId);
  }
  const labConfig = labConfigParts(labId, configs);
  const result = await sql.rows<LabConfigReadRow>(
    `SELECT 'row' AS kind, d.\`id\`, d.\`bill_id\`, d.\`field_id\`, d.\`config_id\`, d.\`field_value\`, d.\`org_id\`,
  d.\`is_resolved\`, ${newer} AS newer, t.\`name\` AS template_name, t.\`module\` AS template_module,
  NULL AS is_disabled, NULL AS template_active, NULL AS entity_object_id, NULL AS creation_object_id, NULL AS version,
  ${LAB_CONFIG_TAIL_NULLS}
FROM \`LabMissingDetails\` d
JOIN \`MissingDetailsTemplates\` t ON t.\`id\` = d.\`field_id\`
WHERE d.\`lab_id\` = ? AND d.\`user_details_id\` = ? AND ${state}${billScope}
UNION ALL
${labConfig.sql}`,
    [...params, ...labConfig.params],
  );
  const rows: PatientRow[] = [];
  return { ...splitLabConfigRead(result, (row) => rows.push(row)), rows };
}

const NO_ENTITIES: ReadonlySet<number> = new Set();

/** A row the capture opens: under which config, the value it records, and how it was detected. */
interface RowToOpen {
  config: PlaceholderConfig;
  /** The placeholder for a placeholder; for junk, what was saved (the column's 255 characters at most). */
  fieldValue: string;
  /** Stored as `detected_as`: null for a placeholder (as legacy's rows), 'junk'. */
  detectedAs: 'junk' | null;
}

/** What was saved, as text, for a junk row's `field_value`. */
function savedText(value: unknown): string {
  const text =
    typeof value === 'object' && value !== null && 'name' in value
      ? String((value as { name: unknown }).name)
      : String(value);
  return text.trim().slice(0, 255);
}

/** The present value saved under `key`; null when the key is absent from the body or the value is blank. */
function incomingValue(values: Record<string, unknown>, key: string | undefined): Comparable | null {
  if (key === undefined || !Object.hasOwn(values, key)) return null;
  const value = toComparable(values[key]);
  return isPresent(value) ? value : null;
}

/**
 * The runtime engine: opens and resolves LabMissingDetails rows for one save (contract: "The
 * runtime engine"). One read, one set-based update and one multi-row insert; nothing is written
 * when nothing changed. Run it inside a transaction (see `captureInTransaction`).
 */
export async function capture(
  em: Em,
  principal: CapturePrincipal,
  input: CaptureInput,
  options: CaptureOptions = {},
): Promise<CaptureResult> {
  return captureOn(emSession(em), principal, input, options);
}

async function captureOn(
  sql: SqlSession,
  principal: CapturePrincipal,
  input: CaptureInput,
  options: CaptureOptions,
): Promise<CaptureResult> {
  checkInput(input);
  const labId = principal.labId;
  const module = input.module;
  const billId = module === 'bill' ? input.billId : null;
  const now = options.now ?? new Date();
  const today = utcDay(now);
  const cache = options.configCache;

  // A body that carries no present value for any mapped field can change nothing: no configs.
  const carriesAField = mappedKeys(module).some((key) => incomingValue(input.values, key) !== null);
  const held = carriesAField ? cache?.lookup(labId) : undefined;
  const read = await readForCapture(sql, labId, input, options.capturedAt, {
    withConfigs: carriesAField,
    heldVersion: held?.version ?? '',
  });
  let configs = NO_CONFIGS;
  if (carriesAField) {
    configs = cache ? cache.adopt(labId, held, read) : new LabConfigs(read.configRows, read.settings);
  }

  // An organization user acts on its organization's rows only: another organization's open row of
  // the same patient is neither resolved, nor counted, nor reported (contract: "Who may do what").
  const visible = (orgId: number | null) => principal.orgId === null || orgId === principal.orgId;
  const rows = read.rows.filter((row) => visible(row.org_id));
  const openByField = new Map<number, PatientRow>();
  const fieldsChangedSince = new Set<number>();
  for (const row of rows) {
    if (row.template_module !== module || row.bill_id !== billId) continue;
    if (Number(row.newer)) fieldsChangedSince.add(row.field_id);
    if (!row.is_resolved) openByField.set(row.field_id, row);
  }

  const toResolve: number[] = [];
  for (const row of openByField.values()) {
    if (fieldsChangedSince.has(row.field_id)) continue;
    const value = incomingValue(input.values, lookupKey(module, row.template_name));
    if (value === null) continue;
    const config = row.config_id !== null ? configs.byId(row.config_id) : undefined;
    const entityIds = config?.entityIds || NO_ENTITIES;
    if (equalsPlaceholder(value, { text: row.field_value, entityIds })) continue;
    // Junk never resolves a row (with junk detection on): only a real value does.
    if (!config || !configs.isJunk(value, config, today)) toResolve.push(row.id);
  }

  const resolvedNow = new Set(toResolve);
  const toOpen: RowToOpen[] = [];
  for (const config of configs.opening(module)) {
    const open = openByField.get(config.fieldId);
    if ((open && !resolvedNow.has(open.id)) || fieldsChangedSince.has(config.fieldId)) continue;
    const key = lookupKey(module, config.templateName);
    const value = incomingValue(input.values, key);
    if (value === null) continue;
    if (equalsPlaceholder(value, config)) toOpen.push({ config, fieldValue: config.text, detectedAs: null });
    else if (configs.isJunk(value, config, today)) {
      toOpen.push({ config, fieldValue: savedText(input.values[key!]), detectedAs: 'junk' });
    }
  }

  let resolved = 0;
  if (toResolve.length > 0) {
    const isDoctor = principal.role === 'doctor';
    resolved = await sql.run(
      `UPDATE \`LabMissingDetails\`
SET \`is_resolved\` = 1, \`resolved_at\` = ?, \`resolved_by_doctor_id\` = ?, \`resolved_by_lab_user_id\` = ?, \`updated_at\` = ?
WHERE \`id\` IN (${toResolve.map(() => '?').join(', ')}) AND \`lab_id\` = ? AND \`is_resolved\` = 0`,
      [now, isDoctor ? principal.userId : null, isDoctor ? null : principal.userId, now, ...toResolve, labId],
    );
  }
  let opened = 0;
  if (toOpen.length > 0) {
    // IGNORE: a racing capture that opened the same row first wins the open-row guard; ours is a no-op.
    opened = await sql.run(
      `INSERT IGNORE INTO \`LabMissingDetails\`
  (\`lab_id\`, \`org_id\`, \`user_details_id\`, \`bill_id\`, \`field_id\`, \`config_id\`, \`field_name\`, \`field_value\`,
   \`field_module\`, \`is_resolved\`, \`created_at\`, \`updated_at\`, \`detected_as\`, \`due_at\`)
VALUES ${toOpen.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)').join(', ')}`,
      toOpen.flatMap(({ config, fieldValue, detectedAs }) => [
        labId,
        input.orgId,
        input.userDetailsId,
        billId,
        config.fieldId,
        config.id,
        config.templateName,
        fieldValue,
        module,
        now,
        now,
        detectedAs,
        config.dueInHours === null ? null : new Date(now.getTime() + config.dueInHours * 3_600_000),
      ]),
    );
  }

  const moved = input.orgIsCurrent
    ? await moveToOrganization(sql, labId, rows, resolvedNow, input.orgId, now)
    : 0;
  const stillOpen = rows.some(
    (row) =>
      !row.is_resolved && !resolvedNow.has(row.id) && (moved ? visible(input.orgId) : visible(row.org_id)),
  );
  return { opened, resolved, hasMissingFields: stillOpen || (toOpen.length > 0 && visible(input.orgId)) };
}

/**
 * A patient who changed organization: the save names `orgId`, and the patient's rows still open
 * under another organization move to it in the capture's transaction, so listings, flags and counts
 * follow the patient. Resolved rows keep the organization they were resolved under. One statement,
 * only when a row has to move.
 */
async function moveToOrganization(
  sql: SqlSession,
  labId: number,
  rows: readonly PatientRow[],
  resolvedNow: ReadonlySet<number>,
  orgId: number | null,
  now: Date,
): Promise<number> {
  const moving = rows
    .filter((row) => !row.is_resolved && !resolvedNow.has(row.id) && row.org_id !== orgId)
    .map((row) => row.id);
  if (moving.length === 0) return 0;
  return sql.run(
    `UPDATE \`LabMissingDetails\` SET \`org_id\` = ?, \`updated_at\` = ?
WHERE \`id\` IN (${moving.map(() => '?').join(', ')}) AND \`lab_id\` = ? AND \`is_resolved\` = 0`,
    [orgId, now, ...moving, labId],
  );
}

/**
 * Runs `capture` in its own READ COMMITTED transaction, again after a deadlock (withDeadlockRetry). Its
 * statements are all hand-written, so the transaction runs on one pooled connection without the
 * ORM's unit of work (see `inRawTransaction`); errors arrive converted as the ORM converts them.
 */
export async function captureInTransaction(
  em: Em,
  principal: CapturePrincipal,
  input: CaptureInput,
  options: CaptureOptions = {},
): Promise<CaptureResult> {
  // A lock wait timeout is retried too: the save has happened in legacy, its capture must land.
  return withDeadlockRetry(
    () => inRawTransaction(em, 'READ COMMITTED', (sql) => captureOn(sql, principal, input, options)),
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
  await em.execute(
    `INSERT INTO \`md_capture_outbox\`
  (\`capture_key\`, \`lab_id\`, \`module\`, \`user_details_id\`, \`bill_id\`, \`principal_user_id\`, \`principal_role\`,
   \`principal_org_id\`, \`input\`, \`status\`, \`attempts\`, \`next_attempt_at\`, \`last_error\`, \`captured_at\`,
   \`created_at\`, \`updated_at\`)
VALUES ${captures.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 1, ?, ?, ?, ?, ?)").join(', ')}
ON DUPLICATE KEY UPDATE \`id\` = \`id\``,
    captures.flatMap((c) => [
      c.captureKey,
      c.principal.labId,
      c.input.module,
      c.input.userDetailsId,
      c.input.billId,
      c.principal.userId,
      c.principal.role,
      c.principal.orgId,
      JSON.stringify(c.input),
      nextAttemptAt,
      c.lastError,
      new Date(c.capturedAt),
      now,
      now,
    ]),
    'run',
  );
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
