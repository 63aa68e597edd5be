/**
 * The one backoff of the service's retry loops (PY-2 deliveries, stored captures, the first database
 * connection): the wait before retry number `attempt` (1 for the first retry) doubles from `baseMs`,
 * is capped at `maxMs`, and is jittered with "equal jitter": half of it fixed, half random. The fixed
 * half keeps a floor, so a retry never comes at once; the random half spreads the retries of work
 * that failed together (every capture stored during a database outage, every creation queued while
 * PY-2 was down), so that they do not all come back in the same instant.
 */
export function backoffDelayMs(
  attempt: number,
  { baseMs, maxMs }: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40));
  return Math.round(exponential / 2 + (random() * exponential) / 2);
}

/** Waiting for the database at start-up (the server, the separate bridge worker): 0.5 s doubling to 5 s. */
export const DATABASE_CONNECT_BACKOFF = { baseMs: 500, maxMs: 5_000 } as const;
