/**
 * Checkpoint images: what `chkptwpar` writes and `restartwpar` reads. See `docs/image-format.md`.
 * @module
 */
export { writeImage, type WriteOptions } from './write.ts';
export {
  imagePath, readImage, readImageFrom, restoreImage, restoreImageFrom, verifyImage,
  type ReadOptions, type StreamReadOptions,
} from './read.ts';
export { packImage, type FreezeHook, type ImageContents, type ImageProgress, type PackOptions, type PrecopyStats } from './pack.ts';
export type { ImageData, RootEntry } from './reader.ts';
export type { DeltaPartDigest, ImageManifest, PartDigest, RootPartDigest, SourceSystem } from './manifest.ts';
export { FORMAT_VERSION, IMAGE_FILE } from './format.ts';
