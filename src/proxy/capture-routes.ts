import { augmentedPath } from '../http/route-table.js';
import { captureDurably } from '../services/capture.service.js';
import {
  type AugmentInput,
  type AugmentOutcome,
  isPlainObject,
  type LegacyAugmentation,
  optionalId,
  positiveId,
  untouched,
} from './legacy-augmentation.js';

/**
 * The two legacy writes the runtime engine runs on (contract: "Proxied legacy paths"). Legacy has
 * already stored the write when these run, so they never fail the request: at worst the client
 * gets legacy's answer without `has_missing_fields`.
 */
export const captureRoutes: readonly LegacyAugmentation[] = [
  {
    name: 'patient_save',
    method: 'POST',
    path: augmentedPath('patient_save').path,
    readsRequestBody: true,
    augment: capturePatientSave,
  },
  {
    name: 'bill_update',
    method: 'POST',
    path: augmentedPath('bill_update').path,
    readsRequestBody: true,
    augment: captureBillUpdate,
  },
];

/** The saved patient and its organization, as legacy's answer names them; undefined when it does not. */
function patientOf(answer: unknown): { userDetailsId: number; orgId: number | null } | undefined {
  if (!isPlainObject(answer)) return undefined;
  const userDetailsId = positiveId(answer.user_details_id);
  const orgId = optionalId(answer.org_id);
  return userDetailsId === undefined || orgId === undefined ? undefined : { userDetailsId, orgId };
}

async function capturePatientSave(input: AugmentInput): Promise<AugmentOutcome> {
  const patient = patientOf(input.answer);
  if (!patient || !input.requestBody) return untouched('unexpected_answer');
  const result = await captureDurably(
    input.deps.db,
    input.principal,
    { module: 'patient', ...patient, billId: null, values: input.requestBody },
    input.log,
    input.deps.config.capture.spoolDir,
  );
  return result ? { kind: 'flag', hasMissingFields: result.hasMissingFields } : untouched();
}

async function captureBillUpdate(input: AugmentInput): Promise<AugmentOutcome> {
  const patient = patientOf(input.answer);
  const billId = positiveId(input.params[0]);
  if (!patient || !input.requestBody || billId === undefined) return untouched('unexpected_answer');
  const answeredBillId = isPlainObject(input.answer) ? input.answer.bill_id : undefined;
  if (answeredBillId !== undefined && positiveId(answeredBillId) !== billId) {
    // The path's id is the bill legacy was asked to update; keep it, but say legacy disagreed.
    input.log.warn({ billId, answeredBillId }, 'legacy bill update answered another bill_id');
  }
  const result = await captureDurably(
    input.deps.db,
    input.principal,
    { module: 'bill', ...patient, billId, values: input.requestBody },
    input.log,
    input.deps.config.capture.spoolDir,
  );
  return result ? { kind: 'flag', hasMissingFields: result.hasMissingFields } : untouched();
}
