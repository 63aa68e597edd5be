import { IsolationLevel } from '@mikro-orm/core';
import type { Em } from '../src/db/database.js';
import { sqlSession } from '../src/db/sql-session.js';
import {
  anyCreationDue,
  type ClaimedCreationRow,
  countPendingCreations,
  lockDueCreationIds,
  markCreationDelivered,
  markCreationFailed,
  markCreationsClaimed,
  newerDeliveredObjectId,
  readClaimedCreations,
  releaseCreationClaims,
  rescheduleClaimedCreation,
  setConfigEntityObject,
} from '../src/repositories/entity-creation-outbox.repository.js';
import { writeActivity } from '../src/services/activity-log.service.js';
import { recordEntityCreated } from '../src/services/entity-trace.service.js';

/**
 * The outbox of PY-2 entity creations (`md_entity_creation_outbox`): its rules and transactions; the
 * statements are in src/repositories/entity-creation-outbox.repository.ts. A row is
 * `queued` until it is `delivered` or `failed`. A worker claims due rows with
 * SELECT … FOR UPDATE SKIP LOCKED, so any number of workers share one database; a claim pushes the
 * row's `next_attempt_at` to the claim's expiry, so a claim left by a crashed worker simply makes
 * the row due again when it expires.
 */

export interface ClaimedCreation {
  id: number;
  labId: number;
  orgId: number | null;
  configId: number;
  entityType: string;
  name: string;
  idempotencyKey: string;
  /** Attempts started, this one included. */
  attempts: number;
  /** Until when this worker's claim holds; past it, another worker may take the creation. */
  claimExpiresAt: Date;
  createdAt: Date;
  /** Where the give-up window starts: the last operator retry, else the creation. */
  windowStartedAt: Date;
  requestedByLabUserId: number | null;
  requestedByDoctorId: number | null;
}

type ClaimedRow = ClaimedCreationRow;

/** The driver hands datetime(6) columns back as UTC strings (`dateStrings`); Dates pass through. */
export function utcDate(value: string | Date): Date {
  return value instanceof Date ? value : new Date(`${value.replace(' ', 'T')}Z`);
}

function toClaimed(row: ClaimedRow): ClaimedCreation {
  return {
    id: Number(row.id),
    labId: row.lab_id,
    orgId: row.org_id,
    configId: row.config_id,
    entityType: row.entity_type,
    name: row.name,
    idempotencyKey: row.idempotency_key,
    attempts: row.attempts,
    claimExpiresAt: utcDate(row.claim_expires_at),
    createdAt: utcDate(row.created_at),
    windowStartedAt: utcDate(row.window_started_at),
    requestedByLabUserId: row.requested_by_lab_user_id,
    requestedByDoctorId: row.requested_by_doctor_id,
  };
}

export interface ClaimOptions {
  workerId: string;
  limit: number;
  now: Date;
  claimTtlMs: number;
}

/**
 * Claims up to `limit` due creations for `workerId` and counts the attempt. READ COMMITTED keeps
 * the locking read from taking gap locks, so config saves inserting new rows never wait on it.
 */
export async function claimDueCreations(em: Em, options: ClaimOptions): Promise<ClaimedCreation[]> {
  if (options.limit <= 0) return [];
  if (!(await anyCreationDue(sqlSession(em), options.now))) return [];
  const claimExpiresAt = new Date(options.now.getTime() + options.claimTtlMs);
  return em.transactional(
    async (tx) => {
      const sql = sqlSession(tx);
      const ids = await lockDueCreationIds(sql, options.now, options.limit);
      if (ids.length === 0) return [];
      await markCreationsClaimed(sql, ids, { workerId: options.workerId, claimExpiresAt, now: options.now });
      const rows = await readClaimedCreations(sql, ids);
      return rows.map(toClaimed);
    },
    { isolationLevel: IsolationLevel.READ_COMMITTED },
  );
}

function actorOf(creation: ClaimedCreation): { role: 'lab_user' | 'doctor'; userId: number } | null {
  if (creation.requestedByDoctorId !== null) return { role: 'doctor', userId: creation.requestedByDoctorId };
  if (creation.requestedByLabUserId !== null)
    return { role: 'lab_user', userId: creation.requestedByLabUserId };
  return null;
}

/**
 * Records PY-2's success: the row turns `delivered` and the success trace is written, in one
 * transaction. The conditional UPDATE makes this happen once per creation, however many workers
 * got an answer for it (a claim that expired mid-call, a crash between the call and the commit):
 * the others update nothing and write nothing. A success that lands after the row was given up is
 * still the truth about PY-2, so it is recorded too. Returns whether this call recorded it.
 */
