/**
 * Connections to PY-3, as slots: a proxied request takes one before it is sent and gives it back
 * when its answer is done. A request that cannot get one within the wait is never sent (the caller
 * answers 504), so no request sits in a connection queue without end while legacy is saturated.
 */
export class LegacySlots {
  #free: number;
  readonly #waiting: Array<(granted: boolean) => void> = [];

  constructor(readonly size: number) {
    this.#free = size;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves true with a slot taken, or false when `waitMs` passed or `abandoned` fired first. */
  take(waitMs: number, abandoned?: AbortSignal): Promise<boolean> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const settle = (granted: boolean) => {
        clearTimeout(timer);
        abandoned?.removeEventListener('abort', onAbandoned);
        const at = this.#waiting.indexOf(settle);
        if (at !== -1) this.#waiting.splice(at, 1);
        resolve(granted);
      };
      const onAbandoned = () => settle(false);
      const timer = setTimeout(() => settle(false), waitMs);
      abandoned?.addEventListener('abort', onAbandoned, { once: true });
      this.#waiting.push(settle);
    });
  }

  give(): void {
    const next = this.#waiting[0];
    if (next) next(true);
    else this.#free = Math.min(this.size, this.#free + 1);
  }
}
