import type { SqlSession } from '../db/sql-session.js';

/**
 * `md_entity_creation_outbox`: PY-2 entity creations waiting for the bridge (legacy-bridge/outbox.ts
 * decides; these are its statements), read by operators (entity-creation-operator.service.ts) and by
 * a new creation that may reuse a delivered object (entity-creation-start.service.ts). Rows are
 * written as entities (EntityCreationOutbox) when a config save queues them.
 */

const TABLE = '`md_entity_creation_outbox`';

/** A claimed creation as the worker reads it. */
export interface ClaimedCreationRow {
  id: number | string;
  lab_id: number;
  org_id: number | null;
  config_id: number;
  entity_type: string;
  name: string;
  idempotency_key: string;
  attempts: number;
  claim_expires_at: string | Date;
  created_at: string | Date;
  window_started_at: string | Date;
  requested_by_lab_user_id: number | null;
  requested_by_doctor_id: number | null;
}

/**
 * Whether any creation is due, read without a lock or a transaction: an idle poll of every instance
 * costs one plain SELECT instead of a locking transaction (and opens no ORM transaction context).
 */
export async function anyCreationDue(sql: SqlSession, now: Date): Promise<boolean> {
  const due = await sql.query(
    `SELECT 1 FROM ${TABLE} WHERE status = 'queued' AND next_attempt_at <= ? LIMIT 1`,
    [now],
  );
  return due.length > 0;
}

/** Locks up to `limit` due creations no other worker holds (SKIP LOCKED); answers their ids. */
export async function lockDueCreationIds(sql: SqlSession, now: Date, limit: number): Promise<number[]> {
  const due = await sql.query<{ id: number | string }>(
    `SELECT id FROM ${TABLE}
          WHERE status = 'queued' AND next_attempt_at <= ?
          ORDER BY next_attempt_at, id
          LIMIT ?
          FOR UPDATE SKIP LOCKED`,
    [now, limit],
  );
  return due.map((row) => Number(row.id));
}

/** Claims locked creations for `workerId` until `claimExpiresAt` (also their next due time) and counts the attempt. */
export async function markCreationsClaimed(
  sql: SqlSession,
  ids: readonly number[],
  claim: { workerId: string; claimExpiresAt: Date; now: Date },
): Promise<void> {
  await sql.execute(
    `UPDATE ${TABLE}
            SET claimed_by = ?, claim_expires_at = ?, next_attempt_at = ?, attempts = attempts + 1, updated_at = ?
          WHERE id IN (?)`,
    [claim.workerId, claim.claimExpiresAt, claim.claimExpiresAt, claim.now, ids],
  );
}

/** The claimed creations, in claim order. */
export function readClaimedCreations(sql: SqlSession, ids: readonly number[]): Promise<ClaimedCreationRow[]> {
  return sql.query<ClaimedCreationRow>(
    `SELECT id, lab_id, org_id, config_id, entity_type, name, idempotency_key, attempts, claim_expires_at, created_at,
                COALESCE(retried_at, created_at) AS window_started_at,
                requested_by_lab_user_id, requested_by_doctor_id
           FROM ${TABLE}
          WHERE id IN (?)
          ORDER BY next_attempt_at, id`,
    [ids],
  );
}

/** Marks a creation delivered with PY-2's object id, unless it already is; answers whether it changed. */
export async function markCreationDelivered(
  sql: SqlSession,
  id: number,
  delivery: { workerId: string; objectId: number; now: Date },
): Promise<boolean> {
  const { workerId, objectId, now } = delivery;
  // claimed_by is kept on finished rows: it names the instance that delivered the creation.
  const result = await sql.execute(
    `UPDATE ${TABLE}
          SET status = 'delivered', object_id = ?, delivered_at = ?, failed_at = NULL, claimed_by = ?,
              claim_expires_at = NULL, last_error = NULL, updated_at = ?
        WHERE id = ? AND status IN ('queued', 'failed')`,
    [objectId, now, workerId, now, id],
  );
  return result.affectedRows === 1;
}

/** The object of the newest delivered creation of the config after creation `afterId`, if any. */
export async function newerDeliveredObjectId(
  sql: SqlSession,
  configId: number,
  afterId: number,
): Promise<number | undefined> {
  const [newer] = await sql.query<{ object_id: number }>(
    `SELECT object_id FROM ${TABLE}
        WHERE config_id = ? AND status = 'delivered' AND id > ?
        ORDER BY id DESC
        LIMIT 1`,
    [configId, afterId],
  );
  return newer ? Number(newer.object_id) : undefined;
}

/** Points a config at a placeholder entity. */
export async function setConfigEntityObject(
  sql: SqlSession,
  configId: number,
  objectId: number,
): Promise<void> {
  await sql.execute('UPDATE `LabMissingDetailsConfiguration` SET entity_object_id = ? WHERE id = ?', [
    objectId,
    configId,
  ]);
}

/** Gives a claim back with its next attempt time; only while `workerId` holds it. Answers whether it did. */
export async function rescheduleClaimedCreation(
  sql: SqlSession,
  id: number,
  retry: { workerId: string; nextAttemptAt: Date; error: string; now: Date },
): Promise<boolean> {
  const result = await sql.execute(
    `UPDATE ${TABLE}
        SET next_attempt_at = ?, last_error = ?, claimed_by = NULL, claim_expires_at = NULL, updated_at = ?
      WHERE id = ? AND status = 'queued' AND claimed_by = ?`,
    [retry.nextAttemptAt, retry.error, retry.now, id, retry.workerId],
  );
  return result.affectedRows === 1;
}

