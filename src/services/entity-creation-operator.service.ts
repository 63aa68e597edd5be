import { z } from 'zod';
import { bridgeCreationEvents } from '../../legacy-bridge/metrics.js';
import { utcDate } from '../../legacy-bridge/outbox.js';
import type { Principal } from '../auth/principal.js';
import type { Em } from '../db/database.js';
import { dbTimestampOf, isoMicros } from '../db/microsecond-timestamp.type.js';
import { sqlSession } from '../db/sql-session.js';
import {
  ENTITY_CREATION_STATUSES,
  type EntityCreationStatus,
} from '../entities/entity-creation-outbox.entity.js';
import { ValidationError } from '../errors.js';
import {
  type CreationListRow,
  listLabCreations,
  lockLabCreations,
  requeueFailedCreations,
} from '../repositories/entity-creation-outbox.repository.js';
import { writeActivities } from './activity-log.service.js';

/**
 * What operators see of the PY-2 entity creations (the legacy bridge's outbox) and the one thing
 * they may do: send failed ones again. Always scoped to the caller's lab.
 */

export const listEntityCreationsInput = z
  .object({
    status: z.enum(ENTITY_CREATION_STATUSES).optional(),
    limit: z.number().int().min(1).max(200).default(50),
    /** Opaque, from the previous page's `nextCursor`. */
    cursor: z.string().min(1).max(64).optional(),
  })
  .strict()
  .default({ limit: 50 });
export type ListEntityCreationsInput = z.infer<typeof listEntityCreationsInput>;

export const retryEntityCreationsInput = z
  .object({
    ids: z
      .array(z.number().int().positive())
      .min(1)
      .max(200)
      .refine((ids) => new Set(ids).size === ids.length, 'each id may appear only once'),
  })
  .strict();
export type RetryEntityCreationsInput = z.infer<typeof retryEntityCreationsInput>;

export interface EntityCreationView {
  id: number;
  configId: number;
  entityType: string;
  name: string;
  status: EntityCreationStatus;
  /** Attempts made since the creation was requested or last retried by an operator. */
  attempts: number;
  lastError: string | null;
  /** When the next attempt is due (ISO 8601 UTC); null unless queued. */
  nextAttemptAt: string | null;
  /** True while a worker is sending it to PY-2. */
  inFlight: boolean;
  objectId: number | null;
  createdAt: string;
  /** Seconds since the creation was requested. */
  ageSeconds: number;
  deliveredAt: string | null;
  failedAt: string | null;
  retriedAt: string | null;
  retryCount: number;
}

type OutboxRow = CreationListRow & { status: EntityCreationStatus };

function iso(value: string | Date | null): string | null {
  if (value === null) return null;
  return isoMicros(typeof value === 'string' ? value : dbTimestampOf(value));
}

function toView(row: OutboxRow, now: Date): EntityCreationView {
  const createdAt = utcDate(row.created_at);
  const claimExpiresAt = row.claim_expires_at === null ? null : utcDate(row.claim_expires_at);
  const inFlight = row.status === 'queued' && claimExpiresAt !== null && claimExpiresAt > now;
  return {
    id: Number(row.id),
    configId: row.config_id,
    entityType: row.entity_type,
    name: row.name,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    nextAttemptAt: row.status === 'queued' ? iso(row.next_attempt_at) : null,
    inFlight,
    objectId: row.object_id,
    createdAt: iso(row.created_at)!,
    ageSeconds: Math.max(0, Math.floor((now.getTime() - createdAt.getTime()) / 1000)),
    deliveredAt: iso(row.delivered_at),
    failedAt: iso(row.failed_at),
    retriedAt: iso(row.retried_at),
    retryCount: row.retry_count,
  };
}

function encodeCursor(id: number): string {
  return Buffer.from(`ec:${id}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const match = /^ec:(\d{1,18})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const id = match ? Number(match[1]) : Number.NaN;
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new ValidationError('Invalid cursor: pass the nextCursor of the previous page', [
      { path: 'cursor', message: 'not a cursor this list returned' },
    ]);
  }
  return id;
}

/** The lab's creations, newest first, `limit` per page. */
export async function listEntityCreations(
  em: Em,
  principal: Principal,
  input: ListEntityCreationsInput,
  now = new Date(),
): Promise<{ items: EntityCreationView[]; nextCursor: string | null }> {
  const rows = (await listLabCreations(sqlSession(em), principal.labId, {
    status: input.status,
    beforeId: input.cursor ? decodeCursor(input.cursor) : undefined,
    limit: input.limit + 1,
  })) as OutboxRow[];
  const page = rows.slice(0, input.limit);
  const last = page.at(-1);
  return {
    items: page.map((row) => toView(row, now)),
    nextCursor: rows.length > input.limit && last ? encodeCursor(Number(last.id)) : null,
  };
}

export interface RetryEntityCreationsResult {
  /** Ids put back in the queue, attempts reset. */
  retried: number[];
  /** Ids left alone: `not_failed` (queued or delivered) or `not_found` (no such creation in the lab). */
  skipped: Array<{ id: number; reason: 'not_failed' | 'not_found' }>;
}

/**
 * Sends failed creations again: each goes back to `queued` with its attempts reset and a fresh
 * give-up window, and ActivityLog records `entity_creation_retried`, all in one transaction. Only
 * `failed` rows of the caller's lab change; other labs' ids read as not found.
 */
export async function retryEntityCreations(
  em: Em,
  principal: Principal,
  input: RetryEntityCreationsInput,
  now = new Date(),
): Promise<RetryEntityCreationsResult> {
  const result = await em.transactional(async (tx) => {
    const sql = sqlSession(tx);
    const found = await lockLabCreations(sql, principal.labId, input.ids);
    const failed = found.filter((row) => row.status === 'failed');
    const failedIds = failed.map((row) => Number(row.id));
    if (failedIds.length > 0) {
      await requeueFailedCreations(sql, principal.labId, failedIds, now);
      await writeActivities(
        tx,
        failed.map((row) => ({
          labId: principal.labId,
          orgId: principal.orgId,
          actor: principal,
          action: 'entity_creation_retried',
          objectType: row.entity_type,
          message: `Retrying placeholder ${row.entity_type} "${row.name}" for missing-details config ${row.config_id}`,
          details: {
            creation_id: Number(row.id),
            config_id: row.config_id,
            entity_type: row.entity_type,
            track: 'legacy_bridge',
          },
        })),
        now,
      );
    }
    const statusById = new Map(found.map((row) => [Number(row.id), row.status]));
    return {
      retried: input.ids.filter((id) => statusById.get(id) === 'failed'),
      skipped: input.ids
        .filter((id) => statusById.get(id) !== 'failed')
        .map((id) => ({
          id,
          reason: statusById.has(id) ? ('not_failed' as const) : ('not_found' as const),
        })),
    };
  });
  if (result.retried.length > 0) bridgeCreationEvents.inc({ event: 'retried' }, result.retried.length);
  return result;
}
