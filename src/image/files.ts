/**
 * File-system helpers shared by writing and restoring: durable renames, reading a file as a stream
 * of chunks with one read always in flight, and removing a tree whatever its modes.
 * @module
 */
import { chmod, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkPool } from './chunks.ts';

/** fsync a directory, so that a rename in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The bytes of the file `path`, as chunks taken from `pool`; the next read is issued before a chunk
 * is handed out. The consumer must `pool.release(chunk)` each chunk once done with it.
 */
export async function* fileChunks(path: string, pool: ChunkPool): AsyncGenerator<Buffer, void, void> {
  const fh = await open(path, 'r');
  let next: Promise<{ bytesRead: number; buffer: Buffer }> | null = null;
  try {
    const read = () => {
      const buf = pool.take();
      const p = fh.read(buf, 0, buf.length, null);
      p.catch(() => undefined); // awaited later; this only keeps it from counting as unhandled
      return p;
    };
    next = read();
    while (true) {
      const { bytesRead, buffer } = await next;
      next = null;
      if (bytesRead === 0) return;
      next = read();
      pool.hold(buffer, 1);
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await next?.catch(() => undefined);
    await fh.close();
  }
}

/** Remove a tree, making its directories writable first if a plain removal is refused. */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
    return;
  } catch {
    // A directory without write or search permission: open everything up and try again.
  }
  const open = async (dir: string): Promise<void> => {
    await chmod(dir, 0o700).catch(() => undefined);
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await open(join(dir, e.name));
  };
  await open(path);
  await rm(path, { recursive: true, force: true });
}
