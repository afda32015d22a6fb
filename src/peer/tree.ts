/**
 * Copying a WPAR's root in rounds (docs/mobility.md §3): the departure sends what changed since the
 * last round while the WPAR runs, then, frozen, the last delta; the arrival applies each entry into
 * a private staging tree, verifying every file's SHA-256 before it is put in place, and at the end
 * compares a digest of the whole listing with the departure's.
 * @module
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, fchmodSync, fchownSync, futimesSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, writeSync, type Stats } from 'node:fs';
import { chmod, lchown, lutimes, mkdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { WparError } from '../kernel/errno.ts';
import { COPY_MAX, type Message, type Wire } from './wire.ts';
import { isRacy, sameSignature, signature, type Signature } from '../image/write/precopy.ts';
import { hostId, insideId, type IdRange } from '../runtime/idmap.ts';

/** One entry of a root, as both sides record it. */
export interface TreeEntry {
  readonly type: 'file' | 'dir' | 'symlink';
  /** Permission bits (07777). */
  readonly mode: number;
  /** Modification time, whole milliseconds since the epoch. */
  readonly mtimeMs: number;
  /** File size in bytes (0 for others). */
  readonly size: number;
  /** A file's SHA-256 (hex), a symlink's target, `''` for a directory. */
  readonly content: string;
  /** Owner and group as the WPAR sees them (S6): the departure's host ids less its base. */
  readonly uid: number;
  readonly gid: number;
}

/** What one round sent. */
export interface RoundStats {
  readonly files: number;
  readonly bytes: number;
  readonly ms: number;
}

/** Read size for file data. */
const READ_BYTES = 1 << 20;
/** The read buffer of small files (see {@link COPY_MAX}). */
const scratch = Buffer.allocUnsafe(COPY_MAX);

interface Sent {
  readonly entry: TreeEntry;
  /** The lstat signature when it was read (`null`: it changed while read): a different one means it changed. */
  readonly sig: Signature | null;
  /** Changed so recently when read that a later change might not show in its signature. */
  readonly racy: boolean;
}

function kind(st: Stats): TreeEntry['type'] | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return null;
}

/** The digest of a whole listing: both sides compute it over what they hold. */
export function listingDigest(entries: ReadonlyMap<string, TreeEntry>): { entries: number; sha256: string } {
  const h = createHash('sha256');
  for (const rel of [...entries.keys()].sort()) {
    const e = entries.get(rel)!;
    h.update(`${rel}\0${e.type}\0${e.mode}\0${e.mtimeMs}\0${e.size}\0${e.uid}\0${e.gid}\0${e.content}\n`);
  }
  return { entries: entries.size, sha256: h.digest('hex') };
}

/** The departure's side: walks the root each round and sends what changed. */
export class TreeSender {
  readonly #root: string;
  readonly #ids: IdRange | null;
  readonly #sent = new Map<string, Sent>();

  /** `ids`: the host ids the WPAR's ids map to (sealed), so owners are sent as the WPAR sees them; `null` sends host ids. */
  constructor(root: string, ids: IdRange | null = null) {
    this.#root = root;
    this.#ids = ids;
  }

