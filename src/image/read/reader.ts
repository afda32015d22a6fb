/**
 * Reading an image stream: the order of its parts, the rules for root entries, the SHA-256 of every
 * part and the trailer. Root entries go to a {@link RootSink} as they arrive; nothing is trusted,
 * and the result is handed out, only once the whole stream has checked out.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { deserialize } from 'node:v8';
import type { WparDefinition } from '../../runtime/definition.ts';
import { damaged } from '../format/errors.ts';
import { ENTRY, FORMAT_NAME, LIMITS, PART_NAMES, READABLE_VERSIONS, type FormatVersion, type PartName } from '../format/format.ts';
import { parseDefinition, parseManifest, type ImageManifest } from '../format/manifest.ts';
import { TarParser, type TarSink } from './parse.ts';
import type { TarEntry } from '../format/tar.ts';
import { TRAILER_SIZE, trailerHeader } from '../format/trailer.ts';

/** A root entry as the reader hands it on, its path already checked. */
export interface RootEntry {
  /** Path relative to the root, `/`-separated, no empty, `.` or `..` parts; `''` for the root itself. */
  readonly rel: string;
  readonly type: 'file' | 'dir' | 'symlink';
  /** Permission bits as stored (0o7777). */
  readonly mode: number;
  /** Whole seconds since the epoch. */
  readonly mtime: number;
  readonly size: number;
  /** A symlink's target, verbatim (it may be absolute or point anywhere: it is never followed). */
  readonly linkpath: string;
  /** Owner and group as the WPAR saw them (S6). */
  readonly uid: number;
  readonly gid: number;
  /**
   * A delta's entry for a path that holds an entry of the same type (version 3): a file or symlink
   * replaces it, a directory gets this entry's mode, times and owner and keeps its content.
   */
  readonly replaces?: boolean;
}

/**
 * Receives the root's entries in stream order: parents always before their children; in a version-3
 * image, then each delta's removals (paths that exist, never the root) and entries.
 */
export interface RootSink {
  entry(e: RootEntry): void;
  data(bytes: Buffer): void;
  entryEnd(): void;
  /** Remove the entry at `rel` and, for a directory, everything under it. */
  remove(rel: string): void;
}

/** Everything an image holds besides the root. */
export interface ImageData {
  readonly manifest: ImageManifest;
  readonly definition: WparDefinition;
  /** Each agent's saved state by agent name. */
  readonly agents: Map<string, unknown>;
}

type Stage = 'format' | 'definition' | 'agents' | 'root' | 'deltas' | 'manifest' | 'trailer' | 'end';
/** A part, the manifest, the trailer, or a delta part: `delta 1`, `delta 2`, … in stream order. */
type Section = PartName | 'manifest' | 'trailer' | `delta ${number}`;
type EntryType = RootEntry['type'];
type Counts = { entries: number; files: number; directories: number; symlinks: number; dataBytes: number; removed: number };

/** The order of the stages in versions 1 and 2, and in version 3 (the deltas after the root). */
const ORDER: Readonly<Record<'v2' | 'v3', readonly Stage[]>> = {
  v2: ['format', 'definition', 'agents', 'root', 'manifest', 'trailer', 'end'],
  v3: ['format', 'root', 'deltas', 'definition', 'agents', 'manifest', 'trailer', 'end'],
};

const isDelta = (s: Section | null): s is `delta ${number}` => s !== null && s.startsWith('delta ');
const newCounts = (): Counts => ({ entries: 0, files: 0, directories: 0, symlinks: 0, dataBytes: 0, removed: 0 });

interface Range {
  readonly offset: number;
  bytes: number;
  readonly hash: Hash;
  sha256?: string;
}

/** Checks a stream of image bytes fed by `write`; `finish` returns its contents once all is verified. */
export class ImageReader implements TarSink {
  readonly #label: string;
  readonly #root: RootSink | null;
  readonly #parser: TarParser;
  #stage: Stage = 'format';
  #section: Section | null = null;
  readonly #ranges = new Map<Section, Range>();
  #current: Range | null = null;
  /** Data of the in-memory entry being gathered (format, definition, agents, manifest, trailer). */
  #small: Buffer | null = null;
  #smallFill = 0;
  readonly #smalls = new Map<Section, Buffer>();
  /** Every root path there is (after the deltas so far) and its type: parents must be directories seen earlier. */
  readonly #paths = new Map<string, EntryType>();
  readonly #counts = newCounts();
  /** Each delta's counts, in stream order (version 3). */
  readonly #deltas: Counts[] = [];
  /** Paths the current delta has stored: at most once each. */
  #deltaPaths = new Set<string>();
  #inRootFile = false;
  #ended = false;
  /** The format version the format entry named (checked against the manifest). */
  #version: FormatVersion = 2;

