import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppDeps } from '../app-deps.js';
import { requirePermission } from '../auth/permissions.js';
import { requirePrincipal } from '../auth/request-principal.js';
import type { StartedEntityCreation } from '../services/entity-creation-start.service.js';
import { idempotencyKeySchema } from '../services/idempotency.service.js';
import {
  type ConfigView,
  checkConfigItems,
  configItemsSchema,
  dueInHoursSchema,
  listConfigs,
  normalizeConfigItem,
  SNAKE_CASE_KEYS,
  saveConfigs,
} from '../services/placeholder-configs.service.js';
import { MODULES } from '../services/templates.service.js';
import { queryBoolean } from './query.js';

const CONFIG_PATH = '/api-v3/registration/patients/lab-missing-details-config';

const listQuery = z.strictObject({
  module: z.enum(MODULES).optional(),
  include_disabled: queryBoolean.default(false),
});

const saveBody = z
  .strictObject({
    configs: configItemsSchema(
      z.strictObject({
        field_id: z.number().int().positive(),
        field_value: z.string().nullish(),
        is_disabled: z.boolean().optional(),
        due_in_hours: dueInHoursSchema.describe(
          'Rows opened under this config are due this many hours later (1–720); null clears it, omitted keeps it',
        ),
      }),
    ),
  })
  .superRefine((body, ctx) =>
    checkConfigItems(
      body.configs.map((item) => ({
        fieldId: item.field_id,
        fieldValue: item.field_value,
        isDisabled: item.is_disabled,
      })),
      ctx,
      SNAKE_CASE_KEYS,
    ),
  );

// Loose: a validated headers object replaces request.headers, and the others must survive.
const saveHeaders = z.looseObject({ 'idempotency-key': idempotencyKeySchema.optional() });

const timestamp = z.string().describe('ISO 8601 UTC');

const configAnswer = z.object({
  id: z.number().int(),
  field_id: z.number().int(),
  field_name: z.string(),
  field_value: z.string(),
  field_module: z.string(),
  field_category: z.string(),
  entity_object_id: z.number().int().nullable(),
  is_disabled: z.boolean(),
  due_in_hours: z.number().int().nullable().describe('null: rows opened under it have no due time'),
  created_at: timestamp,
  updated_at: timestamp,
});

const listAnswer = z.object({ configs: z.array(configAnswer) });

const saveAnswer = z.object({
  configs: z.array(configAnswer).describe("The lab's active configs after the save"),
  entity_creations: z.array(
    z.object({
      config_id: z.number().int(),
      entity_type: z.string(),
      status: z.enum(['created', 'queued']),
      object_id: z.number().int().nullable(),
    }),
  ),
});

function toSnakeConfig(config: ConfigView) {
  return {
    id: config.id,
    field_id: config.fieldId,
    field_name: config.fieldName,
    field_value: config.fieldValue,
    field_module: config.fieldModule,
    field_category: config.fieldCategory,
    entity_object_id: config.entityObjectId,
    is_disabled: config.isDisabled,
    due_in_hours: config.dueInHours,
    created_at: config.createdAt,
    updated_at: config.updatedAt,
  };
}

function toSnakeCreation(creation: StartedEntityCreation) {
  return {
    config_id: creation.configId,
    entity_type: creation.entityType,
    status: creation.status,
    object_id: creation.objectId,
  };
}

export const placeholderConfigsRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    // The principal comes first: without one the answer is a 401, whatever the body or query holds.
    const authenticate = async (request: FastifyRequest) => {
      await requirePrincipal(deps, request);
    };
    const authorizeSave = async (request: FastifyRequest) => {
      requirePermission(await requirePrincipal(deps, request), 'config_write');
    };

    app.get(
      CONFIG_PATH,
      {
        onRequest: authenticate,
        schema: {
          tags: ['configs'],
          summary: "List the caller's lab configs",
          querystring: listQuery,
          response: { 200: listAnswer },
        },
      },
      async (request) => {
        const principal = await requirePrincipal(deps, request);
        const { configs } = await listConfigs(deps.db.em(), principal, {
          module: request.query.module,
          includeDisabled: request.query.include_disabled,
        });
        return { configs: configs.map(toSnakeConfig) };
      },
    );

    app.post(
      CONFIG_PATH,
      {
        onRequest: authorizeSave,
        schema: {
          tags: ['configs'],
          summary: "Create, update or disable the caller's lab configs",
          description:
            'One transaction: all items apply, or none. Entity templates start an entity creation. ' +
            'A retried save with the same Idempotency-Key returns the first answer.',
          body: saveBody,
          headers: saveHeaders,
          response: { 200: saveAnswer },
        },
      },
      async (request) => {
        const principal = await requirePrincipal(deps, request);
        const idempotencyKey = request.headers['idempotency-key'];
        const result = await saveConfigs(
          deps.db.em(),
          principal,
          {
            configs: request.body.configs.map((item) =>
              normalizeConfigItem({
                fieldId: item.field_id,
                fieldValue: item.field_value,
                isDisabled: item.is_disabled,
                dueInHours: item.due_in_hours,
              }),
            ),
            ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
          },
          deps,
        );
        return {
          configs: result.configs.map(toSnakeConfig),
          entity_creations: result.entityCreations.map(toSnakeCreation),
        };
      },
    );
  };
