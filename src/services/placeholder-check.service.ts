import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Database } from '../db/database.js';
import { sqlSession } from '../db/sql-session.js';
import { FIELD_MAP } from '../engine/field-map.js';
import { utcDay } from '../engine/junk-values.js';
import type { LabConfigs } from '../engine/lab-config-cache.js';
import { equalsPlaceholder, toComparable } from '../engine/value-mapper.js';
import { readLabConfigs } from '../repositories/lab-config.repository.js';
import { knownFieldName } from './lab-settings.service.js';

export const PLACEHOLDER_CHECK_MAX_VALUES = 100;
const TEXT_MAX_LENGTH = 1000;

/** A value as a client is about to send it: text, a number, or an entity `{id, name}`. */
export const checkedValue = z.union([
  z.string().max(TEXT_MAX_LENGTH),
  z.number().finite(),
  z
    .object({
      id: z.number().int().positive().max(2_147_483_647).nullish(),
      name: z.string().max(255).nullish(),
    })
    .strict(),
]);

export const placeholderCheckInput = z
  .object({
    values: z
      .array(z.object({ fieldName: knownFieldName, value: checkedValue }).strict())
      .min(1)
      .max(PLACEHOLDER_CHECK_MAX_VALUES),
  })
  .strict();
export type PlaceholderCheckInput = z.infer<typeof placeholderCheckInput>;

export type DetectedAs = 'placeholder' | 'junk';

export interface PlaceholderCheckResult {
  fieldName: string;
  /** True when the value must not leave the lab: a placeholder, or junk (junk detection on). */
  isPlaceholder: boolean;
  detectedAs: DetectedAs | null;
}

const MODULES_OF = new Map<string, string[]>();
for (const { module, templateName } of FIELD_MAP) {
  MODULES_OF.set(templateName, [...(MODULES_OF.get(templateName) ?? []), module]);
}

/**
 * What the engine would make of one value: the lab's placeholder for the field (the config that
 * opens rows, with every placeholder entity ever traced for the field), else junk when the lab has
 * junk detection on. A field the lab has no active config for holds neither.
 */
export function detect(
  configs: LabConfigs,
  fieldName: string,
  raw: unknown,
  today: string,
): DetectedAs | null {
  const value = toComparable(raw);
  for (const module of MODULES_OF.get(fieldName) ?? []) {
    const config = configs.opening(module).find((c) => c.templateName === fieldName);
    if (!config) continue;
    if (equalsPlaceholder(value, config)) return 'placeholder';
    if (value.kind !== 'absent' && configs.isJunk(value, config, today)) return 'junk';
  }
  return null;
}

/**
 * "Is this value a placeholder?" before a report, a claim or a feed leaves the lab. One statement
 * at most: the lab's config state, with its configs only when this instance's copy is stale (the
 * cache capture uses, exact across instances).
 */
export async function checkPlaceholders(
  db: Database,
  principal: Principal,
  input: PlaceholderCheckInput,
  now = new Date(),
): Promise<PlaceholderCheckResult[]> {
  const labId = principal.labId;
  const held = db.labConfigs.lookup(labId);
  const read = await readLabConfigs(sqlSession(db.rootEm()), labId, held?.version ?? '');
  const configs = db.labConfigs.adopt(labId, held, read);
  const today = utcDay(now);
  return input.values.map(({ fieldName, value }) => {
    const detectedAs = detect(configs, fieldName, value, today);
    return { fieldName, isPlaceholder: detectedAs !== null, detectedAs };
  });
}
