import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../src/backoff.js';

describe('backoffDelayMs', () => {
  const settings = { baseMs: 1_000, maxMs: 30_000 };

  it('doubles per attempt from the base and is capped', () => {
    const top = [1, 2, 3, 4, 5, 6, 50, 1_000_000].map((attempt) =>
      backoffDelayMs(attempt, settings, () => 1),
    );
    expect(top).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('is jittered between half and all of the delay, never sooner', () => {
    expect(backoffDelayMs(1, settings, () => 0)).toBe(500);
    expect(backoffDelayMs(4, settings, () => 0)).toBe(4_000);
    expect(backoffDelayMs(50, settings, () => 0)).toBe(15_000);
    expect(backoffDelayMs(50, settings, () => 0.5)).toBe(22_500);
  });

  it('treats an attempt below one as the first', () => {
    expect(backoffDelayMs(0, settings, () => 1)).toBe(1_000);
    expect(backoffDelayMs(-3, settings, () => 1)).toBe(1_000);
  });
});
