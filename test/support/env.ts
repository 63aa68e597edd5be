/** The database the tests use; never the development or benchmark one. */
export function testDatabaseUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/md_test';
}
