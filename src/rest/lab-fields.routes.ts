import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppDeps } from '../app-deps.js';
import { requirePrincipal } from '../auth/request-principal.js';
import {
  checkCreatedRange,
  FIELD_ID_FILTER_MAX,
  LAB_FIELDS_DEFAULT_LIMIT,
  LAB_FIELDS_MAX_LIMIT,
  type LabFieldView,
  labFieldsFilterParts,
  listLabFields,
  resolveIds,
  resolveLabFields,
} from '../services/lab-fields.service.js';
import { queryBoolean } from './query.js';

const PATH = '/api-v3/account/missing-details/lab-fields';

function positiveInteger(raw: string): number | undefined {
  const value = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

const queryId = z.string().transform((raw, ctx) => {
  const id = positiveInteger(raw);
  if (id !== undefined) return id;
  ctx.addIssue({ code: 'custom', message: 'must be a positive integer' });
  return z.NEVER;
});

/** `field_id=1,7`, also sent as `field_id=1&field_id=7`. */
const queryFieldIds = z.union([z.string(), z.array(z.string())]).transform((raw, ctx) => {
  const parts = (Array.isArray(raw) ? raw.join(',') : raw).split(',');
  const ids = parts.map((part) => positiveInteger(part.trim()));
  if (ids.some((id) => id === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'must be a positive integer or a comma-separated list of them' });
    return z.NEVER;
  }
  const distinct = [...new Set(ids as number[])];
  if (distinct.length > FIELD_ID_FILTER_MAX) {
    ctx.addIssue({ code: 'custom', message: `must list at most ${FIELD_ID_FILTER_MAX} field ids` });
    return z.NEVER;
  }
  return distinct;
});

const queryLimit = z.string().transform((raw, ctx) => {
  const limit = positiveInteger(raw);
  if (limit !== undefined && limit <= LAB_FIELDS_MAX_LIMIT) return limit;
  ctx.addIssue({ code: 'custom', message: `must be an integer from 1 to ${LAB_FIELDS_MAX_LIMIT}` });
  return z.NEVER;
});

const listQuery = z
  .object({
    is_resolved: queryBoolean.default(false),
    user_details_id: queryId.optional(),
    bill_id: queryId.optional(),
    field_id: queryFieldIds.optional(),
    field_module: labFieldsFilterParts.fieldModule.optional(),
    created_from: labFieldsFilterParts.timeBound.optional(),
    created_to: labFieldsFilterParts.timeBound.optional(),
    limit: queryLimit.optional(),
    cursor: labFieldsFilterParts.cursor.optional(),
  })
  .strict()
  .superRefine((q, ctx) =>
    checkCreatedRange(q.created_from, q.created_to, ctx, { from: 'created_from', to: 'created_to' }),
  );

const resolveBody = z.object({ ids: resolveIds, is_resolved: z.boolean() }).strict();

function toSnake(row: LabFieldView) {
  return {
    id: row.id,
    user_details_id: row.userDetailsId,
    bill_id: row.billId,
    org_id: row.orgId,
    field_id: row.fieldId,
    field_name: row.fieldName,
    field_value: row.fieldValue,
    field_module: row.fieldModule,
    is_resolved: row.isResolved,
    created_at: row.createdAt,
    resolved_at: row.resolvedAt,
    resolved_by_doctor_id: row.resolvedByDoctorId,
    resolved_by_lab_user_id: row.resolvedByLabUserId,
  };
}

export const labFieldsRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(PATH, { schema: { querystring: listQuery } }, async (request) => {
      const principal = await requirePrincipal(deps, request);
      const q = request.query;
      const page = await listLabFields(deps.db.em(), principal, {
        isResolved: q.is_resolved,
        userDetailsId: q.user_details_id,
        billId: q.bill_id,
        fieldIds: q.field_id,
        fieldModule: q.field_module,
        createdFrom: q.created_from,
        createdTo: q.created_to,
        limit: q.limit ?? LAB_FIELDS_DEFAULT_LIMIT,
        cursor: q.cursor,
      });
      return { results: page.results.map(toSnake), next_cursor: page.nextCursor };
    });

    app.patch(PATH, { schema: { body: resolveBody } }, async (request) => {
      const principal = await requirePrincipal(deps, request);
      const { updatedCount } = await resolveLabFields(deps.db.em(), principal, {
        ids: request.body.ids,
        isResolved: request.body.is_resolved,
      });
      return { updated_count: updatedCount };
    });
  };
