import {
  listEntityCreations,
  listEntityCreationsInput,
  retryEntityCreations,
  retryEntityCreationsInput,
} from '../src/services/entity-creation-operator.service.js';
import { authedProcedure, labStaffProcedure, router } from './trpc.js';

/** Operators' view of the PY-2 entity creations of their lab, and the retry of failed ones. */
export const entityCreationsRouter = router({
  list: authedProcedure
    .input(listEntityCreationsInput)
    .query(({ ctx, input }) => listEntityCreations(ctx.deps.db.em(), ctx.principal, input)),
  retry: labStaffProcedure('entity_retry')
    .input(retryEntityCreationsInput)
    .mutation(({ ctx, input }) => retryEntityCreations(ctx.deps.db.em(), ctx.principal, input)),
});
