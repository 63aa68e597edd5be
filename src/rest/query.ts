import { z } from 'zod';

/** The contract's query booleans: `true`/`false`/`1`/`0`. */
export const queryBoolean = z
  .enum(['true', 'false', '1', '0'], { error: 'must be one of true, false, 1, 0' })
  .transform((v) => v === 'true' || v === '1');
