import { templatesRouter } from './templates.router.js';
import { router } from './trpc.js';

export const appRouter = router({
  templates: templatesRouter,
});

export type AppRouter = typeof appRouter;
