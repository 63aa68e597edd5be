import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import pino from 'pino';
import { buildApp, loggerOptions, type Readiness } from './app.js';
import { type BackgroundTask, startBackgroundTasks } from './background.js';
import { backoffDelayMs, DATABASE_CONNECT_BACKOFF } from './backoff.js';
import { loadConfigOrExit } from './config.js';
import { Database } from './db/database.js';
import { ensureDatabaseExists, initOrm, migrateUpLocked, pendingMigrations } from './db/orm.js';
import { flushTracing } from './observability/tracing-flush.js';

/**
 * The server's connections with the requests each has in flight. close() waits for every open
 * connection, and Node's closeIdleConnections() neither ends a keep-alive connection whose request
 * finishes after it was called nor one that never sent a request: left alone, either holds the drain
 * until the hard stop.
 */
function trackConnections(server: Server): { closeQuiet(): void } {
  const inFlight = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  server.on('request', (request, response) => {
    const socket = request.socket;
    if (!inFlight.has(socket)) return;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const count = inFlight.get(socket);
      if (count !== undefined) inFlight.set(socket, count - 1);
    });
  });
  return {
    closeQuiet() {
      for (const [socket, count] of inFlight) if (count <= 0) socket.destroy();
    },
  };
}

/** Serves the Missing Details service: listens at once, then connects, migrates and becomes ready. */
async function main(): Promise<void> {
  const config = loadConfigOrExit();

  const logger = pino(loggerOptions(config) as pino.LoggerOptions);
  if (config.auth.usingDevelopmentSecret) {
    logger.warn('AUTH_JWT_SECRET and AUTH_JWKS_URL are unset: using the development JWT secret');
  }
  const db = new Database();
  const readiness: Readiness = { draining: false, pendingMigrations: [] };
  const app = await buildApp({ config, db, loggerInstance: logger, readiness });
  const connections = trackConnections(app.server);
  await app.listen({ host: config.host, port: config.port });

  let tasks: BackgroundTask[] = [];
  let stopping = false;

  /**
   * MIGRATE_ON_START (default): migrates under the database's migration lock, so instances starting
   * together migrate once. false: the release job (`npm run db:migrate`) migrates; until it has,
   * /health answers 503 naming the pending migrations and the instance keeps checking.
   */
  const migrated = async (orm: Awaited<ReturnType<typeof initOrm>>): Promise<boolean> => {
    if (config.operations.migrateOnStart) {
      const applied = await migrateUpLocked(orm, config.databaseUrl);
      if (applied.length > 0) logger.info({ migrations: applied }, 'applied migrations');
      return true;
    }
    readiness.pendingMigrations = await pendingMigrations(orm);
    return readiness.pendingMigrations.length === 0;
  };

  const connect = async (): Promise<void> => {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        await ensureDatabaseExists(config.databaseUrl);
        const orm = await initOrm({ databaseUrl: config.databaseUrl, poolSize: config.databasePoolSize });
        if (!(await migrated(orm))) {
          await orm.close(true);
          throw new Error('migrations pending (MIGRATE_ON_START=false): waiting for `npm run db:migrate`');
        }
        db.attach(orm);
        tasks = await startBackgroundTasks({ config, db, logger });
        logger.info('database ready');
        return;
      } catch (error) {
        const delay = backoffDelayMs(attempt, DATABASE_CONNECT_BACKOFF);
        logger.warn({ err: error, attempt, retryInMs: delay }, 'database not ready; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  };
  const connected = connect();

  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // Readiness turns 503 first, while the listener still serves: load balancers see it and stop
    // sending new requests before the port closes.
    readiness.draining = true;
    const graceMs = config.operations.shutdownGraceMs;
    logger.info({ signal, graceMs }, 'not ready; draining after the grace period');
    const hardStop = setTimeout(() => {
      logger.error('drain took too long; exiting');
      process.exit(1);
    }, graceMs + 20_000);
    hardStop.unref();
    if (graceMs > 0) await new Promise((resolve) => setTimeout(resolve, graceMs));
    logger.info('closing the listener; draining requests in flight');
    // In-flight requests finish; each connection is closed as soon as it has none.
    const sweep = setInterval(() => connections.closeQuiet(), 100);
    await app.close();
    clearInterval(sweep);
    await Promise.allSettled(tasks.map((task) => task.stop()));
    await connected.catch(() => undefined);
    await db.close();
    logger.info('stopped');
    await flushTracing();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

await main();
