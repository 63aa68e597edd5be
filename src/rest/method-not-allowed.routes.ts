import type { FastifyPluginAsync } from 'fastify';
import { AppError } from '../errors.js';
import { SHIM_PATHS } from '../http/route-table.js';

const WRITE_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/**
 * The service owns the shim's paths outright: another method on them is a 405 from the service,
 * not a trip to legacy. OPTIONS still goes to legacy (it answers CORS preflights as before).
 */
export const methodNotAllowedRoutes: FastifyPluginAsync = async (app) => {
  for (const { path: url, methods } of SHIM_PATHS) {
    const other = WRITE_METHODS.filter((method) => !methods.includes(method));
    const allow = [...methods, ...(methods.includes('GET') ? ['HEAD'] : []), 'OPTIONS'].join(', ');
    app.route({
      method: other,
      url,
      handler: async (request) => {
        throw new AppError(
          'METHOD_NOT_ALLOWED',
          `${request.method} is not allowed here; use ${methods.join(' or ')}`,
          {
            headers: { allow },
          },
        );
      },
    });
  }
};
