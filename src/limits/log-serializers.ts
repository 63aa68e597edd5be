import type { FastifyRequest } from 'fastify';

/**
 * The request as logged: the path without its query string, which can carry patient values
 * (`?user_details_id=…`, searches) that must never reach the logs.
 */
export function requestLogSerializer(request: FastifyRequest): Record<string, unknown> {
  const url = request.url ?? '';
  const query = url.indexOf('?');
  return {
    method: request.method,
    url: query === -1 ? url : `${url.slice(0, query)}?[query]`,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}
