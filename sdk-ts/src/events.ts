/**
 * A tiny runtime-neutral event channel (no `node:events`, so it runs in Convex and browsers):
 * synchronous listeners plus async iterators that buffer what arrives between reads.
 */

/** Something to stop: returned by `on(...)`. */
export type Unsubscribe = () => void;

export class Channel<T> {
  private readonly listeners = new Set<(value: T) => void>();
  private readonly waiters = new Set<{ push: (value: T) => void; end: () => void }>();
  private closed = false;

  /** Calls `listener` with every value from now on; listener errors are swallowed. */
  on(listener: (value: T) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(value: T): void {
    for (const l of [...this.listeners]) {
      try {
        l(value);
      } catch {
        // A listener's failure must not break the client's sync loop.
      }
    }
    for (const w of this.waiters) w.push(value);
  }

  /** Ends every iterator (the client closed). */
  close(): void {
    this.closed = true;
    for (const w of [...this.waiters]) w.end();
    this.listeners.clear();
  }

  /**
   * An async iterator of every value from now on (buffered, at most `limit` kept; the oldest
   * are dropped beyond that). Ends when the client closes or the loop breaks.
   */
  iterate(limit = 1024): AsyncIterableIterator<T> {
    const buffer: T[] = [];
    let wake: ((r: IteratorResult<T>) => void) | undefined;
    let done = this.closed;
    const waiter = {
      push: (value: T) => {
        if (wake !== undefined) {
          const w = wake;
          wake = undefined;
          w({ value, done: false });
        } else {
          buffer.push(value);
          if (buffer.length > limit) buffer.shift();
        }
      },
      end: () => {
        done = true;
        this.waiters.delete(waiter);
        if (wake !== undefined) {
          const w = wake;
          wake = undefined;
          w({ value: undefined, done: true });
        }
      },
    };
    if (!done) this.waiters.add(waiter);
    const iterator: AsyncIterableIterator<T> = {
      next: () => {
        if (buffer.length > 0) return Promise.resolve({ value: buffer.shift()!, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (wake = resolve));
      },
      return: () => {
        waiter.end();
        buffer.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}
