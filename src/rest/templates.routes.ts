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

const templatesAnswer = z.object({
  templates: z.array(
    z.object({
      id: z.number().int(),
      name: z.string(),
      display_name: z.string(),
      module: z.string().describe('patient or bill'),
      category: z.string().describe('text, entity, …'),
      entity_type: z.string().nullable(),
      input_type: z.string(),
      sort_order: z.number().int(),
      is_active: z.boolean(),
    }),
  ),
});

export const templatesRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/api-v3/registration/patients/missing-details-templates',
      {
        schema: {
          tags: ['templates'],
          summary: 'List the missing-detail templates',
          description: 'Ordered by sort_order, then id.',
          querystring: templatesQuery,
          response: { 200: templatesAnswer },
        },
      },
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