  constructor(label: string, root: RootSink | null) {
    this.#label = label;
    this.#root = root;
    this.#parser = new TarParser(this, (reason, offset, inHeader) => {
      // A header that cannot be read is blamed on the part it was expected to begin or continue.
      const part = !inHeader ? this.#section : this.#stage === 'end' ? 'end of archive' : this.#stage;
      throw damaged(this.#label, part, offset === null ? reason : `${reason} (at byte ${offset})`);
    });
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#parser.offset;
  }

  /** Feed the next chunk of the image. */
  write(chunk: Buffer): void {
    this.#parser.write(chunk);
  }

  /** The stream ended: verify everything and return the image's contents. */
  finish(): ImageData {
    this.#parser.end();
    if (!this.#ended) throw damaged(this.#label, null, 'cut short (image truncated)');
    return this.#verify();
  }

  #fail(reason: string): never {
    throw damaged(this.#label, this.#section, reason);
  }

  // TarSink -------------------------------------------------------------------------------------

  header(e: TarEntry, raw: readonly Buffer[], offset: number): void {
    const section = this.#sectionOf(e);
    if (section !== this.#section) this.#begin(section, offset);
    if (section === 'trailer') {
      if (raw.length !== 1 || !raw[0]!.equals(trailerHeader())) this.#fail('the trailer header is damaged');
    } else {
      for (const r of raw) this.#current!.hash.update(r);
      this.#current!.bytes += raw.reduce((n, r) => n + r.length, 0);
    }
    if (section === 'root' || (isDelta(section) && e.path !== ENTRY.delta)) {
      this.#rootEntry(e);
    } else {
      const limit = section === 'trailer' ? TRAILER_SIZE : isDelta(section) ? LIMITS.delta : LIMITS[section as keyof typeof LIMITS];
      if (e.type !== 'file') this.#fail(`${e.path} is not a regular file`);
      if (e.size > limit) this.#fail(`${e.size} bytes, more than the ${limit} allowed`);
      this.#small = Buffer.alloc(e.size);
      this.#smallFill = 0;
    }
  }

  data(bytes: Buffer): void {
    this.#hashed(bytes);
    if (this.#small !== null) {
      bytes.copy(this.#small, this.#smallFill);
      this.#smallFill += bytes.length;
    } else {
      this.#root?.data(bytes);
    }
  }

  padding(bytes: Buffer): void {
    if (this.#section === 'trailer') {
      for (const b of bytes) if (b !== 0) this.#fail('the trailer padding is not zero');
    }
    this.#hashed(bytes);
  }

  entryEnd(): void {
    if (this.#small !== null) {
      const small = this.#small;
      this.#small = null;
      if (isDelta(this.#section)) {
        this.#removals(small); // the delta's entries follow, in the same stage
        return;
      }
      this.#smalls.set(this.#section!, small);
      if (this.#section === 'format') this.#checkFormat(small);
      this.#stage = this.#next(this.#stage);
    } else {
      if (this.#inRootFile) this.#root?.entryEnd();
      this.#inRootFile = false;
    }
  }

  archiveEnd(): void {
    if (this.#stage !== 'end') this.#fail(`the archive ends before the ${this.#stage} entry`);
    this.#ended = true;
  }

  // Structure -------------------------------------------------------------------------------------

  #next(stage: Stage): Stage {
    const order = ORDER[this.#version >= 3 ? 'v3' : 'v2'];
    return order[order.indexOf(stage) + 1] ?? 'end';
  }

  /** Which section an entry belongs to, checking the order of the parts. */
  #sectionOf(e: TarEntry): Section {
    this.#rejectHostile(e.path);
    const expect = (section: Section, name: string): Section => {
      if (e.path !== name) {
        this.#section = this.#section ?? section;
        const what = this.#stage === 'format' ? 'not a Corral image: ' : '';
        this.#fail(`${what}expected entry ${name}, found ${JSON.stringify(e.path)}`);
      }
      return section;
    };
    switch (this.#stage) {
      case 'format': return expect('format', ENTRY.format);
      case 'definition': return expect('definition', ENTRY.definition);
      case 'agents': return expect('agents', ENTRY.agents);
      case 'root':
        if (this.#section !== 'root') return expect('root', ENTRY.root);
        if (e.path.startsWith(ENTRY.root)) return 'root';
        this.#stage = this.#next('root');
        return this.#sectionOf(e);
      case 'deltas':
        // Each delta begins with its list of removed paths; root entries continue the current one.
        if (e.path === ENTRY.delta) {
          this.#deltas.push(newCounts());
          this.#deltaPaths = new Set();
          return `delta ${this.#deltas.length}`;
        }
        if (isDelta(this.#section) && e.path.startsWith(ENTRY.root)) return this.#section;
        this.#stage = this.#next('deltas');
        return expect('definition', ENTRY.definition);
      case 'manifest': return expect('manifest', ENTRY.manifest);
      case 'trailer': return expect('trailer', ENTRY.trailer);
      default: return this.#fail(`unexpected entry ${JSON.stringify(e.path)} after the ${this.#stage}`);
    }
  }

  #begin(section: Section, offset: number): void {
    if (this.#current !== null) this.#current.sha256 = this.#current.hash.digest('hex');
    this.#section = section;
    this.#current = { offset, bytes: 0, hash: createHash('sha256') };
    this.#ranges.set(section, this.#current);
  }

  #hashed(bytes: Buffer): void {
    if (this.#section === 'trailer') return; // the trailer is checked against fixed bytes instead
    this.#current!.hash.update(bytes);
    this.#current!.bytes += bytes.length;
  }

  #checkFormat(bytes: Buffer): void {
    let f: { format?: unknown; version?: unknown };
    try {
      f = JSON.parse(bytes.toString('utf8')) as typeof f;
    } catch {
      this.#fail('not a Corral image: the format entry is not JSON');
    }
    if (f?.format !== FORMAT_NAME) this.#fail(`not a Corral image: format ${JSON.stringify(f?.format)}`);
    if (typeof f.version !== 'number' || !READABLE_VERSIONS.includes(f.version)) {
      this.#fail(`format version ${JSON.stringify(f.version)} is not supported (this reader reads versions ${READABLE_VERSIONS.slice(0, -1).join(', ')} and ${READABLE_VERSIONS.at(-1)})`);
    }
    this.#version = f.version as FormatVersion;
  }

  /** Absolute paths and `..` get their own message wherever they appear. */
  #rejectHostile(path: string): void {
    if (path.startsWith('/')) this.#fail(`entry ${JSON.stringify(path)} has an absolute path; refused`);
    if (path.split('/').includes('..')) this.#fail(`entry ${JSON.stringify(path)} escapes the root with ..; refused`);
  }

  #rootEntry(e: TarEntry): void {
    const quoted = JSON.stringify(e.path);
    let rel = e.path.slice(ENTRY.root.length);
    if (e.type === 'dir') {
      if (!e.path.endsWith('/')) this.#fail(`directory entry ${quoted} does not end with /`);
      rel = rel.slice(0, -1);
    } else if (e.path.endsWith('/')) {
      this.#fail(`non-directory entry ${quoted} ends with /`);
    }
    const inDelta = isDelta(this.#section);
    const before = this.#paths.get(rel);
    if (this.#paths.size === 0) {
      if (rel !== '' || e.type !== 'dir') this.#fail(`the root part must start with the directory ${ENTRY.root}`);
    } else if (inDelta && rel === '') {
      if (e.type !== 'dir') this.#fail(`entry ${quoted} would replace the root directory; refused`);
      if (this.#deltaPaths.has(rel)) this.#fail(`entry ${quoted} appears twice in one delta; refused`);
    } else {
      const parts = rel.split('/');
      if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) {
        this.#fail(`entry ${quoted} has an empty, . or .. path component; refused`);
      }
      if (!inDelta && before !== undefined) this.#fail(`entry ${quoted} appears twice; refused`);
      if (inDelta && this.#deltaPaths.has(rel)) this.#fail(`entry ${quoted} appears twice in one delta; refused`);
      // A delta replaces an entry of the same type only: another type must be removed first, so a
      // directory's content is never left behind and a symlink never becomes a parent.
      if (before !== undefined && before !== e.type) this.#fail(`entry ${quoted} changes a ${before} into a ${e.type} without removing it first; refused`);
      const parent = parts.length === 1 ? '' : rel.slice(0, rel.lastIndexOf('/'));
      if (this.#paths.get(parent) !== 'dir') {
        this.#fail(`entry ${quoted} is not inside a directory stored before it (a symlink cannot be a parent); refused`);
      }
    }
    if (e.type === 'symlink' && (e.linkpath === '' || e.linkpath.includes('\0'))) {
      this.#fail(`symlink ${quoted} has an empty or invalid target`);
    }
    this.#paths.set(rel, e.type);
    if (inDelta) this.#deltaPaths.add(rel);
    const counts = inDelta ? this.#deltas.at(-1)! : this.#counts;
    counts.entries++;
    if (e.type === 'file') {
      counts.files++;
      counts.dataBytes += e.size;
    } else if (e.type === 'dir') {
      counts.directories++;
    } else {
      counts.symlinks++;
    }
    this.#root?.entry({
      rel, type: e.type, mode: e.mode, mtime: e.mtime, size: e.size, linkpath: e.linkpath, uid: e.uid ?? 0, gid: e.gid ?? 0,
      ...(before !== undefined && inDelta && { replaces: true }),
    });
    if (e.type === 'file') this.#inRootFile = true;
    else this.#root?.entryEnd();
  }

  /**
   * A delta's list of removed paths: `{"removed": [REL, …]}`, each an entry there is (never the
   * root), removed with everything under it, in the order listed.
   */
  #removals(bytes: Buffer): void {
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch {
      this.#fail('the list of removed paths is not JSON');
    }
    const list = (value as { removed?: unknown } | null)?.removed;
    if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.keys(value).length !== 1 || !Array.isArray(list)) {
      this.#fail('the list of removed paths is not {"removed": [...]}');
    }
    const counts = this.#deltas.at(-1)!;
    for (const rel of list as unknown[]) {
      const quoted = JSON.stringify(rel);
      if (typeof rel !== 'string' || rel === '' || rel.startsWith('/') || rel.split('/').some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) {
        this.#fail(`removed path ${quoted} is not a relative path inside the root; refused`);
      }
      const type = this.#paths.get(rel);
      if (type === undefined) this.#fail(`removed path ${quoted} is not in the root stored before it`);
      this.#paths.delete(rel);
      if (type === 'dir') {
        const under = `${rel}/`;
        for (const k of this.#paths.keys()) if (k.startsWith(under)) this.#paths.delete(k);
      }
      counts.removed++;
      this.#root?.remove(rel);
    }
  }

  // Verification ----------------------------------------------------------------------------------

  #verify(): ImageData {
    const label = this.#label;
    this.#section = null;
    const manifestRange = this.#ranges.get('manifest')!;
    const trailer = this.#smalls.get('trailer')!.toString('latin1');
    if (!/^[0-9a-f]{64}\n$/.test(trailer)) throw damaged(label, 'trailer', 'not a SHA-256 digest (image damaged or tampered)');
    if (trailer.slice(0, 64) !== manifestRange.sha256) {
      throw damaged(label, 'manifest', 'SHA-256 mismatch with the trailer (image damaged or tampered)');
    }
    const manifest = parseManifest(this.#smalls.get('manifest')!, label, this.#version);
    const same = (name: Section, want: { offset: number; bytes: number; sha256: string }) => {
      const got = this.#ranges.get(name)!;
      if (want.sha256 !== got.sha256 || want.offset !== got.offset || want.bytes !== got.bytes) {
        throw damaged(label, name, 'SHA-256 mismatch (image damaged or tampered)');
      }
    };
    for (const name of PART_NAMES) same(name, manifest.parts[name]);
    const deltas = manifest.parts.deltas ?? [];
    if (deltas.length !== this.#deltas.length) throw damaged(label, 'manifest', `lists ${deltas.length} deltas, the image holds ${this.#deltas.length}`);
    deltas.forEach((d, k) => same(`delta ${k + 1}`, d));
    const counted = (part: string, want: Readonly<Record<string, number>>, got: Counts, keys: readonly (keyof Counts)[]) => {
      for (const k of keys) if (want[k] !== got[k]) throw damaged(label, part, `holds ${got[k]} ${k}, the manifest says ${want[k]}`);
    };
    const rootKeys = ['entries', 'files', 'directories', 'symlinks', 'dataBytes'] as const;
    counted('root', manifest.parts.root as unknown as Record<string, number>, this.#counts, rootKeys);
    deltas.forEach((d, k) => counted(`delta ${k + 1}`, d as unknown as Record<string, number>, this.#deltas[k]!, [...rootKeys, 'removed']));
    const definition = parseDefinition(this.#smalls.get('definition')!, label);
    if (definition.name !== manifest.wpar) throw damaged(label, 'manifest', `names WPAR ${manifest.wpar}, the definition ${definition.name}`);
    const agents = this.#agents(this.#smalls.get('agents')!);
    const names = [...agents.keys()].sort();
    if (names.length !== manifest.agents.length || names.some((n, i) => n !== manifest.agents[i])) {
      throw damaged(label, 'agents', 'the agents do not match the manifest');
    }
    return { manifest, definition, agents };
  }

  #agents(bytes: Buffer): Map<string, unknown> {
    let value: unknown;
    try {
      value = deserialize(bytes);
    } catch (err) {
      throw damaged(this.#label, 'agents', `cannot be deserialized: ${(err as Error).message}`);
    }
    if (!(value instanceof Map) || ![...value.keys()].every((k) => typeof k === 'string')) {
      throw damaged(this.#label, 'agents', 'is not a Map of agent name to state');
    }
    return value as Map<string, unknown>;
  }
}
