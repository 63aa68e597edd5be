import type { FastifyBaseLogger } from 'fastify';
import { startBridgeWorker } from '../legacy-bridge/worker.js';
import type { AppConfig } from './config.js';
import type { Database } from './db/database.js';
import { startCaptureRetrier } from './services/capture-retry.service.js';

/** A loop that runs beside the HTTP server (the bridge worker, the capture retrier…). */
export interface BackgroundTask {
  readonly name: string;
  /** Finishes or releases the work in flight, then resolves. */
  stop(): Promise<void>;
}

export interface BackgroundContext {
  config: AppConfig;
  db: Database;
  logger: FastifyBaseLogger;
}

/** Starts every background task once the database is migrated and ready. */
export async function startBackgroundTasks(_context: BackgroundContext): Promise<BackgroundTask[]> {
  const tasks: BackgroundTask[] = [];
  if (_context.config.bridge.workerEnabled) tasks.push(startBridgeWorker(_context));
  tasks.push(startCaptureRetrier(_context));
  return tasks;
}
