import Fastify from 'fastify';
import mysql from 'mysql2/promise';
import type { Principal } from '../src/auth/principal.js';
import { dbTimestampOf } from '../src/db/microsecond-timestamp.type.js';
import { type LabFieldRow, labFieldsPageQuery } from '../src/repositories/lab-fields.repository.js';
import { decodeCursor, encodeCursor, isoFromDbTimestamp } from '../src/services/lab-fields.service.js';
import { captureByHand, type HandCaptureInput } from './hand-capture.js';

/**
 * The baselines the service is measured against: a raw Fastify server with a mysql2 pool of the same
 * size, running the service's statements by hand (no auth, no validation, no ORM). Own process, like
 * the service. Env: DATABASE_URL, PORT, DATABASE_POOL_SIZE.
 */
const pool = mysql.createPool({
  uri: process.env.DATABASE_URL,
  connectionLimit: Number(process.env.DATABASE_POOL_SIZE ?? 10),
  timezone: '+00:00',
  supportBigNumbers: true,
  decimalNumbers: true,
});

/** A page row exactly as the service's repository types it (the same SELECT). */
type Row = LabFieldRow;

const principalOf = (labId: number, userId = 7): Principal => ({
  labId,
  userId,
  role: 'lab_user',
  orgId: null,
  via: 'jwt',
});

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

app.get('/health', async () => ({ status: 'ok' }));

/** The list page: the service's own SELECT (labFieldsPageQuery), straight to JSON. */
app.get('/lab-fields', async (request) => {
  const q = request.query as { lab_id: string; is_resolved?: string; limit?: string; cursor?: string };
  const limit = Number(q.limit ?? 50);
  const now = dbTimestampOf(new Date());
  const { sql, params } = labFieldsPageQuery(
    principalOf(Number(q.lab_id)),
    {
      isResolved: q.is_resolved === 'true',
      limit,
      cursor: q.cursor ? (decodeCursor(q.cursor) ?? undefined) : undefined,
    },
    now,
  );
  const [rows] = (await pool.query(sql, params)) as unknown as [Row[]];
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    results: page.map((row) => ({
      id: Number(row.id),
      user_details_id: row.user_details_id,
      bill_id: row.bill_id,
      org_id: row.org_id,
      field_id: row.field_id,
      field_name: row.field_name,
      field_value: row.field_value,
      field_module: row.field_module,
      is_resolved: row.is_resolved === 1,
      created_at: isoFromDbTimestamp(row.created_at_text),
      resolved_at: row.resolved_at_text === null ? null : isoFromDbTimestamp(row.resolved_at_text),
      resolved_by_doctor_id: row.resolved_by_doctor_id,
      resolved_by_lab_user_id: row.resolved_by_lab_user_id,
      detected_as: row.detected_as === 'junk' ? 'junk' : 'placeholder',
      assignee_user_id: row.assignee_user_id,
      due_at: row.due_at_text === null ? null : isoFromDbTimestamp(row.due_at_text),
      is_overdue: row.is_resolved !== 1 && row.due_at_text !== null && row.due_at_text < now,
    })),
    next_cursor:
      rows.length > limit && last
        ? encodeCursor({ createdAt: last.created_at_text, id: Number(last.id) })
        : null,
  };
});

const RESOLVE_CHUNK = 1_000;

/** Bulk resolve by hand: one transaction, an UPDATE per 1,000 ids. */
app.patch('/lab-fields', async (request) => {
  const body = request.body as { lab_id: number; user_id: number; ids: number[] };
  const connection = await pool.getConnection();
  try {
    await connection.beginTransaction();
    const now = new Date();
    let updated = 0;
    for (let from = 0; from < body.ids.length; from += RESOLVE_CHUNK) {
      const ids = body.ids.slice(from, from + RESOLVE_CHUNK);
      const [result] = await connection.query(
        `UPDATE LabMissingDetails SET is_resolved = 1, resolved_at = ?, resolved_by_doctor_id = NULL,
           resolved_by_lab_user_id = ?, updated_at = ?
         WHERE lab_id = ? AND id IN (?)`,
        [now, body.user_id, now, body.lab_id, ids],
      );
      updated += (result as mysql.ResultSetHeader).affectedRows;
    }
    await connection.commit();
    return { updated_count: updated };
  } catch (error) {
    await connection.rollback();
    throw error;
  } finally {
    connection.release();
  }
});

/** capture.patient by hand: the same statements the engine sends, written against mysql2. */
app.post('/capture-patient', async (request) => {
  const body = request.body as HandCaptureInput;
  return captureByHand(pool, body);
});

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
const stop = () => {
  void app
    .close()
    .then(() => pool.end())
    .then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
