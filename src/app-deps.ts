import type { FastifyBaseLogger } from 'fastify';
import type { PrincipalResolver } from './auth/principal.js';
import type { AppConfig } from './config.js';
import type { Database } from './db/database.js';

/** What the routes and procedures are given: built once per process by the app factory. */
export interface AppDeps {
  readonly config: AppConfig;
  readonly db: Database;
  readonly principals: PrincipalResolver;
  readonly logger: FastifyBaseLogger;
}
