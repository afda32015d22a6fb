/**
 * Writing a verified-as-it-goes root into a fresh staging directory. Safety does not rest on the
 * reader's path checks alone: every file is created with O_EXCL|O_NOFOLLOW, directories with mkdir
 * and symlinks with symlink, all of which fail rather than replace or follow what is there.
 * @module
 */
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, fstatSync, futimesSync, lchownSync, lutimesSync, mkdirSync, openSync,
  rmSync, symlinkSync, unlinkSync, utimesSync, writeSync,
} from 'node:fs';
import { hostId, type IdRange } from '../../runtime/idmap.ts';
import { imageError } from '../format/errors.ts';
import type { RootEntry, RootSink } from './reader.ts';

const O_CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);
/**
 * Set-user-ID and set-group-ID bits are stored but not restored: an image is checked for damage,
 * not signed, so whoever can write it could otherwise plant a set-ID program for the restorer.
 */
const RESTORED_BITS = 0o1777;

/** A RootSink that creates the tree under `dir` (an empty directory it owns). */
export class Extractor implements RootSink {
  readonly #dir: string;
  readonly #label: string;
  #fd: number | null = null;
  #file: RootEntry | null = null;
  /**
   * Directories' modes and times by path, applied last and deepest first (a read-only directory
   * still gets its children; a delta's entry for a directory updates what is applied).
   */
  readonly #dirs = new Map<string, RootEntry>();
  /** The process's umask: a file whose mode survives it needs no fchmod. */
  readonly #umask: number;
  /** Whether the open file still needs its mode set. */
  #chmod = false;

  /** The host ids the restored WPAR's ids map to: owners are recorded as it sees them (S6). */
  readonly #ids: IdRange | null;

  /**
   * `dir` must be empty: a probe file is made in it to learn the umask. Each entry gets the owner the
   * image records, mapped into `ids` (as the host sees it), or as recorded when `ids` is `null`.
   */
  constructor(dir: string, label: string, ids: IdRange | null = null) {
    this.#dir = dir;
    this.#label = label;
    this.#ids = ids;
    this.#umask = this.#learnUmask();
  }

  /** Learn the umask from a probe file (process.umask() to read it is deprecated and racy). */
  #learnUmask(): number {
    const probe = `${this.#dir}/.umask-probe`;
    const fd = openSync(probe, O_CREATE, 0o777);
    try {
      return 0o777 & ~fstatSync(fd).mode;
    } finally {
      closeSync(fd);
      unlinkSync(probe);
    }
  }

  entry(e: RootEntry): void {
    const path = this.#path(e.rel);
    try {
      // A delta's file or symlink replaces the one there (this side made it: the reader checked the
      // type), which is unlinked first so that the creation below still refuses anything it finds.
      if (e.replaces === true && e.type !== 'dir') unlinkSync(path);
      if (e.type === 'dir') {
        if (e.rel !== '' && e.replaces !== true) mkdirSync(path, 0o700);
        lchownSync(path, hostId(this.#ids, e.uid), hostId(this.#ids, e.gid));
        this.#dirs.set(e.rel, e);
      } else if (e.type === 'symlink') {
        symlinkSync(e.linkpath, path);
        lchownSync(path, hostId(this.#ids, e.uid), hostId(this.#ids, e.gid));
        lutimesSync(path, e.mtime, e.mtime);
      } else {
        // open() gives the mode minus the umask (a read-only mode still yields a writable fd):
        // only files it does not fit (e.g. 0666 under 022, or sticky) need an fchmod.
        const mode = e.mode & RESTORED_BITS;
        this.#fd = openSync(path, O_CREATE, mode & 0o777);
        this.#file = e;
        this.#chmod = mode > 0o777 || (mode & ~this.#umask) !== mode;
      }
    } catch (err) {
      throw this.#error(e, err);
    }
  }

  data(bytes: Buffer): void {
    let done = 0;
    try {
      while (done < bytes.length) done += writeSync(this.#fd!, bytes, done, bytes.length - done);
    } catch (err) {
      throw this.#error(this.#file!, err);
    }
  }

  entryEnd(): void {
    const fd = this.#fd;
    const e = this.#file;
    if (fd === null || e === null) return;
    this.#fd = null;
    this.#file = null;
    try {
      // The owner first: a chown clears the mode's set-ID bits, which are not restored anyway.
      fchownSync(fd, hostId(this.#ids, e.uid), hostId(this.#ids, e.gid));
      if (this.#chmod) fchmodSync(fd, e.mode & RESTORED_BITS);
      futimesSync(fd, e.mtime, e.mtime);
    } catch (err) {
      throw this.#error(e, err);
    } finally {
      closeSync(fd);
    }
  }

  remove(rel: string): void {
    // Directories are still 0700 here (modes come last), so whatever is under one can be removed.
    try {
      rmSync(this.#path(rel), { recursive: true });
    } catch (err) {
      throw imageError('EINVAL', this.#label, 'root', `cannot remove ${rel}: ${(err as Error).message}`, { cause: err });
    }
    if (this.#dirs.delete(rel)) {
      const under = `${rel}/`;
      for (const k of this.#dirs.keys()) if (k.startsWith(under)) this.#dirs.delete(k);
    }
  }

  /** Apply the directories' modes and times; call once every entry is written. */
  finish(): void {
    const dirs = [...this.#dirs.values()];
    for (let i = dirs.length - 1; i >= 0; i--) {
      const e = dirs[i]!;
      try {
        const path = this.#path(e.rel);
        chmodSync(path, e.mode & RESTORED_BITS);
        utimesSync(path, e.mtime, e.mtime);
      } catch (err) {
        throw this.#error(e, err);
      }
    }
  }

  /** Close a file left open by a failure. */
  abort(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  #path(rel: string): string {
    return rel === '' ? this.#dir : `${this.#dir}/${rel}`;
  }

  #error(e: RootEntry, err: unknown) {
    return imageError('EINVAL', this.#label, 'root', `cannot restore ${e.rel === '' ? '/' : e.rel}: ${(err as Error).message}`, { cause: err });
  }
}
