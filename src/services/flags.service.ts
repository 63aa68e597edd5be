import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Em } from '../db/database.js';

const MAX_ID = 2_147_483_647;

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

function placeholders(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}

/** The principal's scope: its lab, and its organization when it is limited to one. */
function scope(principal: Principal): { sql: string; params: number[] } {
  return principal.orgId === null
    ? { sql: '`lab_id` = ?', params: [principal.labId] }
    : { sql: '`lab_id` = ? AND `org_id` = ?', params: [principal.labId, principal.orgId] };
}

/** `has_missing_fields` per patient: any unresolved row (patient or bill fields). One query. */
export async function patientFlags(
  em: Em,
  principal: Principal,
  userDetailsIds: readonly number[],
): Promise<Map<number, boolean>> {
  const flags = new Map<number, boolean>(userDetailsIds.map((id) => [id, false]));
  const ids = usableIds(userDetailsIds);
  if (ids.length === 0) return flags;
  const { sql, params } = scope(principal);
  const rows = await em.execute<Array<{ id: number }>>(
    `SELECT DISTINCT \`user_details_id\` AS id FROM \`LabMissingDetails\`
WHERE ${sql} AND \`is_resolved\` = 0 AND \`user_details_id\` IN (${placeholders(ids.length)})`,
    [...params, ...ids],
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
  em: Em,
  principal: Principal,
  bills: readonly BillRef[],
): Promise<Map<number, boolean>> {
  const flags = new Map<number, boolean>(bills.map((bill) => [bill.billId, false]));
  const billIds = usableIds(bills.map((bill) => bill.billId));
  const patientIds = usableIds(bills.map((bill) => bill.userDetailsId));
  if (billIds.length === 0) return flags;
  const { sql, params } = scope(principal);
  const patientRows =
    patientIds.length > 0
      ? ` OR (\`bill_id\` IS NULL AND \`user_details_id\` IN (${placeholders(patientIds.length)}))`
      : '';
  const rows = await em.execute<Array<{ bill_id: number | null; user_details_id: number }>>(
    `SELECT DISTINCT \`bill_id\`, IF(\`bill_id\` IS NULL, \`user_details_id\`, 0) AS user_details_id
FROM \`LabMissingDetails\`
WHERE ${sql} AND \`is_resolved\` = 0 AND (\`bill_id\` IN (${placeholders(billIds.length)})${patientRows})`,
    [...params, ...billIds, ...patientIds],
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
  em: Em,
  principal: Principal,
  input: FlagIdsInput,
): Promise<FlagView[]> {
  return inInputOrder(input.ids, await patientFlags(em, principal, input.ids));
}

/** tRPC flags.bills: true when the bill has an unresolved bill-field row; in input order. */
export async function listBillFlags(em: Em, principal: Principal, input: FlagIdsInput): Promise<FlagView[]> {
  const flags = await billFlags(
    em,
    principal,
    input.ids.map((billId) => ({ billId })),
  );
  return inInputOrder(input.ids, flags);
}
