/**
 * The host ids a sealed WPAR's ids map to (S1): one range of 65,536 ids per daemon home, so uid 0
 * inside is an unprivileged uid outside, and the files a WPAR creates belong to that uid on the host.
 *
 * Why per home and not per WPAR: every WPAR of a home is already kept from the others by its mount
 * namespace (it cannot see their roots or sockets) and PID namespace (it cannot see or signal their
 * processes), so a second barrier by uid adds little, while a range per WPAR needs an allocator kept
 * in the store, a chown of the root on every rename or restore, and 65,536 ids per defined WPAR (1,000
 * WPARs would take 2^26 host ids). The range is derived from the home's path, so a restarted daemon
 * and the commands agree on it without storing anything. See docs/decisions.md ("Sealed WPARs").
 * @module
 */

import { createHash } from 'node:crypto';
import { resolve } from 'node:path';

/** A contiguous range of host ids that a WPAR's ids 0..size-1 map to. */
export interface IdRange {
  /** The host uid (and gid) of id 0 inside. */
  readonly base: number;
  /** How many ids are mapped (inside: 0 .. size-1). */
  readonly size: number;
}

/** Ids mapped per home: the usual 16-bit id space of a Linux system. */
export const IDS_PER_HOME = 65_536;
/** First host id used for WPARs: 2^27, far above login users and the usual `/etc/subuid` ranges. */
export const ID_RANGE_START = 2 ** 27;
/** How many distinct ranges homes are spread over (2^27 + 1024 × 65,536 < 2^28). */
export const ID_RANGE_SLOTS = 1024;

/** The id range of the home at `home` (absolute or relative; resolved first). */
export function idRangeForHome(home: string): IdRange {
  const digest = createHash('sha256').update(resolve(home)).digest();
  const slot = digest.readUInt32BE(0) % ID_RANGE_SLOTS;
  return { base: ID_RANGE_START + slot * IDS_PER_HOME, size: IDS_PER_HOME };
}

/** The `uid_map` / `gid_map` line for a range: inside 0 → host base, size ids. */
export function idMapLine(range: IdRange): string {
  return `0 ${range.base} ${range.size}\n`;
}

/** The id a host id is inside a WPAR with `range` (ids outside the range show as 0, as root's files do). */
export function insideId(range: IdRange | null, hostId: number): number {
  if (range === null) return hostId;
  const inside = hostId - range.base;
  return inside >= 0 && inside < range.size ? inside : 0;
}

/** The host id of an id seen inside a WPAR with `range`. */
export function hostId(range: IdRange | null, insideIdValue: number): number {
  if (range === null) return insideIdValue;
  return range.base + (insideIdValue >= 0 && insideIdValue < range.size ? insideIdValue : 0);
}
