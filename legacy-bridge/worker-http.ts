import http from 'node:http';
import { metricsRegistry } from '../src/metrics.js';

/** What /health reports: the worker's own state and whether its database answers right now. */
export interface WorkerHealth {
  state: () => 'starting' | 'running' | 'draining';
  databaseAnswers: () => Promise<boolean>;
}

const PROBE_TIMEOUT_MS = 2_000;

/**
 * The standalone worker's own port (WORKER_PORT): GET /health (200 when running with its database
 * answering, else 503 saying why) and GET /metrics (the bridge's Prometheus metrics). Nothing else,
 * and no request body is ever read.
 */
export async function startWorkerHttp(
  health: WorkerHealth,
  listen: { host: string; port: number },
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((request, response) => {
    void answer(request.method ?? 'GET', (request.url ?? '/').split('?')[0] ?? '/', health).then(
      ({ status, type, body }) => response.writeHead(status, { 'content-type': type }).end(body),
      () => response.writeHead(500, { 'content-type': 'application/json' }).end('{"status":"error"}'),
    );
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(
  method: string,
  path: string,
  health: WorkerHealth,
): Promise<{ status: number; type: string; body: string }> {
  const json = (status: number, value: unknown) => ({
    status,
    type: 'application/json',
    body: JSON.stringify(value),
  });
  if (path !== '/health' && path !== '/metrics') return json(404, { status: 'not found' });
  if (method !== 'GET' && method !== 'HEAD') return json(405, { status: 'method not allowed' });
  if (path === '/metrics') {
    return { status: 200, type: metricsRegistry.contentType, body: await metricsRegistry.metrics() };
  }
  const state = health.state();
  const timeout = new Promise<boolean>((resolve) =>
    setTimeout(() => resolve(false), PROBE_TIMEOUT_MS).unref(),
  );
  const database =
    state === 'running' && (await Promise.race([health.databaseAnswers().catch(() => false), timeout]));
  return json(database ? 200 : 503, {
    status: database ? 'ok' : state === 'running' ? 'unavailable' : state,
    database,
  });
}
