import type { EntityManager, MikroORM } from '@mikro-orm/core';
import type { MySqlDriver, EntityManager as SqlEntityManager } from '@mikro-orm/mysql';
import { LabConfigCache } from '../engine/lab-config-cache.js';
import { ServiceUnavailableError } from '../errors.js';
import { pingDatabase } from '../repositories/database-health.repository.js';
import { IdReadBatches } from './id-read-batches.js';
import { sqlSession } from './sql-session.js';

export type Em = SqlEntityManager<MySqlDriver>;

/**
 * What a read that sends its own SQL needs of an entity manager: no entities, so no identity map to
 * keep per request.
 */
export type SqlReader = Pick<Em, 'getKnex' | 'getTransactionContext' | 'config' | 'getPlatform'>;

/**
 * Combined flags reads: ids per read (a few full 200-item lists, well inside one indexed statement),
 * and how long one may take before its callers answer unflagged and the next read goes ahead.
 */
const COMBINED_FLAG_READS = { maxIdsPerRead: 1_000, readTimeoutMs: 2_000 };

/**
 * The service's handle on its database. The server listens before the database is reachable,
 * so the ORM arrives later; until then every request that needs it gets a 503.
 */
export class Database {
  #orm: MikroORM<MySqlDriver> | undefined;
  /** This instance's copy of its labs' configs, checked against the database on every capture. */
  readonly labConfigs = new LabConfigCache();
  /** Flagged answers' reads of open patients, combined per lab scope (src/services/flags.service.ts). */
  readonly openPatientReads = new IdReadBatches(COMBINED_FLAG_READS);

  constructor(orm?: MikroORM<MySqlDriver>) {
    this.#orm = orm;
  }

  attach(orm: MikroORM<MySqlDriver>): void {
    this.#orm = orm;
  }

  get isAttached(): boolean {
    return this.#orm !== undefined;
  }

  get orm(): MikroORM<MySqlDriver> {
    if (!this.#orm) throw new ServiceUnavailableError('The database is not ready yet; try again shortly');
    return this.#orm;
  }

  /** A fresh, request-scoped entity manager. */
  em(): Em {
    return this.orm.em.fork() as Em;
  }

  /**
   * The ORM's root entity manager, without a fork: only for paths that send hand-written SQL
   * (src/db/sql-session.ts), never for entities. Forking one per request (`em()`) costs more CPU
   * than such a path's own work in the ORM.
   */
  rootEm(): Em {
    return this.orm.em as Em;
  }

  /** True when the database answers a trivial query within the timeout. */
  async ping(timeoutMs = 1_000): Promise<boolean> {
    if (!this.#orm) return false;
    const em = this.#orm.em.fork() as EntityManager as Em;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      return await Promise.race([pingDatabase(sqlSession(em)).then(() => true), timeout]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.#orm?.close(true);
  }
}
