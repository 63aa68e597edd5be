import { listTemplates, listTemplatesInput } from '../src/services/templates.service.js';
import { authedProcedure, router } from './trpc.js';

export const templatesRouter = router({
  list: authedProcedure
    .input(listTemplatesInput)
    .query(({ ctx, input }) => listTemplates(ctx.deps.db.em(), input)),
});
