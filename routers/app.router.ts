import { captureRouter } from './capture.router.js';
import { configsRouter } from './configs.router.js';
import { entityCreationsRouter } from './entity-creations.router.js';
import { flagsRouter } from './flags.router.js';
import { labFieldsRouter } from './lab-fields.router.js';
import { placeholdersRouter } from './placeholders.router.js';
import { settingsRouter } from './settings.router.js';
import { templatesRouter } from './templates.router.js';
import { router } from './trpc.js';

export const appRouter = router({
  templates: templatesRouter,
  configs: configsRouter,
  labFields: labFieldsRouter,
  entityCreations: entityCreationsRouter,
  capture: captureRouter,
  flags: flagsRouter,
  placeholders: placeholdersRouter,
  settings: settingsRouter,
});

export type AppRouter = typeof appRouter;
