import type { Principal } from '../auth/principal.js';
import type { Em } from '../db/database.js';
import {
  decodeCursor,
  type LabFieldsFilters,
  type LabFieldView,
  listLabFields,
} from './lab-fields.service.js';

/** Rows per keyset read: big enough to keep round trips few, small enough to keep memory flat. */
export const EXPORT_BATCH_ROWS = 1_000;

export type LabFieldsExportFilters = Omit<LabFieldsFilters, 'limit' | 'cursor'>;

/** The listing's snake_case columns, in its order, then the manual resolution's reason. */
export const CSV_COLUMNS = [
  'id',
  'user_details_id',
  'bill_id',
  'org_id',
  'field_id',
  'field_name',
  'field_value',
  'field_module',
  'is_resolved',
  'created_at',
  'resolved_at',
  'resolved_by_doctor_id',
  'resolved_by_lab_user_id',
  'reason_code',
  'reason_note',
] as const;

/** A cell a spreadsheet would run as a formula (OWASP "CSV injection") is prefixed with an apostrophe. */
const FORMULA_START = /^[=+\-@\t\r]/;

/** RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled. */
export function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value !== 'string') return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvLine(row: LabFieldView): string {
  return `${[
    row.id,
    row.userDetailsId,
    row.billId,
    row.orgId,
    row.fieldId,
    row.fieldName,
    row.fieldValue,
    row.fieldModule,
    row.isResolved,
    row.createdAt,
    row.resolvedAt,
    row.resolvedByDoctorId,
    row.resolvedByLabUserId,
    row.reasonCode,
    row.reasonNote,
  ]
    .map(csvCell)
    .join(',')}\r\n`;
}

/**
 * The caller's filtered listing as CSV, newest first, read in keyset batches through the listing itself
 * (same scope, filters and order, so the two cannot drift apart). The first batch is read before this
 * resolves, so a failing database is an error answer, not a cut-off file; after that each batch is read
 * only when the consumer pulls, so a slow client holds one batch, never the result.
 *
 * Each batch reads the table as it is then: a row that changes while a long export runs may be missing
 * from it or appear with its new state (no snapshot is held across batches, so no connection is either).
 */
export async function exportLabFieldsCsv(
  em: Em,
  principal: Principal,
  filters: LabFieldsExportFilters,
): Promise<AsyncGenerator<string>> {
  const read = (cursor: LabFieldsFilters['cursor']) =>
    listLabFields(em, principal, { ...filters, limit: EXPORT_BATCH_ROWS, cursor });
  const firstPage = await read(undefined);
  return (async function* batches() {
    yield `${CSV_COLUMNS.join(',')}\r\n`;
    let page = firstPage;
    for (;;) {
      if (page.results.length > 0) yield page.results.map(csvLine).join('');
      const cursor = page.nextCursor === null ? null : decodeCursor(page.nextCursor);
      if (!cursor) return;
      page = await read(cursor);
    }
  })();
}
