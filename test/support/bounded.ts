/**
 * Bounded waits for tests: every helper that waits for an event waits at most a few seconds, so a
 * regression fails with a line naming what never came instead of hanging until the runner's
 * `--test-timeout` (or forever, without one).
 */

/** How long a helper waits for an event by default. */
export const WAIT_MS = 20_000;

/**
 * `promise`, or a rejection `timed out after MS ms waiting for WHAT` if it has not settled within `ms`.
 * The timer is cleared as soon as `promise` settles and is unref'd, so a bounded wait never keeps the
 * process alive by itself (a wait nothing else keeps alive ends the run, which node:test reports as a
 * failure: still no hang).
 */
export function within<T>(promise: Promise<T>, what: string, ms: number = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms).unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
