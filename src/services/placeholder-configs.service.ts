import { IsolationLevel } from '@mikro-orm/core';
import type { FastifyBaseLogger } from 'fastify';
import { Counter } from 'prom-client';
import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Em } from '../db/database.js';
import { withDeadlockRetry } from '../db/deadlock-retry.js';
import { dbTimestampNow, isoMicros } from '../db/microsecond-timestamp.type.js';
import { lookupKey } from '../engine/field-map.js';
import { LabMissingDetailsConfiguration, MissingDetailsTemplate } from '../entities/index.js';
import { type ErrorIssue, ValidationError } from '../errors.js';
import { metricsRegistry } from '../metrics.js';
import { bumpLabConfigVersion, lockLabFields } from '../repositories/lab-config.repository.js';
import { writeActivity } from './activity-log.service.js';
import {
  type EntityCreationRequest,
  type StartedEntityCreation,
  startEntityCreations,
} from './entity-creation-start.service.js';
import {
  claimIdempotencyKey,
  deleteExpiredIdempotencyKeys,
  idempotencyKeySchema,
  requestHash,
  storeIdempotentResponse,
} from './idempotency.service.js';
import { MODULES } from './templates.service.js';

export const MAX_CONFIGS_PER_SAVE = 50;
export const FIELD_VALUE_MAX_LENGTH = 255;
const SAVE_OPERATION = 'configs.save';

