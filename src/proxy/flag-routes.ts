import { billFlags, patientFlags } from '../services/flags.service.js';
import {
  type AugmentInput,
  type AugmentOutcome,
  isPlainObject,
  type LegacyAugmentation,
  positiveId,
  untouched,
} from './legacy-augmentation.js';

/** Legacy reads that get `has_missing_fields`, one flags query per answer however many items it holds. */
export const flagRoutes: readonly LegacyAugmentation[] = [
  {
    name: 'patient_read',
    method: 'GET',
    path: /^\/api-v3\/registration\/patients\/(\d+)$/,
    readsRequestBody: false,
    augment: flagPatientRead,
  },
  {
    name: 'bill_read',
    method: 'GET',
    path: /^\/api-v3\/finance\/bill\/(\d+)$/,
    readsRequestBody: false,
    augment: flagBillRead,
  },
  {
    name: 'reports_list',
    method: 'GET',
    path: /^\/api-v3\/reports$/,
    readsRequestBody: false,
    augment: flagReportsList,
  },
  {
    name: 'report_read',
    method: 'GET',
    path: /^\/api-v3\/reports\/(\d+)$/,
    readsRequestBody: false,
    augment: flagReportRead,
  },
];

async function flagPatientRead(input: AugmentInput): Promise<AugmentOutcome> {
  const userDetailsId = positiveId(input.params[0]);
  if (!isPlainObject(input.answer) || userDetailsId === undefined) return untouched('unexpected_answer');
  const flags = await patientFlags(input.deps.db.rootEm(), input.principal, [userDetailsId]);
  return { kind: 'flag', hasMissingFields: flags.get(userDetailsId) ?? false };
}

async function flagBillRead(input: AugmentInput): Promise<AugmentOutcome> {
  const { answer } = input;
  if (!isPlainObject(answer)) return untouched('unexpected_answer');
  const billId = positiveId(answer.bill_id) ?? positiveId(input.params[0]);
  if (billId === undefined) return untouched('unexpected_answer');
  const userDetailsId = positiveId(answer.user_details_id) ?? null;
  const flags = await billFlags(input.deps.db.rootEm(), input.principal, [{ billId, userDetailsId }]);
  return { kind: 'flag', hasMissingFields: flags.get(billId) ?? false };
}

async function flagReportRead(input: AugmentInput): Promise<AugmentOutcome> {
  const { answer } = input;
  const userDetailsId = isPlainObject(answer) ? positiveId(answer.user_details_id) : undefined;
  if (userDetailsId === undefined) return untouched('unexpected_answer');
  const flags = await patientFlags(input.deps.db.rootEm(), input.principal, [userDetailsId]);
  return { kind: 'flag', hasMissingFields: flags.get(userDetailsId) ?? false };
}

async function flagReportsList(input: AugmentInput): Promise<AugmentOutcome> {
  const { answer } = input;
  if (!isPlainObject(answer) || !Array.isArray(answer.results)) return untouched('unexpected_answer');
  const results: unknown[] = answer.results;
  const patientOf = (item: unknown) => (isPlainObject(item) ? positiveId(item.user_details_id) : undefined);
  const ids = [...new Set(results.map(patientOf).filter((id): id is number => id !== undefined))];
  if (ids.length === 0) return untouched();
  const flags = await patientFlags(input.deps.db.rootEm(), input.principal, ids);
  // An item without a patient cannot be flagged; it keeps legacy's shape.
  return {
    kind: 'flag_items',
    key: 'results',
    flags: results.map((item) => {
      const id = patientOf(item);
      return id === undefined ? undefined : (flags.get(id) ?? false);
    }),
  };
}
