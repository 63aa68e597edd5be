import { MikroORM, type Options } from '@mikro-orm/core';
import { Migrator } from '@mikro-orm/migrations';
import { MySqlDriver } from '@mikro-orm/mysql';
import mysql from 'mysql2/promise';
import { MIGRATIONS } from '../../migrations/index.js';
import { ALL_ENTITIES } from '../entities/index.js';
import { acquireNamedLock, releaseNamedLock } from '../repositories/database-health.repository.js';

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

/** The named lock (GET_LOCK, MariaDB and MySQL alike) that lets one of several starting instances migrate. */
export const MIGRATION_LOCK_NAME = 'missing_details_migrations';
const MIGRATION_LOCK_WAIT_S = 300;

/**
 * Applies pending migrations while holding the database's migration lock, on a connection of its
 * own (the lock belongs to a session): instances starting together migrate once, the others wait,
 * then find nothing pending.
 */
export async function migrateUpLocked(orm: MikroORM, databaseUrl: string): Promise<string[]> {
  const connection = await mysql.createConnection({ uri: normalizeUrl(databaseUrl), connectTimeout: 2_000 });
  try {
    if (!(await acquireNamedLock(connection, MIGRATION_LOCK_NAME, MIGRATION_LOCK_WAIT_S))) {
      throw new Error(`another instance held the migration lock for more than ${MIGRATION_LOCK_WAIT_S} s`);
    }
    try {
      return await migrateUp(orm);
    } finally {
      await releaseNamedLock(connection, MIGRATION_LOCK_NAME);
    }
  } finally {
    await connection.end();
  }
}

export async function pendingMigrations(orm: MikroORM): Promise<string[]> {
  return (await orm.getMigrator().getPendingMigrations()).map((m) => m.name);
}
