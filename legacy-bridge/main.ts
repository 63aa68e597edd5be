import type { MikroORM } from '@mikro-orm/core';
import type { MySqlDriver } from '@mikro-orm/mysql';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { backoffDelayMs, DATABASE_CONNECT_BACKOFF } from '../src/backoff.js';
import { loadConfigOrExit } from '../src/config.js';
import { Database } from '../src/db/database.js';
import { initOrm } from '../src/db/orm.js';
import { flushTracing } from '../src/observability/tracing-flush.js';
import { type BridgeWorker, startBridgeWorker } from './worker.js';
import { startWorkerHttp } from './worker-http.js';

/**
 * `npm run worker`: the legacy bridge worker alone, for deployments that run it apart from the
 * HTTP server (which then runs with BRIDGE_WORKER_ENABLED=false). It never migrates: it waits until
 * the server (or `npm run db:migrate`) has. SIGTERM and SIGINT drain it. /health and /metrics are
 * served on WORKER_PORT (legacy-bridge/worker-http.ts).
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  // Not the app's logger options: the worker logs no requests, and importing the app would slow its start.
  const logger = pino({ level: config.logLevel }) as unknown as FastifyBaseLogger;

  let stopping = false;
  let orm: MikroORM<MySqlDriver> | undefined;
  let worker: BridgeWorker | undefined;
  let db: Database | undefined;

  const http = await startWorkerHttp(
    {
      state: () => (stopping ? 'draining' : worker ? 'running' : 'starting'),
      databaseAnswers: async () => (db ? db.ping() : false),
    },
    { host: config.host, port: config.operations.workerPort },
  );
  logger.info({ port: http.port }, 'worker /health and /metrics listening');

  const connect = async (): Promise<void> => {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        orm ??= await initOrm({ databaseUrl: config.databaseUrl, poolSize: config.databasePoolSize });
        const pending = await orm.getMigrator().getPendingMigrations();
        if (pending.length === 0) {
          if (stopping) return;
          db = new Database(orm);
          worker = startBridgeWorker({ config, db, logger });
          return;
        }
        logger.warn({ pending: pending.map((m) => m.name) }, 'database not migrated yet; waiting');
      } catch (error) {
        logger.warn({ err: error, attempt }, 'database not ready; retrying');
      }
      await new Promise((resolve) => setTimeout(resolve, backoffDelayMs(attempt, DATABASE_CONNECT_BACKOFF)));
    }
  };
  const connected = connect();

  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining the legacy bridge worker');
    const hardStop = setTimeout(
      () => {
        logger.error('drain took too long; exiting');
        process.exit(1);
      },
      config.bridge.shutdownGraceMs + config.bridge.requestTimeoutMs + 10_000,
    );
    hardStop.unref();
    await connected.catch(() => undefined);
    await worker?.stop();
    await http.close();
    await orm?.close(true);
    await flushTracing();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

await main();
