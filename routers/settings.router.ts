import {
  getLabSettings,
  updateLabSettings,
  updateSettingsInput,
} from '../src/services/lab-settings.service.js';
import { authedProcedure, labStaffProcedure, router } from './trpc.js';

export const settingsRouter = router({
  get: authedProcedure.query(({ ctx }) => getLabSettings(ctx.deps.db.rootEm(), ctx.principal)),
  update: labStaffProcedure('settings_write')
    .input(updateSettingsInput)
    .mutation(({ ctx, input }) => updateLabSettings(ctx.deps.db.em(), ctx.principal, input)),
});