/** Marks a claimed creation failed; only while `workerId` holds it. Answers whether it did. */
export async function markCreationFailed(
  sql: SqlSession,
  id: number,
  failure: { workerId: string; reason: string; now: Date },
): Promise<boolean> {
  const result = await sql.execute(
    `UPDATE ${TABLE}
          SET status = 'failed', failed_at = ?, last_error = ?, claim_expires_at = NULL, updated_at = ?
        WHERE id = ? AND status = 'queued' AND claimed_by = ?`,
    [failure.now, failure.reason, failure.now, id, failure.workerId],
  );
  return result.affectedRows === 1;
}

/** Gives claims back without a verdict; only those `workerId` still holds. Answers how many. */
export async function releaseCreationClaims(
  sql: SqlSession,
  ids: readonly number[],
  release: { workerId: string; nextAttemptAt: Date; refundAttempt: boolean; now: Date },
): Promise<number> {
  const result = await sql.execute(
    `UPDATE ${TABLE}
        SET claimed_by = NULL, claim_expires_at = NULL, next_attempt_at = ?, updated_at = ?${
          release.refundAttempt ? ', attempts = GREATEST(attempts - 1, 0)' : ''
        }
      WHERE id IN (?) AND status = 'queued' AND claimed_by = ?`,
    [release.nextAttemptAt, release.now, [...ids], release.workerId],
  );
  return result.affectedRows;
}

/** Queued and failed creations: how many, and the oldest request of each status. */
export function countPendingCreations(
  sql: SqlSession,
): Promise<Array<{ status: string; n: number | string; oldest: string | Date | null }>> {
  return sql.query(
    `SELECT status, COUNT(*) AS n, MIN(created_at) AS oldest
       FROM ${TABLE}
      WHERE status IN ('queued', 'failed')
      GROUP BY status`,
    [],
  );
}

/** One creation as operators list it; timestamps as microsecond text. */
export interface CreationListRow {
  id: number | string;
  config_id: number;
  entity_type: string;
  name: string;
  status: string;
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

/** A datetime(6) column as its text under its own name, microseconds kept (mysql2's Date keeps milliseconds). */
const micros = (column: string) => `DATE_FORMAT(${column}, '%Y-%m-%d %H:%i:%s.%f') AS ${column}`;

/** The lab's creations, newest first: `limit` rows with ids below `beforeId`, of `status` when given. */
export function listLabCreations(
  sql: SqlSession,
  labId: number,
  filter: { status?: string | undefined; beforeId?: number | undefined; limit: number },
): Promise<CreationListRow[]> {
  const conditions = ['lab_id = ?'];
  const params: unknown[] = [labId];
  if (filter.status) {
    conditions.push('status = ?');
    params.push(filter.status);
  }
  if (filter.beforeId !== undefined) {
    conditions.push('id < ?');
    params.push(filter.beforeId);
  }
  return sql.query<CreationListRow>(
    `SELECT id, config_id, entity_type, name, status, attempts, last_error, ${micros('next_attempt_at')},
            ${micros('claim_expires_at')}, object_id, ${micros('created_at')}, ${micros('delivered_at')},
            ${micros('failed_at')}, ${micros('retried_at')}, retry_count
       FROM ${TABLE}
      WHERE ${conditions.join(' AND ')}
      ORDER BY id DESC
      LIMIT ?`,
    [...params, filter.limit],
  );
}

/** The lab's creations among `ids`, locked. */
export function lockLabCreations(
  sql: SqlSession,
  labId: number,
  ids: readonly number[],
): Promise<
  Array<{ id: number | string; status: string; config_id: number; entity_type: string; name: string }>
> {
  return sql.query(
    `SELECT id, status, config_id, entity_type, name FROM ${TABLE} WHERE lab_id = ? AND id IN (?) FOR UPDATE`,
    [labId, ids],
  );
}

/** Puts the lab's failed creations among `ids` back in the queue, attempts reset. */
export async function requeueFailedCreations(
  sql: SqlSession,
  labId: number,
  ids: readonly number[],
  now: Date,
): Promise<void> {
  await sql.execute(
    `UPDATE ${TABLE}
            SET status = 'queued', attempts = 0, next_attempt_at = ?, failed_at = NULL, claimed_by = NULL,
                claim_expires_at = NULL, retried_at = ?, retry_count = retry_count + 1, updated_at = ?
          WHERE lab_id = ? AND status = 'failed' AND id IN (?)`,
    [now, now, now, labId, ids],
  );
}

/** The object id PY-2 already gave the lab for an entity of that type and name, if it did. */
export async function deliveredObjectIdByName(
  sql: SqlSession,
  labId: number,
  entityType: string,
  name: string,
): Promise<number | undefined> {
  const [found] = await sql.query<{ object_id: number }>(
    'SELECT `object_id` FROM `md_entity_creation_outbox` WHERE `lab_id` = ? AND `entity_type` = ? AND `name` = ? AND `object_id` IS NOT NULL ORDER BY `id` LIMIT 1',
    [labId, entityType, name],
  );
  return found ? Number(found.object_id) : undefined;
}
