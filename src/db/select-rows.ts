import type { SqlReader } from './database.js';

/** The part of a mysql2 connection (callback API, as knex pools them) that a read needs. */
interface PooledConnection {
  query(sql: string, values: unknown[], callback: (error: Error | null, rows: unknown) => void): void;
}

/** The part of knex's client (MikroORM's, under the entity manager) that lends its connections. */
interface ConnectionLender {
  acquireConnection(): Promise<PooledConnection>;
  releaseConnection(connection: PooledConnection): Promise<void>;
}

/**
 * The rows of one SELECT, sent straight to mysql2 on a connection of the ORM's own pool: for a hot
 * read of many rows, MikroORM's and knex's query layers (inlining the parameters, building a raw
 * query, timing, logging, converting the result) cost as much CPU as the statement itself. mysql2
 * escapes `params` the way MikroORM does and the connection settings are the pool's, so the rows
 * are the ones `em.execute` returns; its errors are the driver's (`toAppError` still maps an
 * unreachable database or an exhausted pool to 503). Inside a transaction the statement goes
 * through the ORM, on the transaction's connection.
 */
export async function selectRows<T>(em: SqlReader, sql: string, params: unknown[]): Promise<T[]> {
  if (em.getTransactionContext()) return em.execute<T[]>(sql, params);
  const lender = em.getKnex().client as unknown as ConnectionLender;
  const connection = await lender.acquireConnection();
  try {
    return await new Promise<T[]>((resolve, reject) => {
      connection.query(sql, params, (error, rows) => (error ? reject(error) : resolve(rows as T[])));
    });
  } finally {
    void lender.releaseConnection(connection);
  }
}
