/**
 * The rules of copying a root while it changes, shared by `chkptwpar` (an image's base and deltas,
 * `docs/image-format.md` §8) and `movewpar` (the tree copy of `src/peer/tree.ts`): when an entry
 * counts as changed (its lstat signature), when it must be copied again in the frozen round even if
 * its signature did not change (git's racy-clean rule), and when the rounds stop.
 * @module
 */
import type { Stats } from 'node:fs';

/**
 * Timestamps are coarse (the kernel's tick, a few ms): a change right after an lstat can keep the
 * ctime it saw. An entry whose ctime is within this long of the moment it was looked at is "racy"
 * and is copied again in the frozen round whatever its signature says.
 */
export const RACY_MS = 100;

/** Pre-copy stops after this many rounds while the WPAR runs... */
export const MAX_ROUNDS = 6;
/** ...or once a round copies less than this many bytes (the last delta will be about as small). */
export const SMALL_ROUND_BYTES = 2 << 20;

/**
 * What an lstat says about an entry's content: type and permission bits, size, modification and
 * change times (float ms, sub-microsecond precision) and inode. Any write, chmod, chown, rename over
 * or re-creation changes it; the ctime cannot be set back by the WPAR.
 */
export type Signature = readonly [mode: number, size: number, mtimeMs: number, ctimeMs: number, ino: number];

/** The signature of an lstat. */
export function signature(st: Stats): Signature {
  return [st.mode, st.size, st.mtimeMs, st.ctimeMs, st.ino];
}

/** Whether two signatures are the same (`null`: an entry that changed while it was copied, never the same). */
export function sameSignature(a: Signature | null, b: Signature | null): boolean {
  return a !== null && b !== null && a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[4] === b[4];
}

/** Whether an entry looked at (lstat) at `lookedAtMs` (`Date.now()`) is racy (see {@link RACY_MS}). */
export function isRacy(st: Stats, lookedAtMs: number): boolean {
  return lookedAtMs - st.ctimeMs < RACY_MS;
}

/** Whether pre-copy goes on after round `n` (1 = the first, whole copy) copied `bytes`. */
export function anotherRound(n: number, bytes: number): boolean {
  return n < MAX_ROUNDS && bytes >= SMALL_ROUND_BYTES;
}
