/**
 * The hashing thread: SHA-256 of the ranges of each chunk it is handed, per job and part, and (when
 * given a file descriptor) a positional write of the whole chunk right after.
 * Messages in: `{ id, job, buffer, byteOffset, length, ranges, fd?, position }` or `{ id, job, parts }`.
 * Out: `{ id }`, `{ id, error }` (the write failed) or `{ id, hex }` (digests of `parts`, in order).
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { HashRange } from '../chunks.ts';

interface ChunkMessage {
  readonly id: number;
  readonly job: number;
  readonly buffer: SharedArrayBuffer;
  readonly byteOffset: number;
  readonly length: number;
  readonly ranges: readonly HashRange[];
  readonly fd?: number;
  readonly position: number;
}

interface DigestMessage {
  readonly id: number;
  readonly job: number;
  readonly parts: readonly number[];
}

const port = parentPort!;
const hashes = new Map<string, Hash>();

function onChunk(m: ChunkMessage): void {
  for (const [part, start, end] of m.ranges) {
    const key = `${m.job}:${part}`;
    let h = hashes.get(key);
    if (h === undefined) hashes.set(key, (h = createHash('sha256')));
    h.update(new Uint8Array(m.buffer, m.byteOffset + start, end - start));
  }
  if (m.fd !== undefined) {
    const bytes = new Uint8Array(m.buffer, m.byteOffset, m.length);
    try {
      for (let done = 0; done < bytes.length;) done += writeSync(m.fd, bytes, done, bytes.length - done, m.position + done);
    } catch (err) {
      port.postMessage({ id: m.id, error: (err as Error).message });
      return;
    }
  }
  port.postMessage({ id: m.id });
}

function onDigest(m: DigestMessage): void {
  const hex = m.parts.map((part) => {
    const key = `${m.job}:${part}`;
    const h = hashes.get(key) ?? createHash('sha256');
    hashes.delete(key);
    return h.digest('hex');
  });
  // A digest request ends the job: forget what is left of it (after a failure, say).
  for (const key of [...hashes.keys()]) if (key.startsWith(`${m.job}:`)) hashes.delete(key);
  port.postMessage({ id: m.id, hex });
}

port.on('message', (m: ChunkMessage | DigestMessage) => {
  if ('ranges' in m) onChunk(m);
  else onDigest(m);
});
