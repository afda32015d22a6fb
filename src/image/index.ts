/**
 * Checkpoint images: what `chkptwpar` writes and `restartwpar` reads. See `docs/image-format.md`.
 * @module
 */
export { writeImage, type WriteOptions } from './write/write.ts';
export {
  imagePath, readImage, readImageFrom, restoreImage, restoreImageFrom, verifyImage,
  type ReadOptions, type StreamReadOptions,
} from './read/read.ts';
export { packImage, type FreezeHook, type ImageContents, type ImageProgress, type PackOptions, type PrecopyStats } from './write/pack.ts';
export type { ImageData, RootEntry } from './read/reader.ts';
export type { DeltaPartDigest, ImageManifest, PartDigest, RootPartDigest, SourceSystem } from './format/manifest.ts';
export { FORMAT_VERSION, IMAGE_FILE } from './format/format.ts';
