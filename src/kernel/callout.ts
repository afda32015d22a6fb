/**
 * Calling one hook (K15, K17). A synchronous hook costs a call and a type check; only a hook that
 * returns a promise pays for a promise and a timer (calloutTimeoutMs).
 * @module
 */
import { WPARSTART } from './constants.ts';
import { calloutSettled, type Hook } from './hooks.ts';
import type { KernelState } from './state.ts';
import type { Wpar } from './wpar.ts';

/** Why a callout failed. */
export interface CalloutFailure {
  readonly code: 'ECANCELED' | 'ETIMEDOUT';
  readonly hook: Hook;
  /** What happened, as a phrase: `returned 22`, `threw: disk full`, `did not settle within 30000 ms`. */
  readonly detail: string;
  readonly cause?: unknown;
}

/** The outcome of a callout: `undefined` for success; a promise only if the hook returned one. */
export type CalloutResult = CalloutFailure | undefined | Promise<CalloutFailure | undefined>;

/**
 * Calls `hook` with `(flags, cid, corralp, null)`. Success is a return (or resolution) of 0; a hook
 * that returns nothing (`undefined`) is taken as 0, as a `void` JavaScript function would mean it.
 */
export function callout(k: KernelState, hook: Hook, flags: number, w: Wpar): CalloutResult {
  const t0 = k.events.active ? k.clock.monotonic() : 0;
  hook.inflight++;
  let result: unknown;
  let then: unknown;
  try {
    const fn = hook.fn; // called as a plain function: the hook record is not its `this`
    result = fn(flags, w.cid, w.corral, null);
    then = (typeof result === 'object' && result !== null) || typeof result === 'function'
      ? (result as { then?: unknown }).then
      : undefined;
  } catch (err) {
    calloutSettled(hook);
    return report(k, hook, flags, w, t0, { code: 'ECANCELED', hook, detail: `threw: ${describe(err)}`, cause: err });
  }
  if (typeof then !== 'function') {
    calloutSettled(hook);
    return report(k, hook, flags, w, t0, judge(hook, result));
  }
  return new Promise((resolve) => {
    let done = false;
    const finish = (failure: CalloutFailure | undefined): void => {
      if (done) return;
      done = true;
      k.clock.clearTimer(timer);
      calloutSettled(hook);
      resolve(report(k, hook, flags, w, t0, failure));
    };
    const timer = k.clock.setTimer(
      () => finish({ code: 'ETIMEDOUT', hook, detail: `did not settle within ${k.calloutTimeoutMs} ms` }),
      k.calloutTimeoutMs,
    );
    try {
      (then as (ok: (v: unknown) => void, fail: (e: unknown) => void) => unknown).call(
        result,
        (value) => finish(judge(hook, value)),
        (err) => finish({ code: 'ECANCELED', hook, detail: `rejected: ${describe(err)}`, cause: err }),
      );
    } catch (err) {
      finish({ code: 'ECANCELED', hook, detail: `threw: ${describe(err)}`, cause: err });
    }
  });
}

function judge(hook: Hook, value: unknown): CalloutFailure | undefined {
  return value === 0 || value === undefined ? undefined : { code: 'ECANCELED', hook, detail: `returned ${describe(value)}` };
}

function report(
  k: KernelState, hook: Hook, flags: number, w: Wpar, t0: number, failure: CalloutFailure | undefined,
): CalloutFailure | undefined {
  if (k.events.active) {
    k.events.emit({
      type: 'callout', time: k.clock.now(), cid: w.cid, name: w.name,
      flags: flags === WPARSTART ? 'WPARSTART' : 'WPARSTOP', owner: hook.owner.name, key: hook.key,
      outcome: failure === undefined ? 'ok' : failure.code === 'ETIMEDOUT' ? 'timeout' : 'failed',
      ...(failure && { detail: failure.detail }),
      ms: k.clock.monotonic() - t0,
    });
  }
  return failure;
}

/** A short, never-throwing description of a thrown or returned value. */
export function describe(value: unknown): string {
  try {
    if (value instanceof Error) return value.message;
    if (typeof value === 'string') return JSON.stringify(value);
    return String(value);
  } catch {
    return 'an undescribable value';
  }
}

/** True for a value with a callable `then`; never throws (a throwing `then` getter is not a thenable). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  try {
    return ((typeof value === 'object' && value !== null) || typeof value === 'function')
      && typeof (value as { then?: unknown }).then === 'function';
  } catch {
    return false;
  }
}
