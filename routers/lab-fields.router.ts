import { TRPCError, tracked } from '@trpc/server';
import { ERROR_TABLE, toAppError } from '../src/errors.js';
import {
  listLabFields,
  listLabFieldsInput,
  resolveLabFields,
  resolveLabFieldsInput,
} from '../src/services/lab-fields.service.js';
import { labFieldsSummaryInput, summarizeLabFields } from '../src/services/lab-fields-summary.service.js';
import { type LiveCountEvent, liveCountsInput, liveCountsOf } from '../src/services/live-counts.service.js';
import {
  assignLabFields,
  assignLabFieldsInput,
  listPatientWorklist,
  patientWorklistInput,
} from '../src/services/work-queue.service.js';
import { authedProcedure, labStaffProcedure, router } from './trpc.js';

/**
 * Each count as a tracked SSE event (its id lets a reconnecting client resume). A failure while
 * streaming gets its code from the one error table: the procedure middleware only sees the start.
 */
async function* trackedCounts(events: AsyncIterable<LiveCountEvent>) {
  try {
    for await (const event of events) yield tracked(event.id, { openCount: event.openCount });
  } catch (error) {
    const appError = toAppError(error);
    throw new TRPCError({
      code: ERROR_TABLE[appError.code].trpc,
      message: appError.message,
      cause: appError,
    });
  }
}

export const labFieldsRouter = router({
  list: authedProcedure
    .input(listLabFieldsInput)
    .query(({ ctx, input }) => listLabFields(ctx.deps.db.rootEm(), ctx.principal, input)),
  resolve: authedProcedure
    .input(resolveLabFieldsInput)
    .mutation(({ ctx, input }) => resolveLabFields(ctx.deps.db.em(), ctx.principal, input)),
  /** Gives rows to a user of the lab (or takes them back with null): lab-wide staff only. */
  assign: labStaffProcedure('assign')
    .input(assignLabFieldsInput)
    .mutation(({ ctx, input }) => assignLabFields(ctx.deps.db.em(), ctx.principal, input)),
  /** The caller's open rows grouped by patient. */
  byPatient: authedProcedure
    .input(patientWorklistInput)
    .query(({ ctx, input }) => listPatientWorklist(ctx.deps.db.rootEm(), ctx.principal, input)),
  summary: authedProcedure
    .input(labFieldsSummaryInput)
    .query(({ ctx, input }) => summarizeLabFields(ctx.deps.db.em(), ctx.principal, input)),
  /** The caller's open count over SSE, pushed when it changes on any instance. */
  onChange: authedProcedure
    .input(liveCountsInput)
    .subscription(({ ctx, input, signal }) =>
      trackedCounts(liveCountsOf(ctx.deps).open(ctx.principal, input?.lastEventId, signal)),
    ),
});
