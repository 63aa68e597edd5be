import type { FieldMapping } from '../src/engine/field-map.js';

/**
 * Synthetic patient templates for the capture scenarios, which save 10 and 100 fields in one capture
 * while the catalog maps six patient fields. Each is a plain text template whose body key is its name,
 * added to the catalog of the benchmark's database and to the field map of the processes the benchmark
 * runs (bench/field-map-hooks.ts), the way a new template gets a row in the map.
 */
export interface BenchField {
  readonly id: number;
  readonly name: string;
  readonly placeholder: string;
}

export const BENCH_FIELD_COUNT = 100;

export const BENCH_FIELDS: readonly BenchField[] = Array.from({ length: BENCH_FIELD_COUNT }, (_, i) => {
  const n = String(i + 1).padStart(3, '0');
  return { id: 101 + i, name: `bench_field_${n}`, placeholder: `MISSING-${n}` };
});

export const BENCH_FIELD_MAPPINGS: readonly FieldMapping[] = BENCH_FIELDS.map((field) => ({
  module: 'patient',
  templateName: field.name,
  key: field.name,
}));

/**
 * JavaScript appended to src/engine/field-map (by the module hook, or to the benchmark's build of
 * the service): the rows go into FIELD_MAP and its lookup map, as rows written there would.
 */
export function fieldMapAppendix(mappings: readonly FieldMapping[]): string {
  return `
;for (const m of ${JSON.stringify(mappings)}) {
  FIELD_MAP.push(m);
  KEY_BY_TEMPLATE.set(m.module + '\\u0000' + m.templateName, m.key);
}
`;
}
