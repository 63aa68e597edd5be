import { flagIdsInput, listBillFlags, listPatientFlags } from '../src/services/flags.service.js';
import { authedProcedure, router } from './trpc.js';

export const flagsRouter = router({
  patients: authedProcedure
    .input(flagIdsInput)
    .query(({ ctx, input }) => listPatientFlags(ctx.deps.db.rootEm(), ctx.principal, input)),
  bills: authedProcedure
    .input(flagIdsInput)
    .query(({ ctx, input }) => listBillFlags(ctx.deps.db.rootEm(), ctx.principal, input)),
});
