/**
 * Waiting for a condition the kernel gives no event for (a v1 cgroup becoming empty or frozen, a
 * process group dying out). Backs off from 1 ms to 25 ms so quick transitions are seen quickly.
 * @module
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { WparError } from '../kernel/errno.ts';

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this long (then throw ETIMEDOUT). */
  readonly timeoutMs: number;
  /** What is awaited, for the error message, e.g. `cgroup corral/a/web to be empty`. */
  readonly what: string;
}

/** Resolves once `done()` is true; throws WparError ETIMEDOUT after `timeoutMs`. */
export async function waitFor(done: () => boolean, options: WaitForOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (let delay = 1; !done(); delay = Math.min(delay * 2, 25)) {
    if (Date.now() >= deadline) {
      throw new WparError('ETIMEDOUT', `gave up waiting ${options.timeoutMs} ms for ${options.what}`);
    }
    await sleep(delay);
  }
}
