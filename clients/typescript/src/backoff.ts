// Reconnect delays: exponential from `initialMs` up to `maxMs`, with jitter (half to all of
// the step), back to the start once a connection delivered data (its first snapshot or event:
// a connection that is accepted and ends at once keeps backing off). An attempt the gateway
// asks to make at once (WebSocket close 4008) gets no delay at most once per `maxMs`.

export interface BackoffOptions {
  /** The first delay (default 250 ms). */
  initialMs?: number;
  /** The longest delay (default 5000 ms). */
  maxMs?: number;
}

export class Backoff {
  private attempt = 0;
  private lastImmediate: number | undefined;
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

  /** The delay before an attempt asked to be made at once: 0 once per `maxMs`, else `next()`. */
  soon(now: number = Date.now()): number {
    if (this.lastImmediate !== undefined && now - this.lastImmediate < this.maxMs) return this.next();
    this.lastImmediate = now;
    return 0;
  }

  /** Back to the first delay (a connection delivered data). */
  reset(): void {
    this.attempt = 0;
  }
}
