import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppDeps } from '../app-deps.js';
import { requirePrincipal } from '../auth/request-principal.js';
import { listTemplates, MODULES } from '../services/templates.service.js';
import { queryBoolean } from './query.js';

const templatesQuery = z
  .object({
    module: z.enum(MODULES).optional(),
    include_inactive: queryBoolean.default(false),
  })
  .strict();

export const templatesRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/api-v3/registration/patients/missing-details-templates',
      { schema: { querystring: templatesQuery } },
      async (request) => {
        await requirePrincipal(deps, request);
        const { templates } = await listTemplates(deps.db.em(), {
          module: request.query.module,
          includeInactive: request.query.include_inactive,
        });
        return {
          templates: templates.map((t) => ({
            id: t.id,
            name: t.name,
            display_name: t.displayName,
            module: t.module,
            category: t.category,
            entity_type: t.entityType,
            input_type: t.inputType,
            sort_order: t.sortOrder,
            is_active: t.isActive,
          })),
        };
      },
    );
  };
