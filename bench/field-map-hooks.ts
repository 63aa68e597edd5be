import type { LoadHook } from 'node:module';

/**
 * Module hooks (run in the loader thread): appends the benchmark's rows to src/engine/field-map.ts as
 * it loads, exactly as a new template's row would sit in FIELD_MAP. Registered by bench/field-map.ts.
 */
let appendix = '';

export function initialize(data: { appendix: string }): void {
  appendix = data.appendix;
}

export const load: LoadHook = async (url, context, nextLoad) => {
  const result = await nextLoad(url, context);
  if (!url.endsWith('/src/engine/field-map.ts') || result.source === undefined) return result;
  return { ...result, source: `${String(result.source)}${appendix}` };
};
