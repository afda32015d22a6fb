/**
 * The contract's names and values (kernel-services.md §2) and its argument rules, written down again
 * from the spec, independently of `src/`. The tests check that the package exports the same values.
 * @module
 */

export const SPEC = {
  WPAR_NOTIFY_HOOK: 1,
  WPARSTART: 0x1,
  WPARSTOP: 0x2,
  WPAR_CHECKPOINT_DENY: 1,
  WPAR_CHECKPOINT_ALLOW: 2,
  WPAR_CHECKPOINT_TRY: 3,
  WPAR_CHECKPOINT_CLEAR: 4,
  WPAR_RESTART_CLEAR: 5,
  BADREGKEY: -1,
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EAGAIN: 11,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ETIMEDOUT: 78,
  ECANCELED: 117,
} as const;

export type ErrCode = 'EPERM' | 'ENOENT' | 'EINTR' | 'EAGAIN' | 'EBUSY' | 'EEXIST' | 'EINVAL' | 'ETIMEDOUT' | 'ECANCELED';

export const { WPARSTART, WPARSTOP, BADREGKEY, EPERM, ENOENT, EBUSY, EINVAL, ETIMEDOUT } = SPEC;
export const DENY = SPEC.WPAR_CHECKPOINT_DENY;
export const ALLOW = SPEC.WPAR_CHECKPOINT_ALLOW;
export const TRY = SPEC.WPAR_CHECKPOINT_TRY;
export const CLEAR = SPEC.WPAR_CHECKPOINT_CLEAR;
export const RESTART_CLEAR = SPEC.WPAR_RESTART_CLEAR;

/** K10.1: the five commands (strict equality: `'3'` or `new Number(3)` is not a command). */
export function isCommand(cmd: unknown): boolean {
  return cmd === DENY || cmd === ALLOW || cmd === TRY || cmd === CLEAR || cmd === RESTART_CLEAR;
}

/** K10.2 / §1: an integer in [1, 2^31-1]. Never coerces (safe on hostile proxies). */
export function isCid(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 2 ** 31 - 1;
}

/** K10.3 DENY: a string of 1 to 1024 characters. */
export function isReason(v: unknown): v is string {
  return typeof v === 'string' && v.length >= 1 && v.length <= 1024;
}

/** K10.3 TRY: an integer number of seconds in [0, 2147483]. */
export function isTrySeconds(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 2147483;
}

/** K10.3: is `varp` valid for `cmd` (a valid command)? */
export function isVarpValid(cmd: unknown, varp: unknown): boolean {
  if (cmd === DENY) return isReason(varp);
  if (cmd === TRY) return isTrySeconds(varp);
  return true;
}

/** K14.1 */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
