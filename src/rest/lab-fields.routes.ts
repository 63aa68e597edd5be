import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppDeps } from '../app-deps.js';
import { requirePrincipal } from '../auth/request-principal.js';
import {
  checkCreatedRange,
  checkOverdueOnOpen,
  FIELD_ID_FILTER_MAX,
  LAB_FIELDS_DEFAULT_LIMIT,
  LAB_FIELDS_MAX_LIMIT,
  type LabFieldView,
  labFieldsFilterParts,
  listLabFields,
  resolveIds,
  resolveLabFields,
  type TimeBound,
} from '../services/lab-fields.service.js';
import {
  checkReasonOnlyWhenResolving,
  reasonCodeSchema,
  reasonNoteSchema,
} from '../services/resolution-reasons.service.js';
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

/** The listing's filters, shared with the CSV export (which has no paging). */
export const listFilterQueryShape = {
  is_resolved: queryBoolean.default(false),
  user_details_id: queryId.optional(),
  bill_id: queryId.optional(),
  field_id: queryFieldIds.optional(),
  field_module: labFieldsFilterParts.fieldModule.optional(),
  created_from: labFieldsFilterParts.timeBound.optional(),
  created_to: labFieldsFilterParts.timeBound.optional(),
  assignee_user_id: queryId.optional(),
  overdue: queryBoolean.optional(),
};

export const checkCreatedQueryRange = (
  q: {
    created_from?: TimeBound | undefined;
    created_to?: TimeBound | undefined;
    is_resolved: boolean;
    overdue?: boolean | undefined;
  },
  ctx: z.RefinementCtx,
) => {
  checkCreatedRange(q.created_from, q.created_to, ctx, { from: 'created_from', to: 'created_to' });
  checkOverdueOnOpen({ isResolved: q.is_resolved, overdue: q.overdue }, ctx, 'overdue');
};

type FilterQuery = z.output<z.ZodObject<typeof listFilterQueryShape>>;

/** The service's filters from the snake_case query. */
export function filtersOfQuery(q: FilterQuery) {
  return {
    isResolved: q.is_resolved,
    userDetailsId: q.user_details_id,
    billId: q.bill_id,
    fieldIds: q.field_id,
    fieldModule: q.field_module,
    createdFrom: q.created_from,
    createdTo: q.created_to,
    assigneeUserId: q.assignee_user_id,
    overdue: q.overdue,
  };
}

const listQuery = z
  .object({
    ...listFilterQueryShape,
    limit: queryLimit.optional(),
    cursor: labFieldsFilterParts.cursor.optional(),
  })
  .strict()
  .superRefine(checkCreatedQueryRange);

const resolveBody = z
  .object({
    ids: resolveIds,
    is_resolved: z.boolean(),
    reason_code: reasonCodeSchema.nullish(),
    reason_note: reasonNoteSchema.nullish(),
  })
  .strict()
  .superRefine((body, ctx) =>
    checkReasonOnlyWhenResolving(
      { isResolved: body.is_resolved, reasonCode: body.reason_code, reasonNote: body.reason_note },
      ctx,
      { code: 'reason_code', note: 'reason_note', isResolved: 'is_resolved' },
    ),
  );

/** The list's answer (exported for the test that holds its serializer to it). */
export const listAnswer = z.object({
  results: z.array(
    // Loose: a key added to the rows passes through even before it is described here.
    z.looseObject({
      id: z.number().int(),
      user_details_id: z.number().int(),
      bill_id: z.number().int().nullable(),
      org_id: z.number().int().nullable(),
      field_id: z.number().int(),
      field_name: z.string(),
      field_value: z.string(),
      field_module: z.string(),
      is_resolved: z.boolean(),
      created_at: z.string().describe('ISO 8601 UTC'),
      resolved_at: z.string().nullable().describe('ISO 8601 UTC'),
      resolved_by_doctor_id: z.number().int().nullable(),
      resolved_by_lab_user_id: z.number().int().nullable(),
      detected_as: z.enum(['placeholder', 'junk']).describe('junk only with junk detection on (settings)'),
      assignee_user_id: z.number().int().nullable(),
      due_at: z.string().nullable().describe('ISO 8601 UTC; set when the config has due_in_hours'),
      is_overdue: z.boolean().describe('Open and past due_at'),
      reason_code: z
        .string()
        .nullable()
        .optional()
        .describe('Resolved rows only: why it was resolved by hand'),
      reason_note: z.string().nullable().optional().describe('Resolved rows only'),
    }),
  ),
  next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
});

const resolveAnswer = z.object({
  updated_count: z.number().int().describe("The ids found in the caller's scope"),
});

/**
 * The list's answer goes out as plain JSON of what the handler built from typed rows: checking up to
 * 200 rows against `listAnswer` again on the way out cost more CPU than the SELECT. `listAnswer`
 * still describes the answer in the OpenAPI document, and test/lab-fields-list.test.ts holds the
 * bytes to what its serializer would write.
 */
const listAnswerJson = (answer: z.output<typeof listAnswer>): string => JSON.stringify(answer);

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
    detected_as: row.detectedAs,
    assignee_user_id: row.assigneeUserId,
    due_at: row.dueAt,
    is_overdue: row.isOverdue,
    // Resolved listings only: the reason of a manual resolution (see LabFieldView).
    ...(row.reasonCode !== undefined
      ? { reason_code: row.reasonCode, reason_note: row.reasonNote ?? null }
      : {}),
  };
}

export const labFieldsRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const listSchema = {
      tags: ['lab-fields'],
      summary: "List the missing details recorded in the caller's scope",
      description: 'Newest first; page with `cursor`.',
      querystring: listQuery,
      response: { 200: listAnswer },
    };
    app.get(PATH, { schema: listSchema, serializerCompiler: () => listAnswerJson }, async (request) => {
      const principal = await requirePrincipal(deps, request);
      const q = request.query;
      const page = await listLabFields(deps.db.rootEm(), principal, {
        ...filtersOfQuery(q),
        limit: q.limit ?? LAB_FIELDS_DEFAULT_LIMIT,
        cursor: q.cursor,
      });
      return { results: page.results.map(toSnake), next_cursor: page.nextCursor };
    });

    const resolveSchema = {
      tags: ['lab-fields'],
      summary: 'Resolve or unresolve missing details by id',
      body: resolveBody,
      response: { 200: resolveAnswer },
    };
    app.patch(PATH, { schema: resolveSchema }, async (request) => {
      const principal = await requirePrincipal(deps, request);
      const { updatedCount } = await resolveLabFields(deps.db.em(), principal, {
        ids: request.body.ids,
        isResolved: request.body.is_resolved,
        reasonCode: request.body.reason_code,
        reasonNote: request.body.reason_note,
      });
      return { updated_count: updatedCount };
    });
  };
