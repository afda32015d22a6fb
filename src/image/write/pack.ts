/**
 * Producing an image as a stream of chunks, in one pass over the root: each file is read once,
 * straight into the output buffer, and hashed there.
 * @module
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { WparError } from '../../kernel/errno.ts';
import { serialize } from 'node:v8';
import type { WparDefinition } from '../../runtime/definition.ts';
import { ChunkBuilder, ChunkPool, CHUNK_BYTES, type PartPlace } from '../chunks.ts';
import { ChunkHasher, warmHasher } from './hasher.ts';
import { damaged, imageError, sysCode } from '../format/errors.ts';
import { BLOCK, ENTRY, FORMAT_NAME, FORMAT_VERSION, formatEntryBytes, LIMITS, padding } from '../format/format.ts';
import { definitionProblem, signedBytes, sourceSystem, type DeltaPartDigest, type ImageManifest, type ImageSigner } from '../format/manifest.ts';
import { anotherRound } from './precopy.ts';
import { encodeHeaders, planHeaders, writeHeaders, type HeaderPlan, type TarEntry } from '../format/tar.ts';
import type { SourceEntry } from './walk.ts';
import { insideId, type IdRange } from '../../runtime/idmap.ts';
import { forgetTree, newTree, walkOnThread, warmWalker } from './walk-thread.ts';
import { trailerHeader, trailerData } from '../format/trailer.ts';

/**
 * Stops the WPAR for the last delta (`chkptwpar`: agents save, then every process freezes) and
 * returns each agent's saved state by name.
 */
export type FreezeHook = () => Promise<ReadonlyMap<string, unknown>>;

/** What an image is made of. */
export interface ImageContents {
  /** The WPAR's definition. */
  readonly definition: WparDefinition;
  /** The root directory to store (symlinks in it are stored as links, never followed). */
  readonly root: string;
  /**
   * Each agent's saved state by agent name (values must survive `v8.serialize`): then the root
   * must not change while the image is written. Or a {@link FreezeHook}: then the root is copied
   * while it may change (pre-copy rounds), the hook is called, and the last delta is written once it
   * has returned — what changed since the last round, so that the image holds the root at the freeze.
   */
  readonly agents: ReadonlyMap<string, unknown> | FreezeHook;
  /**
   * The host ids the WPAR's ids map to (a sealed WPAR), so ownership is recorded as the WPAR sees it
   * (S6); `null` or absent records host ids as they are.
   */
  readonly ids?: IdRange | null;
  /** Signs the manifest (M8): the writing home's identity. Without one the image is unsigned. */
  readonly signer?: ImageSigner;
  /** In a cluster: the ownership epoch the WPAR ran with (C4), recorded in the manifest. */
  readonly epoch?: number;
}

/**
 * Progress of writing or reading an image, in bytes of the image stream. While a pre-copied image
 * is written, `bytesTotal` is the size planned so far (the root's exact size once walked, plus each
 * delta as it is planned); the last call has the exact size.
 */
export interface ImageProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

/** What the writer of a pre-copied image did, for the daemon's events and the benches. */
export interface PrecopyStats {
  /** Copy rounds: the root, then each delta (the last one frozen), with their image bytes. */
  readonly rounds: ReadonlyArray<{ readonly entries: number; readonly removed: number; readonly bytes: number; readonly ms: number }>;
}

/** Options for producing an image stream. */
export interface PackOptions {
  /** Names the image in error messages (its directory, or where the stream goes). */
  readonly label?: string;
  /** Called after each chunk with the bytes produced and the image's exact total size. */
  readonly onProgress?: (progress: ImageProgress) => void;
  /** Aborting it stops the stream with an EINTR WparError. */
  readonly signal?: AbortSignal;
  /** Chunk size in bytes (a multiple of 512). */
  readonly chunkBytes?: number;
  /** The creation time to record (default: now). */
  readonly created?: Date;
  /** Called once the image is complete with the rounds it took. */
  readonly onRounds?: (stats: PrecopyStats) => void;
  /**
   * Called (and awaited) after the rounds that run unfrozen and before the freeze: the writer to a
   * file flushes it there, so that the frozen part has little left to sync.
   */
  readonly beforeFreeze?: () => Promise<void>;
}

const O_READ = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

function rootEntry(e: SourceEntry, ids: IdRange | null): TarEntry {
  const path = e.rel === '' ? ENTRY.root : e.type === 'dir' ? `${ENTRY.root}${e.rel}/` : `${ENTRY.root}${e.rel}`;
  return { path, type: e.type, mode: e.mode, size: e.size, mtime: e.mtime, linkpath: e.linkpath, uid: insideId(ids, e.uid), gid: insideId(ids, e.gid) };
}

