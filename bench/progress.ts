/** A one-line progress bar on stderr (redrawn in place on a terminal, a line per 10% elsewhere). */
export class ProgressBar {
  readonly #started = performance.now();
  readonly #tty = Boolean(process.stderr.isTTY);
  #done = 0;
  #lastDecile = -1;
  #lastDraw = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
  ) {}

  tick(count: number): void {
    this.#done = Math.min(this.total, this.#done + count);
    const now = performance.now();
    if (this.#tty) {
      if (now - this.#lastDraw < 100 && this.#done < this.total) return;
      this.#lastDraw = now;
      process.stderr.write(`\r${this.#line(now)}`);
      return;
    }
    const decile = Math.floor((this.#done / this.total) * 10);
    if (decile !== this.#lastDecile) {
      this.#lastDecile = decile;
      process.stderr.write(`${this.#line(now)}\n`);
    }
  }

  done(): void {
    if (this.#tty) process.stderr.write(`\r${this.#line(performance.now())}\n`);
  }

  #line(now: number): string {
    const width = 30;
    const share = this.total === 0 ? 1 : this.#done / this.total;
    const filled = Math.round(share * width);
    const seconds = (now - this.#started) / 1000;
    const eta = share > 0 && share < 1 ? ` eta ${Math.ceil((seconds / share) * (1 - share))}s` : '';
    return (
      `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% ` +
      `${this.#done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} ${seconds.toFixed(1)}s${eta}`
    );
  }
}
