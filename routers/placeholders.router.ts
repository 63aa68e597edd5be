import { checkPlaceholders, placeholderCheckInput } from '../src/services/placeholder-check.service.js';
import { authedProcedure, router } from './trpc.js';

export const placeholdersRouter = router({
  /** A mutation although it changes nothing: up to 100 values do not belong in a URL. */
  check: authedProcedure
    .input(placeholderCheckInput)
    .mutation(({ ctx, input }) => checkPlaceholders(ctx.deps.db, ctx.principal, input)),
});
