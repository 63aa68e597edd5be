import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { appRouter } from '../routers/app.router.js';
import { createContextInner } from '../routers/context.js';
import type { AppDeps } from './app-deps.js';
import { PrincipalResolver } from './auth/principal.js';
import { principalOf, requirePrincipal } from './auth/request-principal.js';
import type { AppConfig } from './config.js';
import type { Database } from './db/database.js';
import {
  type AppError,
  ERROR_TABLE,
  type ErrorIssue,
  errorBody,
  toAppError,
  ValidationError,
} from './errors.js';
import { installClientLimits, serverTimeouts } from './http/client-limits.js';
import { frontDoorUrl, installDotSegmentRefusal } from './http/front-door.js';
import { MAX_TRPC_BATCH_SIZE, requestLimits } from './limits/limits.plugin.js';
import { requestLogSerializer } from './limits/log-serializers.js';
import { metricsRegistry } from './metrics.js';
import { observeDatabasePool, observeHttpRequests } from './observability/http-metrics.js';
import { REQUEST_ID_HEADER, requestIdOf } from './observability/request-id.js';
import { legacyProxy } from './proxy/legacy-proxy.js';
import { apiDocs } from './rest/api-docs.routes.js';
import { labFieldsRoutes } from './rest/lab-fields.routes.js';
import { labFieldsSummaryExportRoutes } from './rest/lab-fields-summary-export.routes.js';
import { methodNotAllowedRoutes } from './rest/method-not-allowed.routes.js';
import { placeholderConfigsRoutes } from './rest/placeholder-configs.routes.js';
import { templatesRoutes } from './rest/templates.routes.js';
import { workQueueRoutes } from './rest/work-queue.routes.js';
import { shadowMode } from './shadow/shadow.plugin.js';
import { trpcHttp } from './trpc/trpc-http.plugin.js';

/** Bodies on the shim and /trpc are at most 1 MiB. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface BuildAppOptions {
  config: AppConfig;
  db: Database;
  /** Fastify logger options, or an existing pino logger; defaults to pino at the configured level. */
  logger?: FastifyServerOptions['logger'];
  loggerInstance?: FastifyBaseLogger;
  principals?: PrincipalResolver;
  /** Off only in the test that holds the tRPC fast path to the standard adapter's answers. */
  trpcFastPath?: boolean;
  /** What the server entry knows of its own state, which /health reports (src/server.ts). */
  readiness?: Readiness;
}

/** Set by the server entry: draining after SIGTERM, or migrations left to the release job still pending. */
export interface Readiness {
  draining: boolean;
  pendingMigrations: string[];
}

export function loggerOptions(config: AppConfig): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    serializers: { req: requestLogSerializer },
    // LOG_FORMAT=pretty (development only: pino-pretty is a devDependency) prints readable lines.
    ...(config.logFormat === 'pretty'
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'res.headers["set-cookie"]',
        'headers.authorization',
        'headers.cookie',
      ],
      censor: '[redacted]',
    },
  };
}

