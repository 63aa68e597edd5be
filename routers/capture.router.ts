import { captureBillInput, captureForCaller, capturePatientInput } from '../src/services/capture.service.js';
import { authedProcedure, router } from './trpc.js';

/** The runtime engine for callers that save a patient or a bill outside the proxy. */
export const captureRouter = router({
  patient: authedProcedure
    .input(capturePatientInput)
    .mutation(({ ctx, input }) =>
      captureForCaller(ctx.deps.db, ctx.principal, { ...input, module: 'patient', billId: null }),
    ),
  bill: authedProcedure
    .input(captureBillInput)
    .mutation(({ ctx, input }) => captureForCaller(ctx.deps.db, ctx.principal, { ...input, module: 'bill' })),
});
