import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { mintToken, type TokenClaims } from '../../src/auth/token.js';
import { type AppConfig, DEVELOPMENT_JWT_SECRET, loadConfig, type RawEnv } from '../../src/config.js';
import { Database } from '../../src/db/database.js';
import { initOrm } from '../../src/db/orm.js';
import { testDatabaseUrl } from './env.js';

/** A lab id no other test (in this run or an earlier one) uses: tests never truncate shared tables. */
export function newLabId(): number {
  return 100_000_000 + Math.floor(Math.random() * 2_000_000_000);
}

export function testConfig(overrides: RawEnv = {}): AppConfig {
  return loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: testDatabaseUrl(),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    BRIDGE_WORKER_ENABLED: 'false',
    // Limits stay out of other tests' way; test/limits.test.ts sets them low.
    RATE_LIMIT_MAX: '10000000',
    UNDER_PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0',
    ...overrides,
  });
}

export interface TestApp {
  app: FastifyInstance;
  db: Database;
  config: AppConfig;
  close(): Promise<void>;
}

/** The real app on the real test database (migrated once by the global setup). */
export async function startTestApp(overrides: RawEnv = {}): Promise<TestApp> {
  const config = testConfig(overrides);
  const orm = await initOrm({ databaseUrl: config.databaseUrl, poolSize: 5 });
  const db = new Database(orm);
  const app = await buildApp({ config, db });
  await app.ready();
  return {
    app,
    db,
    config,
    async close() {
      await app.close();
      await db.close();
    },
  };
}

export function tokenFor(claims: TokenClaims, secret = DEVELOPMENT_JWT_SECRET): Promise<string> {
  return mintToken(secret, claims);
}

export async function authHeader(claims: TokenClaims): Promise<{ authorization: string }> {
  return { authorization: `Bearer ${await tokenFor(claims)}` };
}

/** REST PATCH of the lab-fields list (bulk resolve or reopen) as `claims`. */
export async function patchLabFields(t: TestApp, claims: TokenClaims, body: unknown) {
  return t.app.inject({
    method: 'PATCH',
    url: '/api-v3/account/missing-details/lab-fields',
    headers: { ...(await authHeader(claims)), 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });
}

/** The SQL statements `call` sends, as the ORM's query logger sees them (the driver-SQL paths log there too). */
export async function statementsDuring(db: Database, call: () => Promise<unknown>): Promise<string[]> {
  const logger = db.orm.config.getLogger();
  const original = logger.logQuery;
  const statements: string[] = [];
  logger.logQuery = (context) => {
    statements.push(context.query ?? '');
    original.call(logger, context);
  };
  try {
    await call();
  } finally {
    logger.logQuery = original;
  }
  return statements;
}
