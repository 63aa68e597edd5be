import { ServiceUnavailableError } from '../errors.js';

/** Reads which of a set of ids have something, for one scope (the flagged-answers query). */
export type IdReader = (ids: number[]) => Promise<Iterable<number>>;

interface Waiter {
  readonly ids: readonly number[];
  readonly reader: IdReader;
  resolve(found: Set<number>): void;
  reject(error: unknown): void;
}

/**
 * Combines concurrent reads of one scope: at most one read per scope is under way; callers that
 * arrive meanwhile wait for the next read, which asks for all their ids at once. Each caller's answer
 * comes from a read that started after the caller arrived, so combining never answers from a
 * snapshot older than the request (joining the read already under way would), and a lone caller
 * waits only for the end of the event loop's turn. Under load, N concurrent flagged answers of one
 * lab cost one statement per round trip instead of N (2 to 3 answers per statement measured with 8
 * connections).
 *
 * Callers with the same scope key must pass equivalent readers (the same statement for the same
 * scope); a batch runs with its first caller's. Each caller gets only its own ids back.
 *
 * A read that has not answered within `readTimeoutMs` fails its callers with ServiceUnavailableError
 * and the scope moves on to the next batch, so one stuck statement holds up only its own callers,
 * never the scope's later ones.
 */
export class IdReadBatches {
  readonly #waiting = new Map<string, Waiter[]>();
  readonly #maxIdsPerRead: number;
  readonly #readTimeoutMs: number;

  constructor(options: { maxIdsPerRead: number; readTimeoutMs: number }) {
    this.#maxIdsPerRead = options.maxIdsPerRead;
    this.#readTimeoutMs = options.readTimeoutMs;
  }

  /** The subset of `ids` that `reader` finds, read together with the scope's other waiting callers. */
  read(scopeKey: string, ids: readonly number[], reader: IdReader): Promise<Set<number>> {
    return new Promise((resolve, reject) => {
      const waiting = this.#waiting.get(scopeKey);
      const waiter = { ids, reader, resolve, reject };
      if (waiting) {
        waiting.push(waiter);
        return;
      }
      // No read under way for this scope: it starts once this turn of the event loop has handled
      // what else arrived with this caller (setImmediate runs after the poll phase), with all of them.
      this.#waiting.set(scopeKey, [waiter]);
      setImmediate(() => void this.#run(scopeKey, this.#takeBatch(this.#waiting.get(scopeKey)!)));
    });
  }

  async #run(scopeKey: string, batch: Waiter[]): Promise<void> {
    const union = [...new Set(batch.flatMap((waiter) => waiter.ids))];
    try {
      const found = new Set(await this.#withinTimeout(batch[0]!.reader(union)));
      for (const waiter of batch) waiter.resolve(new Set(waiter.ids.filter((id) => found.has(id))));
    } catch (error) {
      for (const waiter of batch) waiter.reject(error);
    }
    const waiting = this.#waiting.get(scopeKey) ?? [];
    if (waiting.length === 0) {
      this.#waiting.delete(scopeKey);
      return;
    }
    const next = this.#takeBatch(waiting);
    void this.#run(scopeKey, next);
  }

  #withinTimeout<T>(read: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new ServiceUnavailableError(`The database did not answer within ${this.#readTimeoutMs} ms`)),
        this.#readTimeoutMs,
      );
    });
    // A read that answers after its deadline is dropped; its callers already have their error.
    read.catch(() => undefined);
    return Promise.race([read, late]).finally(() => clearTimeout(timer));
  }

  /** The longest prefix of `waiting` within the id limit (at least one caller), removed from it. */
  #takeBatch(waiting: Waiter[]): Waiter[] {
    let ids = 0;
    let count = 0;
    while (count < waiting.length) {
      ids += waiting[count]!.ids.length;
      if (count > 0 && ids > this.#maxIdsPerRead) break;
      count++;
    }
    return waiting.splice(0, count);
  }
}
