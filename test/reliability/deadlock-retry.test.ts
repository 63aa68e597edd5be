import { DeadlockException, LockWaitTimeoutException } from '@mikro-orm/core';
import { describe, expect, it } from 'vitest';
import { DEADLOCK_ATTEMPTS, withDeadlockRetry } from '../../src/db/deadlock-retry.js';

const deadlock = () => new DeadlockException(new Error('Deadlock found when trying to get lock'));
const lockWaitTimeout = () => new LockWaitTimeoutException(new Error('Lock wait timeout exceeded'));

/** A transaction that fails with the given errors, in turn, and then commits. */
function failingWith(...errors: Error[]) {
  let runs = 0;
  const transaction = async () => {
    runs++;
    const error = errors.shift();
    if (error) throw error;
    return 'committed';
  };
  return { transaction, runs: () => runs };
}

const quick = { random: () => 0 };

describe('withDeadlockRetry', () => {
  it('runs a deadlock victim again until it commits', async () => {
    const work = failingWith(deadlock(), deadlock());
    await expect(withDeadlockRetry(work.transaction, quick)).resolves.toBe('committed');
    expect(work.runs()).toBe(3);
  });

  it(`gives up after ${DEADLOCK_ATTEMPTS} runs with the last deadlock`, async () => {
    const work = failingWith(...Array.from({ length: DEADLOCK_ATTEMPTS + 1 }, deadlock));
    await expect(withDeadlockRetry(work.transaction, quick)).rejects.toBeInstanceOf(DeadlockException);
    expect(work.runs()).toBe(DEADLOCK_ATTEMPTS);
  });

  it('never runs again after any other error', async () => {
    const work = failingWith(new Error('syntax error'));
    await expect(withDeadlockRetry(work.transaction, quick)).rejects.toThrow('syntax error');
    expect(work.runs()).toBe(1);
  });

  it('runs again after a lock wait timeout only when the caller asks for it', async () => {
    const plain = failingWith(lockWaitTimeout());
    await expect(withDeadlockRetry(plain.transaction, quick)).rejects.toBeInstanceOf(
      LockWaitTimeoutException,
    );
    expect(plain.runs()).toBe(1);

    const mustLand = failingWith(lockWaitTimeout());
    const retried: number[] = [];
    const outcome = withDeadlockRetry(mustLand.transaction, {
      ...quick,
      lockWaitTimeouts: true,
      onRetry: (_error, attempt) => retried.push(attempt),
    });
    await expect(outcome).resolves.toBe('committed');
    expect(retried).toEqual([1]);
  });
});
