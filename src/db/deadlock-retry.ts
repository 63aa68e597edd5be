import { DeadlockException, LockWaitTimeoutException } from '@mikro-orm/core';
import { backoffDelayMs } from '../backoff.js';

/**
 * How many times a transaction runs when the database keeps choosing it as a deadlock victim. A
 * deadlock rolls the whole transaction back, so running it again is safe; past this many, the
 * conflict is real and the caller reports it.
 */
export const DEADLOCK_ATTEMPTS = 5;

/** Between attempts: 10-20 ms, doubling (src/backoff.ts), so that the two sides do not meet again. */
const DEADLOCK_BACKOFF = { baseMs: 20, maxMs: 320 } as const;

export interface DeadlockRetryOptions {
  /**
   * Also run again after a lock wait timeout (`innodb_lock_wait_timeout`). For work that must land
   * (captures, the bridge's delivery records), not for requests whose caller can simply retry.
   */
  lockWaitTimeouts?: boolean;
  /** Told of each conflict that is about to be retried (for a log line). */
  onRetry?: (error: unknown, attempt: number) => void;
  random?: () => number;
}

function isRetryable(error: unknown, lockWaitTimeouts: boolean): boolean {
  return (
    error instanceof DeadlockException || (lockWaitTimeouts && error instanceof LockWaitTimeoutException)
  );
}

/**
 * Runs `transaction` (the whole transaction, begin to commit), again when it was a deadlock victim,
 * at most DEADLOCK_ATTEMPTS times in all; the last error goes to the caller.
 */
export async function withDeadlockRetry<T>(
  transaction: () => Promise<T>,
  { lockWaitTimeouts = false, onRetry, random = Math.random }: DeadlockRetryOptions = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
    } catch (error) {
      if (attempt >= DEADLOCK_ATTEMPTS || !isRetryable(error, lockWaitTimeouts)) throw error;
      onRetry?.(error, attempt);
      await new Promise((resolve) => setTimeout(resolve, backoffDelayMs(attempt, DEADLOCK_BACKOFF, random)));
    }
  }
}
