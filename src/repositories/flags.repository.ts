import type { Principal } from '../auth/principal.js';
import type { SqlSession } from '../db/sql-session.js';

/** (lab_id, user_details_id, is_resolved, …): migrations/20260102000100-lab-fields-list-index.ts. */
const PATIENT_INDEX = '`LabMissingDetails_lab_patient_resolved_created_idx`';
/** (lab_id, bill_id, is_resolved, …): the same migration. */
const BILL_INDEX = '`LabMissingDetails_lab_bill_resolved_created_idx`';

/**
 * An id as SQL text. The flags statements carry only integers, written into the text (as the
 * driver's formatting would) so that a 200-id statement needs no parameter formatting layer.
 */
function idLiteral(id: number): string {
  if (!Number.isSafeInteger(id)) throw new TypeError(`not an integer id: ${id}`);
  return String(id);
}

function idList(ids: readonly number[]): string {
  return ids.map(idLiteral).join(', ');
}

/** The principal's scope: its lab, and its organization when it is limited to one. */
function scope(principal: Principal): string {
  return principal.orgId === null
    ? `\`lab_id\` = ${idLiteral(principal.labId)}`
    : `\`lab_id\` = ${idLiteral(principal.labId)} AND \`org_id\` = ${idLiteral(principal.orgId)}`;
}

/**
 * The patients among `userDetailsIds` (non-empty, usable ids) with an unresolved row in scope. The
 * index is named because weighing every index of the table against hundreds of ids was half of the
 * database's time for a list's flags; this one answers them from the index alone.
 */
export async function patientsWithOpenRows(
  sql: SqlSession,
  principal: Principal,
  userDetailsIds: readonly number[],
): Promise<number[]> {
  const rows = await sql.query<{ id: number }>(
    `SELECT DISTINCT \`user_details_id\` AS id FROM \`LabMissingDetails\` FORCE INDEX (${PATIENT_INDEX})
WHERE ${scope(principal)} AND \`is_resolved\` = 0 AND \`user_details_id\` IN (${idList(userDetailsIds)})`,
    [],
  );
  return rows.map((row) => Number(row.id));
}

/**
 * The bills among `billIds` (non-empty) with an unresolved bill-field row in scope, and the patients
 * among `patientIds` with an unresolved patient-field row. Two index ranges, each on its own named
 * index: as one OR the optimizer may instead read every open row of the lab or organization.
 */
export async function billsAndPatientsWithOpenRows(
  sql: SqlSession,
  principal: Principal,
  billIds: readonly number[],
  patientIds: readonly number[],
): Promise<{ bills: Set<number>; patients: Set<number> }> {
  const patientPart =
    patientIds.length > 0
      ? `
UNION ALL
SELECT DISTINCT NULL, \`user_details_id\` FROM \`LabMissingDetails\` FORCE INDEX (${PATIENT_INDEX})
WHERE ${scope(principal)} AND \`is_resolved\` = 0 AND \`user_details_id\` IN (${idList(patientIds)}) AND \`bill_id\` IS NULL`
      : '';
  const rows = await sql.query<{ bill_id: number | null; user_details_id: number }>(
    `SELECT DISTINCT \`bill_id\`, 0 AS user_details_id FROM \`LabMissingDetails\` FORCE INDEX (${BILL_INDEX})
WHERE ${scope(principal)} AND \`is_resolved\` = 0 AND \`bill_id\` IN (${idList(billIds)})${patientPart}`,
    [],
  );
  const bills = new Set<number>();
  const patients = new Set<number>();
  for (const row of rows) {
    if (row.bill_id === null) patients.add(Number(row.user_details_id));
    else bills.add(Number(row.bill_id));
  }
  return { bills, patients };
}
