/**
 * The C-shaped facade: AIX's `kwpar_reghook`, `kwpar_unreghook` and `kwpar_checkpoint_status`, with
 * `<sys/wparid.h>` argument order. K3: no argument of any type makes these throw; failures are return
 * values, and a failed call changes nothing.
 * @module
 */
import { allowOldest, clear, deny, restartClear, tryCheckpoint } from '../kernel/checkpoint.ts';
import {
  BADREGKEY, WPAR_CHECKPOINT_ALLOW, WPAR_CHECKPOINT_CLEAR, WPAR_CHECKPOINT_DENY, WPAR_CHECKPOINT_TRY,
  WPAR_NOTIFY_HOOK, WPAR_RESTART_CLEAR,
} from '../kernel/constants.ts';
import type { KernelCorral } from '../kernel/corral.ts';
import { EINVAL, ENOENT, EPERM } from '../kernel/errno.ts';
import type { ConfigFunc } from '../kernel/hooks.ts';
import { isCid } from '../kernel/lifecycle.ts';
import { isReason, liveWpar, MAX_TRY_SECONDS, registerHook, unregisterHook, type OwnerState } from '../kernel/owners.ts';
import type { KernelState } from '../kernel/state.ts';
import type { Wpar } from '../kernel/wpar.ts';

/** A WPAR id: an integer in `[1, 2^31-1]`. */
export type cid_t = number;
/** A hook registration key (positive), or `BADREGKEY`. */
export type regkey_t = number;
/** A notification function: `(flags, cid, corralp, null)`; return 0 to accept a WPARSTART. `corralp` is the
 * kernel's deeply frozen copy of the corral, with `cid` added (it is also a `Readonly<Corral>`). */
export type wpar_config_func_t =
  (flags: number, cid: cid_t, corralp: KernelCorral, unused: null) => number | Promise<number>;
/** `kwpar_reghook`'s `hookp` for `WPAR_NOTIFY_HOOK`; `current_hiwater` is written on return. */
export interface wpar_config_hook_t {
  current_hiwater: number;
  configp: wpar_config_func_t;
}

/** The three kernel services as one owner sees them. */
export interface KernelServices {
  /** K4–K7: registers `hookp.configp`, writes `hookp.current_hiwater`, returns a key or `BADREGKEY`. */
  kwpar_reghook(hooktype: number, hookp: wpar_config_hook_t): regkey_t;
  /** K8–K9: removes a hook this owner registered: 0, `EINVAL` (no such key) or `EPERM` (not yours). */
  kwpar_unreghook(key: regkey_t): number;
  /** K10–K12 TRY: resolves 0 when the checkpoint may proceed, or an errno; never rejects. */
  kwpar_checkpoint_status(kcid: cid_t, cmd: typeof WPAR_CHECKPOINT_TRY, varp: number): Promise<number>;
  /** K10–K11 DENY (varp: reason), ALLOW, CLEAR, RESTART_CLEAR: 0 or an errno, synchronously. */
  kwpar_checkpoint_status(kcid: cid_t, cmd: number, varp?: string): number;
}

export { isReason, liveWpar, MAX_REASON_LENGTH, MAX_TRY_SECONDS } from '../kernel/owners.ts';

/** The facade for one owner. Arrow functions, so `const { kwpar_reghook } = owner` works. */
export function servicesFor(k: KernelState, owner: OwnerState): KernelServices {
  return {
    kwpar_reghook: (hooktype: unknown, hookp: unknown) => reghook(k, owner, hooktype, hookp),
    kwpar_unreghook: (key: unknown) => unreghook(k, owner, key),
    kwpar_checkpoint_status: ((kcid: unknown, cmd: unknown, varp?: unknown) =>
      checkpointStatus(k, owner, kcid, cmd, varp)) as KernelServices['kwpar_checkpoint_status'],
  };
}

/** K4–K7. Everything is checked before anything is written; a throwing `hookp` is just a bad `hookp`. */
export function reghook(k: KernelState, owner: OwnerState, hooktype: unknown, hookp: unknown): number {
  try {
    if (owner.closed || hooktype !== WPAR_NOTIFY_HOOK) return BADREGKEY;
    if (typeof hookp !== 'object' || hookp === null) return BADREGKEY;
    const configp: unknown = (hookp as { configp?: unknown }).configp;
    if (typeof configp !== 'function' || !k.hooks.hasRoom) return BADREGKEY;
    // K7: the hiwater is written in the same synchronous step as the registration; a hookp whose
    // current_hiwater cannot be written is refused before anything is registered.
    (hookp as { current_hiwater: number }).current_hiwater = k.table.hiwater;
    const registered = registerHook(k, owner, configp as ConfigFunc);
    return registered === undefined ? BADREGKEY : registered.hook.key;
  } catch {
    return BADREGKEY;
  }
}

/** K8–K9 (the kernel's rule, `unregisterHook`). */
export function unreghook(k: KernelState, owner: OwnerState, key: unknown): number {
  return unregisterHook(k, owner, key);
}

/** K3, K10–K12: TRY returns a promise that never rejects; every other `cmd` a number. */
export function checkpointStatus(
  k: KernelState, owner: OwnerState, kcid: unknown, cmd: unknown, varp: unknown,
): number | Promise<number> {
  if (cmd === WPAR_CHECKPOINT_TRY) {
    return new Promise<number>((resolve) => {
      try {
        const w = tryTarget(k, owner, kcid, varp);
        if (typeof w === 'number') resolve(w);
        else tryCheckpoint(k, w, owner.name, (varp as number) * 1000, undefined, resolve);
      } catch {
        resolve(EINVAL);
      }
    });
  }
  try {
    return command(k, owner, kcid, cmd, varp);
  } catch {
    return EINVAL;
  }
}

/** K10 steps 1–4 for TRY, then the WPAR; a number is the errno that decided. */
function tryTarget(k: KernelState, owner: OwnerState, kcid: unknown, varp: unknown): Wpar | number {
  if (owner.closed) return EPERM;
  if (!isCid(kcid)) return EINVAL;
  if (typeof varp !== 'number' || !Number.isInteger(varp) || varp < 0 || varp > MAX_TRY_SECONDS) return EINVAL;
  return liveWpar(k, kcid) ?? ENOENT;
}

function command(k: KernelState, owner: OwnerState, kcid: unknown, cmd: unknown, varp: unknown): number {
  if (owner.closed) return EPERM;
  // K10.1
  if (cmd !== WPAR_CHECKPOINT_DENY && cmd !== WPAR_CHECKPOINT_ALLOW && cmd !== WPAR_CHECKPOINT_CLEAR && cmd !== WPAR_RESTART_CLEAR) {
    return EINVAL;
  }
  // K10.2
  if (!isCid(kcid)) return EINVAL;
  // K10.3 (only DENY reads varp here)
  if (cmd === WPAR_CHECKPOINT_DENY && !isReason(varp)) return EINVAL;
  // K10.4
  const w = liveWpar(k, kcid);
  if (w === undefined) return ENOENT;
  // K10.5 → K11
  switch (cmd) {
    case WPAR_CHECKPOINT_DENY: {
      const d = deny(k, w, owner.name, varp as string);
      return typeof d === 'number' ? d : 0;
    }
    case WPAR_CHECKPOINT_ALLOW: return allowOldest(k, w, owner.name);
    case WPAR_CHECKPOINT_CLEAR: return clear(k, w, owner.name);
    default: return restartClear(k, w, owner.name);
  }
}
