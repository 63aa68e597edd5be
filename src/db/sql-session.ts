import { DriverException } from '@mikro-orm/core';
import type { Knex } from '@mikro-orm/knex';
import type { Em, SqlReader } from './database.js';

/**
 * The one way the service sends its own SQL (every statement lives in src/repositories/): a
 * `SqlSession` with `query` (rows) and `execute` (a write's result), on connections of the ORM's own
 * pool, so with its settings (UTC, big numbers, date strings). Statements go to mysql2 with its `?`
 * placeholders (an array value becomes a comma-separated list, so `IN (?)` takes a whole id list as
 * one value): for statements that serve many rows or carry thousands of values, MikroORM's and
 * knex's query layers (inlining every parameter, building a query, converting the result) cost as
 * much CPU as the statement itself. Every error comes out converted as the ORM converts it
 * (DeadlockException, UniqueConstraintViolationException… with the driver's `code`), so
 * src/errors.ts and `withDeadlockRetry` handle every path alike; a pool with no free connection in
 * time throws knex's timeout error.
 */
export interface SqlSession {
  /** The rows of one statement (a SELECT). */
  query<T>(sql: string, params: readonly unknown[]): Promise<T[]>;
  /** One write; answers what mysql2 says of it. */
  execute(sql: string, params: readonly unknown[]): Promise<WriteResult>;
}

/** What mysql2 answers to an UPDATE, INSERT or DELETE. */
export interface WriteResult {
  /** Rows matched, not only rows changed: the driver connects with CLIENT_FOUND_ROWS. */
  affectedRows: number;
  insertId: number;
}

/** What a session needs of an entity manager: no entities, so no identity map to keep per request. */
export type SessionSource = SqlReader;

/** The callback API of the mysql2 connections in knex's pool. */
interface PooledConnection {
  query(
    sql: string,
    values: readonly unknown[],
    callback: (error: Error | null, result: unknown) => void,
  ): void;
}

/** The part of knex's client (MikroORM's, under the entity manager) that lends its connections. */
interface ConnectionLender {
  acquireConnection(): Promise<PooledConnection>;
  releaseConnection(connection: PooledConnection): Promise<void>;
}

function lenderOf(source: SessionSource | Knex.Transaction): ConnectionLender {
  const knex = 'getKnex' in source ? source.getKnex() : source;
  return knex.client as unknown as ConnectionLender;
}

