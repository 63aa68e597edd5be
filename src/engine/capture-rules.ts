import { lookupKey, mappedKeys } from './field-map.js';
import type { LabConfigs, PlaceholderConfig } from './lab-config-cache.js';
import { type Comparable, equalsPlaceholder, isPresent, toComparable } from './value-mapper.js';

/**
 * The runtime engine's decisions for one save (contract: "The runtime engine"), over plain data:
 * which open rows the save resolves, which configs open a row, which rows follow the patient to a
 * new organization, and whether anything stays missing. No I/O: capture.service.ts reads the rows and
 * configs (capture.repository.ts), asks these functions, and writes what they decide.
 */

/** One of the patient's rows as the capture reads it (for a bill: the bill's and the patient's own). */
export interface PatientRow {
  id: number;
  billId: number | null;
  fieldId: number;
  configId: number | null;
  /** The placeholder text the row was opened for. */
  fieldValue: string;
  orgId: number | null;
  isResolved: boolean;
  /** On a replayed capture: the row says something newer about its field than the save does. */
  changedSinceSave: boolean;
  templateName: string;
  templateModule: string;
}

/** One save, as far as the decisions need it. */
export interface Save {
  module: string;
  /** Set for module `bill`; null for `patient`. */
  billId: number | null;
  /** The patient's organization as the save names it (null when none). */
  orgId: number | null;
  /** Whether `orgId` is known to be the patient's organization now (the patient's open rows follow it). */
  orgIsCurrent: boolean;
  values: Record<string, unknown>;
  /** Today as `YYYY-MM-DD` (UTC), for junk dates in the future. */
  today: string;
}

/** A row the capture opens: under which config, the value it records, and how it was detected. */
export interface RowToOpen {
  config: PlaceholderConfig;
  /** The placeholder for a placeholder; for junk, what was saved (the column's 255 characters at most). */
  fieldValue: string;
  /** Stored as `detected_as`: null for a placeholder (as legacy's rows), 'junk'. */
  detectedAs: 'junk' | null;
}

/** What one save changes. */
export interface CaptureDecision {
  /** Open rows whose field the save filled with a real value. */
  resolve: number[];
  /**
   * The configs whose placeholder the save carries (or, with junk detection on, junk), with no open
   * row for their field: one row each.
   */
  open: RowToOpen[];
  /** Open rows (not resolved now) under another organization than the save's, when it is current. */
  move: number[];
}

const NO_ENTITIES: ReadonlySet<number> = new Set();

/** The present value saved under `key`; null when the key is absent from the body or the value is blank. */
export function incomingValue(values: Record<string, unknown>, key: string | undefined): Comparable | null {
  if (key === undefined || !Object.hasOwn(values, key)) return null;
  const value = toComparable(values[key]);
  return isPresent(value) ? value : null;
}

/** What was saved, as text, for a junk row's `field_value`. */
export function savedText(value: unknown): string {
  const text =
    typeof value === 'object' && value !== null && 'name' in value
      ? String((value as { name: unknown }).name)
      : String(value);
  return text.trim().slice(0, 255);
}

/** A body that carries no present value for any mapped field can change nothing: no configs needed. */
export function carriesAField(module: string, values: Record<string, unknown>): boolean {
  return mappedKeys(module).some((key) => incomingValue(values, key) !== null);
}

/**
 * Whom an organization user acts for: its organization's rows only. Another organization's open row
 * of the same patient is neither resolved, nor counted, nor reported (contract: "Who may do what").
 */
export function visibleTo(principalOrgId: number | null): (orgId: number | null) => boolean {
  return (orgId) => principalOrgId === null || orgId === principalOrgId;
}

/** The rows of the saved object (module and bill) that are open, by field; and the fields changed since the save. */
function openRowsOfSave(save: Save, rows: readonly PatientRow[]) {
  const openByField = new Map<number, PatientRow>();
  const changedSince = new Set<number>();
  for (const row of rows) {
    if (row.templateModule !== save.module || row.billId !== save.billId) continue;
    if (row.changedSinceSave) changedSince.add(row.fieldId);
    if (!row.isResolved) openByField.set(row.fieldId, row);
  }
  return { openByField, changedSince };
}

/**
 * Decides one save against the lab's configs and the patient's rows in the principal's view
 * (`visibleRows`, see `visibleTo`). An absent or blank key leaves its field alone; a present value
 * resolves the field's open row unless it is still that row's placeholder (text, trimmed and
 * case-blind, or any placeholder entity traced for the field) or, with junk detection on, junk; a
 * placeholder value (or junk) opens a row for the field's opening config unless one is open (a row
 * resolved by this same save reopens).
 */
export function decideCapture(
  save: Save,
  configs: LabConfigs,
  visibleRows: readonly PatientRow[],
): CaptureDecision {
  const { openByField, changedSince } = openRowsOfSave(save, visibleRows);
  const resolve: number[] = [];
  for (const row of openByField.values()) {
    if (changedSince.has(row.fieldId)) continue;
    const value = incomingValue(save.values, lookupKey(save.module, row.templateName));
    if (value === null) continue;
    const config = row.configId !== null ? configs.byId(row.configId) : undefined;
    if (equalsPlaceholder(value, { text: row.fieldValue, entityIds: config?.entityIds ?? NO_ENTITIES }))
      continue;
    // Junk never resolves a row (with junk detection on): only a real value does.
    if (!config || !configs.isJunk(value, config, save.today)) resolve.push(row.id);
  }
  const resolvedNow = new Set(resolve);
  const open: RowToOpen[] = [];
  for (const config of configs.opening(save.module)) {
    const row = openByField.get(config.fieldId);
    if ((row && !resolvedNow.has(row.id)) || changedSince.has(config.fieldId)) continue;
    const key = lookupKey(save.module, config.templateName);
    const value = incomingValue(save.values, key);
    if (value === null) continue;
    if (equalsPlaceholder(value, config)) open.push({ config, fieldValue: config.text, detectedAs: null });
    else if (configs.isJunk(value, config, save.today)) {
      open.push({ config, fieldValue: savedText(save.values[key!]), detectedAs: 'junk' });
    }
  }
  const move = save.orgIsCurrent
    ? visibleRows
        .filter((row) => !row.isResolved && !resolvedNow.has(row.id) && row.orgId !== save.orgId)
        .map((row) => row.id)
    : [];
  return { resolve, open, move };
}

/**
 * After the writes: whether the patient (for a bill: the bill or its patient) still has a missing
 * field the principal can see. `moved` is how many rows the move actually changed: once rows moved,
 * what stays open is under the save's organization.
 */
export function stillMissing(
  save: Save,
  principalOrgId: number | null,
  visibleRows: readonly PatientRow[],
  decision: CaptureDecision,
  moved: number,
): boolean {
  const visible = visibleTo(principalOrgId);
  const resolvedNow = new Set(decision.resolve);
  const stillOpen = visibleRows.some(
    (row) =>
      !row.isResolved && !resolvedNow.has(row.id) && (moved ? visible(save.orgId) : visible(row.orgId)),
  );
  return stillOpen || (decision.open.length > 0 && visible(save.orgId));
}
