import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Em } from '../db/database.js';
import { sqlSession } from '../db/sql-session.js';
import { ConflictError } from '../errors.js';
import {
  deleteExpiredIdempotencyKeys as deleteExpiredKeys,
  findIdempotencyKey,
  insertIdempotencyKey,
  renewExpiredIdempotencyKey,
  storeIdempotencyResponse,
} from '../repositories/idempotency.repository.js';

/** How long a key's first answer is replayed; older keys count as new. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

/** Expired keys removed per cleanup, so that the cleanup never turns into a long-running delete. */
const CLEANUP_BATCH = 200;

/**
 * 1 to 255 printable ASCII characters. Keys compare as the table's collation does (utf8mb4_unicode_ci):
 * `Abc` and `abc` are one key, which is harmless for the UUIDs clients send.
 */
export const idempotencyKeySchema = z
  .string()
  .regex(/^[\x20-\x7E]{1,255}$/, 'must be 1 to 255 printable ASCII characters');

/** A stable fingerprint of a request's (normalized) input, to tell a retry from a different request. */
export function requestHash(input: unknown): string {
  return createHash('sha256').update(JSON.stringify(input)).digest('hex');
}

export interface IdempotencyScope {
  labId: number;
  /** What the key is for, e.g. `configs.save`; the same key may be used by different operations. */
  operation: string;
  key: string;
  requestHash: string;
  now: Date;
}

export type IdempotencyClaim =
  | { readonly kind: 'new'; readonly keyId: number }
  | { readonly kind: 'replay'; readonly response: unknown };

/**
 * Claims a key inside the caller's transaction (run it first, under READ COMMITTED). The row is
 * inserted before anything else is written: a concurrent request with the same key blocks on the
 * unique index until this transaction ends, then sees the committed answer and replays it. When
 * this transaction rolls back (a rejected save), the key goes with it and stays usable.
 */
export async function claimIdempotencyKey(
  em: Em,
  scope: IdempotencyScope,
  attempt = 1,
): Promise<IdempotencyClaim> {
  const expiresAt = new Date(scope.now.getTime() + IDEMPOTENCY_TTL_MS);
  const sql = sqlSession(em);
  const { labId, operation, key, requestHash, now } = scope;
  const keyId = await insertIdempotencyKey(sql, { labId, operation, key, requestHash, now, expiresAt });
  if (keyId !== null) return { kind: 'new', keyId };

  // A plain read: READ COMMITTED shows the committed answer, and a locking read here would make
  // concurrent replayers (each holding the shared lock of its duplicate insert) deadlock.
  const row = await findIdempotencyKey(sql, labId, operation, key);
  const retry = () => {
    if (attempt < 3) return claimIdempotencyKey(em, scope, attempt + 1);
    throw new ConflictError(`Idempotency-Key "${scope.key}" could not be claimed; retry shortly`);
  };
  // Gone: the cleanup removed it between the two statements, so it was expired and the key is new.
  if (!row) return retry();
  if (new Date(row.expires_at).getTime() <= scope.now.getTime()) {
    const renewed = await renewExpiredIdempotencyKey(sql, row.id, { requestHash, now, expiresAt });
    // Another request renewed it first: look again, as for any live key.
    return renewed ? { kind: 'new', keyId: Number(row.id) } : retry();
  }
  if (row.request_hash !== scope.requestHash) {
    throw new ConflictError(
      `Idempotency-Key "${scope.key}" was already used with a different request body; use a new key for a new request`,
    );
  }
  if (row.response_body === null) {
    // Only a committed claim is visible here, and a claim always commits with its answer.
    throw new ConflictError(`Idempotency-Key "${scope.key}" is still being processed; retry shortly`);
  }
  return { kind: 'replay', response: JSON.parse(row.response_body) as unknown };
}

/** Stores the answer of a claimed key, in the same transaction that applied the request. */
export async function storeIdempotentResponse(em: Em, keyId: number, response: unknown): Promise<void> {
  await storeIdempotencyResponse(sqlSession(em), keyId, JSON.stringify(response));
}

/** Deletes a bounded batch of expired keys; returns how many went. */
export async function deleteExpiredIdempotencyKeys(
  em: Em,
  now: Date,
  limit = CLEANUP_BATCH,
): Promise<number> {
  return deleteExpiredKeys(sqlSession(em), now, limit);
}
