/**
 * A deterministic clock for kernel tests: time moves only when the test says so.
 */
import type { Clock } from '../../src/index.ts';

interface Timer { at: number; fn: () => void; seq: number }

/** A {@link Clock} whose `advance(ms)` fires due timers in time order. */
export class FakeClock implements Clock {
  wall = 1_790_000_000_000;
  mono = 0;
  readonly #timers = new Map<number, Timer>();
  #seq = 0;

  now(): number { return this.wall; }
  monotonic(): number { return this.mono; }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.mono + ms, fn, seq: id });
    return id;
  }
  clearTimer(handle: unknown): void { this.#timers.delete(handle as number); }

  /** Timers not yet fired or cleared. */
  get pending(): number { return this.#timers.size; }

  /** Moves time forward by `ms`, firing each due timer at its own time. */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      let next: [number, Timer] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].seq < next[1].seq))) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.wall += next[1].at - this.mono;
      this.mono = next[1].at;
      next[1].fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
  }
}

/** Lets pending promise reactions run. */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
