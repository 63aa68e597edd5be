import { register } from 'node:module';
import { BENCH_FIELD_MAPPINGS } from './bench-fields.js';

/**
 * `--import ./bench/field-map.ts` (after tsx): maps the benchmark's synthetic templates in this
 * process. Must run before anything imports src/engine/field-map.ts.
 */
register('./field-map-hooks.ts', import.meta.url, { data: { mappings: BENCH_FIELD_MAPPINGS } });
