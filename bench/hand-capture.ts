import type mysql from 'mysql2/promise';
import { lookupKey } from '../src/engine/field-map.js';
import { type Comparable, equalsPlaceholder, isPresent, toComparable } from '../src/engine/value-mapper.js';

/**
 * The capture baseline: a patient capture written by hand against mysql2 with the statements the
 * engine (src/services/capture.service.ts) sends: a READ COMMITTED transaction, one read of the patient's
 * open rows and the lab's configs with their placeholder entities, one UPDATE for the resolved rows, one multi-row
 * INSERT IGNORE for the opened ones. Same comparisons (the engine's value mapper), no ORM, no
 * validation, no retries.
 */
export interface HandCaptureInput {
  lab_id: number;
  user_id: number;
  user_details_id: number;
  org_id: number | null;
  values: Record<string, unknown>;
}

interface OpenRow {
  id: number;
  bill_id: number | null;
  field_id: number;
  config_id: number | null;
  field_value: string;
  org_id: number | null;
  template_name: string;
  template_module: string;
}

interface ConfigRow {
  id: number;
  field_id: number;
  field_value: string;
  is_disabled: number;
  entity_object_id: number | null;
  template_name: string;
  template_active: number;
  creation_object_id: number | null;
}

function present(values: Record<string, unknown>, key: string | undefined): Comparable | null {
  if (key === undefined || !Object.hasOwn(values, key)) return null;
  const value = toComparable(values[key]);
  return isPresent(value) ? value : null;
}

export async function captureByHand(
  pool: mysql.Pool,
  input: HandCaptureInput,
): Promise<{ opened: number; resolved: number; has_missing_fields: boolean }> {
  const connection = await pool.getConnection();
  try {
    await connection.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await connection.query('BEGIN');
    const now = new Date();
    // One read, as the engine sends it: the patient's open rows and the lab's configs with their
    // templates and placeholder entities (the engine skips the configs while its cache holds the
    // lab's version; by hand there is no cache, so they always come).
    const [readRows] = (await connection.query(
      `SELECT 'row' AS kind, d.id, d.bill_id, d.field_id, d.config_id, d.field_value, d.org_id,
         t.name AS template_name, t.module AS template_module, NULL AS is_disabled, NULL AS template_active,
         NULL AS entity_object_id, NULL AS creation_object_id
       FROM LabMissingDetails d JOIN MissingDetailsTemplates t ON t.id = d.field_id
       WHERE d.lab_id = ? AND d.user_details_id = ? AND d.is_resolved = 0
       UNION ALL
       SELECT 'config', c.id, NULL, c.field_id, NULL, c.field_value, NULL, t.name, t.module, c.is_disabled,
         t.is_active, c.entity_object_id, e.object_id
       FROM LabMissingDetailsConfiguration c
       JOIN MissingDetailsTemplates t ON t.id = c.field_id
       LEFT JOIN MissingDetailsEntityCreation e ON e.lab_id = c.lab_id AND e.config_id = c.id
       WHERE c.lab_id = ?`,
      [input.lab_id, input.user_details_id, input.lab_id],
    )) as unknown as [
      Array<(OpenRow & { kind: 'row' }) | (ConfigRow & { kind: 'config'; template_module: string })>,
    ];
    const patientRows = readRows.filter((row): row is OpenRow & { kind: 'row' } => row.kind === 'row');
    const open = patientRows.filter((row) => row.template_module === 'patient' && row.bill_id === null);
    const openConfigIds = new Set(open.flatMap((row) => (row.config_id === null ? [] : [row.config_id])));
    const configRows = readRows.filter(
      (row): row is ConfigRow & { kind: 'config'; template_module: string } =>
        row.kind === 'config' &&
        row.template_module === 'patient' &&
        (!row.is_disabled || openConfigIds.has(row.id)),
    );
    const entityIds = new Map<number, Set<number>>();
    for (const c of configRows) {
      const ids = entityIds.get(c.id) ?? new Set<number>();
      if (c.entity_object_id !== null) ids.add(c.entity_object_id);
      if (c.creation_object_id !== null) ids.add(c.creation_object_id);
      entityIds.set(c.id, ids);
    }

    const openFields = new Set(open.map((row) => row.field_id));
    const toResolve = open.filter((row) => {
      const value = present(input.values, lookupKey('patient', row.template_name));
      const ids = (row.config_id !== null && entityIds.get(row.config_id)) || new Set<number>();
      return value !== null && !equalsPlaceholder(value, { text: row.field_value, entityIds: ids });
    });
    const toOpen = configRows.filter((c) => {
      if (c.is_disabled || !c.template_active || openFields.has(c.field_id)) return false;
      const value = present(input.values, lookupKey('patient', c.template_name));
      return (
        value !== null && equalsPlaceholder(value, { text: c.field_value, entityIds: entityIds.get(c.id)! })
      );
    });

    let resolved = 0;
    if (toResolve.length > 0) {
      const [result] = await connection.query(
        `UPDATE LabMissingDetails SET is_resolved = 1, resolved_at = ?, resolved_by_doctor_id = NULL,
           resolved_by_lab_user_id = ?, updated_at = ?
         WHERE id IN (?) AND lab_id = ? AND is_resolved = 0`,
        [now, input.user_id, now, toResolve.map((row) => row.id), input.lab_id],
      );
      resolved = (result as mysql.ResultSetHeader).affectedRows;
    }
    let opened = 0;
    if (toOpen.length > 0) {
      const [result] = await connection.query(
        `INSERT IGNORE INTO LabMissingDetails (lab_id, org_id, user_details_id, bill_id, field_id, config_id,
           field_name, field_value, field_module, is_resolved, created_at, updated_at) VALUES ?`,
        [
          toOpen.map((c) => [
            input.lab_id,
            input.org_id,
            input.user_details_id,
            null,
            c.field_id,
            c.id,
            c.template_name,
            c.field_value,
            'patient',
            0,
            now,
            now,
          ]),
        ],
      );
      opened = (result as mysql.ResultSetHeader).affectedRows;
    }
    await connection.query('COMMIT');
    return { opened, resolved, has_missing_fields: patientRows.length > toResolve.length || opened > 0 };
  } catch (error) {
    await connection.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    connection.release();
  }
}
