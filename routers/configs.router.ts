import {
  listConfigs,
  listConfigsInput,
  saveConfigs,
  saveConfigsInput,
} from '../src/services/placeholder-configs.service.js';
import { authedProcedure, labStaffProcedure, router } from './trpc.js';

export const configsRouter = router({
  list: authedProcedure
    .input(listConfigsInput)
    .query(({ ctx, input }) => listConfigs(ctx.deps.db.em(), ctx.principal, input)),
  save: labStaffProcedure('config_write')
    .input(saveConfigsInput)
    .mutation(({ ctx, input }) => saveConfigs(ctx.deps.db.em(), ctx.principal, input, ctx.deps)),
});
