/**
 * The checkpoint image format's fixed names and numbers (version 2). `docs/image-format.md` is the
 * prose form of this file: change both together.
 * @module
 */

/** What the format entry and the manifest call the format. */
export const FORMAT_NAME = 'corral-image';
/** The format version this code writes (2: the manifest carries the writer's signature). */
export const FORMAT_VERSION = 2;
/** The versions this code reads: 1 (unsigned, refused by `restartwpar` unless `--insecure`) and 2. */
export const READABLE_VERSIONS: readonly number[] = [1, 2];
/** A format version this code reads. */
export type FormatVersion = 1 | 2;

/** The image's file name inside the image directory. */
export const IMAGE_FILE = 'image.tar';
/** Temporary files of a writer start with this (then `PID.RANDOM.tmp`); readers never open them. */
export const TEMP_PREFIX = '.image.tar.';
/** ... and end with this. */
export const TEMP_SUFFIX = '.tmp';

/** Tar's block size: every header is one block, every entry's data is padded to whole blocks. */
export const BLOCK = 512;

/** The tar entry names of the parts, in the order they appear. */
export const ENTRY = {
  format: 'corral-image.json',
  definition: 'definition.json',
  agents: 'agents.v8',
  /** The root part is the entry `root/` followed by every entry under it. */
  root: 'root/',
  manifest: 'manifest.json',
  trailer: 'TRAILER',
} as const;

/** The parts named in the manifest, in stream order. */
export const PART_NAMES = ['format', 'definition', 'agents', 'root'] as const;
/** One of {@link PART_NAMES}. */
export type PartName = (typeof PART_NAMES)[number];

/** Size limits for the parts held in memory; a bigger one is refused as damaged or hostile. */
export const LIMITS = {
  format: 4096,
  definition: 1 << 20,
  agents: 256 << 20,
  manifest: 1 << 20,
  /** A pax extended header (long or non-ASCII names). */
  pax: 1 << 20,
} as const;

/** The bytes of the format entry's data for this version. */
export function formatEntryBytes(): Buffer {
  return Buffer.from(`${JSON.stringify({ format: FORMAT_NAME, version: FORMAT_VERSION })}\n`);
}

/** How many bytes of zero padding follow `size` bytes of entry data. */
export function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}