const configSaves = new Counter({
  name: 'md_config_saves_total',
  help: 'Lab config saves, by outcome (applied, or replayed for a known Idempotency-Key)',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

// ---------------------------------------------------------------------------------------------
// Input

/** One item of a save as the callers send it (tRPC camelCase; the REST shim maps its snake_case to this). */
export interface RawConfigItem {
  fieldId: number;
  fieldValue?: string | null | undefined;
  isDisabled?: boolean | undefined;
  /** Rows opened under the config are due this many hours later; null clears it, omitted keeps it. */
  dueInHours?: number | null | undefined;
}

/** One item after validation: the value trimmed, and null when the item disables. */
export interface ConfigItem {
  fieldId: number;
  fieldValue: string | null;
  isDisabled: boolean;
  dueInHours?: number | null | undefined;
}

/** The names of an item's keys as the caller spelled them, so that issue paths name what was sent. */
export interface ConfigItemKeys {
  fieldId: string;
  fieldValue: string;
  isDisabled: string;
}

export const CAMEL_CASE_KEYS: ConfigItemKeys = {
  fieldId: 'fieldId',
  fieldValue: 'fieldValue',
  isDisabled: 'isDisabled',
};
export const SNAKE_CASE_KEYS: ConfigItemKeys = {
  fieldId: 'field_id',
  fieldValue: 'field_value',
  isDisabled: 'is_disabled',
};

/** Characters as the database counts them for varchar(255): code points, not UTF-16 units. */
function characterCount(value: string): number {
  return [...value].length;
}

/**
 * The rules of a save's items that go beyond types, shared by the tRPC input and the REST body so
 * that they cannot drift: each field at most once; a value (trimmed, 1 to 255 characters) unless
 * the item disables.
 */
export function checkConfigItems(
  items: readonly RawConfigItem[],
  ctx: z.RefinementCtx,
  keys: ConfigItemKeys,
): void {
  const firstIndexByField = new Map<number, number>();
  items.forEach((item, index) => {
    const earlier = firstIndexByField.get(item.fieldId);
    if (earlier === undefined) firstIndexByField.set(item.fieldId, index);
    else {
      ctx.addIssue({
        code: 'custom',
        path: ['configs', index, keys.fieldId],
        message: `${keys.fieldId} ${item.fieldId} appears more than once (first at configs.${earlier}); send each field at most once`,
      });
    }
    if (item.isDisabled) return;
    const path = ['configs', index, keys.fieldValue];
    if (item.fieldValue == null) {
      ctx.addIssue({ code: 'custom', path, message: `required unless ${keys.isDisabled} is true` });
      return;
    }
    const length = characterCount(item.fieldValue.trim());
    if (length === 0) {
      ctx.addIssue({ code: 'custom', path, message: 'must not be empty or only whitespace' });
    } else if (length > FIELD_VALUE_MAX_LENGTH) {
      ctx.addIssue({
        code: 'custom',
        path,
        message: `must be at most ${FIELD_VALUE_MAX_LENGTH} characters after trimming (got ${length})`,
      });
    }
  });
}

export function normalizeConfigItem(item: RawConfigItem): ConfigItem {
  const isDisabled = item.isDisabled === true;
  return {
    fieldId: item.fieldId,
    fieldValue: isDisabled ? null : (item.fieldValue ?? '').trim(),
    isDisabled,
    ...(item.dueInHours === undefined ? {} : { dueInHours: item.dueInHours }),
  };
}

export const configItemsSchema = <T extends z.ZodType>(item: T) =>
  z
    .array(item)
    .min(1, 'must hold at least one config')
    .max(MAX_CONFIGS_PER_SAVE, `must hold at most ${MAX_CONFIGS_PER_SAVE} configs`);

/** A config's due time for the rows it opens: whole hours, up to 30 days. */
export const MAX_DUE_IN_HOURS = 720;
export const dueInHoursSchema = z
  .int('must be a whole number of hours')
  .min(1, `must be from 1 to ${MAX_DUE_IN_HOURS} hours`)
  .max(MAX_DUE_IN_HOURS, `must be from 1 to ${MAX_DUE_IN_HOURS} hours`)
  .nullish();

const configItemInput = z.strictObject({
  fieldId: z.number().int().positive(),
  fieldValue: z.string().nullish(),
  isDisabled: z.boolean().optional(),
  dueInHours: dueInHoursSchema,
});

export const saveConfigsInput = z
  .strictObject({
    configs: configItemsSchema(configItemInput),
    idempotencyKey: idempotencyKeySchema.optional(),
  })
  .superRefine((input, ctx) => checkConfigItems(input.configs, ctx, CAMEL_CASE_KEYS))
  .transform((input) => ({
    configs: input.configs.map(normalizeConfigItem),
    ...(input.idempotencyKey === undefined ? {} : { idempotencyKey: input.idempotencyKey }),
  }));
export type SaveConfigsInput = z.output<typeof saveConfigsInput>;

export const listConfigsInput = z
  .strictObject({
    module: z.enum(MODULES).optional(),
    includeDisabled: z.boolean().default(false),
  })
  .default({ includeDisabled: false });
export type ListConfigsInput = z.output<typeof listConfigsInput>;

// ---------------------------------------------------------------------------------------------
// Output

export interface ConfigView {
  id: number;
  fieldId: number;
  fieldName: string;
  fieldValue: string;
  fieldModule: string;
  fieldCategory: string;
  entityObjectId: number | null;
  isDisabled: boolean;
  /** Hours after which a row opened under the config is overdue; null: never. */
  dueInHours: number | null;
  /** ISO 8601 UTC. Strings rather than Dates, so that a stored answer replays byte for byte. */
  createdAt: string;
  updatedAt: string;
}

export interface SaveConfigsResult {
  /** The lab's active configs after the save. */
  configs: ConfigView[];
  entityCreations: StartedEntityCreation[];
}

export interface SaveConfigsDeps {
  logger: Pick<FastifyBaseLogger, 'warn'>;
}

function toView(row: LabMissingDetailsConfiguration): ConfigView {
  return {
    id: row.id,
    fieldId: row.fieldId,
    fieldName: row.fieldName,
    fieldValue: row.fieldValue,
    fieldModule: row.fieldModule,
    fieldCategory: row.fieldCategory,
    entityObjectId: row.entityObjectId ?? null,
    isDisabled: row.isDisabled,
    dueInHours: row.dueInHours ?? null,
    createdAt: isoMicros(row.createdAt),
    updatedAt: isoMicros(row.updatedAt),
  };
}

// ---------------------------------------------------------------------------------------------
// Operations

/** The caller's lab's configs, ordered by `field_id`, then `id` (oldest row of a field first). */
export async function listConfigs(
  em: Em,
  principal: Principal,
  input: ListConfigsInput,
): Promise<{ configs: ConfigView[] }> {
  const rows = await em.find(
    LabMissingDetailsConfiguration,
    {
      labId: principal.labId,
      ...(input.module ? { fieldModule: input.module } : {}),
      ...(input.includeDisabled ? {} : { isDisabled: false }),
    },
    { orderBy: { fieldId: 'asc', id: 'asc' }, disableIdentityMap: true },
  );
  return { configs: rows.map(toView) };
}

/**
 * Creates, updates and soft-disables a lab's configs in one transaction (all items or none), and
 * starts the entity creations of entity fields. With an idempotency key, a retry gets the first
 * answer and applies nothing; the same key with another body is a 409.
 */
export async function saveConfigs(
  em: Em,
  principal: Principal,
  input: SaveConfigsInput,
  deps: SaveConfigsDeps,
): Promise<SaveConfigsResult> {
  const { idempotencyKey } = input;
  const hash = idempotencyKey === undefined ? undefined : requestHash({ configs: input.configs });

  const outcome = await withDeadlockRetry(() =>
    em.transactional(
      async (tx) => {
        const now = new Date();
        let keyId: number | undefined;
        if (idempotencyKey !== undefined && hash !== undefined) {
          const claim = await claimIdempotencyKey(tx, {
            labId: principal.labId,
            operation: SAVE_OPERATION,
            key: idempotencyKey,
            requestHash: hash,
            now,
          });
          if (claim.kind === 'replay') return { result: claim.response as SaveConfigsResult, replayed: true };
          keyId = claim.keyId;
        }
        const result = await applySave(tx, principal, input.configs, now);
        if (keyId !== undefined) await storeIdempotentResponse(tx, keyId, result);
        return { result, replayed: false };
      },
      // Every read after the (lab, field) locks must see what the previous holder committed.
      { isolationLevel: IsolationLevel.READ_COMMITTED },
    ),
  );
  configSaves.inc({ outcome: outcome.replayed ? 'replayed' : 'applied' });

  if (idempotencyKey !== undefined) {
    // Opportunistic and bounded; a failure here must not fail a save that has committed.
    await deleteExpiredIdempotencyKeys(em, new Date()).catch((error: unknown) =>
      deps.logger.warn({ err: error }, 'cleanup of expired idempotency keys failed'),
    );
  }
  return outcome.result;
}

async function applySave(
  em: Em,
  principal: Principal,
  items: readonly ConfigItem[],
  now: Date,
): Promise<SaveConfigsResult> {
  const labId = principal.labId;
  const actorLabUserId = principal.role === 'lab_user' ? principal.userId : null;
  const fieldIds = items.map((item) => item.fieldId);
  // The configs' own stamps keep microseconds (the columns are datetime(6)).
  const stamp = dbTimestampNow();

  const templates = await checkTemplates(em, items);
  await lockLabFields(em, labId, fieldIds);

  // Newest first: when legacy data holds several active rows of one field, the newest is the config.
  const activeRows = await em.find(
    LabMissingDetailsConfiguration,
    { labId, fieldId: { $in: fieldIds }, isDisabled: false },
    { orderBy: { id: 'desc' }, disableIdentityMap: true },
  );
  const activeByField = new Map<number, LabMissingDetailsConfiguration[]>();
  for (const row of activeRows) {
    const rows = activeByField.get(row.fieldId) ?? [];
    rows.push(row);
    activeByField.set(row.fieldId, rows);
  }

  const toDisable: number[] = [];
  const toUpdate: Array<{ id: number; fieldValue: string; dueInHours?: number | null | undefined }> = [];
  const toCreate: ConfigItem[] = [];
  /** In item order; `configId` of created rows is known only after the insert. */
  const entityWork: Array<{ fieldId: number; configId: number | null; name: string; entityType: string }> =
    [];

  for (const item of items) {
    const template = templates.get(item.fieldId)!;
    const [current, ...duplicates] = activeByField.get(item.fieldId) ?? [];
    // Restores "at most one active row" where legacy data broke it.
    toDisable.push(...duplicates.map((row) => row.id));
    if (item.isDisabled || item.fieldValue === null) {
      if (current) toDisable.push(current.id);
      continue;
    }
    const entityType = template.category === 'entity' ? template.entityType : null;
    if (current) {
      toUpdate.push({ id: current.id, fieldValue: item.fieldValue, dueInHours: item.dueInHours });
      if (entityType && current.fieldValue !== item.fieldValue) {
        entityWork.push({ fieldId: item.fieldId, configId: current.id, name: item.fieldValue, entityType });
      }
    } else {
      toCreate.push(item);
      if (entityType)
        entityWork.push({ fieldId: item.fieldId, configId: null, name: item.fieldValue, entityType });
    }
  }

  if (toDisable.length > 0) {
    await em.nativeUpdate(
      LabMissingDetailsConfiguration,
      { id: { $in: toDisable }, labId },
      { isDisabled: true, updatedAt: stamp, updatedByLabUserId: actorLabUserId },
    );
  }
  // At most 50 rows, each with its own value: one statement per row reads better than a CASE.
  for (const update of toUpdate) {
    await em.nativeUpdate(
      LabMissingDetailsConfiguration,
      { id: update.id, labId },
      {
        fieldValue: update.fieldValue,
        ...(update.dueInHours === undefined ? {} : { dueInHours: update.dueInHours }),
        updatedAt: stamp,
        updatedByLabUserId: actorLabUserId,
      },
    );
  }
  if (toCreate.length > 0) {
    await em.insertMany(
      LabMissingDetailsConfiguration,
      toCreate.map((item) => {
        const template = templates.get(item.fieldId)!;
        return {
          labId,
          fieldId: item.fieldId,
          fieldName: template.name,
          fieldValue: item.fieldValue!,
          fieldModule: template.module,
          fieldCategory: template.category,
          entityObjectId: null,
          isDisabled: false,
          dueInHours: item.dueInHours ?? null,
          createdByLabUserId: actorLabUserId,
          updatedByLabUserId: actorLabUserId,
          createdAt: stamp,
          updatedAt: stamp,
        };
      }),
    );
  }

  // The audit row commits or rolls back with the save; it names fields and counts, never values.
  await writeActivity(
    em,
    {
      labId,
      orgId: principal.orgId,
      actor: principal,
      action: 'config_saved',
      objectType: 'LabMissingDetailsConfiguration',
      message: `Saved ${items.length} missing-details config item(s): ${toCreate.length} created, ${toUpdate.length} updated, ${toDisable.length} disabled`,
      details: {
        field_ids: fieldIds,
        created_count: toCreate.length,
        updated_ids: toUpdate.map((u) => u.id),
        disabled_ids: toDisable,
      },
    },
    now,
  );

  let entityCreations: StartedEntityCreation[] = [];
  if (entityWork.length > 0) {
    const createdIds = await activeConfigIds(
      em,
      labId,
      entityWork.filter((work) => work.configId === null).map((work) => work.fieldId),
    );
    const requests: EntityCreationRequest[] = entityWork.map((work) => ({
      configId: work.configId ?? createdIds.get(work.fieldId)!,
      entityType: work.entityType,
      name: work.name,
    }));
    entityCreations = await startEntityCreations(em, principal, requests, now);
  }
  // Every instance's cached copy of this lab's configs is stale once this commits.
  await bumpLabConfigVersion(em, labId);

  const { configs } = await listConfigs(em, principal, { includeDisabled: false });
  return { configs, entityCreations };
}

/** Every item's template must exist; items that set a value need an active one. */
async function checkTemplates(
  em: Em,
  items: readonly ConfigItem[],
): Promise<Map<number, MissingDetailsTemplate>> {
  const found = await em.find(
    MissingDetailsTemplate,
    { id: { $in: items.map((item) => item.fieldId) } },
    { disableIdentityMap: true },
  );
  const templates = new Map(found.map((template) => [template.id, template]));
  const issues: ErrorIssue[] = [];
  items.forEach((item, index) => {
    const template = templates.get(item.fieldId);
    const path = `configs.${index}.field_id`;
    if (!template) {
      issues.push({ path, message: `no missing-details template has id ${item.fieldId}` });
    } else if (!template.isActive && !item.isDisabled) {
      // Disabling stays possible, so that a lab can turn off a config whose template was retired.
      issues.push({ path, message: `template ${item.fieldId} (${template.name}) is inactive` });
    } else if (!item.isDisabled && lookupKey(template.module, template.name) === undefined) {
      // A config the engine could never capture would sit in the lab's list doing nothing.
      issues.push({
        path,
        message: `template ${item.fieldId} (${template.name}) has no field-map entry: saves could never be captured for it`,
      });
    }
  });
  const first = issues[0];
  if (first) throw new ValidationError(`Invalid configs: ${first.path}: ${first.message}`, issues);
  return templates;
}

/** The active config id per field; under this save's locks, the rows it just created. */
async function activeConfigIds(
  em: Em,
  labId: number,
  fieldIds: readonly number[],
): Promise<Map<number, number>> {
  if (fieldIds.length === 0) return new Map();
  const rows = await em.find(
    LabMissingDetailsConfiguration,
    { labId, fieldId: { $in: [...fieldIds] }, isDisabled: false },
    { fields: ['id', 'fieldId'], disableIdentityMap: true },
  );
  return new Map(rows.map((row) => [row.fieldId, row.id]));
}
