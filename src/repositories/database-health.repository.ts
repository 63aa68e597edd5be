import type { Connection } from 'mysql2/promise';
import type { SqlSession } from '../db/sql-session.js';

/** The database as a whole: whether it answers, and the named lock that serializes migrations. */

/** A trivial statement: resolves when the database answers. */
export async function pingDatabase(sql: SqlSession): Promise<void> {
  await sql.query('SELECT 1', []);
}

/**
 * Takes a named lock (GET_LOCK, MariaDB and MySQL alike) for the session of `connection`, waiting at
 * most `waitSeconds`; answers whether it got it.
 */
export async function acquireNamedLock(
  connection: Connection,
  name: string,
  waitSeconds: number,
): Promise<boolean> {
  const [rows] = await connection.query('SELECT GET_LOCK(?, ?) AS got', [name, waitSeconds]);
  return (rows as Array<{ got: number | null }>)[0]?.got === 1;
}

export async function releaseNamedLock(connection: Connection, name: string): Promise<void> {
  await connection.query('SELECT RELEASE_LOCK(?)', [name]);
}
