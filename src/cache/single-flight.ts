/**
 * One piece of work per key at a time in this process: callers asking for a key that
 * is already being worked on get the same promise instead of starting it again. The
 * key is forgotten as soon as the work settles, so a failure is not remembered and the
 * next caller tries afresh. Processes (workers, other hosts) do not share flights; two
 * of them may fetch the same thing, which the store tolerates (content-addressed
 * writes of identical bytes).
 */
export class SingleFlight<V> {
  private readonly flights = new Map<string, Promise<V>>();

  /** Runs `work` unless a flight for `key` is under way; `joined` tells which happened. */
  run(key: string, work: () => Promise<V>): { promise: Promise<V>; joined: boolean } {
    const current = this.flights.get(key);
    if (current) return { promise: current, joined: true };
    // The work starts on the next microtask, after the flight is registered, so even
    // work that fails at once is joined and forgotten like any other.
    const promise: Promise<V> = Promise.resolve()
      .then(work)
      .finally(() => {
        if (this.flights.get(key) === promise) this.flights.delete(key);
      });
    this.flights.set(key, promise);
    return { promise, joined: false };
  }

  has(key: string): boolean {
    return this.flights.has(key);
  }
}