function send(connection: PooledConnection, sql: string, params: readonly unknown[] = []): Promise<unknown> {
  return new Promise((resolve, reject) => {
    connection.query(sql, params, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/** The single conversion of driver errors into the ORM's exception types. */
function converted(em: SessionSource, error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof DriverException) return error;
  return em.getPlatform().getExceptionConverter().convertException(error);
}

/** One statement on a connection borrowed from the pool for it alone, logged as the ORM logs its own. */
async function onPooledConnection(
  em: SessionSource,
  sql: string,
  params: readonly unknown[],
): Promise<unknown> {
  const lender = lenderOf(em);
  const logger = em.config.getLogger();
  const started = Date.now();
  const connection = await lender.acquireConnection();
  try {
    const result = await send(connection, sql, params);
    // Through the ORM's query logger like every other statement (debug logging, query counts).
    const results = Array.isArray(result) ? result.length : undefined;
    logger.logQuery({ level: 'info', query: sql, params: [...params], took: Date.now() - started, results });
    return result;
  } catch (error) {
    logger.logQuery({ level: 'error', query: sql, params: [...params], took: Date.now() - started });
    throw converted(em, error);
  } finally {
    void lender.releaseConnection(connection);
  }
}

/**
 * One statement on the connection of the ORM transaction `em` is in, sent to mysql2 as every other
 * path sends it. Through knex's `raw` instead, knex re-scanned and re-wrote the statement for every
 * binding before mysql2 formatted it again: a fifth of the service's CPU in a 5,000-id bulk resolve.
 */
async function inOrmTransaction(
  em: SessionSource,
  transaction: Knex.Transaction,
  sql: string,
  params: readonly unknown[],
): Promise<unknown> {
  // As knex refuses it: a statement after the commit or rollback would run outside the transaction.
  if (transaction.isCompleted()) throw new Error('Transaction query already complete');
  try {
    // A transaction's client lends only the transaction's own connection.
    const connection = await lenderOf(transaction).acquireConnection();
    return await send(connection, sql, params);
  } catch (error) {
    throw converted(em, error);
  }
}

/**
 * A session on an entity manager: inside the ORM transaction the manager is in (`em.transactional`),
 * if any; otherwise each statement on a pooled connection of its own.
 */
export function sqlSession(em: SessionSource): SqlSession {
  const run = (sql: string, params: readonly unknown[]) => {
    const transaction = em.getTransactionContext<Knex.Transaction>();
    return transaction ? inOrmTransaction(em, transaction, sql, params) : onPooledConnection(em, sql, params);
  };
  return {
    query: async <T>(sql: string, params: readonly unknown[]) => (await run(sql, params)) as T[],
    execute: async (sql, params) => (await run(sql, params)) as WriteResult,
  };
}

/**
 * MariaDB turns an IN list of 1,000 values or more into a join with a derived table
 * (`in_predicate_conversion_threshold`), after which its plan may read, and under FOR UPDATE or in an
 * UPDATE lock, far more rows than listed: a whole table, or every open row of a lab. Statements take
 * long id lists in slices below that size, so that each is a range read of exactly the listed keys.
 */
export const ID_SLICE = 999;

/** `values` in consecutive slices of at most `size`. */
export function slicesOf<T>(values: readonly T[], size = ID_SLICE): T[][] {
  const slices: T[][] = [];
  for (let from = 0; from < values.length; from += size) slices.push(values.slice(from, from + size));
  return slices;
}

export type IsolationLevel = 'READ COMMITTED' | 'REPEATABLE READ';

/**
 * The transaction helper for work whose statements are all the repositories' SQL: one pooled
 * connection, no unit of work, no query builder, no knex transaction object. Work that may be a
 * deadlock victim runs it inside `withDeadlockRetry` (src/db/deadlock-retry.ts), the only retry loop.
 * Work that also writes entities uses the ORM's `em.transactional`, and its repositories join that
 * transaction through `sqlSession(em)`.
 */
export async function inTransaction<T>(
  em: Em,
  isolation: IsolationLevel,
  work: (sql: SqlSession) => Promise<T>,
): Promise<T> {
  const lender = lenderOf(em);
  const connection = await lender.acquireConnection();
  const begun = Promise.all([
    send(connection, `SET TRANSACTION ISOLATION LEVEL ${isolation}`),
    send(connection, 'BEGIN'),
  ]);
  // Marked handled: work that fails before its first statement never awaits it.
  begun.catch(() => undefined);
  const session: SqlSession = {
    // A read is queued right behind BEGIN (the connection runs its statements in order), saving the
    // event-loop turns between those round trips; its rows are used only once BEGIN has succeeded.
    query: async <T>(sql: string, params: readonly unknown[]) => {
      try {
        const [, rows] = await Promise.all([begun, send(connection, sql, params)]);
        return rows as T[];
      } catch (error) {
        throw converted(em, error);
      }
    },
    // A write is sent only inside a transaction known to have begun.
    execute: async (sql, params) => {
      try {
        await begun;
        return (await send(connection, sql, params)) as WriteResult;
      } catch (error) {
        throw converted(em, error);
      }
    },
  };
  try {
    let result: T;
    try {
      result = await work(session);
      await session.execute('COMMIT', []);
    } catch (error) {
      // A connection that died mid-transaction fails here too; the pool discards it on release.
      await send(connection, 'ROLLBACK').catch(() => undefined);
      throw error;
    }
    return result;
  } finally {
    await lender.releaseConnection(connection);
  }
}
