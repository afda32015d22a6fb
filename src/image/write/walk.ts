/**
 * Walking a WPAR's root for the writer: every entry, in a fixed order (pre-order, names sorted by
 * UTF-16 code units), without following symlinks, refusing what an image cannot hold. The walk is a
 * synchronous generator, run on its own thread by `walk-thread` so that it overlaps with reading.
 * @module
 */
import { lstatSync, readdirSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { damaged, imageError, sysCode } from '../format/errors.ts';
import { isRacy, signature, type Signature } from './precopy.ts';

/** One entry of the source tree. */
export interface SourceEntry {
  /** Path relative to the root with `/` separators; `''` for the root itself. */
  readonly rel: string;
  /** Absolute path on this system. */
  readonly abs: string;
  readonly type: 'file' | 'dir' | 'symlink';
  /** Permission bits (0o7777). */
  readonly mode: number;
  /** Whole seconds since the epoch (sub-second precision is dropped, as `tar` does). */
  readonly mtime: number;
  /** Data bytes of a regular file, else 0. */
  readonly size: number;
  /** A symlink's target, kept verbatim; empty for other types. */
  readonly linkpath: string;
  /** Owner and group on this system (host ids; the writer records them as the WPAR sees them). */
  readonly uid: number;
  readonly gid: number;
  /** The lstat signature when walked (`precopy.ts`): a different one later means it changed. */
  readonly sig: Signature;
  /** Changed so recently when walked that a later change might not show in its signature. */
  readonly racy: boolean;
}

function describe(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'of an unknown file type';
}

function entryOf(rel: string, abs: string, st: Stats, linkpath: string, type: SourceEntry['type'], lookedAt: number): SourceEntry {
  return {
    rel, abs, type, linkpath,
    sig: signature(st),
    racy: isRacy(st, lookedAt),
    mode: st.mode & 0o7777,
    mtime: Math.floor(st.mtimeMs / 1000),
    size: type === 'file' ? st.size : 0,
    uid: st.uid,
    gid: st.gid,
  };
}

/**
 * Every entry under `root` (the root first); throws a WparError naming the first path that cannot be
 * stored. With `live` the root may be changing (a WPAR that runs): an entry that disappears between
 * its directory's listing and its lstat or readlink, or a directory that disappears before it is
 * listed, is skipped rather than refused (the next round sees it gone).
 */
export function* walkEntries(root: string, label: string, live = false): Generator<SourceEntry, void, void> {
  let top: Stats;
  const lookedAt = Date.now();
  try {
    top = statSync(root);
  } catch (err) {
    const code = sysCode(err) === 'ENOENT' ? 'ENOENT' : 'EINVAL';
    throw imageError(code, label, 'root', `cannot read root ${root}: ${(err as Error).message}`, { cause: err });
  }
  if (!top.isDirectory()) throw damaged(label, 'root', `root ${root} is not a directory`);
  yield entryOf('', root, top, '', 'dir', lookedAt);
  yield* walkDir('', root.endsWith('/') && root.length > 1 ? root.slice(0, -1) : root, label, live);
}

/** Whether `err` says that an entry of a changing tree went away (`ENOENT`, or `ENOTDIR` for a replaced directory). */
function vanished(err: unknown): boolean {
  const code = sysCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function* walkDir(dirRel: string, dirAbs: string, label: string, live: boolean): Generator<SourceEntry, void, void> {
  let names: string[];
  try {
    names = readdirSync(dirAbs);
  } catch (err) {
    if (live && vanished(err)) return;
    throw err;
  }
  // Names sorted by UTF-16 code units: any fixed order keeps images of the same tree identical.
  for (const name of names.sort()) {
    const abs = `${dirAbs}/${name}`;
    // Names are decoded with U+FFFD for invalid bytes: only then is the raw name worth checking.
    if (name.includes('\uFFFD')) refuseNonUtf8(dirAbs, name, label);
    const rel = dirRel === '' ? name : `${dirRel}/${name}`;
    const lookedAt = Date.now();
    let st: Stats;
    try {
      st = lstatSync(abs);
    } catch (err) {
      if (live && vanished(err)) continue;
      throw err;
    }
    if (st.isFile()) {
      yield entryOf(rel, abs, st, '', 'file', lookedAt);
    } else if (st.isDirectory()) {
      yield entryOf(rel, abs, st, '', 'dir', lookedAt);
      yield* walkDir(rel, abs, label, live); // in place: a directory, then everything under it
    } else if (st.isSymbolicLink()) {
      let target: Buffer;
      try {
        target = readlinkSync(abs, 'buffer');
      } catch (err) {
        if (live && vanished(err)) continue;
        throw err;
      }
      if (!isUtf8(target)) {
        throw damaged(label, 'root', `${abs}: the symlink target is not valid UTF-8, which images cannot carry`);
      }
      yield entryOf(rel, abs, st, target.toString('utf8'), 'symlink', lookedAt);
    } else {
      throw damaged(label, 'root',
        `${abs} is ${describe(st)}; only regular files, directories and symlinks can be checkpointed`);
    }
  }
}

function refuseNonUtf8(dirAbs: string, name: string, label: string): void {
  const raw = readdirSync(dirAbs, 'buffer').find((b) => b.toString('utf8') === name);
  if (raw !== undefined && !isUtf8(raw)) {
    throw damaged(label, 'root', `${dirAbs}/${name}: the name is not valid UTF-8, which images cannot carry`);
  }
}
