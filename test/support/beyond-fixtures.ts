import type { Database } from '../../src/db/database.js';

/** A runtime row as the summary, reasons, export and live-count tests need it. */
export interface BeyondRow {
  labId: number;
  orgId?: number | null;
  userDetailsId?: number;
  billId?: number | null;
  /** Template id (1 email … 9 sample_collector). */
  fieldId?: number;
  fieldValue?: string;
  /** UTC `datetime(6)` or a Date. */
  createdAt?: string | Date;
  /** Set for a resolved row. */
  resolvedAt?: string | Date;
  resolvedByLabUserId?: number | null;
}

const FIELDS: Record<number, { name: string; module: 'patient' | 'bill' }> = {
  1: { name: 'email', module: 'patient' },
  2: { name: 'mobile', module: 'patient' },
  3: { name: 'dob', module: 'patient' },
  4: { name: 'address', module: 'patient' },
  5: { name: 'referral_doctor', module: 'patient' },
  6: { name: 'organization', module: 'patient' },
  7: { name: 'insurance', module: 'bill' },
  8: { name: 'group', module: 'bill' },
  9: { name: 'sample_collector', module: 'bill' },
};

let nextPatient = 3_000_000 + Math.floor(Math.random() * 1_000_000) * 100;

/** A Date as a UTC `datetime(6)` literal. */
export function dbTime(date: Date): string {
  return `${date.toISOString().replace('T', ' ').replace('Z', '')}000`;
}

export const hoursAgo = (hours: number, now = Date.now()) => new Date(now - hours * 3600_000);

const TUPLE = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

/**
 * Inserts rows with multi-row INSERTs (chunks of `chunk`) and returns their ids in the order given.
 * Each row gets a patient of its own unless it names one (the open-row guard allows one open row per
 * patient, bill and field).
 */
export async function insertRows(db: Database, rows: readonly BeyondRow[], chunk = 5_000): Promise<number[]> {
  const ids: number[] = [];
  for (let from = 0; from < rows.length; from += chunk) {
    const part = rows.slice(from, from + chunk);
    const em = db.em();
    const values = part.flatMap((r) => {
      const field = FIELDS[r.fieldId ?? 1]!;
      const created = r.createdAt ?? new Date();
      const resolved = r.resolvedAt ?? null;
      return [
        r.labId,
        r.orgId ?? null,
        r.userDetailsId ?? nextPatient++,
        field.module === 'bill' ? (r.billId ?? nextPatient++) : null,
        r.fieldId ?? 1,
        field.name,
        r.fieldValue ?? 'noemail@lab.in',
        field.module,
        resolved ? 1 : 0,
        resolved instanceof Date ? dbTime(resolved) : resolved,
        resolved ? (r.resolvedByLabUserId ?? null) : null,
        created instanceof Date ? dbTime(created) : created,
        created instanceof Date ? dbTime(created) : created,
        null,
      ];
    });
    const result = await em.execute<{ insertId: number | string; affectedRows: number }>(
      `INSERT INTO LabMissingDetails (lab_id, org_id, user_details_id, bill_id, field_id, field_name, field_value,
  field_module, is_resolved, resolved_at, resolved_by_lab_user_id, created_at, updated_at, config_id)
VALUES ${part.map(() => TUPLE).join(', ')}`,
      values,
      'run',
    );
    // The test's labs are its own: their rows from the first new id on are this statement's, in order.
    const labs = [...new Set(part.map((r) => r.labId))];
    const inserted = await em.execute<Array<{ id: number | string }>>(
      `SELECT id FROM LabMissingDetails WHERE id >= ? AND lab_id IN (${labs.map(() => '?').join(', ')}) ORDER BY id LIMIT ?`,
      [Number(result.insertId), ...labs, part.length],
    );
    ids.push(...inserted.map((row) => Number(row.id)));
  }
  return ids;
}
