import type { FastifyPluginAsync } from 'fastify';
import { AppError } from '../errors.js';

/** The shim's paths and the methods they serve; HEAD follows GET. */
export const SHIM_PATH_METHODS: ReadonlyArray<readonly [path: string, methods: readonly string[]]> = [
  ['/api-v3/registration/patients/missing-details-templates', ['GET']],
  ['/api-v3/registration/patients/lab-missing-details-config', ['GET', 'POST']],
  ['/api-v3/account/missing-details/lab-fields', ['GET', 'PATCH']],
];

const WRITE_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/**
 * The service owns the shim's paths outright: another method on them is a 405 from the service,
 * not a trip to legacy. OPTIONS still goes to legacy (it answers CORS preflights as before).
 */
export const methodNotAllowedRoutes: FastifyPluginAsync = async (app) => {
  for (const [url, methods] of SHIM_PATH_METHODS) {
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
