import { augmentedPath } from '../http/route-table.js';
import { billFlags, combinedPatientFlags } from '../services/flags.service.js';
import { type ScannedList, scanList } from './json-flags.js';
import {
  type AugmentInput,
  type AugmentOutcome,
  isPlainObject,
  type LegacyAugmentation,
  positiveId,
  type ScannedInput,
  type ScannedOutcome,
  untouched,
} from './legacy-augmentation.js';

/** Legacy reads that get `has_missing_fields`, one flags query per answer however many items it holds. */
export const flagRoutes: readonly LegacyAugmentation[] = [
  {
    name: 'patient_read',
    method: 'GET',
    path: augmentedPath('patient_read').path,
    readsRequestBody: false,
    augment: flagPatientRead,
  },
  {
    name: 'bill_read',
    method: 'GET',
    path: augmentedPath('bill_read').path,
    readsRequestBody: false,
    augment: flagBillRead,
  },
  {
    name: 'reports_list',
    method: 'GET',
    path: augmentedPath('reports_list').path,
    readsRequestBody: false,
    augment: flagReportsList,
    fromText: { scan: scanReportsList, augment: flagScannedReportsList },
  },
  {
    name: 'report_read',
    method: 'GET',
    path: augmentedPath('report_read').path,
    readsRequestBody: false,
    augment: flagReportRead,
  },
];

async function flagPatientRead(input: AugmentInput): Promise<AugmentOutcome> {
  const userDetailsId = positiveId(input.params[0]);
  if (!isPlainObject(input.answer) || userDetailsId === undefined) return untouched('unexpected_answer');
  const flags = await combinedPatientFlags(input.deps.db, input.principal, [userDetailsId]);
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
  const flags = await combinedPatientFlags(input.deps.db, input.principal, [userDetailsId]);
  return { kind: 'flag', hasMissingFields: flags.get(userDetailsId) ?? false };
}

async function flagReportsList(input: AugmentInput): Promise<AugmentOutcome> {
  const { answer } = input;
  if (!isPlainObject(answer) || !Array.isArray(answer.results)) return untouched('unexpected_answer');
  const results: unknown[] = answer.results;
  const patients = results.map((item) =>
    isPlainObject(item) ? positiveId(item.user_details_id) : undefined,
  );
  const flags = await listedPatientFlags(input, patients);
  return flags ? { kind: 'flag_items', key: 'results', flags } : untouched();
}

/**
 * The reports list read from legacy's text. An item with a patient that already carries
 * `has_missing_fields` is left to the parsed path, which re-serializes it as before.
 */
function scanReportsList(text: string): ScannedList | undefined {
  const list = scanList(text, 'results', 'user_details_id');
  const flaggedTwice = list?.some((item) => item?.hasFlag && positiveId(item.id) !== undefined);
  return flaggedTwice ? undefined : list;
}

async function flagScannedReportsList(input: ScannedInput): Promise<ScannedOutcome> {
  const patients = input.list.map((item) => (item ? positiveId(item.id) : undefined));
  const flags = await listedPatientFlags(input, patients);
  return flags ? { kind: 'flag_items', flags } : untouched();
}

/**
 * Each listed item's flag by its patient, with one query; undefined when no item has a patient.
 * An item without a patient cannot be flagged; it keeps legacy's shape.
 */
async function listedPatientFlags(
  { deps, principal }: Pick<AugmentInput, 'deps' | 'principal'>,
  patients: ReadonlyArray<number | undefined>,
): Promise<Array<boolean | undefined> | undefined> {
  const ids = [...new Set(patients.filter((id): id is number => id !== undefined))];
  if (ids.length === 0) return undefined;
  const flags = await combinedPatientFlags(deps.db, principal, ids);
  return patients.map((id) => (id === undefined ? undefined : (flags.get(id) ?? false)));
}
