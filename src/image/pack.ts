/**
 * Producing an image as a stream of chunks, in one pass over the root: each file is read once,
 * straight into the output buffer, and hashed there.
 * @module
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { WparError } from '../kernel/errno.ts';
import { serialize } from 'node:v8';
import type { WparDefinition } from '../runtime/definition.ts';
import { ChunkBuilder, ChunkPool, CHUNK_BYTES, type PartPlace } from './chunks.ts';
import { ChunkHasher, warmHasher } from './hasher.ts';
import { damaged, imageError, sysCode } from './errors.ts';
import { BLOCK, ENTRY, FORMAT_NAME, FORMAT_VERSION, formatEntryBytes, LIMITS, padding } from './format.ts';
import { definitionProblem, signedBytes, sourceSystem, type ImageManifest, type ImageSigner } from './manifest.ts';
import { encodeHeaders, planHeaders, writeHeaders, type HeaderPlan, type TarEntry } from './tar.ts';
import type { SourceEntry } from './walk.ts';
import { insideId, type IdRange } from '../runtime/idmap.ts';
import { walkOnThread, warmWalker } from './walk-thread.ts';
import { trailerHeader, trailerData } from './trailer.ts';

/** What an image is made of. */
export interface ImageContents {
  /** The WPAR's definition. */
  readonly definition: WparDefinition;
  /** The root directory to store (symlinks in it are stored as links, never followed). */
  readonly root: string;
  /** Each agent's saved state by agent name; values must survive `v8.serialize`. */
  readonly agents: ReadonlyMap<string, unknown>;
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

/** Progress of writing or reading an image, in bytes of the image stream. */
export interface ImageProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
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

/**
 * Read the file `e` into the stream, straight into the chunks. The last read asks for one byte more
 * than the walk saw, which tells a file that grew without an fstat per file.
 */
function putFile(out: ChunkBuilder, e: SourceEntry, label: string): void {
  let fd: number;
  try {
    fd = openSync(e.abs, O_READ);
  } catch (err) {
    const code = sysCode(err) === 'EACCES' || sysCode(err) === 'EPERM' ? 'EPERM' : 'EINVAL';
    throw imageError(code, label, 'root', `cannot read ${e.abs}: ${(err as Error).message}`, { cause: err });
  }
  const changed = (how: string) => damaged(label, 'root', `${e.abs} ${how} while being checkpointed (is the WPAR frozen?)`);
  try {
    let left = e.size;
    while (left > 0) {
      if (out.room === 0) out.flush();
      const ask = out.room > left ? left + 1 : out.room;
      const n = readSync(fd, out.buf, out.pos, ask, null);
      if (n === 0) throw changed('shrank');
      if (n > left) throw changed('grew');
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

const PLACEHOLDER = '0'.repeat(64);
/** Part numbers the hasher knows the parts by. */
const PART = { format: 0, definition: 1, agents: 2, root: 3, manifest: 4 } as const;

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
  const agentsBytes = serializeAgents(contents.agents, label);

  // The root is walked on another thread while files are read here. As batches of entries arrive,
  // their header layout and sizes are counted, so that the image's exact size is known (for
  // progress) as soon as the walk is done, long before the writing is.
  const plans: HeaderPlan[] = [];
  const counts = { entries: 0, files: 0, directories: 0, symlinks: 0, dataBytes: 0 };
  let rootBytes = 0;
  const walk = walkOnThread(contents.root, label, (batch) => {
    for (const e of batch) {
      const plan = planHeaders(rootEntry(e, contents.ids ?? null));
      plans.push(plan);
      rootBytes += plan.bytes + e.size + padding(e.size);
      counts.entries++;
      if (e.type === 'file') counts.files++;
      else if (e.type === 'dir') counts.directories++;
      else counts.symlinks++;
      counts.dataBytes += e.size;
    }
  });
  const manifestText = (m: ImageManifest) => Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
  let layout: { planned: ImageManifest; bytesTotal: number } | null = null;
  /** The manifest as it will be, digests aside, and the image's size: once the walk is complete. */
  const planLayout = () => {
    if (layout !== null || !walk.complete()) return layout;
    let offset = 0;
    const range = (bytes: number) => {
      const r = { offset, bytes, sha256: PLACEHOLDER };
      offset += bytes;
      return r;
    };
    const planned: ImageManifest = {
      format: FORMAT_NAME,
      version: FORMAT_VERSION,
      created: created.toISOString(),
      wpar: contents.definition.name,
      source: sourceSystem(),
      agents: [...contents.agents.keys()].sort(),
      ...(contents.epoch !== undefined && { epoch: contents.epoch }),
      parts: {
        format: range(smallSize(ENTRY.format, formatBytes.length, mtime)),
        definition: range(smallSize(ENTRY.definition, definitionBytes.length, mtime)),
        agents: range(smallSize(ENTRY.agents, agentsBytes.length, mtime)),
        root: { ...range(rootBytes), ...counts },
      },
      // A placeholder of the signature's exact length: the image's size is known before it is signed.
      ...(contents.signer && { signature: { fingerprint: contents.signer.fingerprint, certificate: contents.signer.certificate, value: contents.signer.sign(Buffer.alloc(0)) } }),
    };
    layout = { planned, bytesTotal: offset + smallSize(ENTRY.manifest, manifestText(planned).length, mtime) + 4 * BLOCK };
    return layout;
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
      const known = planLayout();
      if (known !== null) onProgress?.({ bytesDone: emitted, bytesTotal: known.bytesTotal });
      if (signal?.aborted) aborted();
    }
    await hasher.settle(); // keep the hasher's backlog (and memory) bounded
  }
  const written = async () => {
    await hasher.settle(0); // every chunk hashed, and written when writing
  };

  let completed = false;
  try {
    const places: PartPlace[] = [];
    const part = (n: number) => {
      const ended = out.beginPart(n);
      if (ended !== null) places.push(ended);
    };
    part(PART.format);
    putSmall(out, ENTRY.format, formatBytes, mtime);
    part(PART.definition);
    putSmall(out, ENTRY.definition, definitionBytes, mtime);
    part(PART.agents);
    putSmall(out, ENTRY.agents, agentsBytes, mtime);
    part(PART.root);
    let i = 0;
    for await (const batch of walk.batches) {
      if (signal?.aborted) aborted();
      for (const e of batch) {
        const plan = plans[i++]!;
        out.ensure(plan.bytes);
        out.buf.fill(0, out.pos, out.pos + plan.bytes);
        writeHeaders(out.buf, out.pos, rootEntry(e, contents.ids ?? null), plan);
        out.pos += plan.bytes;
        if (e.type === 'file') putFile(out, e, label);
        if (out.ready.length > 0) yield* drain();
      }
    }
    places.push(out.endPart()!);
    out.flush();
    yield* drain();

    const hex = await hasher.digests([PART.format, PART.definition, PART.agents, PART.root]);
    const { planned, bytesTotal } = planLayout()!;
    const digest = (name: 'format' | 'definition' | 'agents' | 'root', n: number) => {
      const place = places[n]!;
      const want = planned.parts[name];
      if (place.offset !== want.offset || place.bytes !== want.bytes) {
        throw damaged(label, name, 'the layout changed while writing (internal error)');
      }
      return { offset: place.offset, bytes: place.bytes, sha256: hex[n]! };
    };
    const { signature: _placeholder, ...unsigned } = planned;
    const digested: ImageManifest = {
      ...unsigned,
      parts: {
        format: digest('format', 0),
        definition: digest('definition', 1),
        agents: digest('agents', 2),
        root: { ...digest('root', 3), ...counts },
      },
    };
    const signer = contents.signer;
    const manifest: ImageManifest = signer
      ? { ...digested, signature: { fingerprint: signer.fingerprint, certificate: signer.certificate, value: signer.sign(signedBytes(digested)) } }
      : digested;
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
    if (emitted !== bytesTotal) throw damaged(label, null, `wrote ${emitted} bytes, planned ${bytesTotal} (internal error)`);
    completed = true;
    return manifest;
  } finally {
    // Also when the consumer stops early: nothing may still be writing once this generator is done.
    await hasher.idle();
    if (!completed) hasher.discard();
    out.dispose();
  }
}
