import type {
  FastifyReply,
  FastifyRequest,
  onResponseAsyncHookHandler,
  onSendAsyncHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';
import type { AppDeps } from '../app-deps.js';
import { SHIM_PATHS } from '../http/route-table.js';
import { ShadowComparer } from './shadow.service.js';

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join('; ') : value;
}

function asArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * The shim's GET paths that legacy PY-3 answers too (the contract's REST shim); the service's own
 * additions have no legacy counterpart to compare with.
 */
export const SHADOWED_PATHS: ReadonlySet<string> = new Set(
  SHIM_PATHS.filter((shim) => shim.legacyCounterpart && shim.methods.includes('GET')).map(
    (shim) => shim.path,
  ),
);

function isShadowedGet(method: string | string[], url: string): boolean {
  const methods = Array.isArray(method) ? method : [method];
  return methods.includes('GET') && SHADOWED_PATHS.has(url);
}

/**
 * Shadow mode for the shim's GET routes (SHADOW_SAMPLE_RATE, off by default): the answer of a
 * sampled request is kept when it is sent, and legacy PY-3 is asked the same once the client has
 * it. Register before the shim's routes: the hooks go on the routes registered after it.
 */
export const shadowMode = (deps: AppDeps) =>
  fp(
    async (app) => {
      const { sampleRate, timeoutMs, maxInFlight } = deps.config.shadow;
      if (sampleRate <= 0) return;
      const comparer = new ShadowComparer(
        { sampleRate, timeoutMs, maxInFlight, legacyPy3Url: deps.config.legacyPy3Url },
        app.log,
      );
      const sentAnswers = new WeakMap<FastifyRequest, string>();

      const keepSampledAnswer: onSendAsyncHookHandler = async (request, reply, payload) => {
        // A later page is asked with our opaque cursor, which legacy cannot read: first pages only.
        const paged = (request.query as { cursor?: unknown } | undefined)?.cursor !== undefined;
        if (reply.statusCode === 200 && typeof payload === 'string' && !paged && comparer.sampled()) {
          sentAnswers.set(request, payload);
        }
        return payload;
      };
      const compareWithLegacy: onResponseAsyncHookHandler = async (
        request: FastifyRequest,
        _reply: FastifyReply,
      ) => {
        const answer = sentAnswers.get(request);
        if (answer === undefined) return;
        sentAnswers.delete(request);
        comparer.start({
          route: request.routeOptions.url ?? request.url.split('?')[0]!,
          url: request.url,
          requestId: request.id,
          authorization: headerValue(request.headers.authorization),
          cookie: headerValue(request.headers.cookie),
          answer,
        });
      };

      app.addHook('onRoute', (route) => {
        if (!isShadowedGet(route.method, route.url)) return;
        route.onSend = [...asArray(route.onSend), keepSampledAnswer] as typeof route.onSend;
        route.onResponse = [...asArray(route.onResponse), compareWithLegacy] as typeof route.onResponse;
      });
      app.addHook('onClose', async () => {
        await comparer.close();
      });
    },
    { name: 'shadow-mode' },
  );