function fixedEntry(path: string, size: number, mtime: number): TarEntry {
  return { path, type: 'file', mode: 0o644, size, mtime, linkpath: '' };
}

function serializeAgents(agents: ReadonlyMap<string, unknown>, label: string): Buffer {
  if (!(agents instanceof Map)) throw damaged(label, 'agents', 'agent states must be a Map of name to state');
  const sorted = new Map([...agents].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  for (const name of sorted.keys()) {
    if (typeof name !== 'string') throw damaged(label, 'agents', 'agent names must be strings');
  }
  let bytes: Buffer;
  try {
    bytes = serialize(sorted);
  } catch (err) {
    throw damaged(label, 'agents', `a state cannot be serialized: ${(err as Error).message}`);
  }
  if (bytes.length > LIMITS.agents) {
    throw damaged(label, 'agents', `the agents' states take ${bytes.length} bytes, more than the ${LIMITS.agents} an image may hold`);
  }
  return bytes;
}

/** Append `n` zero bytes, across chunks as needed. */
function zeroFill(out: ChunkBuilder, n: number): void {
  while (n > 0) {
    if (out.room === 0) out.flush();
    const k = Math.min(out.room, n);
    out.zeros(k);
    n -= k;
  }
}

/**
 * Read the file `e` into the stream, straight into the chunks. The last read asks for one byte more
 * than the walk saw, which tells a file that grew without an fstat per file. Returns whether the
 * bytes stored are the file as the walk saw it: with `live` (a root that may be changing) a file
 * that grew, shrank, vanished or cannot be read is stored cut or padded with zeros to the size in
 * its header and reported unstable, to be stored again in a later delta; without, that is an error.
 */
function putFile(out: ChunkBuilder, e: SourceEntry, label: string, live: boolean): boolean {
  let fd: number;
  try {
    fd = openSync(e.abs, O_READ);
  } catch (err) {
    if (live) {
      zeroFill(out, e.size + padding(e.size));
      return false;
    }
    const code = sysCode(err) === 'EACCES' || sysCode(err) === 'EPERM' ? 'EPERM' : 'EINVAL';
    throw imageError(code, label, 'root', `cannot read ${e.abs}: ${(err as Error).message}`, { cause: err });
  }
  const changed = (how: string) => damaged(label, 'root', `${e.abs} ${how} while being checkpointed (is the WPAR frozen?)`);
  let stable = true;
  try {
    let left = e.size;
    while (left > 0) {
      if (out.room === 0) out.flush();
      const ask = out.room > left ? left + 1 : out.room;
      let n: number;
      try {
        n = readSync(fd, out.buf, out.pos, ask, null);
      } catch (err) {
        if (!live) throw err;
        n = 0;
      }
      if (n === 0) {
        if (!live) throw changed('shrank');
        stable = false;
        zeroFill(out, left);
        break;
      }
      if (n > left) {
        if (!live) throw changed('grew');
        stable = false;
        n = left; // the byte beyond is overwritten by what follows
      }
      out.pos += n;
      left -= n;
    }
  } catch (err) {
    if (err instanceof WparError) throw err;
    throw imageError('EINVAL', label, 'root', `cannot read ${e.abs}: ${(err as Error).message}`, { cause: err });
  } finally {
    closeSync(fd);
  }
  out.zeros(padding(e.size));
  return stable;
}

/** Add one small in-memory entry (format, definition, agents, manifest). */
function putSmall(out: ChunkBuilder, path: string, data: Buffer, mtime: number): void {
  const headers = encodeHeaders(fixedEntry(path, data.length, mtime));
  out.ensure(headers.length);
  out.put(headers);
  out.put(data);
  out.zeros(padding(data.length));
}

function smallSize(path: string, size: number, mtime: number): number {
  return planHeaders(fixedEntry(path, size, mtime)).bytes + size + padding(size);
}

/** Part numbers the hasher knows the parts by; delta `k` (from 0) is `PART.delta + k`. */
const PART = { format: 0, definition: 1, agents: 2, root: 3, manifest: 4, delta: 5 } as const;

/**
 * The image of `contents` as a stream of chunks; the generator's return value is the manifest.
 * Every chunk is a fresh buffer the consumer may keep. Errors are WparErrors naming the part and path.
 */
export function packImage(contents: ImageContents, options: PackOptions = {}): AsyncGenerator<Buffer, ImageManifest, void> {
  return packChunks(contents, options, new ChunkPool(options.chunkBytes ?? CHUNK_BYTES, false));
}

/**
 * {@link packImage} drawing its chunks from `pool`. With a recycling pool the consumer must
 * `pool.release(chunk)` each chunk once it is done with it. With `fd`, the hashing thread also
 * writes each chunk to that file at its offset: the chunks handed out are then for progress only.
 */
export async function* packChunks(
  contents: ImageContents,
  options: PackOptions,
  pool: ChunkPool,
  fd?: number,
): AsyncGenerator<Buffer, ImageManifest, void> {
  const label = options.label ?? 'stream';
  const { signal, onProgress } = options;
  if (pool.chunkBytes <= 0 || pool.chunkBytes % BLOCK !== 0) throw new RangeError('chunkBytes must be a positive multiple of 512');
  const aborted = (): never => {
    throw imageError('EINTR', label, null, 'writing interrupted (aborted)', { cause: signal?.reason });
  };
  if (signal?.aborted) aborted();
  warmHasher();
  warmWalker();

  const problem = definitionProblem(contents.definition);
  if (problem !== null) throw damaged(label, 'definition', `not a valid WPAR definition: ${problem}`);
  const created = options.created ?? new Date();
  const mtime = Math.floor(created.getTime() / 1000);
  const formatBytes = formatEntryBytes();
  const definitionBytes = Buffer.from(`${JSON.stringify(contents.definition, null, 2)}\n`);
  if (definitionBytes.length > LIMITS.definition) throw damaged(label, 'definition', 'larger than an image may hold');
  const freeze = typeof contents.agents === 'function' ? contents.agents : null;
  // A fixed map is checked before anything is written; a freeze hook's, once it has returned.
  let agentsBytes = freeze === null ? serializeAgents(contents.agents as ReadonlyMap<string, unknown>, label) : null;
  let agentNames = freeze === null ? [...(contents.agents as ReadonlyMap<string, unknown>).keys()] : [];
  const ids = contents.ids ?? null;
  const live = freeze !== null;
  // What each root path was stored as is remembered by the walking thread, which compares (deltas);
  // this side only tells it which files changed while they were read.
  const tree = live ? newTree() : null;
  let unstable: string[] = [];

  // The root is walked on another thread while files are read here. As batches of entries arrive,
  // their header layout and sizes are counted, so that the root's exact size is known (for
  // progress) as soon as the walk is done, long before the writing is.
  const plans: HeaderPlan[] = [];
  const counts = { entries: 0, files: 0, directories: 0, symlinks: 0, dataBytes: 0 };
  let rootBytes = 0;
  const walk = walkOnThread(contents.root, label, (batch) => {
    for (const e of batch) {
      const plan = planHeaders(rootEntry(e, ids));
      plans.push(plan);
      rootBytes += plan.bytes + e.size + padding(e.size);
      count(counts, e);
    }
  }, live, tree === null ? undefined : { tree });
  const manifestText = (m: ImageManifest) => Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
  const deltas: DeltaPartDigest[] = [];
  /** Whether every delta is planned: at once without a freeze hook, else once the frozen one is. */
  let deltasPlanned = freeze === null;
  /**
   * The manifest as it will be, digests aside (placeholders of the same length, so the image's
   * size is exact), once everything is planned: the root walked, the deltas and the agents known.
   */
  const planManifest = (): ImageManifest | null => {
    if (!walk.complete() || agentsBytes === null || !deltasPlanned) return null;
    let offset = 0;
    const range = (bytes: number) => {
      const r = { offset, bytes, sha256: PLACEHOLDER };
      offset += bytes;
      return r;
    };
    return {
      format: FORMAT_NAME,
      version: FORMAT_VERSION,
      created: created.toISOString(),
      wpar: contents.definition.name,
      source: sourceSystem(),
      agents: [...agentNames].sort(),
      ...(contents.epoch !== undefined && { epoch: contents.epoch }),
      parts: {
        format: range(smallSize(ENTRY.format, formatBytes.length, mtime)),
        root: { ...range(rootBytes), ...counts },
        deltas: deltas.map((d) => ({ ...d, ...range(d.bytes) })),
        definition: range(smallSize(ENTRY.definition, definitionBytes.length, mtime)),
        agents: range(smallSize(ENTRY.agents, agentsBytes.length, mtime)),
      },
      // A placeholder of the signature's exact length: the image's size is known before it is signed.
      ...(contents.signer && { signature: { fingerprint: contents.signer.fingerprint, certificate: contents.signer.certificate, value: contents.signer.sign(Buffer.alloc(0)) } }),
    };
  };
  /** The image's size: exact once everything is planned; before that, the parts planned so far. */
  const plannedTotal = (): number | null => {
    if (!walk.complete()) return null;
    const planned = planManifest();
    const parts = smallSize(ENTRY.format, formatBytes.length, mtime) + rootBytes + deltas.reduce((n, d) => n + d.bytes, 0) +
      smallSize(ENTRY.definition, definitionBytes.length, mtime) + (agentsBytes === null ? 0 : smallSize(ENTRY.agents, agentsBytes.length, mtime));
    return parts + (planned === null ? 0 : smallSize(ENTRY.manifest, manifestText(planned).length, mtime)) + 4 * BLOCK;
  };

  const out = new ChunkBuilder(pool);
  const hasher = new ChunkHasher();
  let emitted = 0;
  async function* drain(): AsyncGenerator<Buffer, void, void> {
    while (out.ready.length > 0) {
      const chunk = out.ready.shift()!;
      pool.hold(chunk.bytes, 2);
      hasher.submit(chunk, () => pool.release(chunk.bytes), fd);
      emitted += chunk.bytes.length;
      yield chunk.bytes;
      const known = plannedTotal();
      if (known !== null) onProgress?.({ bytesDone: emitted, bytesTotal: Math.max(known, emitted) });
      if (signal?.aborted) aborted();
    }
    await hasher.settle(); // keep the hasher's backlog (and memory) bounded
  }
  const written = async () => {
    await hasher.settle(0); // every chunk hashed, and written when writing
  };

  /** Header and data of root entry `e`; returns whether the data stored is the file as walked. */
  const putRoot = (e: SourceEntry, plan: HeaderPlan, liveRead: boolean): boolean => {
    out.ensure(plan.bytes);
    out.buf.fill(0, out.pos, out.pos + plan.bytes);
    writeHeaders(out.buf, out.pos, rootEntry(e, ids), plan);
    out.pos += plan.bytes;
    return e.type === 'file' ? putFile(out, e, label, liveRead) : true;
  };
  const remember = (e: SourceEntry, stable: boolean) => {
    if (!stable) unstable.push(e.rel);
  };

  const rounds: Array<{ entries: number; removed: number; bytes: number; ms: number }> = [];
  const places: PartPlace[] = [];
  const part = (n: number) => {
    const ended = out.beginPart(n);
    if (ended !== null) places.push(ended);
  };

  /**
   * One delta: the walking thread walks the whole root and lists what was stored and is gone
   * (topmost only) or changed type, and every entry that is new or changed since it was stored
   * (`final`: also the racy ones); those are stored.
   * `final` reads strictly: the WPAR is frozen, so a file that changes while read is an error.
   */
  async function* delta(k: number, final: boolean): AsyncGenerator<Buffer, void, void> {
    const t0 = performance.now();
    const changed: SourceEntry[] = [];
    const w = walkOnThread(contents.root, label, () => undefined, !final, { tree: tree!, delta: { final, unstable } });
    unstable = [];
    for await (const batch of w.batches) {
      if (signal?.aborted) aborted();
      for (const e of batch) changed.push(e);
    }
    const removed = w.removed();
    const removedBytes = Buffer.from(`${JSON.stringify({ removed })}\n`);
    if (removedBytes.length > LIMITS.delta) throw damaged(label, 'root', `${removed.length} paths removed while checkpointed, more than an image may list`);
    const dcounts = { entries: 0, files: 0, directories: 0, symlinks: 0, dataBytes: 0 };
    const planned = changed.map((e) => planHeaders(rootEntry(e, ids)));
    let bytes = smallSize(ENTRY.delta, removedBytes.length, mtime);
    changed.forEach((e, i) => {
      bytes += planned[i]!.bytes + e.size + padding(e.size);
      count(dcounts, e);
    });
    part(PART.delta + k);
    deltas.push({ offset: out.offset, bytes, sha256: PLACEHOLDER, ...dcounts, removed: removed.length });
    putSmall(out, ENTRY.delta, removedBytes, mtime);
    for (const [i, e] of changed.entries()) {
      remember(e, putRoot(e, planned[i]!, !final));
      if (out.ready.length > 0) yield* drain();
    }
    const place = out.endPart()!;
    places.push(place);
    if (place.bytes !== bytes) throw damaged(label, 'root', 'the layout of a delta changed while writing (internal error)');
    rounds.push({ entries: changed.length, removed: removed.length, bytes, ms: performance.now() - t0 });
  }

  let completed = false;
  try {
    part(PART.format);
    putSmall(out, ENTRY.format, formatBytes, mtime);
    // Round 1: the whole root (while the WPAR runs, when there is a freeze hook).
    const t0 = performance.now();
    part(PART.root);
    let i = 0;
    /** Bytes of the files that changed while this round read them. */
    let churn = 0;
    for await (const batch of walk.batches) {
      if (signal?.aborted) aborted();
      for (const e of batch) {
        const stable = putRoot(e, plans[i++]!, live);
        remember(e, stable);
        if (!stable) churn += e.size;
        if (out.ready.length > 0) yield* drain();
      }
    }
    places.push(out.endPart()!);
    rounds.push({ entries: counts.entries, removed: 0, bytes: rootBytes, ms: performance.now() - t0 });
    if (freeze !== null) {
      // More rounds while it runs, each storing what changed during the one before, until a round
      // is small (the frozen one will be about as small) or the round limit is reached. What the
      // first round says about change is only the files that changed while it read them: a local
      // copy is quick, so little changes meanwhile, and another round would cost a walk of the
      // whole root for nothing — as much as the frozen delta's own walk (docs/mobility.md §5).
      let last = churn;
      while (anotherRound(rounds.length, last)) {
        yield* delta(deltas.length, false);
        last = rounds.at(-1)!.bytes;
      }
      out.flush();
      yield* drain();
      await written();
      await options.beforeFreeze?.();
      if (signal?.aborted) aborted();
      const states = await freeze();
      agentsBytes = serializeAgents(states, label);
      agentNames = [...states.keys()];
      deltasPlanned = true; // the frozen delta is the last
      // The last delta, frozen: from here on the image holds the root as it is at the freeze.
      yield* delta(deltas.length, true);
    }
    part(PART.definition);
    putSmall(out, ENTRY.definition, definitionBytes, mtime);
    part(PART.agents);
    putSmall(out, ENTRY.agents, agentsBytes!, mtime);
    places.push(out.endPart()!);
    out.flush();
    yield* drain();

    // Places in stream order: format, root, the deltas, definition, agents.
    const partNumbers = [PART.format, PART.root, ...deltas.map((_, k) => PART.delta + k), PART.definition, PART.agents];
    const hex = await hasher.digests(partNumbers);
    const { signature: _placeholder, ...planned } = planManifest()!;
    const digest = <T extends { offset: number; bytes: number }>(name: string, want: T, n: number): T & { sha256: string } => {
      const place = places[n]!;
      if (place.offset !== want.offset || place.bytes !== want.bytes) throw damaged(label, name, 'the layout changed while writing (internal error)');
      return { ...want, sha256: hex[n]! };
    };
    const nd = deltas.length;
    const unsigned: ImageManifest = {
      ...planned,
      parts: {
        format: digest('format', planned.parts.format, 0),
        root: digest('root', planned.parts.root, 1),
        deltas: planned.parts.deltas!.map((d, k) => digest(`delta ${k + 1}`, d, 2 + k)),
        definition: digest('definition', planned.parts.definition, 2 + nd),
        agents: digest('agents', planned.parts.agents, 3 + nd),
      },
    };
    const signer = contents.signer;
    const manifest: ImageManifest = signer
      ? { ...unsigned, signature: { fingerprint: signer.fingerprint, certificate: signer.certificate, value: signer.sign(signedBytes(unsigned)) } }
      : unsigned;
    out.beginPart(PART.manifest);
    putSmall(out, ENTRY.manifest, manifestText(manifest), mtime);
    out.endPart();
    out.flush();
    yield* drain();
    const [manifestDigest] = await hasher.digests([PART.manifest]);
    out.ensure(4 * BLOCK);
    out.put(trailerHeader());
    out.put(trailerData(manifestDigest!));
    out.zeros(2 * BLOCK); // end of archive
    out.flush();
    yield* drain();
    await written();
    const bytesTotal = plannedTotal();
    if (emitted !== bytesTotal) throw damaged(label, null, `wrote ${emitted} bytes, planned ${bytesTotal} (internal error)`);
    options.onRounds?.({ rounds });
    completed = true;
    return manifest;
  } finally {
    if (tree !== null) forgetTree(tree);
    // Also when the consumer stops early: nothing may still be writing once this generator is done.
    await hasher.idle();
    if (!completed) hasher.discard();
    out.dispose();
  }
}

function count(c: { entries: number; files: number; directories: number; symlinks: number; dataBytes: number }, e: SourceEntry): void {
  c.entries++;
  if (e.type === 'file') c.files++;
  else if (e.type === 'dir') c.directories++;
  else c.symlinks++;
  c.dataBytes += e.size;
}

const PLACEHOLDER = '0'.repeat(64);
