/**
 * Checkpoint status of one WPAR: its denials and phase, and the K11 table that moves between them.
 * Every function here is one row of the table; arguments are already valid (K10 steps 1–4 are the
 * caller's). They return 0 or an errno, never throw.
 * @module
 */
import { EBUSY, EINTR, EINVAL, ENOENT, ETIMEDOUT, errnoName } from './errno.ts';
import type { KernelState } from './state.ts';
import type { Denial, TryWaiter, Wpar } from './wpar.ts';

/** K11 DENY: adds a denial (a waiting TRY keeps waiting); EBUSY while checkpointing. */
export function deny(k: KernelState, w: Wpar, owner: string, reason: string): Denial | number {
  if (w.phase === 'checkpointing') return EBUSY;
  const denial: Denial = { owner, reason, since: k.clock.now() };
  w.denials.push(denial);
  if (k.events.active) {
    k.events.emit({ type: 'deny', time: denial.since, cid: w.cid, name: w.name, owner, reason, since: denial.since });
  }
  return denial;
}

/** K11 ALLOW: removes the oldest denial `owner` posted on `w`; EINVAL if it has none, or while checkpointing. */
export function allowOldest(k: KernelState, w: Wpar, owner: string): number {
  if (w.phase === 'checkpointing') return EINVAL;
  const denials = w.denials;
  for (let i = 0; i < denials.length; i++) {
    if (denials[i]!.owner === owner) {
      removeAt(k, w, i, 'allow');
      return 0;
    }
  }
  return EINVAL;
}

/** Removes one particular denial (a denial handle's `allow`). False if it is no longer outstanding. */
export function allowDenial(k: KernelState, w: Wpar, denial: Denial): boolean {
  const i = w.denials.indexOf(denial);
  if (i < 0) return false;
  removeAt(k, w, i, 'allow');
  return true;
}

/** K13: releases every denial `owner` holds on `w` (its owner closed), which may complete a waiting TRY. */
export function releaseOwner(k: KernelState, w: Wpar, owner: string): void {
  for (let i = w.denials.length - 1; i >= 0; i--) {
    if (w.denials[i]!.owner === owner) removeAt(k, w, i, 'owner-closed');
  }
}

function removeAt(k: KernelState, w: Wpar, i: number, cause: 'allow' | 'owner-closed'): void {
  const [d] = w.denials.splice(i, 1);
  if (k.events.active) {
    k.events.emit({ type: 'allow', time: k.clock.now(), cid: w.cid, name: w.name, owner: d!.owner, reason: d!.reason, since: d!.since, cause });
  }
  // †: the last denial leaving a pending WPAR hands it to the waiting TRY in this same step.
  if (w.denials.length === 0 && w.phase === 'pending') {
    w.phase = 'checkpointing';
    finishTry(k, w, 0);
  }
}

/**
 * K11/K12 TRY. Calls `settle` with 0 (phase now `checkpointing`), ETIMEDOUT, ENOENT, EINTR or EBUSY:
 * at once when the outcome is known, otherwise when it becomes known. No polling: a timer and the
 * last ALLOW are the only things that end a wait.
 */
export function tryCheckpoint(
  k: KernelState, w: Wpar, owner: string, timeoutMs: number, signal: AbortSignal | undefined,
  settle: (errno: number) => void,
): void {
  if (w.state === 'starting' || w.phase !== 'normal') return settleNow(k, w, owner, EBUSY, settle);
  if (signal?.aborted) return settleNow(k, w, owner, EINTR, settle);
  if (w.denials.length === 0) {
    w.phase = 'checkpointing';
    return settleNow(k, w, owner, 0, settle);
  }
  if (timeoutMs === 0) return settleNow(k, w, owner, ETIMEDOUT, settle);

  w.phase = 'pending';
  const onAbort = signal ? () => w.waiter === waiter && endWait(k, w, EINTR) : undefined;
  const waiter: TryWaiter = { owner, startedAt: k.clock.monotonic(), timeoutMs, timer: undefined, settle, signal, onAbort };
  w.waiter = waiter;
  waiter.timer = k.clock.setTimer(() => onTimer(k, w, waiter), timeoutMs);
  if (signal) signal.addEventListener('abort', onAbort!, { once: true });
  if (k.events.active) {
    k.events.emit({ type: 'try.wait', time: k.clock.now(), cid: w.cid, name: w.name, owner, timeoutMs, denials: w.denials.length });
  }
}

function onTimer(k: KernelState, w: Wpar, waiter: TryWaiter): void {
  if (w.waiter !== waiter) return;
  // Never earlier than the timeout: a timer may fire a little early by the monotonic clock; re-arm.
  const left = waiter.startedAt + waiter.timeoutMs - k.clock.monotonic();
  if (left > 0) {
    waiter.timer = k.clock.setTimer(() => onTimer(k, w, waiter), Math.ceil(left));
    return;
  }
  endWait(k, w, ETIMEDOUT);
}

/** Ends a waiting TRY without a checkpoint (timeout, abort, WPAR stopping): phase back to `normal`. */
function endWait(k: KernelState, w: Wpar, errno: number): void {
  w.phase = 'normal';
  finishTry(k, w, errno);
}

function finishTry(k: KernelState, w: Wpar, errno: number): void {
  const waiter = w.waiter!;
  w.waiter = undefined;
  k.clock.clearTimer(waiter.timer);
  if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort);
  if (k.events.active) emitTryDone(k, w, waiter.owner, errno, k.clock.monotonic() - waiter.startedAt);
  waiter.settle(errno);
}

function settleNow(k: KernelState, w: Wpar, owner: string, errno: number, settle: (errno: number) => void): void {
  if (k.events.active) emitTryDone(k, w, owner, errno, 0);
  settle(errno);
}

function emitTryDone(k: KernelState, w: Wpar, owner: string, errno: number, waitedMs: number): void {
  const result = errno === 0 ? 'ok' : (errnoName(errno) as 'ETIMEDOUT' | 'ENOENT' | 'EINTR' | 'EBUSY');
  k.events.emit({ type: 'try.done', time: k.clock.now(), cid: w.cid, name: w.name, owner, result, waitedMs });
}

/** K11 CLEAR: a checkpoint in progress is complete. */
export function clear(k: KernelState, w: Wpar, owner: string): number {
  if (w.state === 'starting') return EBUSY;
  if (w.phase !== 'checkpointing') return EINVAL;
  w.phase = 'normal';
  if (k.events.active) k.events.emit({ type: 'checkpoint.clear', time: k.clock.now(), cid: w.cid, name: w.name, owner });
  return 0;
}

/** K11 RESTART_CLEAR: the restart of a re-created WPAR is complete. */
export function restartClear(k: KernelState, w: Wpar, owner: string): number {
  if (w.state === 'starting') return EBUSY;
  if (w.phase !== 'restarting') return EINVAL;
  w.phase = 'normal';
  if (k.events.active) k.events.emit({ type: 'restart.clear', time: k.clock.now(), cid: w.cid, name: w.name, owner });
  return 0;
}

/** K13/K16.2: the WPAR starts stopping: its denials are dropped and a waiting TRY gets ENOENT. */
export function dropAll(k: KernelState, w: Wpar): void {
  const dropped = w.denials;
  w.denials = [];
  if (k.events.active) {
    const time = k.clock.now();
    for (const d of dropped) {
      k.events.emit({ type: 'allow', time, cid: w.cid, name: w.name, owner: d.owner, reason: d.reason, since: d.since, cause: 'wpar-stopping' });
    }
  }
  if (w.waiter !== undefined) endWait(k, w, ENOENT);
}
