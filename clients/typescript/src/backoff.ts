// Reconnect delays: exponential from `initialMs` up to `maxMs`, with jitter (half to all of
// the step), back to the start once a connection was accepted.

export interface BackoffOptions {
  /** The first delay (default 250 ms). */
  initialMs?: number;
  /** The longest delay (default 5000 ms). */
  maxMs?: number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 250;
    this.maxMs = options.maxMs ?? 5000;
  }

  /** The delay before the next attempt (each call lengthens the next). */
  next(): number {
    const step = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return step / 2 + (Math.random() * step) / 2;
  }

  reset(): void {
    this.attempt = 0;
  }
}
