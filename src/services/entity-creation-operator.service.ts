import { z } from 'zod';
import { bridgeCreationEvents } from '../../legacy-bridge/metrics.js';
import { utcDate } from '../../legacy-bridge/outbox.js';
import type { Principal } from '../auth/principal.js';
import type { Em } from '../db/database.js';
import { dbTimestampOf, isoMicros } from '../db/microsecond-timestamp.type.js';
import {
  ENTITY_CREATION_STATUSES,
  type EntityCreationStatus,
} from '../entities/entity-creation-outbox.entity.js';
import { ValidationError } from '../errors.js';
import { writeActivities } from './activity-log.service.js';

/**
 * What operators see of the PY-2 entity creations (the legacy bridge's outbox) and the one thing
 * they may do: send failed ones again. Always scoped to the caller's lab.
 */

const TABLE = '`md_entity_creation_outbox`';

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

interface OutboxRow {
  id: number | string;
  config_id: number;
  entity_type: string;
  name: string;
  status: EntityCreationStatus;
  attempts: number;
  last_error: string | null;
  next_attempt_at: string | Date;
  claim_expires_at: string | Date | null;
  object_id: number | null;
  created_at: string | Date;
  delivered_at: string | Date | null;
  failed_at: string | Date | null;
  retried_at: string | Date | null;
  retry_count: number;
}

/** A datetime(6) column as its text, microseconds kept (mysql2's Date keeps milliseconds). */
const micros = (column: string) => `DATE_FORMAT(${column}, '%Y-%m-%d %H:%i:%s.%f') AS ${column}`;

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
  const conditions = ['lab_id = ?'];
  const params: unknown[] = [principal.labId];
  if (input.status) {
    conditions.push('status = ?');
    params.push(input.status);
  }
  if (input.cursor) {
    conditions.push('id < ?');
    params.push(decodeCursor(input.cursor));
  }
  const rows = await em.execute<OutboxRow[]>(
    `SELECT id, config_id, entity_type, name, status, attempts, last_error, ${micros('next_attempt_at')},
            ${micros('claim_expires_at')}, object_id, ${micros('created_at')}, ${micros('delivered_at')},
            ${micros('failed_at')}, ${micros('retried_at')}, retry_count
       FROM ${TABLE}
      WHERE ${conditions.join(' AND ')}
      ORDER BY id DESC
      LIMIT ?`,
    [...params, input.limit + 1],
  );
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
    const found = await tx.execute<
      Array<{ id: number | string; status: string; config_id: number; entity_type: string; name: string }>
    >(
      `SELECT id, status, config_id, entity_type, name FROM ${TABLE} WHERE lab_id = ? AND id IN (?) FOR UPDATE`,
      [principal.labId, input.ids],
    );
    const failed = found.filter((row) => row.status === 'failed');
    const failedIds = failed.map((row) => Number(row.id));
    if (failedIds.length > 0) {
      await tx.execute(
        `UPDATE ${TABLE}
            SET status = 'queued', attempts = 0, next_attempt_at = ?, failed_at = NULL, claimed_by = NULL,
                claim_expires_at = NULL, retried_at = ?, retry_count = retry_count + 1, updated_at = ?
          WHERE lab_id = ? AND status = 'failed' AND id IN (?)`,
        [now, now, now, principal.labId, failedIds],
        'run',
      );
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
