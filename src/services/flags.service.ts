import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Database, SqlReader } from '../db/database.js';
import { sqlSession } from '../db/sql-session.js';
import { billsAndPatientsWithOpenRows, patientsWithOpenRows } from '../repositories/flags.repository.js';
import { namingRepeatedIds } from './lab-fields.service.js';

const MAX_ID = 2_147_483_647;

/** `{ids}` of flags.patients / flags.bills: 1 to 1000 distinct positive ids. */
export const flagIdsInput = z
  .object({
    ids: z
      .array(z.number().int().positive().max(MAX_ID))
      .min(1)
      .max(1000)
      .superRefine(namingRepeatedIds((id) => `id ${id} is listed twice`)),
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

/** Each of `userDetailsIds` flagged when `readOpen` finds it among the usable ids; no read when none is. */
async function patientFlagsFrom(
  userDetailsIds: readonly number[],
  readOpen: (ids: number[]) => Promise<Iterable<number>>,
): Promise<Map<number, boolean>> {
  const flags = new Map<number, boolean>(userDetailsIds.map((id) => [id, false]));
  const ids = usableIds(userDetailsIds);
  if (ids.length === 0) return flags;
  for (const id of await readOpen(ids)) flags.set(id, true);
  return flags;
}

/** `has_missing_fields` per patient: any unresolved row (patient or bill fields). One query. */
export function patientFlags(
  em: SqlReader,
  principal: Principal,
  userDetailsIds: readonly number[],
): Promise<Map<number, boolean>> {
  return patientFlagsFrom(userDetailsIds, (ids) => patientsWithOpenRows(sqlSession(em), principal, ids));
}

/**
 * `patientFlags` for reads outside any transaction (the proxy's flagged legacy answers): concurrent
 * calls of one lab scope share one statement (src/db/id-read-batches.ts), each answered from a read
 * that started after it arrived.
 */
export function combinedPatientFlags(
  db: Database,
  principal: Principal,
  userDetailsIds: readonly number[],
): Promise<Map<number, boolean>> {
  const scopeKey = `${principal.labId}/${principal.orgId ?? '*'}`;
  return patientFlagsFrom(userDetailsIds, (ids) =>
    db.openPatientReads.read(scopeKey, ids, (union) =>
      patientsWithOpenRows(sqlSession(db.rootEm()), principal, union),
    ),
  );
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
  const flagged = await billsAndPatientsWithOpenRows(sqlSession(em), principal, billIds, patientIds);
  for (const bill of bills) {
    const patientFlagged = bill.userDetailsId != null && flagged.patients.has(bill.userDetailsId);
    if (flagged.bills.has(bill.billId) || patientFlagged) flags.set(bill.billId, true);
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