export async function completeCreation(
  em: Em,
  creation: ClaimedCreation,
  delivery: { workerId: string; objectId: number; now: Date },
): Promise<boolean> {
  const { workerId, objectId, now } = delivery;
  return em.transactional(
    async (tx) => {
      const sql = sqlSession(tx);
      if (!(await markCreationDelivered(sql, creation.id, { workerId, objectId, now }))) return false;
      await recordEntityCreated(
        tx,
        {
          labId: creation.labId,
          orgId: creation.orgId,
          configId: creation.configId,
          entityType: creation.entityType,
          objectId,
          name: creation.name,
          actor: actorOf(creation),
          track: 'legacy_bridge',
        },
        now,
      );
      // A config whose value changed again has a newer creation; if that one landed first (this one
      // needed retries), the config keeps pointing at the newer placeholder. A plain read: this
      // transaction already holds the config row, so a racing delivery of the same config either
      // committed before (and is seen, under READ COMMITTED) or waits and runs this check after us.
      const newer = await newerDeliveredObjectId(sql, creation.configId, creation.id);
      if (newer !== undefined) await setConfigEntityObject(sql, creation.configId, newer);
      return true;
    },
    { isolationLevel: IsolationLevel.READ_COMMITTED },
  );
}

export interface RetryOptions {
  workerId: string;
  nextAttemptAt: Date;
  error: string;
  now: Date;
}

/** Gives the claim back with the next attempt scheduled; only while `workerId` still holds it. */
export async function scheduleRetry(
  em: Em,
  creation: ClaimedCreation,
  options: RetryOptions,
): Promise<boolean> {
  return rescheduleClaimedCreation(sqlSession(em), creation.id, {
    workerId: options.workerId,
    nextAttemptAt: options.nextAttemptAt,
    error: options.error.slice(0, 1024),
    now: options.now,
  });
}

export interface FailOptions {
  workerId: string;
  reason: string;
  now: Date;
}

/**
 * Gives the creation up: the row turns `failed` (it stays listed for operators) and ActivityLog
 * gets `entity_creation_failed` with the reason, in one transaction; only while `workerId` holds
 * the claim, so a worker whose claim expired cannot fail a creation another one is delivering.
 */
export async function failCreation(
  em: Em,
  creation: ClaimedCreation,
  options: FailOptions,
): Promise<boolean> {
  const reason = options.reason.slice(0, 1024);
  return em.transactional(async (tx) => {
    const failure = { workerId: options.workerId, reason, now: options.now };
    if (!(await markCreationFailed(sqlSession(tx), creation.id, failure))) return false;
    await writeActivity(
      tx,
      {
        labId: creation.labId,
        orgId: creation.orgId,
        actor: actorOf(creation),
        action: 'entity_creation_failed',
        objectType: creation.entityType,
        objectId: null,
        message: `Could not create placeholder ${creation.entityType} "${creation.name}" for missing-details config ${creation.configId}: ${reason}`,
        details: {
          config_id: creation.configId,
          entity_type: creation.entityType,
          name: creation.name,
          creation_id: creation.id,
          attempts: creation.attempts,
          reason,
          track: 'legacy_bridge',
        },
      },
      options.now,
    );
    return true;
  });
}

export interface ReleaseOptions {
  workerId: string;
  nextAttemptAt: Date;
  /** The claim was given back before PY-2 was asked: the attempt does not count. */
  refundAttempt: boolean;
  now: Date;
}

/** Gives claims back without a verdict (shutdown, open circuit); only those `workerId` still holds. */
export async function releaseClaims(
  em: Em,
  ids: readonly number[],
  options: ReleaseOptions,
): Promise<number> {
  if (ids.length === 0) return 0;
  return releaseCreationClaims(sqlSession(em), ids, options);
}

export interface OutboxStats {
  queued: number;
  failed: number;
  /** Seconds since the oldest queued creation was requested; 0 when none is queued. */
  oldestPendingAgeSeconds: number;
}

/** The queue's state across every instance: one grouped read over the (status, next_attempt_at) index. */
export async function readOutboxStats(em: Em, now: Date): Promise<OutboxStats> {
  const rows = await countPendingCreations(sqlSession(em));
  const stats: OutboxStats = { queued: 0, failed: 0, oldestPendingAgeSeconds: 0 };
  for (const row of rows) {
    if (row.status === 'queued') {
      stats.queued = Number(row.n);
      if (row.oldest) {
        stats.oldestPendingAgeSeconds = Math.max(0, (now.getTime() - utcDate(row.oldest).getTime()) / 1000);
      }
    } else if (row.status === 'failed') {
      stats.failed = Number(row.n);
    }
  }
  return stats;
}
