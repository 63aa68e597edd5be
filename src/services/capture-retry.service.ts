import { readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ConnectionException,
  DeadlockException,
  IsolationLevel,
  LockWaitTimeoutException,
} from '@mikro-orm/core';
import type { FastifyBaseLogger } from 'fastify';
import type { BackgroundContext, BackgroundTask } from '../background.js';
import type { Database } from '../db/database.js';
import { type SqlSession, sqlSession } from '../db/sql-session.js';
import { toAppError, ValidationError } from '../errors.js';
import {
  anyCaptureDue,
  claimDueCaptures,
  type DueCaptureRow,
  markCaptureFailed,
  markCaptureRejected,
  markCapturesLanded,
  purgeLandedCaptures,
} from '../repositories/capture-outbox.repository.js';
import {
  type CaptureInput,
  type CapturePrincipal,
  capture,
  captureOutcomes,
  captureRetryDelayMs,
  enqueueCaptures,
  type StoredCapture,
  storedCaptureSchema,
} from './capture.service.js';

export interface CaptureRetrierOptions {
  db: Database;
  logger: FastifyBaseLogger;
  /** CAPTURE_SPOOL_DIR: files written when the database was unreachable. */
  spoolDir: string;
  pollIntervalMs: number;
  maxBackoffMs: number;
  /** Captures replayed per transaction. */
  batchSize?: number;
  /** A temp spool file older than this was left by a crash between write and rename. */
  staleTempMs?: number;
}

export interface RetryPass {
  imported: number;
  landed: number;
  failed: number;
}

type DueRow = DueCaptureRow;

/** Landed rows are kept this long for operators, then purged. */
const LANDED_RETENTION_MS = 7 * 24 * 3600_000;
const PURGE_EVERY_MS = 3600_000;
const SPOOL_FILES_PER_PASS = 500;

/** `datetime(6)` as the driver returns it (UTC, no zone) to a Date. */
function fromDbDate(value: string): Date {
  return new Date(`${value.replace(' ', 'T')}Z`);
}

/** Errors after which the transaction itself is gone: the whole pass stops and is retried as it was. */
function abortsThePass(error: unknown): boolean {
  return (
    error instanceof DeadlockException ||
    error instanceof LockWaitTimeoutException ||
    error instanceof ConnectionException ||
    toAppError(error).code === 'SERVICE_UNAVAILABLE'
  );
}

function errorText(error: unknown): string {
  return (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 1024);
}

/**
 * Replays the captures that could not land when they were made, until they land: first moves
 * spooled files into `md_capture_outbox`, then claims due rows (SELECT … FOR UPDATE SKIP LOCKED, so
 * several processes never replay one capture at once, and a crashed worker's claim ends with its
 * connection) and replays each in a savepoint. A failed replay is retried with exponential backoff.
 */
export class CaptureRetrier implements BackgroundTask {
  readonly name = 'capture-retrier';
  readonly #options: Required<CaptureRetrierOptions>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;
  #lastPurge = 0;
  #failedPasses = 0;

  constructor(options: CaptureRetrierOptions) {
    this.#options = { batchSize: 50, staleTempMs: 60_000, ...options };
  }

