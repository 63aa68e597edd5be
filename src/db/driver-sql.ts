import type { Knex } from '@mikro-orm/knex';
import type { Em, SqlReader } from './database.js';

/**
 * Hot paths' SQL straight on mysql2, on connections of the ORM's own pool (so with its settings:
 * UTC, big numbers, date strings). For statements that serve many rows or carry thousands of
 * values, MikroORM's and knex's query layers (inlining every parameter with `formatQuery`, building
 * a raw query, timing, logging, converting the result) cost as much CPU as the statement itself.
 * mysql2 fills in the `?` (an array value becomes a comma-separated list, so `IN (?)` takes a
 * whole id list as one value). Errors come out as the ORM would throw them (DeadlockException,
 * UniqueConstraintViolationException… with the driver's `code`), so callers and src/errors.ts
 * handle both alike; a pool with no free connection in time throws knex's timeout error.
 */

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

function lenderOf(em: SqlReader): ConnectionLender {
  return em.getKnex().client as unknown as ConnectionLender;
}

function query(connection: PooledConnection, sql: string, params: readonly unknown[] = []): Promise<unknown> {
  return new Promise((resolve, reject) => {
    connection.query(sql, params, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/** What mysql2 answers to an UPDATE, INSERT or DELETE. */
export interface WriteResult {
  /** Rows matched, not only rows changed: the driver connects with CLIENT_FOUND_ROWS. */
  affectedRows: number;
}

/**
 * The rows of one SELECT on a pooled connection. Inside a transaction the statement goes through
 * the ORM, on the transaction's connection.
 */
export async function selectRows<T>(em: SqlReader, sql: string, params: unknown[]): Promise<T[]> {
  if (em.getTransactionContext()) return em.execute<T[]>(sql, params);
  const lender = lenderOf(em);
  const logger = em.config.getLogger();
  const started = Date.now();
  const connection = await lender.acquireConnection();
  try {
    const rows = (await query(connection, sql, params)) as T[];
    // Through the ORM's query logger like every other statement (debug logging, query counts).
    logger.logQuery({ level: 'info', query: sql, params, took: Date.now() - started, results: rows.length });
    return rows;
  } catch (error) {
    logger.logQuery({ level: 'error', query: sql, params, took: Date.now() - started });
    throw error;
  } finally {
    void lender.releaseConnection(connection);
  }
}

/** One statement on `em`'s connection (its transaction's when inside one), with the driver's placeholders. */
export async function driverQuery<T = WriteResult>(
  em: Em,
  sql: string,
  values: readonly unknown[],
): Promise<T> {
  const knex = em.getTransactionContext<Knex.Transaction>() ?? em.getKnex();
  try {
    const [result] = (await knex.raw(sql, values as readonly Knex.RawBinding[])) as unknown as [T, unknown];
    return result;
  } catch (error) {
    throw em
      .getPlatform()
      .getExceptionConverter()
      .convertException(error as Error);
  }
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

/**
 * The statements of a hot path, on whatever holds its transaction: an entity manager (inside a
 * caller's `em.transactional`), or one pooled connection of its own (`inRawTransaction`).
 */
export interface SqlSession {
  rows<T>(sql: string, params: readonly unknown[]): Promise<T[]>;
  /** Runs a write and answers the number of rows it changed. */
  run(sql: string, params: readonly unknown[]): Promise<number>;
}

/** A session on an entity manager: joins the transaction the manager is in, if any. */
export function emSession(em: Em): SqlSession {
  return {
    rows: <T>(sql: string, params: readonly unknown[]) => em.execute<T[]>(sql, [...params]),
    run: async (sql, params) =>
      (await em.execute<{ affectedRows: number }>(sql, [...params], 'run')).affectedRows,
  };
}

export type IsolationLevel = 'READ COMMITTED' | 'REPEATABLE READ';

/**
 * Runs `work` in a transaction on one pooled connection, without the ORM: no unit of work, no
 * query builder, no knex transaction object, for a path whose statements are all hand-written SQL.
 */
export async function inRawTransaction<T>(
  em: Em,
  isolation: IsolationLevel,
  work: (sql: SqlSession) => Promise<T>,
): Promise<T> {
  const driver = em.getDriver();
  const convert = (error: unknown) => (error instanceof Error ? driver.convertException(error) : error);
  const lender = lenderOf(em);
  const connection = await lender.acquireConnection();
  const begun = Promise.all([
    query(connection, `SET TRANSACTION ISOLATION LEVEL ${isolation}`),
    query(connection, 'BEGIN'),
  ]);
  // Marked handled: work that fails before its first statement never awaits it.
  begun.catch(() => undefined);
  const session: SqlSession = {
    // A read is queued right behind BEGIN (the connection runs its statements in order), saving the
    // event-loop turns between those round trips; its rows are used only once BEGIN has succeeded.
    rows: async <T>(sql: string, params: readonly unknown[]) => {
      try {
        const [, rows] = await Promise.all([begun, query(connection, sql, params)]);
        return rows as T[];
      } catch (error) {
        throw convert(error);
      }
    },
    // A write is sent only inside a transaction known to have begun.
    run: async (sql, params) => {
      try {
        await begun;
        return ((await query(connection, sql, params)) as WriteResult).affectedRows;
      } catch (error) {
        throw convert(error);
      }
    },
  };
  try {
    let result: T;
    try {
      result = await work(session);
      await session.run('COMMIT', []);
    } catch (error) {
      // A connection that died mid-transaction fails here too; the pool discards it on release.
      await query(connection, 'ROLLBACK').catch(() => undefined);
      throw error;
    }
    return result;
  } finally {
    await lender.releaseConnection(connection);
  }
}
