import type { Principal } from '../auth/principal.js';
import type { Em } from '../db/database.js';

/** `has_missing_fields` per patient: any unresolved row (patient or bill fields). One query. */
export async function patientFlags(
  _em: Em,
  _principal: Principal,
  _userDetailsIds: readonly number[],
): Promise<Map<number, boolean>> {
  throw new Error('not implemented yet');
}

export interface BillRef {
  billId: number;
  /** When given, the patient's unresolved patient-field rows count too (the REST bill read). */
  userDetailsId?: number | null;
}

/** `has_missing_fields` per bill: an unresolved bill-field row (or, with `userDetailsId`, a patient-field row). One query. */
export async function billFlags(
  _em: Em,
  _principal: Principal,
  _bills: readonly BillRef[],
): Promise<Map<number, boolean>> {
  throw new Error('not implemented yet');
}
