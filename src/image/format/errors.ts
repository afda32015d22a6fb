/**
 * Image errors: every message starts with `image LABEL:` (the image's directory, or what a stream
 * came from), then the part when one is at fault, then the reason.
 * @module
 */
import { WparError, type ErrnoCode } from '../../kernel/errno.ts';

/** A WparError about the image `label`, e.g. `image /tmp/x: part root: SHA-256 mismatch (...)`. */
export function imageError(
  code: ErrnoCode,
  label: string,
  part: string | null,
  reason: string,
  options?: ErrorOptions,
): WparError {
  const where = part === null ? '' : `part ${part}: `;
  return new WparError(code, `image ${label}: ${where}${reason}`, options);
}

/** EINVAL for an image that is damaged, tampered with, hostile or of another format. */
export function damaged(label: string, part: string | null, reason: string): WparError {
  return imageError('EINVAL', label, part, reason);
}

/** The errno name of a Node system error (`'ENOENT'`), or undefined. */
export function sysCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}