function validationError(error: unknown): ValidationError | undefined {
  if (!hasZodFastifySchemaValidationErrors(error)) return undefined;
  const where = (error as { validationContext?: string }).validationContext ?? 'input';
  const issues: ErrorIssue[] = error.validation.flatMap((v) => {
    const base = v.instancePath.replace(/^\//, '').split('/').filter(Boolean).join('.');
    const keys = (v.params as { keys?: unknown }).keys;
    if (v.keyword === 'unrecognized_keys' && Array.isArray(keys)) {
      return keys.map((key) => ({
        path: base ? `${base}.${String(key)}` : String(key),
        message: `unknown field "${String(key)}"`,
      }));
    }
    return [{ path: base, message: v.message ?? 'invalid' }];
  });
  const first = issues[0];
  const what = where === 'querystring' ? 'query' : where;
  return new ValidationError(
    first ? `Invalid ${what}: ${first.path ? `${first.path}: ` : ''}${first.message}` : `Invalid ${what}`,
    issues,
  );
}

/**
 * Builds the service: the tRPC API, the /api-v3 shim and health. Never listens; the server entry
 * and the tests decide how it is reached.
 */
export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { config, db } = options;
  const app = Fastify({
    ...(options.loggerInstance
      ? { loggerInstance: options.loggerInstance }
      : { logger: options.logger ?? loggerOptions(config) }),
    ...serverTimeouts(config.http),
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: requestIdOf,
    requestIdHeader: false,
    return503OnClosing: true,
    // Behind the edge, request.ip is the client X-Forwarded-For names, not the edge's own address.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 500 },
    rewriteUrl: (request) => frontDoorUrl(request.url ?? '/', request.method ?? 'GET'),
  }).withTypeProvider<ZodTypeProvider>();

  // First of all hooks: a client's bounds hold before any parsing, principal or database work.
  installClientLimits(app, config.http);
  installDotSegmentRefusal(app);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // The service's routes take JSON only (text/plain is a 415 there); proxied bodies keep their bytes.
  app.removeContentTypeParser('text/plain');

  const principals =
    options.principals ??
    new PrincipalResolver({
      jwtSecret: config.auth.jwtSecret,
      jwksUrl: config.auth.jwksUrl,
      legacyPy3Url: config.legacyPy3Url,
      legacyTimeoutMs: config.legacyTimeoutMs,
      sessionCacheTtlMs: config.auth.sessionCacheTtlMs,
      sessionCacheMaxEntries: config.auth.sessionCacheMaxEntries,
      tokenCacheMaxEntries: config.auth.tokenCacheMaxEntries,
      jwtIssuer: config.auth.jwtIssuer,
      jwtAudience: config.auth.jwtAudience,
      clockToleranceSeconds: config.auth.clockToleranceSeconds,
    });
  const deps: AppDeps = { config, db, principals, logger: app.log };
  app.decorate('deps', deps);

  // Callback-style hooks: every request pays them, and an async hook costs a promise each. Proxied
  // answers go out through reply.send as well (@fastify/reply-from), so they carry the header too.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    done(null, payload);
  });
  observeHttpRequests(app);
  observeDatabasePool(app, db);

  app.setErrorHandler((error, request, reply) => {
    const appError: AppError = validationError(error) ?? toAppError(error);
    const { status } = ERROR_TABLE[appError.code];
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: appError.code, message: appError.message }, 'request rejected');
    if (appError.headers) reply.headers(appError.headers);
    return reply.code(status).type('application/json; charset=utf-8').send(errorBody(appError));
  });

  // Before every route: the rate limit attaches to routes as they are added.
  await app.register(requestLimits(deps));

  app.get('/health/live', async () => ({ status: 'ok' }));

  app.get('/metrics', async (_request, reply) => {
    return reply.type(metricsRegistry.contentType).send(await metricsRegistry.metrics());
  });

  const readiness = options.readiness;
  app.get('/health', async (_request, reply) => {
    if (readiness?.draining) return reply.code(503).send({ status: 'draining', database: db.isAttached });
    if (readiness?.pendingMigrations.length) {
      return reply
        .code(503)
        .send({ status: 'unavailable', database: false, pendingMigrations: readiness.pendingMigrations });
    }
    const ready = db.isAttached && (await db.ping());
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', database: ready });
  });

  await app.register(
    trpcHttp({
      router: appRouter,
      maxBatchSize: MAX_TRPC_BATCH_SIZE,
      fastPath: options.trpcFastPath ?? true,
      createContext: ({ req }) =>
        createContextInner({ deps, log: req.log, principal: () => principalOf(deps, req) }),
      onError: ({ error, path }) => {
        if (error.code === 'INTERNAL_SERVER_ERROR')
          app.log.error({ err: error.cause ?? error, path }, 'trpc failed');
      },
    }),
    { prefix: '/trpc' },
  );

  // Before the shim's routes: it documents the routes registered after it.
  await app.register(apiDocs);
  await app.register(async (shim) => {
    // Who is asking is judged first: without a principal every shim path is a 401, before its
    // body is read, its input validated or its method judged.
    shim.addHook('onRequest', (request, _reply, done) => {
      requirePrincipal(deps, request).then(() => done(), done);
    });
    await shim.register(shadowMode(deps));
    await shim.register(templatesRoutes(deps));
    await shim.register(placeholderConfigsRoutes(deps));
    await shim.register(labFieldsRoutes(deps));
    await shim.register(labFieldsSummaryExportRoutes(deps));
    await shim.register(workQueueRoutes(deps));
    await shim.register(methodNotAllowedRoutes);
  });

  // Keep last: whatever the routes above do not claim goes to legacy PY-3.
  await app.register(legacyProxy(deps));

  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    deps: AppDeps;
  }
}
