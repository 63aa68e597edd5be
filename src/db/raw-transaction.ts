import type { Em } from './database.js';

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

/** The callback API of the mysql2 connections in knex's pool. */
interface PooledConnection {
  query(
    sql: string,
    values: readonly unknown[],
    callback: (error: Error | null, result: unknown) => void,
  ): void;
}

function query(connection: PooledConnection, sql: string, params: readonly unknown[] = []): Promise<unknown> {
  return new Promise((resolve, reject) => {
    connection.query(sql, params, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

export type IsolationLevel = 'READ COMMITTED' | 'REPEATABLE READ';

/**
 * Runs `work` in a transaction on one connection of the ORM's pool, without the ORM: no unit of
 * work, no query builder, no knex transaction object, for a path whose statements are all
 * hand-written SQL. The connection's settings (UTC, big numbers, date strings) are the ORM's, and
 * errors are converted as the ORM converts them (DeadlockException, ConnectionException… with the
 * driver's `code`), so callers and `toAppError` see what `em.transactional` would have thrown. A
 * pool that has no free connection in time throws knex's timeout error, as the ORM does.
 */
export async function inRawTransaction<T>(
  em: Em,
  isolation: IsolationLevel,
  work: (sql: SqlSession) => Promise<T>,
): Promise<T> {
  const driver = em.getDriver();
  const convert = (error: unknown) => (error instanceof Error ? driver.convertException(error) : error);
  const client = em.getConnection().getKnex().client;
  const connection = (await client.acquireConnection()) as PooledConnection;
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
        return ((await query(connection, sql, params)) as { affectedRows: number }).affectedRows;
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
    await client.releaseConnection(connection);
  }
}
