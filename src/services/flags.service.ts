import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { SqlReader } from '../db/database.js';
import { selectRows } from '../db/driver-sql.js';

const MAX_ID = 2_147_483_647;

/** (lab_id, user_details_id, is_resolved, …): migrations/20260102000100-lab-fields-list-index.ts. */
const PATIENT_INDEX = '`LabMissingDetails_lab_patient_resolved_created_idx`';
/** (lab_id, bill_id, is_resolved, …): the same migration. */
const BILL_INDEX = '`LabMissingDetails_lab_bill_resolved_created_idx`';

/** `{ids}` of flags.patients / flags.bills: 1 to 1000 distinct positive ids. */
export const flagIdsInput = z
  .object({
    ids: z
      .array(z.number().int().positive().max(MAX_ID))
      .min(1)
      .max(1000)
      .superRefine((ids, ctx) => {
        const seen = new Set<number>();
        ids.forEach((id, index) => {
          if (seen.has(id))
            ctx.addIssue({ code: 'custom', path: [index], message: `id ${id} is listed twice` });
          seen.add(id);
        });
      }),
  })
  .strict();
export type FlagIdsInput = z.infer<typeof flagIdsInput>;

export interface FlagView {
  id: number;
  hasMissingFields: boolean;
}

/** Ids the legacy columns can hold, once each; anything else cannot have rows. */
function usableIds(ids: readonly (number | null | undefined)[]): number[] {
  return [...new Set(ids)].filter(
    (id): id is number => typeof id === 'number' && Number.isInteger(id) && id > 0 && id <= MAX_ID,
  );
}

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

/** `has_missing_fields` per patient: any unresolved row (patient or bill fields). One query. */
export async function patientFlags(
  em: SqlReader,
  principal: Principal,
  userDetailsIds: readonly number[],
): Promise<Map<number, boolean>> {
  const flags = new Map<number, boolean>(userDetailsIds.map((id) => [id, false]));
  const ids = usableIds(userDetailsIds);
  if (ids.length === 0) return flags;
  // The index is named because weighing every index of the table against hundreds of ids was half
  // of the database's time for a list's flags; this one answers them from the index alone.
  const rows = await selectRows<{ id: number }>(
    em,
    `SELECT DISTINCT \`user_details_id\` AS id FROM \`LabMissingDetails\` FORCE INDEX (${PATIENT_INDEX})
WHERE ${scope(principal)} AND \`is_resolved\` = 0 AND \`user_details_id\` IN (${idList(ids)})`,
    [],
  );
  for (const row of rows) flags.set(Number(row.id), true);
  return flags;
}

export interface BillRef {
  billId: number;
  /** When given, the patient's unresolved patient-field rows count too (the REST bill read). */
  userDetailsId?: number | null;
}

/** `has_missing_fields` per bill: an unresolved bill-field row (or, with `userDetailsId`, a patient-field row). One query. */
export async function billFlags(
  em: SqlReader,
  principal: Principal,
  bills: readonly BillRef[],
): Promise<Map<number, boolean>> {
  const flags = new Map<number, boolean>(bills.map((bill) => [bill.billId, false]));
  const billIds = usableIds(bills.map((bill) => bill.billId));
  const patientIds = usableIds(bills.map((bill) => bill.userDetailsId));
  if (billIds.length === 0) return flags;
  // Two index ranges, each on its own named index: as one OR the optimizer may instead read every
  // open row of the lab or organization.
  const patientPart =
    patientIds.length > 0
      ? `
UNION ALL
SELECT DISTINCT NULL, \`user_details_id\` FROM \`LabMissingDetails\` FORCE INDEX (${PATIENT_INDEX})
WHERE ${scope(principal)} AND \`is_resolved\` = 0 AND \`user_details_id\` IN (${idList(patientIds)}) AND \`bill_id\` IS NULL`
      : '';
  const rows = await selectRows<{ bill_id: number | null; user_details_id: number }>(
    em,
    `SELECT DISTINCT \`bill_id\`, 0 AS user_details_id FROM \`LabMissingDetails\` FORCE INDEX (${BILL_INDEX})
WHERE ${scope(principal)} AND \`is_resolved\` = 0 AND \`bill_id\` IN (${idList(billIds)})${patientPart}`,
    [],
  );
  const flaggedBills = new Set<number>();
  const flaggedPatients = new Set<number>();
  for (const row of rows) {
    if (row.bill_id === null) flaggedPatients.add(Number(row.user_details_id));
    else flaggedBills.add(Number(row.bill_id));
  }
  for (const bill of bills) {
    const patientFlagged = bill.userDetailsId != null && flaggedPatients.has(bill.userDetailsId);
    if (flaggedBills.has(bill.billId) || patientFlagged) flags.set(bill.billId, true);
  }
  return flags;
}

function inInputOrder(ids: readonly number[], flags: Map<number, boolean>): FlagView[] {
  return ids.map((id) => ({ id, hasMissingFields: flags.get(id) ?? false }));
}

/** tRPC flags.patients: `{id, hasMissingFields}` in input order. */
export async function listPatientFlags(
  em: SqlReader,
  principal: Principal,
  input: FlagIdsInput,
): Promise<FlagView[]> {
  return inInputOrder(input.ids, await patientFlags(em, principal, input.ids));
}

/** tRPC flags.bills: true when the bill has an unresolved bill-field row; in input order. */
export async function listBillFlags(
  em: SqlReader,
  principal: Principal,
  input: FlagIdsInput,
): Promise<FlagView[]> {
  const flags = await billFlags(
    em,
    principal,
    input.ids.map((billId) => ({ billId })),
  );
  return inInputOrder(input.ids, flags);
}
