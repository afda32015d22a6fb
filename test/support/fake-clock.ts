/**
 * The deterministic clock of every kernel test (unit and model-based): time moves only when the test
 * says so, and due timers fire in order of their due time (ties: in the order they were set).
 * @module
 */
import type { Clock, TimerHandle } from '../../src/index.ts';

interface Timer {
  readonly id: number;
  readonly due: number;
  readonly fn: () => void;
}

/** A timer handle: an opaque object, so a kernel cannot mistake it for a number. */
interface FakeHandle {
  readonly fakeTimerId: number;
}

/** Settles pending promise work: a few macrotask turns, so every microtask chain has run. */
export async function settle(turns = 2): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  /** Wall-clock reading at monotonic 0 (moves with {@link jumpWall}). */
  epoch: number;
  /**
   * Added to what {@link monotonic} reports, not to timers' schedule: a negative skew makes timers
   * fire while the monotonic clock still reads short of their deadline (as real timers can).
   */
  skew = 0;
  #elapsed = 0;
  #nextId = 1;
  readonly #timers = new Map<number, Timer>();

  constructor(epoch = 1_700_000_000_000) {
    this.epoch = epoch;
  }

  now(): number {
    return this.epoch + this.#elapsed;
  }

  monotonic(): number {
    return this.#elapsed + this.skew;
  }

  /** Milliseconds since the clock was made. */
  get elapsed(): number {
    return this.#elapsed;
  }

  /** Timers set and neither fired nor cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    const delay = typeof ms === 'number' && ms > 0 ? ms : 0;
    this.#timers.set(id, { id, due: this.#elapsed + delay, fn });
    const handle: FakeHandle = { fakeTimerId: id };
    return handle;
  }

  clearTimer(handle: TimerHandle): void {
    if (typeof handle === 'object' && handle !== null && 'fakeTimerId' in handle) {
      this.#timers.delete((handle as FakeHandle).fakeTimerId);
    }
  }

  #next(limit: number): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.#timers.values()) {
      if (t.due > limit) continue;
      if (best === undefined || t.due < best.due || (t.due === best.due && t.id < best.id)) best = t;
    }
    return best;
  }

  /** Steps the wall clock (as an NTP correction would); monotonic time and timers are unaffected. */
  jumpWall(ms: number): void {
    this.epoch += ms;
  }

  /** Moves time on by `ms`, firing every timer that falls due, in order, synchronously. Returns how many fired. */
  advance(ms: number): number {
    let fired = 0;
    for (const t of this.#due(ms)) { t.fn(); fired++; }
    return fired;
  }

  /**
   * As {@link advance}, but lets promise work settle after each timer fires, so what a timer starts
   * (a rolled-back activation, a resolved TRY) finishes before the next timer fires.
   */
  async advanceSettled(ms: number, settleTurns = 2): Promise<number> {
    let fired = 0;
    for (const t of this.#due(ms)) { t.fn(); fired++; await settle(settleTurns); }
    await settle(settleTurns);
    return fired;
  }

  /** The timers falling due within `ms`, in order, each removed and the clock moved to it as it is taken. */
  *#due(ms: number): Generator<Timer, void, undefined> {
    const target = this.#elapsed + ms;
    for (let t = this.#next(target); t !== undefined; t = this.#next(target)) {
      this.#timers.delete(t.id);
      this.#elapsed = Math.max(this.#elapsed, t.due);
      yield t;
    }
    this.#elapsed = Math.max(this.#elapsed, target);
  }
}
