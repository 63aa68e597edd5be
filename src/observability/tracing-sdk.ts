import { FastifyOtelInstrumentation } from '@fastify/otel';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { MySQL2Instrumentation } from '@opentelemetry/instrumentation-mysql2';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { AppConfig } from '../config.js';

/** Paths whose requests are not worth a trace: probes and scrapes arrive every few seconds. */
const UNTRACED_PATHS = new Set(['/health', '/health/live', '/metrics']);

/**
 * The OpenTelemetry SDK with the instrumentations this service needs: inbound HTTP and fastify's
 * routes and hooks, outbound fetch/undici (PY-3 proxying and session checks, PY-2 bridge calls: each
 * carries a W3C `traceparent`), and mysql2 queries. Exporter, endpoint, protocol, sampler and
 * resource come from the standard OTEL_* variables, which the SDK reads itself.
 */
export function startTracingSdk(config: AppConfig): NodeSDK {
  const sdk = new NodeSDK({
    serviceName: config.tracing.serviceName,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? ''),
      }),
      new UndiciInstrumentation(),
      new MySQL2Instrumentation(),
      new FastifyOtelInstrumentation({ registerOnInitialization: true }),
    ],
  });
  sdk.start();
  return sdk;
}
