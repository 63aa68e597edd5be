import type { SqlSession } from '../db/sql-session.js';
import type { StoredCapture } from '../services/capture.service.js';

/** `md_capture_outbox`: captures waiting to be replayed by the capture retrier. */

/**
 * Stores captures as pending, due at `nextAttemptAt`, with one try counted; a capture key already
 * stored is skipped (a spool file imported twice is still one row).
 */
export async function insertStoredCaptures(
  sql: SqlSession,
  captures: readonly StoredCapture[],
  nextAttemptAt: Date,
  now: Date,
): Promise<void> {
  await sql.execute(
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
  );
}

/** A stored capture as the retrier claims it. */
export interface DueCaptureRow {
  id: number;
  principal_user_id: number;
  principal_role: string;
  principal_org_id: number | null;
  lab_id: number;
  input: string;
  attempts: number;
  captured_at: string;
}

/** Whether any stored capture is due, read without a lock or a transaction (an idle poll's one statement). */
export async function anyCaptureDue(sql: SqlSession, now: Date): Promise<boolean> {
  const due = await sql.query(
    "SELECT 1 FROM `md_capture_outbox` WHERE `status` = 'pending' AND `next_attempt_at` <= ? LIMIT 1",
    [now],
  );
  return due.length > 0;
}

/**
 * Claims up to `batchSize` due captures, oldest due first, for the rest of the transaction. SKIP
 * LOCKED: any number of retriers share the table, each taking rows no other holds.
 */
export function claimDueCaptures(sql: SqlSession, now: Date, batchSize: number): Promise<DueCaptureRow[]> {
  return sql.query<DueCaptureRow>(
    `SELECT \`id\`, \`principal_user_id\`, \`principal_role\`, \`principal_org_id\`, \`lab_id\`, \`input\`,
  \`attempts\`, \`captured_at\`
FROM \`md_capture_outbox\`
WHERE \`status\` = 'pending' AND \`next_attempt_at\` <= ?
ORDER BY \`next_attempt_at\`, \`id\`
LIMIT ${Number(batchSize)}
FOR UPDATE SKIP LOCKED`,
    [now],
  );
}

/** Marks claimed captures landed (their replay committed with this transaction). */
export async function markCapturesLanded(sql: SqlSession, ids: readonly number[], now: Date): Promise<void> {
  await sql.execute(
    `UPDATE \`md_capture_outbox\`
SET \`status\` = 'landed', \`attempts\` = \`attempts\` + 1, \`landed_at\` = ?, \`updated_at\` = ?
WHERE \`id\` IN (${ids.map(() => '?').join(', ')})`,
    [now, now, ...ids],
  );
}

/** Marks a capture rejected: it stays in the table for an operator and is never retried. */
export async function markCaptureRejected(
  sql: SqlSession,
  id: number,
  error: string,
  now: Date,
): Promise<void> {
  await sql.execute(
    "UPDATE `md_capture_outbox` SET `status` = 'rejected', `last_error` = ?, `updated_at` = ? WHERE `id` = ?",
    [error, now, id],
  );
}

/** Records a failed replay: its try count and when to try again. */
export async function markCaptureFailed(
  sql: SqlSession,
  id: number,
  failure: { attempts: number; nextAttemptAt: Date; error: string },
  now: Date,
): Promise<void> {
  await sql.execute(
    `UPDATE \`md_capture_outbox\`
SET \`attempts\` = ?, \`next_attempt_at\` = ?, \`last_error\` = ?, \`updated_at\` = ?
WHERE \`id\` = ?`,
    [failure.attempts, failure.nextAttemptAt, failure.error, now, id],
  );
}

/** Deletes (at most 10,000 of) the captures that landed before `before`. */
export async function purgeLandedCaptures(sql: SqlSession, before: Date): Promise<void> {
  await sql.execute(
    "DELETE FROM `md_capture_outbox` WHERE `status` = 'landed' AND `landed_at` < ? LIMIT 10000",
    [before],
  );
}
