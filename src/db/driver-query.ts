import type { Knex } from '@mikro-orm/knex';
import type { Em } from './database.js';

/** What mysql2 answers to an UPDATE, INSERT or DELETE. */
export interface WriteResult {
  /** Rows matched, not only rows changed: the driver connects with CLIENT_FOUND_ROWS. */
  affectedRows: number;
}

/**
 * Runs one statement on `em`'s connection (its transaction's when inside one), letting the driver fill in
 * the `?` as mysql2 does: an array value becomes a comma-separated list, so `id IN (?)` takes the whole id
 * list as one value. For statements carrying thousands of values, where MikroORM's own placeholder
 * formatting (`em.execute`) costs more CPU than the database spends on the statement. Driver errors come
 * out as MikroORM's exceptions (DeadlockException, UniqueConstraintViolationException, …), as from
 * `em.execute`, so callers and src/errors.ts handle both alike.
 */
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
