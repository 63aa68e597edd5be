import { getHeapStatistics } from 'node:v8';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AppDeps } from '../app-deps.js';
import { principalOf } from '../auth/request-principal.js';
import { AppError, ServiceUnavailableError } from '../errors.js';
import { pathPart } from '../http/canonical-path.js';
import { ownerOf } from '../http/route-table.js';

/** The most calls one tRPC batch may hold; a larger batch is a 400 before any call runs. */
export const MAX_TRPC_BATCH_SIZE = 10;

/** Paths that answer under any load and any rate: probes must see the truth, not a 429 or 503. */
const ALWAYS_ANSWERED = new Set(['/health', '/health/live', '/metrics']);

function pathOf(request: FastifyRequest): string {
  return pathPart(request.url);
}

/**
 * Plain proxied legacy paths are legacy's to limit (the contract forwards them untouched); the
 * captured and flagged ones do work here, so they count like the service's own routes.
 */
function isExemptFromRateLimit(request: FastifyRequest): boolean {
  const path = pathOf(request);
  if (ALWAYS_ANSWERED.has(path)) return true;
  // request.url is already in the front door's form for every path but plain legacy ones.
  return ownerOf(path, request.method) === 'legacy';
}

/** The caller's bucket: its lab and user when it has a principal, else its address. */
async function rateLimitKey(deps: AppDeps, request: FastifyRequest): Promise<string> {
  // The limiter asks for the key before it consults the allow list: an exempt request must not pay
  // (nor make legacy pay) a session check for a key nobody reads.
  if (isExemptFromRateLimit(request)) return `ip:${request.ip}`;
  try {
    const principal = await principalOf(deps, request);
    if (principal) return `principal:${principal.labId}:${principal.userId}`;
  } catch {
    // The route itself reports why the principal could not be resolved (e.g. a 502).
  }
  return `ip:${request.ip}`;
}

/**
 * Request limits that hold before any database work: a per-principal rate limit (429 with
 * Retry-After) and load shedding (503 with Retry-After) when the event loop or the heap is
 * saturated, while the health probes keep answering. Register before the routes.
 */
export const requestLimits = (deps: AppDeps): FastifyPluginAsync =>
  fp(async (app) => {
    const { limits } = deps.config;
    const retryAfter = String(limits.retryAfterSeconds);
    await app.register(underPressure, {
      sampleInterval: limits.pressureSampleIntervalMs,
      maxEventLoopDelay: limits.maxEventLoopDelayMs,
      maxHeapUsedBytes: limits.maxHeapUsedBytes || Math.floor(getHeapStatistics().heap_size_limit * 0.9),
      retryAfter: limits.retryAfterSeconds,
      pressureHandler: async (request, reply, type, value) => {
        if (ALWAYS_ANSWERED.has(pathOf(request))) return;
        request.log.warn({ type, value }, 'shedding load');
        reply.header('retry-after', retryAfter);
        throw new ServiceUnavailableError('The service is overloaded; retry after a short wait');
      },
    });
    await app.register(rateLimit, {
      global: true,
      max: limits.rateLimitMax,
      timeWindow: limits.rateLimitWindowMs,
      keyGenerator: (request) => rateLimitKey(deps, request),
      allowList: (request) => isExemptFromRateLimit(request),
      errorResponseBuilder: (_request, context) =>
        new AppError(
          'TOO_MANY_REQUESTS',
          `Rate limit exceeded: at most ${context.max} requests per ${context.after}; retry in ${Math.ceil(context.ttl / 1000)} s`,
          { headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) } },
        ),
    });
  });
