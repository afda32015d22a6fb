/**
 * Writing an image into a directory atomically: a temporary file in the same directory, fsynced,
 * renamed over `image.tar` only when complete, and the directory fsynced after.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, realpath, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { WparError } from '../../kernel/errno.ts';
import { imageError, sysCode } from '../format/errors.ts';
import { IMAGE_FILE, TEMP_PREFIX, TEMP_SUFFIX } from '../format/format.ts';
import { syncDir } from '../files.ts';
import type { ImageManifest } from '../format/manifest.ts';
import { sharedPool as pool, trimLater } from '../pool.ts';
import { packChunks, type ImageContents, type ImageProgress, type PrecopyStats } from './pack.ts';

/** Options of {@link writeImage}. */
export interface WriteOptions {
  /** Called after each chunk written, with the image's exact total size (for a progress bar). */
  readonly onProgress?: (progress: ImageProgress) => void;
  /** Aborting it stops the write (EINTR); the temporary file is removed and any earlier image stays. */
  readonly signal?: AbortSignal;
  /** Called once the image is complete with the copy rounds it took (a pre-copied image). */
  readonly onRounds?: (stats: PrecopyStats) => void;
}

/** After this many bytes written, a datasync starts in the background. */
const BACKGROUND_SYNC_BYTES = 32 << 20;

const TEMP_PATTERN = new RegExp(`^${TEMP_PREFIX.replaceAll('.', '\\.')}(\\d+)\\.[0-9a-f]+${TEMP_SUFFIX.replace('.', '\\.')}$`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return sysCode(err) !== 'ESRCH';
  }
}

/** Remove temporary files left in `dir` by writers that were killed (their process is gone). */
async function removeStale(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const m = TEMP_PATTERN.exec(name);
    if (m !== null && Number(m[1]) !== process.pid && !alive(Number(m[1]))) {
      await unlink(join(dir, name)).catch(() => undefined);
    }
  }
}

/**
 * Write the image of `contents` into `dir` (created if missing) as `dir/image.tar`, replacing an
 * earlier image there only once the new one is complete and on disk. Returns the manifest.
 * Errors are WparErrors naming the image, the part and the path at fault.
 */
export async function writeImage(dir: string, contents: ImageContents, options: WriteOptions = {}): Promise<ImageManifest> {
  const label = dir;
  try {
    await mkdir(dir, { recursive: true });
    const [realDir, realRoot] = await Promise.all([realpath(dir), realpath(contents.root).catch(() => null)]);
    if (realRoot !== null && (realDir === realRoot || realDir.startsWith(realRoot + sep))) {
      throw imageError('EINVAL', label, null, `the image directory is inside the root ${contents.root} being checkpointed`);
    }
    await removeStale(dir);
  } catch (err) {
    throw wrap(err, label, 'cannot prepare the image directory');
  }

  const temp = join(dir, `${TEMP_PREFIX}${process.pid}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
  let fh: FileHandle | null = null;
  let chunks: AsyncGenerator<Buffer, ImageManifest, void> | null = null;
  try {
    fh = await open(temp, 'wx', 0o600);
    const file = fh;
    chunks = packChunks(contents, {
      label, onProgress: options.onProgress, signal: options.signal, onRounds: options.onRounds,
      // What was copied while the WPAR ran is made durable before it freezes: the final fsync, in
      // the frozen window, then has only the last delta left to write out.
      beforeFreeze: () => file.datasync(),
    }, pool, fh.fd);
    // The hashing thread writes each chunk as it hashes it; this loop only drives the producer and
    // starts a datasync now and then in the background, so that the final fsync has little left.
    let flushing: Promise<void> | null = null;
    let unflushed = 0;
    let result = await chunks.next();
    while (result.done !== true) {
      pool.release(result.value);
      unflushed += result.value.length;
      if (unflushed >= BACKGROUND_SYNC_BYTES && flushing === null) {
        flushing = fh.datasync().finally(() => { flushing = null; });
        flushing.catch(() => undefined); // awaited below; this only keeps it from counting as unhandled
        unflushed = 0;
      }
      result = await chunks.next();
    }
    if (flushing !== null) await flushing;
    const manifest = result.value;
    await fh.sync();
    await fh.close();
    fh = null;
    await rename(temp, join(dir, IMAGE_FILE));
    await syncDir(dir);
    trimLater();
    return manifest;
  } catch (err) {
    // Ending the producer waits for the hashing thread to finish its writes: only then may the
    // file be closed (a write to a closed, reused descriptor would land in another file).
    await chunks?.return(undefined as never).catch(() => undefined);
    trimLater();
    await fh?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw wrap(err, label, 'cannot write the image');
  }
}

function wrap(err: unknown, label: string, what: string): WparError {
  if (err instanceof WparError) return err;
  const code = sysCode(err) === 'EACCES' || sysCode(err) === 'EPERM' ? 'EPERM' : 'EINVAL';
  return imageError(code, label, null, `${what}: ${(err as Error).message}`, { cause: err });
}
