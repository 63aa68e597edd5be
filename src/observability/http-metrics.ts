import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram } from 'prom-client';
import type { Database } from '../db/database.js';
import { metricsRegistry } from '../metrics.js';

/** The route label of every request that the compatibility proxy relays to legacy PY-3. */
export const LEGACY_PROXY_ROUTE = 'legacy-proxy';
/** The route label of a request no route matched (the proxy's catch-all normally claims them). */
export const UNMATCHED_ROUTE = 'unmatched';

// The proxy's catch-all routes; any path under them would make the route label unbounded.
const PROXY_ROUTE_PATTERNS = new Set(['/', '/*']);
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

collectDefaultMetrics({ register: metricsRegistry });

const httpRequests = new Counter({
  name: 'md_http_requests_total',
  help: 'HTTP requests answered, by method, route pattern (legacy-proxy for relayed legacy paths) and status code',
  labelNames: ['method', 'route', 'status_code'] as const,
  registers: [metricsRegistry],
});

const httpRequestDuration = new Histogram({
  name: 'md_http_request_duration_seconds',
  help: 'Time from receiving a request to having sent its answer, by method and route pattern',
  labelNames: ['method', 'route'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [metricsRegistry],
});

/** Requests the front door turned away before any route ran, by reason. */
export const frontDoorRejections = new Counter({
  name: 'md_front_door_rejections_total',
  help: 'Requests refused at the front door before routing (client_open_requests: one address held too many open)',
  labelNames: ['reason'] as const,
  registers: [metricsRegistry],
});

/**
 * The route label: the pattern a request matched, never its concrete path, so the label set stays
 * bounded whatever clients send.
 */
export function routeLabel(request: FastifyRequest): string {
  const pattern = request.routeOptions.url;
  if (pattern === undefined) return UNMATCHED_ROUTE;
  return PROXY_ROUTE_PATTERNS.has(pattern) ? LEGACY_PROXY_ROUTE : pattern;
}

/** Counts and times every answer. Register before the routes. */
export function observeHttpRequests(app: FastifyInstance): void {
  app.addHook('onResponse', (request, reply, done) => {
    const method = KNOWN_METHODS.has(request.method) ? request.method : 'OTHER';
    const route = routeLabel(request);
    httpRequests.inc({ method, route, status_code: String(reply.statusCode) });
    httpRequestDuration.observe({ method, route }, reply.elapsedTime / 1000);
    done();
  });
}

/** The part of a tarn pool (knex's, under MikroORM) that the gauges read. */
interface ConnectionPool {
  readonly max: number;
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
}

/** The databases of the apps built in this process (one in production; tests build several). */
const observedDatabases = new Set<Database>();

function poolOf(db: Database): ConnectionPool | undefined {
  if (!db.isAttached) return undefined;
  const knex = db.orm.em.getConnection().getKnex() as unknown as { client?: { pool?: ConnectionPool } };
  return knex.client?.pool ?? undefined;
}

function sumOverPools(read: (pool: ConnectionPool) => number): number {
  let total = 0;
  for (const db of observedDatabases) {
    const pool = poolOf(db);
    if (pool) total += read(pool);
  }
  return total;
}

new Gauge({
  name: 'md_db_pool_connections',
  help: 'Database pool connections by state: used (lent to a query or transaction), free (idle), pending (requests waiting for one)',
  labelNames: ['state'] as const,
  registers: [metricsRegistry],
  collect() {
    this.set(
      { state: 'used' },
      sumOverPools((pool) => pool.numUsed()),
    );
    this.set(
      { state: 'free' },
      sumOverPools((pool) => pool.numFree()),
    );
    this.set(
      { state: 'pending' },
      sumOverPools((pool) => pool.numPendingAcquires() + pool.numPendingCreates()),
    );
  },
});

new Gauge({
  name: 'md_db_pool_max_connections',
  help: 'The most connections the database pool opens (DATABASE_POOL_SIZE)',
  registers: [metricsRegistry],
  collect() {
    this.set(sumOverPools((pool) => pool.max));
  },
});

/** Reports `db`'s pool at /metrics while the app lives (the database may attach after start-up). */
export function observeDatabasePool(app: FastifyInstance, db: Database): void {
  observedDatabases.add(db);
  app.addHook('onClose', async () => {
    observedDatabases.delete(db);
  });
}
