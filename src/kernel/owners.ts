/**
 * The kernel's rules about owners (K4–K10, K13), in one place for both faces: registering and
 * unregistering hooks, which WPAR a cid names while it is live, what a denial reason is, and closing
 * an owner. The C-shaped facade (`src/facade`) turns these into AIX's return values; the idiomatic
 * API (`src/api`) into handles and thrown errors. Neither holds a rule of its own.
 * @module
 */
import { releaseOwner } from './checkpoint.ts';
import { EINVAL, EPERM } from './errno.ts';
import type { ConfigFunc, Hook } from './hooks.ts';
import type { OwnerState } from './owner.ts';
import type { KernelState } from './state.ts';
import type { Wpar } from './wpar.ts';

export type { OwnerState } from './owner.ts';

/** Longest denial reason, in UTF-16 code units (JavaScript string length) (K10.3). */
export const MAX_REASON_LENGTH = 1024;
/** Longest TRY timeout in seconds (K10.3). */
export const MAX_TRY_SECONDS = 2147483;

/** True for a valid DENY reason (K10.3). */
export function isReason(varp: unknown): varp is string {
  return typeof varp === 'string' && varp.length >= 1 && varp.length <= MAX_REASON_LENGTH;
}

/** K10.4: the WPAR `kcid` if it is starting or active (a stopping WPAR has left). */
export function liveWpar(k: KernelState, kcid: number): Wpar | undefined {
  const w = k.table.get(kcid);
  return w === undefined || w.state === 'stopping' ? undefined : w;
}

/**
 * K4–K7: registers `fn` for `owner` and returns the hook with the hiwater it was registered at, or
 * `undefined` (nothing changed) if the owner is closed or the hook table is full. The hiwater and
 * the registration are one synchronous step (K7).
 */
export function registerHook(k: KernelState, owner: OwnerState, fn: ConfigFunc): { hook: Hook; hiwater: number } | undefined {
  if (owner.closed || !k.hooks.hasRoom) return undefined;
  const hiwater = k.table.hiwater;
  const hook = k.hooks.add(owner, fn);
  if (k.events.active) k.events.emit({ type: 'hook.register', time: k.clock.now(), owner: owner.name, key: hook.key, hiwater });
  return { hook, hiwater };
}

/** K8–K9: removes the hook `key` if `owner` registered it: 0, EINVAL (no such key) or EPERM (not its own, or closed). */
export function unregisterHook(k: KernelState, owner: OwnerState, key: unknown): number {
  if (owner.closed) return EPERM;
  if (typeof key !== 'number' || !Number.isInteger(key)) return EINVAL;
  const hook = k.hooks.get(key);
  if (hook === undefined) return EINVAL;
  if (hook.owner !== owner) return EPERM;
  k.hooks.remove(hook);
  if (k.events.active) k.events.emit({ type: 'hook.unregister', time: k.clock.now(), owner: owner.name, key });
  return 0;
}

/** K13: closes `owner`: its hooks are unregistered and its denials released. Idempotent. */
export function closeOwner(k: KernelState, owner: OwnerState): void {
  if (owner.closed) return;
  owner.closed = true;
  for (const hook of k.hooks.ordered) {
    if (hook.owner === owner) {
      k.hooks.remove(hook);
      if (k.events.active) k.events.emit({ type: 'hook.unregister', time: k.clock.now(), owner: owner.name, key: hook.key });
    }
  }
  for (const w of k.table.values()) releaseOwner(k, w, owner.name);
  k.owners.delete(owner.name);
  if (k.events.active) k.events.emit({ type: 'owner.close', time: k.clock.now(), owner: owner.name });
}
