/**
 * The checkpoint image format's fixed names and numbers (version 3). `docs/image-format.md` is the
 * prose form of this file: change both together.
 * @module
 */

/** What the format entry and the manifest call the format. */
export const FORMAT_NAME = 'corral-image';
/**
 * The format version this code writes (3: the root as copied while the WPAR ran, then deltas, the
 * last one written frozen; 2: the manifest carries the writer's signature).
 */
export const FORMAT_VERSION = 3;
/** The versions this code reads: 1 (unsigned, refused by `restartwpar` unless `--insecure`), 2 and 3. */
export const READABLE_VERSIONS: readonly number[] = [1, 2, 3];
/** A format version this code reads. */
export type FormatVersion = 1 | 2 | 3;

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
  /** Version 3: a delta part is this entry (the paths removed) followed by root entries. */
  delta: 'delta.json',
  manifest: 'manifest.json',
  trailer: 'TRAILER',
} as const;

/**
 * The single parts named in the manifest (version 3 adds `parts.deltas`, a list). Their stream order
 * is this one in versions 1 and 2; version 3 has format, root, the deltas, definition, agents.
 */
export const PART_NAMES = ['format', 'definition', 'agents', 'root'] as const;
/** One of {@link PART_NAMES}. */
export type PartName = (typeof PART_NAMES)[number];

/** Size limits for the parts held in memory; a bigger one is refused as damaged or hostile. */
export const LIMITS = {
  format: 4096,
  definition: 1 << 20,
  agents: 256 << 20,
  manifest: 1 << 20,
  /** A delta's list of removed paths (topmost only: a removed directory takes what is under it). */
  delta: 64 << 20,
  /** A pax extended header (long or non-ASCII names). */
  pax: 1 << 20,
} as const;

/** The bytes of the format entry's data for `version` (by default this code's). */
export function formatEntryBytes(version: number = FORMAT_VERSION): Buffer {
  return Buffer.from(`${JSON.stringify({ format: FORMAT_NAME, version })}\n`);
}

/** How many bytes of zero padding follow `size` bytes of entry data. */
export function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}