  start(): this {
    this.#schedule(0);
    return this;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      const { batchSize, pollIntervalMs, maxBackoffMs, logger } = this.#options;
      const pass = this.runOnce().then(
        (result) => {
          this.#failedPasses = 0;
          return result.landed + result.failed >= batchSize ? 0 : pollIntervalMs;
        },
        (error: unknown) => {
          // The database is likely down: back off (capped) instead of logging every poll.
          this.#failedPasses++;
          const delay = Math.min(maxBackoffMs, pollIntervalMs * 2 ** Math.min(this.#failedPasses, 20));
          logger.warn({ err: error, retryInMs: delay }, 'capture retry pass failed; trying again');
          return delay;
        },
      );
      this.#running = pass;
      void pass.then((next) => this.#schedule(next));
    }, delayMs);
  }

  /** One pass: import the spool, replay due captures, now and then purge old landed rows. */
  async runOnce(now = new Date()): Promise<RetryPass> {
    const imported = await this.importSpool(now);
    const { landed, failed } = await this.replayDue(now);
    if (now.getTime() - this.#lastPurge >= PURGE_EVERY_MS) {
      this.#lastPurge = now.getTime();
      await purgeLandedCaptures(
        sqlSession(this.#options.db.em()),
        new Date(now.getTime() - LANDED_RETENTION_MS),
      );
    }
    return { imported, landed, failed };
  }

  /** Moves spool files into the outbox (a file imported twice is one row: the capture key is unique). */
  async importSpool(now = new Date()): Promise<number> {
    const { spoolDir, logger, staleTempMs } = this.#options;
    let names: string[];
    try {
      names = await readdir(spoolDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw error;
    }
    const candidates: string[] = [];
    for (const name of names) {
      if (candidates.length >= SPOOL_FILES_PER_PASS) break;
      if (name.endsWith('.json')) candidates.push(name);
      else if (name.endsWith('.json.tmp')) {
        const info = await stat(join(spoolDir, name)).catch(() => undefined);
        if (info && now.getTime() - info.mtimeMs > staleTempMs) candidates.push(name);
      }
    }
    const captures: StoredCapture[] = [];
    const importedFiles: string[] = [];
    for (const name of candidates) {
      const path = join(spoolDir, name);
      const text = await readFile(path, 'utf8').catch(() => undefined);
      if (text === undefined) continue; // another process took it
      let parsed: ReturnType<typeof storedCaptureSchema.safeParse> | undefined;
      try {
        parsed = storedCaptureSchema.safeParse(JSON.parse(text));
      } catch {
        parsed = undefined;
      }
      if (!parsed?.success) {
        await rename(path, `${path}.rejected`).catch(() => undefined);
        captureOutcomes.inc({ outcome: 'spool_rejected' });
        // The file stays on disk (renamed) for an operator; its content may hold patient values, so it is not logged.
        logger.error({ path, bytes: text.length }, 'unreadable capture spool file set aside');
        continue;
      }
      captures.push(parsed.data as StoredCapture);
      importedFiles.push(path);
    }
    if (captures.length === 0) return 0;
    await enqueueCaptures(this.#options.db.em(), captures, now, this.#options.maxBackoffMs);
    await Promise.all(importedFiles.map((path) => unlink(path).catch(() => undefined)));
    captureOutcomes.inc({ outcome: 'spool_imported' }, captures.length);
    logger.info({ count: captures.length }, 'moved spooled captures into the outbox');
    return captures.length;
  }

  /** Claims due captures and replays them; each lands (and is marked) or gets its next attempt time. */
  async replayDue(now = new Date()): Promise<{ landed: number; failed: number }> {
    const { db, logger, batchSize, maxBackoffMs } = this.#options;
    if (!(await anyCaptureDue(sqlSession(db.em()), now))) return { landed: 0, failed: 0 };
    return db.em().transactional(
      async (tx) => {
        const sql = sqlSession(tx);
        const due = await claimDueCaptures(sql, now, batchSize);
        const landed: number[] = [];
        let failed = 0;
        for (const row of due) {
          try {
            const { principal, input } = this.#decode(row);
            await tx.transactional((inner) =>
              capture(inner, principal, input, {
                capturedAt: fromDbDate(row.captured_at),
                configCache: db.labConfigs,
              }),
            );
            landed.push(row.id);
          } catch (error) {
            if (abortsThePass(error)) throw error;
            failed++;
            if (error instanceof ValidationError || error instanceof SyntaxError) {
              await this.#markRejected(sql, row, error, now);
            } else {
              await this.#markFailed(sql, row, error, now, maxBackoffMs);
            }
          }
        }
        if (landed.length > 0) {
          await markCapturesLanded(sql, landed, now);
          captureOutcomes.inc({ outcome: 'replayed' }, landed.length);
          logger.info({ count: landed.length, ids: landed }, 'stored captures landed');
        }
        return { landed: landed.length, failed };
      },
      { isolationLevel: IsolationLevel.READ_COMMITTED },
    );
  }

  #decode(row: DueRow): { principal: CapturePrincipal; input: CaptureInput } {
    const role = row.principal_role === 'doctor' ? 'doctor' : 'lab_user';
    return {
      principal: { labId: row.lab_id, userId: row.principal_user_id, role, orgId: row.principal_org_id },
      input: JSON.parse(row.input) as CaptureInput,
    };
  }

  /** A stored capture the engine can never read stays in the table, named in the log, and is not retried. */
  async #markRejected(sql: SqlSession, row: DueRow, error: unknown, now: Date): Promise<void> {
    await markCaptureRejected(sql, row.id, errorText(error), now);
    captureOutcomes.inc({ outcome: 'rejected' });
    this.#options.logger.error({ err: error, outboxId: row.id }, 'stored capture rejected');
  }

  async #markFailed(
    sql: SqlSession,
    row: DueRow,
    error: unknown,
    now: Date,
    maxBackoffMs: number,
  ): Promise<void> {
    const attempts = row.attempts + 1;
    const nextAttemptAt = new Date(now.getTime() + captureRetryDelayMs(attempts, maxBackoffMs));
    await markCaptureFailed(sql, row.id, { attempts, nextAttemptAt, error: errorText(error) }, now);
    captureOutcomes.inc({ outcome: 'retry_failed' });
    const log = attempts % 20 === 0 ? this.#options.logger.error : this.#options.logger.warn;
    log.call(
      this.#options.logger,
      { err: error, outboxId: row.id, attempts, nextAttemptAt },
      'stored capture failed again; retrying later',
    );
  }
}

/** The capture retrier as a background task (started once the database is migrated and ready). */
export function startCaptureRetrier(context: BackgroundContext): BackgroundTask {
  const { config, db, logger } = context;
  return new CaptureRetrier({
    db,
    logger,
    spoolDir: config.capture.spoolDir,
    pollIntervalMs: config.capture.retryPollIntervalMs,
    maxBackoffMs: config.capture.retryMaxBackoffMs,
  }).start();
}
