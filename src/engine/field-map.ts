import type { FieldModule } from '../services/templates.service.js';

/** Where a template's value lives in the object a client saves (the seed's MISSING_FIELDS_MODEL_FIELD_MAPPER). */
export interface FieldMapping {
  readonly module: FieldModule;
  /** `MissingDetailsTemplates.name`. */
  readonly templateName: string;
  /** The key in the saved body (`POST .../patients/new`, `.../bill/{id}/update`, tRPC `values`). */
  readonly key: string;
}

/** A new template needs one row here, not new code. */
export const FIELD_MAP: readonly FieldMapping[] = [
  { module: 'patient', templateName: 'email', key: 'email' },
  { module: 'patient', templateName: 'mobile', key: 'mobile' },
  { module: 'patient', templateName: 'dob', key: 'dob' },
  { module: 'patient', templateName: 'address', key: 'address' },
  { module: 'patient', templateName: 'referral_doctor', key: 'referral_doctor' },
  { module: 'patient', templateName: 'organization', key: 'organization' },
  { module: 'bill', templateName: 'insurance', key: 'insurance' },
  { module: 'bill', templateName: 'group', key: 'group' },
  { module: 'bill', templateName: 'sample_collector', key: 'sample_collector' },
];

const KEY_BY_TEMPLATE = new Map(FIELD_MAP.map((m) => [`${m.module}\u0000${m.templateName}`, m.key]));

/** The body key of a template, or undefined when the template is not mapped (the engine then ignores it). */
export function lookupKey(module: string, templateName: string): string | undefined {
  return KEY_BY_TEMPLATE.get(`${module}\u0000${templateName}`);
}

/** Every body key mapped for a module. */
export function mappedKeys(module: string): string[] {
  return FIELD_MAP.filter((m) => m.module === module).map((m) => m.key);
}

/**
 * The saved body's values the engine reads: the mapped keys of the module and nothing else. Keys the
 * map does not know (long, nested, odd) are dropped here, so they can neither fail a capture nor be
 * stored or logged with it.
 */
export function onlyMappedValues(module: string, values: Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const key of mappedKeys(module)) if (Object.hasOwn(values, key)) kept[key] = values[key];
  return kept;
}
