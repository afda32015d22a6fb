/**
 * The kernel's only contact with time. Injected so tests can drive timeouts deterministically.
 * @module
 */

/** An opaque timer handle returned by {@link Clock.setTimer}. */
export type TimerHandle = unknown;

/** Time as the kernel sees it. */
export interface Clock {
  /** Wall-clock milliseconds since the epoch, as `Date.now()`; stamps denials and events. */
  now(): number;
  /** A monotonic millisecond reading; measures waits, so a wall-clock step never shortens a TRY. */
  monotonic(): number;
  /** Calls `fn` once after `ms` milliseconds. A pending timer keeps the process alive: someone awaits it. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; a handle that already fired is ignored. */
  clearTimer(handle: TimerHandle): void;
}

/** The real clock: `Date.now`, `performance.now` and `setTimeout`. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer(fn, ms) {
    // setTimeout's delay is capped at 2^31-1 ms; longer waits re-arm from the expiry check.
    return setTimeout(fn, Math.min(ms, 2 ** 31 - 1));
  },
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
