/**
 * The trailer: a fixed tar entry after the manifest holding the SHA-256 of the manifest entry's bytes.
 * The manifest holds the digest of every byte before it, so the trailer seals the whole stream.
 * @module
 */
import { BLOCK, ENTRY } from './format.ts';
import { encodeHeaders } from './tar.ts';

/** Trailer data: 64 lower-case hex digits and a newline. */
export const TRAILER_SIZE = 65;

let header: Buffer | null = null;

/** The trailer's header block: always the same 512 bytes (mode 0644, mtime 0, size 65). */
export function trailerHeader(): Buffer {
  header ??= encodeHeaders({ path: ENTRY.trailer, type: 'file', mode: 0o644, size: TRAILER_SIZE, mtime: 0, linkpath: '' });
  return header;
}

/** The trailer's data block: the digest, a newline, zeros to 512 bytes. */
export function trailerData(manifestSha256: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(`${manifestSha256}\n`, 0, 'latin1');
  return block;
}
