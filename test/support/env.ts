import mysql from 'mysql2/promise';

/** The database the tests use; never the development or benchmark one. */
export function testDatabaseUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/md_test';
}

/**
 * Whether the test database is Oracle MySQL rather than MariaDB (the mysql CI lane). The URL cannot tell
 * (both speak mysql://), so the server is asked; a test that only makes sense on MariaDB skips itself
 * with `describe.skipIf(await testDatabaseIsMySql())` and says why in a comment.
 */
export async function testDatabaseIsMySql(): Promise<boolean> {
  const url = new URL(testDatabaseUrl().replace(/^mariadb:/, 'mysql:'));
  url.pathname = '/';
  const connection = await mysql.createConnection({ uri: url.toString(), connectTimeout: 2_000 });
  try {
    const [rows] = await connection.query('SELECT VERSION() AS version');
    return !/mariadb/i.test(String((rows as Array<{ version: string }>)[0]?.version));
  } finally {
    await connection.end();
  }
}
