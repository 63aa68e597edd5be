import type { SqlSession } from '../db/sql-session.js';

/** `md_idempotency_keys`: one row per (lab, operation, key), with the first answer given for it. */

export interface IdempotencyKeyRow {
  id: number | string;
  request_hash: string;
  response_body: string | null;
  expires_at: Date;
}

export interface NewIdempotencyKey {
  labId: number;
  operation: string;
  key: string;
  requestHash: string;
  now: Date;
  expiresAt: Date;
}

/** Inserts the key unless it exists (then waits on its unique index); answers its id when inserted, else null. */
export async function insertIdempotencyKey(sql: SqlSession, key: NewIdempotencyKey): Promise<number | null> {
  const inserted = await sql.execute(
    `INSERT IGNORE INTO md_idempotency_keys
       (lab_id, operation, idempotency_key, request_hash, response_body, created_at, expires_at)
     VALUES (?, ?, ?, ?, NULL, ?, ?)`,
    [key.labId, key.operation, key.key, key.requestHash, key.now, key.expiresAt],
  );
  return inserted.affectedRows === 1 ? Number(inserted.insertId) : null;
}

/** The key's row as committed (a plain, non-locking read). */
export async function findIdempotencyKey(
  sql: SqlSession,
  labId: number,
  operation: string,
  key: string,
): Promise<IdempotencyKeyRow | undefined> {
  const [row] = await sql.query<IdempotencyKeyRow>(
    `SELECT id, request_hash, response_body, expires_at FROM md_idempotency_keys
     WHERE lab_id = ? AND operation = ? AND idempotency_key = ?`,
    [labId, operation, key],
  );
  return row;
}

/** Takes over an expired key for a new request; false when another request renewed it first. */
export async function renewExpiredIdempotencyKey(
  sql: SqlSession,
  id: number | string,
  renewal: { requestHash: string; now: Date; expiresAt: Date },
): Promise<boolean> {
  const reused = await sql.execute(
    `UPDATE md_idempotency_keys
       SET request_hash = ?, response_body = NULL, created_at = ?, expires_at = ?
       WHERE id = ? AND expires_at <= ?`,
    [renewal.requestHash, renewal.now, renewal.expiresAt, id, renewal.now],
  );
  return reused.affectedRows === 1;
}

/** Stores the answer of a claimed key. */
export async function storeIdempotencyResponse(
  sql: SqlSession,
  keyId: number,
  responseJson: string,
): Promise<void> {
  await sql.execute('UPDATE md_idempotency_keys SET response_body = ? WHERE id = ?', [responseJson, keyId]);
}

/** Deletes up to `limit` expired keys, oldest first; answers how many went. */
export async function deleteExpiredIdempotencyKeys(
  sql: SqlSession,
  now: Date,
  limit: number,
): Promise<number> {
  const result = await sql.execute(
    'DELETE FROM md_idempotency_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?',
    [now, limit],
  );
  return result.affectedRows;
}
