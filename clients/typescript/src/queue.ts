// An async iterator fed by pushes: what `AccountStream.changes()` hands out. Items queue until
// read, at most `limit` of them: when a reader falls that far behind, the oldest are dropped
// and counted (`dropped`), and `onOverflow` is told once per overflow (until the reader catches
// up). `end()` finishes the iteration once the queue is drained.

/** How many unread items a queue holds by default. */
export const DEFAULT_QUEUE_LIMIT = 10_000;

export interface PushIteratorOptions {
  /** Called by `return()` (the loop broke). */
  onReturn: () => void;
  /** The most unread items held (default 10,000). */
  limit?: number;
  /** Called when the queue starts dropping (again), with the drops so far. */
  onOverflow?: (dropped: number) => void;
}

export class PushIterator<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private readonly waiting: Array<(result: IteratorResult<T>) => void> = [];
  private readonly limit: number;
  private ended = false;
  private overflowing = false;
  private drops = 0;

  constructor(private readonly options: PushIteratorOptions) {
    this.limit = Math.max(1, options.limit ?? DEFAULT_QUEUE_LIMIT);
  }

  /** How many items were dropped unread because the queue was full. */
  get dropped(): number {
    return this.drops;
  }

  push(item: T): void {
    if (this.ended) return;
    const resolve = this.waiting.shift();
    if (resolve !== undefined) return resolve({ value: item, done: false });
    if (this.items.length >= this.limit) {
      this.items.shift();
      this.drops++;
      if (!this.overflowing) {
        this.overflowing = true;
        this.options.onOverflow?.(this.drops);
      }
    }
    this.items.push(item);
  }

  end(): void {
    this.ended = true;
    for (const resolve of this.waiting.splice(0)) resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      const item = this.items.shift() as T;
      if (this.items.length === 0) this.overflowing = false;
      return Promise.resolve({ value: item, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  return(): Promise<IteratorResult<T>> {
    this.items.length = 0;
    this.end();
    this.options.onReturn();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
