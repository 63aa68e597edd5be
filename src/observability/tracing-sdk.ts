import { FastifyOtelInstrumentation } from '@fastify/otel';
import type { Span } from '@opentelemetry/api';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { MySQL2Instrumentation } from '@opentelemetry/instrumentation-mysql2';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { AppConfig } from '../config.js';

/** Paths whose requests are not worth a trace: probes and scrapes arrive every few seconds. */
const UNTRACED_PATHS = new Set(['/health', '/health/live', '/metrics']);

/**
 * A query string with every value replaced (`?search=REDACTED`): queries carry patient names and
 * values, which never leave the service in a span. Paths, parameter names and ids stay.
 */
export function redactedQuery(pathWithQuery: string): { path: string; query: string } {
  const at = pathWithQuery.indexOf('?');
  if (at < 0) return { path: pathWithQuery, query: '' };
  const params = new URLSearchParams(pathWithQuery.slice(at + 1));
  const query = [...params.keys()].map((name) => `${encodeURIComponent(name)}=REDACTED`).join('&');
  return { path: pathWithQuery.slice(0, at), query };
}

function redactUrlAttributes(span: Span, pathWithQuery: string, origin?: string): void {
  const { path, query } = redactedQuery(pathWithQuery);
  if (!query) return;
  span.setAttribute('url.query', query);
  if (origin) span.setAttribute('url.full', `${origin}${path}?${query}`);
}

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
        requestHook: (span, request) => {
          if ('url' in request && typeof request.url === 'string') redactUrlAttributes(span, request.url);
          else if ('path' in request) {
            redactUrlAttributes(span, request.path, `${request.protocol}//${request.host}`);
          }
        },
      }),
      new UndiciInstrumentation({
        requestHook: (span, request) => redactUrlAttributes(span, request.path, request.origin),
      }),
      // Statements without their values: the parameters of a capture are patient data.
      new MySQL2Instrumentation({ maskStatement: true }),
      new FastifyOtelInstrumentation({
        registerOnInitialization: true,
        // Its request span names url.path with the query string: the path alone.
        requestHook: (span, request) => span.setAttribute('url.path', redactedQuery(request.url).path),
      }),
    ],
  });
  sdk.start();
  return sdk;
}
