import { register } from 'node:module';
import { BENCH_FIELD_MAPPINGS, fieldMapAppendix } from './bench-fields.js';

/**
 * `--import ./bench/field-map.ts` (after tsx): maps the benchmark's synthetic templates in this
 * process. Must run before anything imports src/engine/field-map.ts.
 */
// The appendix is built here, not in the hooks' thread: there, module resolution may lack tsx's
// (Node 24 runs tsx's hooks in this thread), so the hooks import nothing of the project's.
register('./field-map-hooks.ts', import.meta.url, {
  data: { appendix: fieldMapAppendix(BENCH_FIELD_MAPPINGS) },
});
