import {
  listLabFields,
  listLabFieldsInput,
  resolveLabFields,
  resolveLabFieldsInput,
} from '../src/services/lab-fields.service.js';
import { authedProcedure, router } from './trpc.js';

export const labFieldsRouter = router({
  list: authedProcedure
    .input(listLabFieldsInput)
    .query(({ ctx, input }) => listLabFields(ctx.deps.db.em(), ctx.principal, input)),
  resolve: authedProcedure
    .input(resolveLabFieldsInput)
    .mutation(({ ctx, input }) => resolveLabFields(ctx.deps.db.em(), ctx.principal, input)),
});