  /** What the arrival holds once everything sent has been applied. */
  listing(): Map<string, TreeEntry> {
    return new Map([...this.#sent].map(([rel, s]) => [rel, s.entry]));
  }

  /**
   * Sends one round: every entry that is new or changed since it was sent (with `final`, also those
   * that changed so recently that a change might not show), and every deletion. Returns its stats.
   */
  async round(wire: Wire, n: number, final: boolean, signal?: AbortSignal): Promise<RoundStats> {
    const t0 = performance.now();
    let files = 0;
    let bytes = 0;
    await wire.send({ type: 'round', n, final });
    const seen = new Set<string>();
    const walk = async (rel: string): Promise<void> => {
      const abs = rel === '' ? this.#root : join(this.#root, rel);
      let st: Stats;
      const lookedAt = Date.now();
      try {
        // Number stats, not BigInt ones: the frozen round lstats every entry of the root.
        st = lstatSync(abs);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // deleted meanwhile: sent as a deletion
        throw err;
      }
      const type = kind(st);
      if (type === null) {
        throw new WparError('EINVAL', `${abs} is a FIFO, socket or device; only regular files, directories and symlinks can be moved`);
      }
      seen.add(rel);
      const sig = signature(st);
      const before = this.#sent.get(rel);
      if (before === undefined || !sameSignature(before.sig, sig) || (final && before.racy) || before.entry.type !== type) {
        if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new WparError('EINTR', 'move interrupted');
        const mode = st.mode & 0o7777;
        const mtimeMs = Math.floor(st.mtimeMs);
        const racy = isRacy(st, lookedAt);
        const uid = insideId(this.#ids, st.uid);
        const gid = insideId(this.#ids, st.gid);
        if (type === 'file') {
          const r = await this.#sendFile(wire, rel, abs, { mode, mtimeMs, uid, gid }, Number(st.size));
          files++;
          bytes += r.size;
          // A file that changed while it was read is sent again next round.
          const after = lstatSync(abs, { throwIfNoEntry: false });
          const stable = after !== undefined && sameSignature(signature(after), sig) && r.size === Number(st.size);
          this.#sent.set(rel, { entry: { type, mode, mtimeMs, size: r.size, content: r.sha256, uid, gid }, sig: stable ? sig : null, racy });
        } else if (type === 'dir') {
          if (rel !== '' || before === undefined || !sameSignature(before.sig, sig)) await wire.send({ type: 'dir', path: rel, mode, mtimeMs, uid, gid });
          this.#sent.set(rel, { entry: { type, mode, mtimeMs, size: 0, content: '', uid, gid }, sig, racy });
        } else {
          const target = readlinkSync(abs);
          await wire.send({ type: 'symlink', path: rel, target, mtimeMs, uid, gid });
          files++;
          this.#sent.set(rel, { entry: { type, mode: 0o777, mtimeMs, size: 0, content: target, uid, gid }, sig, racy });
        }
      }
      if (type === 'dir') {
        let names: string[];
        try {
          names = readdirSync(abs).sort();
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw err;
        }
        for (const name of names) await walk(rel === '' ? name : `${rel}/${name}`);
      }
    };
    await walk('');
    // Deletions, deepest first (the arrival removes a directory with what is under it anyway).
    const gone = [...this.#sent.keys()].filter((rel) => !seen.has(rel)).sort().reverse();
    for (const rel of gone) {
      if (!this.#sent.has(rel)) continue;
      await wire.send({ type: 'delete', path: rel });
      for (const k of [...this.#sent.keys()]) if (k === rel || k.startsWith(`${rel}/`)) this.#sent.delete(k);
    }
    await wire.send({ type: 'round-end', n, files, bytes });
    return { files, bytes, ms: performance.now() - t0 };
  }

  async #sendFile(wire: Wire, rel: string, abs: string, meta: { mode: number; mtimeMs: number; uid: number; gid: number }, expected: number): Promise<{ size: number; sha256: string }> {
    // Synchronous reads: a file is read in one or a few calls, and a thread-pool round trip per
    // call would cost more than the read itself for the many small files of a typical root.
    const fd = openSync(abs, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    const h = createHash('sha256');
    let size = 0;
    try {
      await wire.send({ type: 'file', path: rel, ...meta });
      // A small file (most of a typical root) is read into one reused buffer, which the wire copies
      // into its batch at once; a large one into fresh buffers, which the wire writes as they are.
      const small = expected < COPY_MAX;
      for (;;) {
        const buf = small ? scratch : Buffer.allocUnsafe(READ_BYTES);
        const n = readSync(fd, buf, 0, small ? COPY_MAX : READ_BYTES, null);
        if (n === 0) break;
        const piece = buf.subarray(0, n);
        h.update(piece);
        size += n;
        await wire.sendData(piece);
      }
    } finally {
      closeSync(fd);
    }
    const sha256 = h.digest('hex');
    await wire.send({ type: 'file-end', size, sha256 });
    return { size, sha256 };
  }
}

/** A path as received: relative, normalized, without `.`/`..`, NUL or empty components. */
function checkRel(path: unknown, allowRoot: boolean): string {
  if (typeof path !== 'string' || path.length > 4096 || path.includes('\0')) throw protocol(`bad path ${JSON.stringify(path)}`);
  if (path === '') {
    if (allowRoot) return path;
    throw protocol('the root cannot be replaced');
  }
  if (path.startsWith('/') || path.split('/').some((c) => c === '' || c === '.' || c === '..')) throw protocol(`path ${JSON.stringify(path)} escapes or is not normalized; refused`);
  return path;
}

function protocol(why: string): WparError {
  return new WparError('EPROTO', `the stream is damaged or hostile: ${why}`);
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/**
 * The arrival's side: applies rounds into `stagingRoot` (which it creates). Every path is checked
 * against what it has itself created — an entry's parent must be a directory it made — so nothing
 * is ever written through a symlink; files are written to `tmpDir` and renamed into place only
 * once their size and SHA-256 match.
 */
export class TreeReceiver {
  readonly #root: string;
  readonly #tmp: string;
  readonly #ids: IdRange | null;
  readonly #have = new Map<string, TreeEntry>();

  /**
   * `ids`: the host ids the arrival's WPAR ids map to (sealed): each entry gets the owner sent (as
   * the WPAR sees it) mapped into them, as a restart from an image does; `null` applies them as sent.
   */
  constructor(stagingRoot: string, tmpDir: string, ids: IdRange | null = null) {
    this.#root = stagingRoot;
    this.#tmp = tmpDir;
    this.#ids = ids;
  }

  /** Creates the staging directories. */
  async init(): Promise<void> {
    await mkdir(this.#root, { recursive: true, mode: 0o700 });
    await mkdir(this.#tmp, { recursive: true, mode: 0o700 });
  }

  /** What it holds. */
  listing(): Map<string, TreeEntry> {
    return new Map(this.#have);
  }

  #abs(rel: string): string {
    return rel === '' ? this.#root : join(this.#root, rel);
  }

  #needParent(rel: string): void {
    const parent = parentOf(rel);
    if (parent !== '' && this.#have.get(parent)?.type !== 'dir') throw protocol(`${JSON.stringify(rel)}: its parent is not a directory received earlier`);
    if (parent === '' && !this.#have.has('')) throw protocol(`${JSON.stringify(rel)} before the root directory`);
  }

  /** Removes whatever is at `rel` (and, for a directory, below it). */
  async #clear(rel: string): Promise<void> {
    if (!this.#have.has(rel)) return;
    await rm(this.#abs(rel), { recursive: true, force: true });
    for (const k of [...this.#have.keys()]) if (k === rel || k.startsWith(`${rel}/`)) this.#have.delete(k);
  }

  /**
   * Applies one round, from its `round` message (already read) to its `round-end`. Returns its stats.
   * Throws EPROTO for anything out of order, hostile or damaged.
   */
  async round(wire: Wire, n: number): Promise<RoundStats> {
    const t0 = performance.now();
    let files = 0;
    let bytes = 0;
    for (;;) {
      const m = await wire.message();
      switch (m.type) {
        case 'dir': {
          const rel = checkRel(m.path, true);
          if (rel !== '') this.#needParent(rel);
          const entry: TreeEntry = { type: 'dir', mode: modeOf(m.mode), mtimeMs: timeOf(m.mtimeMs), size: 0, content: '', uid: idOf(m.uid), gid: idOf(m.gid) };
          if (this.#have.get(rel)?.type !== 'dir') {
            if (rel === '' && this.#have.has('')) throw protocol('the root is not a directory');
            await this.#clear(rel);
            if (rel !== '') await mkdir(this.#abs(rel), { mode: 0o700 });
          }
          this.#have.set(rel, entry); // modes and times are applied at the end, deepest first
          break;
        }
        case 'symlink': {
          const rel = checkRel(m.path, false);
          this.#needParent(rel);
          if (typeof m.target !== 'string' || m.target === '' || m.target.includes('\0') || m.target.length > 4096) throw protocol(`${rel}: bad symlink target`);
          await this.#clear(rel);
          await symlink(m.target, this.#abs(rel));
          const mtimeMs = timeOf(m.mtimeMs);
          const uid = idOf(m.uid);
          const gid = idOf(m.gid);
          await lchown(this.#abs(rel), hostId(this.#ids, uid), hostId(this.#ids, gid));
          await lutimes(this.#abs(rel), mtimeMs / 1000, mtimeMs / 1000).catch(() => {});
          this.#have.set(rel, { type: 'symlink', mode: 0o777, mtimeMs, size: 0, content: m.target, uid, gid });
          files++;
          break;
        }
        case 'file': {
          const rel = checkRel(m.path, false);
          this.#needParent(rel);
          const size = await this.#file(wire, rel, modeOf(m.mode), timeOf(m.mtimeMs), idOf(m.uid), idOf(m.gid));
          files++;
          bytes += size;
          break;
        }
        case 'delete': {
          const rel = checkRel(m.path, false);
          await this.#clear(rel);
          break;
        }
        case 'round-end':
          if (m.n !== n) throw protocol(`round ${String(m.n)} ended inside round ${n}`);
          if (m.files !== files || m.bytes !== bytes) throw protocol(`round ${n}: ${files} entries and ${bytes} bytes received, ${String(m.files)} and ${String(m.bytes)} sent`);
          return { files, bytes, ms: performance.now() - t0 };
        default:
          throw protocol(`unexpected ${m.type} inside round ${n}`);
      }
    }
  }

  /**
   * A file's content, written in place in the private staging tree (synchronous calls: most files
   * are small). Nothing in staging is used before the whole listing has verified, so a file whose
   * size or SHA-256 does not match fails the move, and the staging goes with it.
   */
  async #file(wire: Wire, rel: string, mode: number, mtimeMs: number, uid: number, gid: number): Promise<number> {
    const prior = this.#have.get(rel)?.type;
    if (prior !== undefined && prior !== 'file') await this.#clear(rel);
    // O_NOFOLLOW: what is at rel is a file this side wrote, or nothing; never followed.
    const fd = openSync(this.#abs(rel), fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW, 0o600);
    this.#have.delete(rel); // until verified, it is not what the departure holds
    const h = createHash('sha256');
    let size = 0;
    let end: Message;
    try {
      for (;;) {
        const f = await wire.next();
        if (f.kind === 'data') {
          h.update(f.data);
          size += f.data.length;
          for (let off = 0; off < f.data.length;) off += writeSync(fd, f.data, off);
          continue;
        }
        end = f.message;
        break;
      }
      if (end.type === 'error') throw new WparError('EIO', `the departure failed: ${String(end.message)}`);
      if (end.type !== 'file-end') throw protocol(`${rel}: ${end.type} inside a file`);
      if (end.size !== size) throw protocol(`${rel}: ${size} bytes received, ${String(end.size)} sent`);
      if (end.sha256 !== h.digest('hex')) throw protocol(`${rel}: SHA-256 mismatch`);
      // The owner first (a chown clears set-ID bits); set-user-ID and set-group-ID bits are dropped
      // anyway, as a restart from an image drops them.
      fchownSync(fd, hostId(this.#ids, uid), hostId(this.#ids, gid));
      fchmodSync(fd, mode & 0o1777);
      futimesSync(fd, mtimeMs / 1000, mtimeMs / 1000);
    } finally {
      closeSync(fd);
    }
    this.#have.set(rel, { type: 'file', mode, mtimeMs, size, content: end.sha256 as string, uid, gid });
    return size;
  }

  /** After the last round: directory modes and times, deepest first (so content could be written). */
  async finish(): Promise<void> {
    const dirs = [...this.#have].filter(([, e]) => e.type === 'dir').sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0));
    for (const [rel, e] of dirs) {
      const abs = this.#abs(rel);
      await lchown(abs, hostId(this.#ids, e.uid), hostId(this.#ids, e.gid));
      await chmod(abs, e.mode & 0o1777);
      await utimes(abs, e.mtimeMs / 1000, e.mtimeMs / 1000);
    }
    await rm(this.#tmp, { recursive: true, force: true });
  }

  /** The target of a symlink it made (for tests). */
  async readlink(rel: string): Promise<string> {
    return readlink(this.#abs(rel));
  }
}

function modeOf(v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0o7777) throw protocol(`bad mode ${JSON.stringify(v)}`);
  return v as number;
}

/** An owner or group as the WPAR sees it (S6). */
function idOf(v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0xfffffffe) throw protocol(`bad owner or group ${JSON.stringify(v)}`);
  return v as number;
}

function timeOf(v: unknown): number {
  if (!Number.isSafeInteger(v)) throw protocol(`bad time ${JSON.stringify(v)}`);
  return v as number;
}
