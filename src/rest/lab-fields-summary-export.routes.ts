import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppDeps } from '../app-deps.js';
import { requirePrincipal } from '../auth/request-principal.js';
import { checkCreatedRange, labFieldsFilterParts } from '../services/lab-fields.service.js';
import { exportLabFieldsCsv } from '../services/lab-fields-export.service.js';
import {
  checkWindowLength,
  type LabFieldsSummary,
  summarizeLabFields,
} from '../services/lab-fields-summary.service.js';
import { liveCountsOf } from '../services/live-counts.service.js';
import { checkCreatedQueryRange, filtersOfQuery, listFilterQueryShape } from './lab-fields.routes.js';

const BASE = '/api-v3/account/missing-details';

const summaryQuery = z
  .object({
    resolved_from: labFieldsFilterParts.timeBound.optional(),
    resolved_to: labFieldsFilterParts.timeBound.optional(),
  })
  .strict()
  .superRefine((q, ctx) => {
    const names = { from: 'resolved_from', to: 'resolved_to' };
    checkCreatedRange(q.resolved_from, q.resolved_to, ctx, names);
    checkWindowLength({ resolvedFrom: q.resolved_from, resolvedTo: q.resolved_to }, ctx, names);
  });

const exportQuery = z.object(listFilterQueryShape).strict().superRefine(checkCreatedQueryRange);

const count = () => z.number().int();
const agingAnswer = z.object({
  under_one_day: count(),
  one_to_seven_days: count(),
  over_seven_days: count().describe('Open for more than seven days'),
});
const share = () =>
  z.number().nullable().describe('0 to 1 of the resolutions that can be told apart; null when none');

const summaryAnswer = z.object({
  generated_at: z.string().describe('ISO 8601 UTC; ages are measured from it'),
  open: z.object({
    total: count(),
    aging: agingAnswer,
    by_module: z.array(z.object({ module: z.string(), total: count(), aging: agingAnswer })),
    by_field: z.array(
      z.object({
        field_id: count(),
        field_name: z.string(),
        display_name: z.string(),
        module: z.string(),
        total: count(),
        aging: agingAnswer,
      }),
    ),
    overdue: count().describe('Open rows past their due_at'),
    by_assignee: z.array(
      z.object({
        assignee_user_id: z.number().int().nullable().describe('null: unassigned'),
        total: count(),
        overdue: count(),
      }),
    ),
  }),
  resolved: z.object({
    from: z.string().describe('The window on resolved_at, ISO 8601 UTC, inclusive'),
    to: z.string(),
    total: count(),
    by_hand: count().describe('Resolved through the PATCH of lab-fields (or tRPC labFields.resolve)'),
    automatic: count().describe('Resolved by the runtime engine when a real value arrived'),
    untracked: count().describe('Resolved before the service recorded manual resolutions (tracked_since)'),
    by_hand_share: share(),
    automatic_share: share(),
    time_to_resolve_seconds: z.object({
      median: z.number().nullable(),
      p90: z.number().nullable(),
    }),
    by_reason: z.array(
      z.object({
        reason_code: z.string().nullable().describe('FHIR data-absent-reason code; null: none given'),
        count: count(),
      }),
    ),
    tracked_since: z.string().nullable(),
  }),
});

const agingSnake = (aging: LabFieldsSummary['open']['aging']) => ({
  under_one_day: aging.underOneDay,
  one_to_seven_days: aging.oneToSevenDays,
  over_seven_days: aging.overSevenDays,
});

function summarySnake(summary: LabFieldsSummary) {
  const { open, resolved } = summary;
  return {
    generated_at: summary.generatedAt,
    open: {
      total: open.total,
      aging: agingSnake(open.aging),
      by_module: open.byModule.map((m) => ({ module: m.module, total: m.total, aging: agingSnake(m.aging) })),
      by_field: open.byField.map((f) => ({
        field_id: f.fieldId,
        field_name: f.fieldName,
        display_name: f.displayName,
        module: f.module,
        total: f.total,
        aging: agingSnake(f.aging),
      })),
      overdue: open.overdue,
      by_assignee: open.byAssignee.map((a) => ({
        assignee_user_id: a.assigneeUserId,
        total: a.total,
        overdue: a.overdue,
      })),
    },
    resolved: {
      from: resolved.from,
      to: resolved.to,
      total: resolved.total,
      by_hand: resolved.byHand,
      automatic: resolved.automatic,
      untracked: resolved.untracked,
      by_hand_share: resolved.byHandShare,
      automatic_share: resolved.automaticShare,
      time_to_resolve_seconds: resolved.timeToResolveSeconds,
      by_reason: resolved.byReason.map((r) => ({ reason_code: r.reasonCode, count: r.count })),
      tracked_since: resolved.trackedSince,
    },
  };
}

/**
 * Beyond the old system, for existing clients: the work-queue summary and the CSV export of the listing.
 * (Live counts are tRPC-only: labFields.onChange over SSE.)
 */
export const labFieldsSummaryExportRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    // Open live-count streams end before the server closes, so clients reconnect to another instance.
    app.addHook('preClose', async () => {
      liveCountsOf(deps).closeAll();
    });

    const summarySchema = {
      tags: ['lab-fields'],
      summary: "Summarize the caller's missing-details queue",
      description:
        'Open rows by field and module with their age; over a window of resolved_at (default: the last 30 days, at most 366), time to resolve, by hand vs automatically, and the reasons given.',
      querystring: summaryQuery,
      response: { 200: summaryAnswer },
    };
    app.get(`${BASE}/summary`, { schema: summarySchema }, async (request) => {
      const principal = await requirePrincipal(deps, request);
      const q = request.query;
      const summary = await summarizeLabFields(deps.db.em(), principal, {
        resolvedFrom: q.resolved_from,
        resolvedTo: q.resolved_to,
      });
      return summarySnake(summary);
    });

    // No response schema: the answer is a CSV stream, not JSON for the serializer.
    const exportSchema = {
      tags: ['lab-fields'],
      summary: 'Export the filtered listing as CSV',
      description:
        "The listing's filters and scope, newest first, streamed as text/csv: the listing's columns, then reason_code and reason_note.",
      querystring: exportQuery,
      produces: ['text/csv'],
    };
    app.get(`${BASE}/lab-fields/export.csv`, { schema: exportSchema }, async (request, reply) => {
      const principal = await requirePrincipal(deps, request);
      const batches = await exportLabFieldsCsv(deps.db.em(), principal, filtersOfQuery(request.query));
      const stamp = new Date().toISOString().slice(0, 10);
      // Readable.from pulls the next batch only when the socket drains: backpressure end to end.
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="missing-details-${stamp}.csv"`)
        .header('cache-control', 'no-store')
        .send(Readable.from(batches, { objectMode: false, highWaterMark: 64 * 1024 }));
    });
  };
