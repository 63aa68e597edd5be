import { tracingChannel } from 'node:diagnostics_channel';
import pino from 'pino';
import { appRouter } from '../routers/app.router.js';
import { createContextInner } from '../routers/context.js';
import { createCallerFactory } from '../routers/trpc.js';
import type { AppDeps } from '../src/app-deps.js';
import { PrincipalResolver } from '../src/auth/principal.js';
import { DEVELOPMENT_JWT_SECRET, loadConfig } from '../src/config.js';
import { Database } from '../src/db/database.js';
import { initOrm } from '../src/db/orm.js';
import { BENCH_FIELDS } from './bench-fields.js';

export interface StatementCount {
  fields: number;
  /** Statements of a capture that opens `fields` rows. */
  opening: number;
  /** Statements of the next capture, which resolves them all. */
  resolving: number;
}

/**
 * Counts the SQL statements of capture.patient (through the tRPC router, in this process) with
 * mysql2's diagnostics channels, which see every statement the ORM sends, BEGIN and COMMIT included.
 * A set-based engine sends as many for 100 fields as for one.
 */
export async function countCaptureStatements(
  databaseUrl: string,
  fieldCounts: readonly number[],
  newLab: (fields: number) => Promise<number>,
): Promise<StatementCount[]> {
  const most = Math.max(...fieldCounts);
  if (most > BENCH_FIELDS.length) throw new Error(`at most ${BENCH_FIELDS.length} bench fields`);
  const labId = await newLab(most);
  const config = loadConfig({
    NODE_ENV: 'production',
    AUTH_JWT_SECRET: DEVELOPMENT_JWT_SECRET,
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'silent',
    BRIDGE_WORKER_ENABLED: 'false',
  });
  const orm = await initOrm({ databaseUrl, poolSize: 2 });
  const db = new Database(orm);
  const logger = pino({ level: 'silent' });
  const deps: AppDeps = {
    config,
    db,
    logger,
    principals: new PrincipalResolver({
      jwtSecret: config.auth.jwtSecret,
      legacyPy3Url: config.legacyPy3Url,
      legacyTimeoutMs: config.legacyTimeoutMs,
      sessionCacheTtlMs: 0,
    }),
  };
  const caller = createCallerFactory(appRouter)(
    createContextInner({
      deps,
      log: logger,
      principal: { labId, userId: 7, role: 'lab_user', orgId: null, via: 'jwt' },
    }),
  );

  let counting = false;
  let statements = 0;
  const ignore = () => undefined;
  const count = {
    start: () => {
      if (counting) statements++;
    },
    end: ignore,
    asyncStart: ignore,
    asyncEnd: ignore,
    error: ignore,
  };
  const channels = [tracingChannel('mysql2:query'), tracingChannel('mysql2:execute')];
  for (const channel of channels) channel.subscribe(count);
  const counted = async (run: () => Promise<{ opened: number; resolved: number }>) => {
    statements = 0;
    counting = true;
    try {
      return { outcome: await run(), statements };
    } finally {
      counting = false;
    }
  };

  try {
    const counts: StatementCount[] = [];
    for (const [index, fields] of fieldCounts.entries()) {
      const userDetailsId = 1_000 + index;
      const saved = BENCH_FIELDS.slice(0, fields);
      const open = await counted(() =>
        caller.capture.patient({
          userDetailsId,
          values: Object.fromEntries(saved.map((f) => [f.name, f.placeholder])),
        }),
      );
      const resolve = await counted(() =>
        caller.capture.patient({
          userDetailsId,
          values: Object.fromEntries(saved.map((f) => [f.name, `real ${f.name}`])),
        }),
      );
      if (open.outcome.opened !== fields || resolve.outcome.resolved !== fields) {
        throw new Error(
          `capturing ${fields} fields opened ${open.outcome.opened} and resolved ${resolve.outcome.resolved} rows`,
        );
      }
      counts.push({ fields, opening: open.statements, resolving: resolve.statements });
    }
    return counts;
  } finally {
    for (const channel of channels) channel.unsubscribe(count);
    await db.close();
  }
}
