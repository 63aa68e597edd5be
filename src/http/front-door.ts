import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../errors.js';
import { canonicalPath, hasDotSegments, pathPart } from './canonical-path.js';
import { ownerOf } from './route-table.js';

/**
 * The request target the service routes on (Fastify's `rewriteUrl`, before any route is chosen). A
 * path whose canonical form is the service's own, or a captured or flagged legacy path, is routed
 * in that form, so `/api-v3/registration/patients/ne%77` is captured and `…/lab-fields/` is served
 * by the shim rather than slipping past to legacy. Every other path keeps its bytes: legacy gets the
 * target as the client sent it.
 */
export function frontDoorUrl(url: string, method: string): string {
  const path = pathPart(url);
  const canonical = canonicalPath(path);
  if (canonical === path) return url;
  if (ownerOf(canonical, method) === 'legacy') return url;
  return canonical + url.slice(path.length);
}

/**
 * Refuses a path with dot segments (`/api-v3/x/%2e%2e/trpc/…`) before anything else: one router
 * resolves them and another does not, so no single canonical form would tell where it belongs.
 */
export function installDotSegmentRefusal(app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    if (!hasDotSegments(request.originalUrl)) return done();
    done(new ValidationError('The path has "." or ".." segments; send it resolved'));
  });
}
