import { z } from 'zod';
import { requirePermission } from '../auth/permissions.js';
import type { Principal } from '../auth/principal.js';
import type { Em, SqlReader } from '../db/database.js';
import { withDeadlockRetry } from '../db/deadlock-retry.js';
import { FIELD_MAP } from '../engine/field-map.js';
import type { LabSettingsRow } from '../engine/lab-config-cache.js';
import { bumpLabConfigVersion } from '../repositories/lab-config.repository.js';
import { findLabSettings, storeLabSettings } from '../repositories/lab-settings.repository.js';
import { writeActivity } from './activity-log.service.js';

/** A short list of the lab's own junk values per field: literal values, not patterns. */
export const EXTRA_JUNK_VALUES_PER_FIELD = 20;
export const EXTRA_JUNK_VALUE_MAX_LENGTH = 100;

/** The field names the engine knows (templates in the field map): what settings and the check accept. */
export const FIELD_NAMES: ReadonlySet<string> = new Set(FIELD_MAP.map((m) => m.templateName));

/** A field name the engine knows; anything else is a 400 naming the known ones. */
export const knownFieldName = z.string().refine((name) => FIELD_NAMES.has(name), {
  message: `is not a known field: one of ${[...FIELD_NAMES].join(', ')}`,
});

export const extraJunkValues = z
  .record(
    z.string(),
    z.array(z.string().trim().min(1).max(EXTRA_JUNK_VALUE_MAX_LENGTH)).max(EXTRA_JUNK_VALUES_PER_FIELD),
  )
  .superRefine((record, ctx) => {
    for (const name of Object.keys(record)) {
      if (!FIELD_NAMES.has(name)) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `is not a known field: one of ${[...FIELD_NAMES].join(', ')}`,
        });
      }
    }
  });

/** tRPC settings.update (camelCase); omitted keys keep their value. */
export const updateSettingsInput = z
  .object({ junkDetection: z.boolean().optional(), extraJunkValues: extraJunkValues.optional() })
  .strict()
  .refine((input) => input.junkDetection !== undefined || input.extraJunkValues !== undefined, {
    message: 'name at least one setting: junkDetection or extraJunkValues',
  });
export type UpdateSettingsInput = z.infer<typeof updateSettingsInput>;

export interface LabSettingsView {
  /** Off by default: with it off, capture and the placeholder check behave exactly as before. */
  junkDetection: boolean;
  /** Per field name, the lab's own junk values (as entered). */
  extraJunkValues: Record<string, string[]>;
}

function toView(row: LabSettingsRow | undefined): LabSettingsView {
  return {
    junkDetection: Boolean(Number(row?.junk_detection ?? 0)),
    extraJunkValues: JSON.parse(row?.extra_junk_values || '{}') as Record<string, string[]>,
  };
}

/** The caller's lab's settings (every principal of the lab may read them). */
export async function getLabSettings(em: SqlReader, principal: Principal): Promise<LabSettingsView> {
  return toView(await findLabSettings(em, principal.labId));
}

/**
 * Changes the lab's settings (lab-wide staff only). Capture compares against them, so the lab's
 * config version is bumped in the same transaction: every instance's cache reloads at once.
 */
export async function updateLabSettings(
  em: Em,
  principal: Principal,
  input: UpdateSettingsInput,
  now = new Date(),
): Promise<LabSettingsView> {
  requirePermission(principal, 'settings_write');
  return withDeadlockRetry(() =>
    em.transactional(async (tx) => {
      const current = toView(await findLabSettings(tx, principal.labId));
      const next: LabSettingsView = {
        junkDetection: input.junkDetection ?? current.junkDetection,
        extraJunkValues: input.extraJunkValues ?? current.extraJunkValues,
      };
      const row = {
        junk_detection: next.junkDetection ? 1 : 0,
        extra_junk_values: JSON.stringify(next.extraJunkValues),
      };
      await storeLabSettings(tx, principal.labId, row, principal.userId, now);
      // Names the settings changed, never the values (a lab's own junk values may be anything).
      await writeActivity(
        tx,
        {
          labId: principal.labId,
          orgId: principal.orgId,
          actor: principal,
          action: 'settings_saved',
          objectType: 'md_lab_settings',
          message: `Saved missing-details settings: junk detection ${next.junkDetection ? 'on' : 'off'}`,
          details: {
            junk_detection: next.junkDetection,
            extra_junk_value_counts: Object.fromEntries(
              Object.entries(next.extraJunkValues).map(([field, values]) => [field, values.length]),
            ),
          },
        },
        now,
      );
      await bumpLabConfigVersion(tx, principal.labId);
      return next;
    }),
  );
}
