import { register } from 'node:module';
import { loadConfig } from './config.js';
import { onTracingFlush } from './observability/tracing-flush.js';

/**
 * Preload (`node --import ./dist/src/tracing.js dist/src/server.js`): starts OpenTelemetry before the
 * application's modules load, so its instrumentations can patch them. Off, and nothing loaded, unless
 * an exporter is configured (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). A bad configuration is left for the entry point to report.
 */
const config = (() => {
  try {
    return loadConfig();
  } catch {
    return undefined;
  }
})();

if (config?.tracing.enabled) {
  // ES modules (this service's own, and its `import mysql from 'mysql2/promise'`) are patched through
  // the loader hook; CommonJS ones through require.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  const { startTracingSdk } = await import('./observability/tracing-sdk.js');
  const sdk = startTracingSdk(config);
  // Spans still buffered are sent before the process ends (the entry points exit after draining).
  onTracingFlush(() => sdk.shutdown());
}
