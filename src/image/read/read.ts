/**
 * Reading images: verifying one, reading its definition and agent state, and restoring its root.
 * Each is one streaming pass; restoring writes into a hidden staging directory while verifying and
 * renames it into place only after every digest has checked out.
 * @module
 */
import { lstat, mkdir, mkdtemp, rename, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { WparError } from '../../kernel/errno.ts';
import { imageError, sysCode } from '../format/errors.ts';
import type { ChunkPool } from '../chunks.ts';
import { ThreadedExtractor } from './extract-thread.ts';
import { fileChunks, removeTree, syncDir } from '../files.ts';
import { IMAGE_FILE } from '../format/format.ts';
import type { ImageManifest } from '../format/manifest.ts';
import type { ImageProgress } from '../write/pack.ts';
import { sharedPool as pool, trimLater } from '../pool.ts';
import { ImageReader, type ImageData } from './reader.ts';
import type { IdRange } from '../../runtime/idmap.ts';

/** Options for reading an image. */
export interface ReadOptions {
  /** Called after each chunk read; `bytesTotal` is the image's size when known, else 0. */
  readonly onProgress?: (progress: ImageProgress) => void;
  /** Aborting it stops the read (EINTR); a restore removes what it staged. */
  readonly signal?: AbortSignal;
  /**
   * A restore: the host ids the WPAR's ids map to (a sealed WPAR), so each entry gets the owner the
   * image records mapped into them (S6); `null` or absent gives the recorded ids as they are.
   */
  readonly ids?: IdRange | null;
  /**
   * A restore: called once the whole image has verified, before its root is put in place; throwing
   * refuses the image (the staging directory is removed and nothing appears at the target). This is
   * where a caller checks what the image holds (its WPAR's name, its signer) without a second pass.
   */
  readonly accept?: (data: ImageData) => void | Promise<void>;
}

/** Options for reading an image from a stream. */
export interface StreamReadOptions extends ReadOptions {
  /** Names the image in error messages, e.g. where the stream comes from. */
  readonly label: string;
  /** The stream's total size, for progress, if known. */
  readonly bytesTotal?: number;
}

/** The path of the image file in the image directory `dir`. */
export function imagePath(dir: string): string {
  return join(dir, IMAGE_FILE);
}

/**
 * Chunks of `source` as pool chunks: a file's own (already pooled), or copies gathered into whole
 * chunks (so that a stream of small pieces does not become as many messages to the extraction
 * thread). The consumer releases each chunk.
 */
async function* pooled(source: AsyncIterable<Uint8Array>, pool: ChunkPool): AsyncGenerator<Buffer, void, void> {
  let cur: Buffer | null = null;
  let fill = 0;
  for await (const piece of source) {
    if (piece.buffer instanceof SharedArrayBuffer && pool.holds(piece as Buffer) && fill === 0) {
      yield piece as Buffer;
      continue;
    }
    const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    for (let pos = 0; pos < bytes.length;) {
      cur ??= pool.take();
      const n = Math.min(cur.length - fill, bytes.length - pos);
      bytes.copy(cur, fill, pos, pos + n);
      fill += n;
      pos += n;
      if (fill === cur.length) {
        pool.hold(cur, 1);
        yield cur;
        cur = null;
        fill = 0;
      }
    }
  }
  if (cur !== null && fill > 0) {
    pool.hold(cur, 1);
    yield cur.subarray(0, fill);
  }
}

/** Feed a stream through a reader (and an extraction thread, if given); returns the verified contents. */
async function consume(
  source: AsyncIterable<Uint8Array>, extractor: ThreadedExtractor | null, options: StreamReadOptions,
): Promise<ImageData> {
  const { label, signal, onProgress } = options;
  const reader = new ImageReader(label, extractor);
  const chunks = extractor === null ? source : pooled(source, pool);
  for await (const piece of chunks) {
    const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    try {
      if (signal?.aborted) throw imageError('EINTR', label, null, 'reading interrupted (aborted)', { cause: signal.reason });
      reader.write(chunk);
    } catch (err) {
      pool.release(chunk);
      throw err;
    }
    if (extractor === null) pool.release(chunk);
    else await extractor.flush(() => pool.release(chunk));
    onProgress?.({ bytesDone: reader.offset, bytesTotal: options.bytesTotal ?? 0 });
  }
  return reader.finish();
}

/** Open the image in `dir` as a stream of pooled chunks: ENOENT when there is none. */
async function openImage(dir: string): Promise<{ chunks: AsyncIterable<Buffer>; size: number }> {
  const path = imagePath(dir);
  try {
    const st = await stat(path);
    if (!st.isFile()) throw imageError('EINVAL', dir, null, `${path} is not a regular file`);
    return { chunks: fileChunks(path, pool), size: st.size };
  } catch (err) {
    if (err instanceof WparError) throw err;
    if (sysCode(err) === 'ENOENT') throw imageError('ENOENT', dir, null, `no image here (${path} does not exist)`, { cause: err });
    throw imageError('EINVAL', dir, null, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Read an image from any byte stream (a file, a socket), verifying all of it; the root is not restored. */
export async function readImageFrom(source: AsyncIterable<Uint8Array>, options: StreamReadOptions): Promise<ImageData> {
  return consume(source, null, options);
}

/** Verify the image in `dir` (format version, every SHA-256, the trailer) and return its manifest. */
export async function verifyImage(dir: string, options: ReadOptions = {}): Promise<ImageManifest> {
  return (await readImage(dir, options)).manifest;
}

/** Verify the image in `dir` and return its manifest, definition and agent state (the root is not restored). */
export async function readImage(dir: string, options: ReadOptions = {}): Promise<ImageData> {
  const { chunks, size } = await openImage(dir);
  return consume(chunks, null, { ...options, label: dir, bytesTotal: size });
}

/**
 * Restore the image in `dir`: its root becomes `targetRoot` (which must not exist: EEXIST), and its
 * manifest, definition and agent state are returned. Nothing appears at `targetRoot` unless the whole
 * image verified; on any failure the staging directory is removed and the image is left as it was.
 */
export async function restoreImage(dir: string, targetRoot: string, options: ReadOptions = {}): Promise<ImageData> {
  await refuseExisting(dir, targetRoot);
  const { chunks, size } = await openImage(dir);
  return restoreImageFrom(chunks, targetRoot, { ...options, label: dir, bytesTotal: size });
}

/** Restore an image read from any byte stream into `targetRoot`, as {@link restoreImage} does. */
export async function restoreImageFrom(
  source: AsyncIterable<Uint8Array>, targetRoot: string, options: StreamReadOptions,
): Promise<ImageData> {
  const { label } = options;
  const target = resolve(targetRoot);
  await refuseExisting(label, target);
  const parent = dirname(target);
  let created: string | undefined;
  let staging: string | null = null;
  let extractor: ThreadedExtractor | null = null;
  try {
    created = await mkdir(parent, { recursive: true });
    staging = await mkdtemp(join(parent, `.${basename(target)}.restore-`));
    extractor = new ThreadedExtractor(staging, label, options.ids ?? null);
    const data = await consume(source, extractor, options);
    await extractor.finish();
    await options.accept?.(data);
    await refuseExisting(label, target);
    await rename(staging, target);
    staging = null;
    await syncDir(parent);
    return data;
  } catch (err) {
    await extractor?.close().catch(() => undefined);
    if (staging !== null) await removeTree(staging).catch(() => undefined);
    if (created !== undefined) await removeCreated(created, parent);
    if (err instanceof WparError) throw err;
    throw imageError('EINVAL', label, null, `cannot restore into ${target}: ${(err as Error).message}`, { cause: err });
  } finally {
    await extractor?.close().catch(() => undefined);
    trimLater();
  }
}

async function refuseExisting(label: string, target: string): Promise<void> {
  try {
    await lstat(target);
  } catch (err) {
    if (sysCode(err) === 'ENOENT') return;
    throw imageError('EINVAL', label, null, `cannot check the restore target ${target}: ${(err as Error).message}`, { cause: err });
  }
  throw imageError('EEXIST', label, null, `the restore target ${target} already exists`);
}

/** Remove the directories `mkdir -p` created for the parent, deepest first, if still empty. */
async function removeCreated(first: string, parent: string): Promise<void> {
  const steps = relative(first, parent).split('/').filter((p) => p !== '');
  for (let i = steps.length; i >= 0; i--) {
    const dir = join(first, ...steps.slice(0, i));
    if (await rmdir(dir).then(() => false, () => true)) return;
  }
}
