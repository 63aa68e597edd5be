import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppDeps } from '../app-deps.js';
import { requirePrincipal } from '../auth/request-principal.js';
import { resolveIds, rowId } from '../services/lab-fields.service.js';
import {
  EXTRA_JUNK_VALUE_MAX_LENGTH,
  EXTRA_JUNK_VALUES_PER_FIELD,
  extraJunkValues,
  getLabSettings,
  knownFieldName,
  type LabSettingsView,
  updateLabSettings,
} from '../services/lab-settings.service.js';
import {
  checkedValue,
  checkPlaceholders,
  PLACEHOLDER_CHECK_MAX_VALUES,
} from '../services/placeholder-check.service.js';
import {
  assignLabFields,
  checkCursorSort,
  listPatientWorklist,
  PATIENTS_DEFAULT_LIMIT,
  PATIENTS_MAX_LIMIT,
  patientWorklistParts,
} from '../services/work-queue.service.js';

/**
 * The front desk's work queue (contract "Additions"): the placeholder check, the lab's settings,
 * assignment, and the worklist by patient. Snake_case over the same services as tRPC.
 */
const BASE = '/api-v3/account/missing-details';

const checkBody = z
  .object({
    values: z
      .array(z.object({ field_name: knownFieldName, value: checkedValue }).strict())
      .min(1)
      .max(PLACEHOLDER_CHECK_MAX_VALUES),
  })
  .strict();
const checkAnswer = z.object({
  results: z.array(
    z.object({
      field_name: z.string(),
      is_placeholder: z.boolean().describe('true: do not send this value out of the lab'),
      detected_as: z.enum(['placeholder', 'junk']).nullable(),
    }),
  ),
});

const settingsBody = z
  .object({
    junk_detection: z.boolean().optional(),
    extra_junk_values: extraJunkValues
      .optional()
      .describe(
        `Per field name, up to ${EXTRA_JUNK_VALUES_PER_FIELD} of the lab's own junk values (literal values, not patterns; ${EXTRA_JUNK_VALUE_MAX_LENGTH} characters at most)`,
      ),
  })
  .strict()
  .refine((body) => body.junk_detection !== undefined || body.extra_junk_values !== undefined, {
    message: 'name at least one setting: junk_detection or extra_junk_values',
  });
const settingsAnswer = z.object({
  junk_detection: z.boolean(),
  extra_junk_values: z.record(z.string(), z.array(z.string())),
});
const settingsSnake = (view: LabSettingsView) => ({
  junk_detection: view.junkDetection,
  extra_junk_values: view.extraJunkValues,
});

const assignmentBody = z.object({ ids: resolveIds, assignee_user_id: rowId.nullable() }).strict();
const updatedAnswer = z.object({
  updated_count: z.number().int().describe("The ids found in the caller's scope"),
});

const patientsLimit = z.string().transform((raw, ctx) => {
  const limit = /^\d{1,4}$/.test(raw) ? Number(raw) : 0;
  if (limit >= 1 && limit <= PATIENTS_MAX_LIMIT) return limit;
  ctx.addIssue({ code: 'custom', message: `must be an integer from 1 to ${PATIENTS_MAX_LIMIT}` });
  return z.NEVER;
});
const patientsQuery = z
  .object({
    is_resolved: z.enum(['false', '0'], { error: 'the worklist holds open rows only: false' }).optional(),
    sort: patientWorklistParts.sort.default('oldest'),
    limit: patientsLimit.optional(),
    cursor: patientWorklistParts.cursor.optional(),
  })
  .strict()
  .superRefine((q, ctx) => checkCursorSort(q, ctx));
const patientsAnswer = z.object({
  results: z.array(
    z.object({
      user_details_id: z.number().int(),
      org_id: z.number().int().nullable(),
      open_count: z.number().int(),
      oldest_created_at: z.string().describe('ISO 8601 UTC'),
      fields: z.array(
        z.object({
          field_id: z.number().int(),
          field_name: z.string(),
          display_name: z.string(),
          created_at: z.string().describe('ISO 8601 UTC'),
        }),
      ),
    }),
  ),
  next_cursor: z.string().nullable(),
});

export const workQueueRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const tags = ['work-queue'];
    app.post(
      `${BASE}/placeholder-check`,
      {
        schema: {
          tags,
          summary: 'Is each value a placeholder (or junk)? Ask before it leaves the lab',
          body: checkBody,
          response: { 200: checkAnswer },
        },
      },
      async (request) => {
        const principal = await requirePrincipal(deps, request);
        const values = request.body.values.map((item) => ({ fieldName: item.field_name, value: item.value }));
        const results = await checkPlaceholders(deps.db, principal, { values });
        return {
          results: results.map((r) => ({
            field_name: r.fieldName,
            is_placeholder: r.isPlaceholder,
            detected_as: r.detectedAs,
          })),
        };
      },
    );

    const settingsPath = `${BASE}/settings`;
    app.get(
      settingsPath,
      { schema: { tags, summary: "The lab's missing-details settings", response: { 200: settingsAnswer } } },
      async (request) =>
        settingsSnake(await getLabSettings(deps.db.rootEm(), await requirePrincipal(deps, request))),
    );
    app.put(
      settingsPath,
      {
        schema: {
          tags,
          summary: "Change the lab's settings (lab-wide staff); omitted keys keep their value",
          body: settingsBody,
          response: { 200: settingsAnswer },
        },
      },
      async (request) => {
        const principal = await requirePrincipal(deps, request);
        const input = {
          junkDetection: request.body.junk_detection,
          extraJunkValues: request.body.extra_junk_values,
        };
        return settingsSnake(await updateLabSettings(deps.db.em(), principal, input));
      },
    );

    app.patch(
      `${BASE}/lab-fields/assignment`,
      {
        schema: {
          tags,
          summary: 'Assign rows to a user of the lab, or unassign them with null (lab-wide staff)',
          body: assignmentBody,
          response: { 200: updatedAnswer },
        },
      },
      async (request) => {
        const principal = await requirePrincipal(deps, request);
        const { updatedCount } = await assignLabFields(deps.db.em(), principal, {
          ids: request.body.ids,
          assigneeUserId: request.body.assignee_user_id,
        });
        return { updated_count: updatedCount };
      },
    );

    app.get(
      `${BASE}/patients`,
      {
        schema: {
          tags,
          summary: "The caller's open rows grouped by patient",
          description: '`sort=oldest` (default): longest waiting first; `sort=most`: most open fields first.',
          querystring: patientsQuery,
          response: { 200: patientsAnswer },
        },
      },
      async (request) => {
        const principal = await requirePrincipal(deps, request);
        const q = request.query;
        const page = await listPatientWorklist(deps.db.rootEm(), principal, {
          sort: q.sort,
          limit: q.limit ?? PATIENTS_DEFAULT_LIMIT,
          cursor: q.cursor,
        });
        return {
          results: page.results.map((item) => ({
            user_details_id: item.userDetailsId,
            org_id: item.orgId,
            open_count: item.openCount,
            oldest_created_at: item.oldestCreatedAt,
            fields: item.fields.map((f) => ({
              field_id: f.fieldId,
              field_name: f.fieldName,
              display_name: f.displayName,
              created_at: f.createdAt,
            })),
          })),
          next_cursor: page.nextCursor,
        };
      },
    );
  };
