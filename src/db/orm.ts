import { MikroORM, type Options } from '@mikro-orm/core';
import { Migrator } from '@mikro-orm/migrations';
import { MySqlDriver } from '@mikro-orm/mysql';
import mysql from 'mysql2/promise';
import { MIGRATIONS } from '../../migrations/index.js';
import { ALL_ENTITIES } from '../entities/index.js';

export interface OrmOptions {
  databaseUrl: string;
  poolSize?: number;
  debug?: boolean;
}

/** mysql:// and mariadb:// both go through the mysql driver, which speaks to MySQL 8 and MariaDB alike. */
function normalizeUrl(databaseUrl: string): string {
  return databaseUrl.replace(/^mariadb:/, 'mysql:');
}

export function databaseName(databaseUrl: string): string {
  return decodeURIComponent(new URL(normalizeUrl(databaseUrl)).pathname.replace(/^\//, ''));
}

export function ormOptions({ databaseUrl, poolSize = 10, debug = false }: OrmOptions): Options<MySqlDriver> {
  return {
    driver: MySqlDriver,
    clientUrl: normalizeUrl(databaseUrl),
    entities: ALL_ENTITIES,
    // The legacy tables store UTC in datetime(6) columns.
    timezone: '+00:00',
    forceUtcTimezone: true,
    pool: { min: 0, max: poolSize, acquireTimeoutMillis: 2_000 },
    driverOptions: { connection: { connectTimeout: 2_000, supportBigNumbers: true, decimalNumbers: true } },
    allowGlobalContext: false,
    debug,
    discovery: { warnWhenNoEntities: false },
    extensions: [Migrator],
    migrations: {
      migrationsList: MIGRATIONS,
      tableName: 'md_mikro_orm_migrations',
      transactional: true,
      allOrNothing: false,
      snapshot: false,
      silent: true,
    },
    ensureDatabase: false,
  };
}

/** Creates the database named in the URL when it does not exist yet. */
export async function ensureDatabaseExists(databaseUrl: string): Promise<void> {
  const url = new URL(normalizeUrl(databaseUrl));
  const name = databaseName(databaseUrl);
  url.pathname = '/';
  const connection = await mysql.createConnection({ uri: url.toString(), connectTimeout: 2_000 });
  try {
    await connection.query(
      `CREATE DATABASE IF NOT EXISTS \`${name.replace(/`/g, '``')}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    );
  } finally {
    await connection.end();
  }
}

export async function initOrm(options: OrmOptions): Promise<MikroORM<MySqlDriver>> {
  return MikroORM.init(ormOptions(options));
}

export async function migrateUp(orm: MikroORM): Promise<string[]> {
  const applied = await orm.getMigrator().up();
  return applied.map((m) => m.name);
}
