/**
 * The process's chunk pool, shared by writing and restoring: a daemon reuses the same few
 * SharedArrayBuffers from one image to the next, and lets them go when it has been idle a while.
 * @module
 */
import { ChunkPool } from './chunks.ts';

/** Chunks are let go after this long without an image being written or restored. */
const TRIM_AFTER_MS = 10_000;

/** The shared, recycling pool. */
export const sharedPool = new ChunkPool(undefined, true);

let trimTimer: NodeJS.Timeout | null = null;

/** Let the pool's spare chunks go unless another image comes along soon. */
export function trimLater(): void {
  if (trimTimer !== null) clearTimeout(trimTimer);
  trimTimer = setTimeout(() => sharedPool.trim(), TRIM_AFTER_MS);
  trimTimer.unref();
}
