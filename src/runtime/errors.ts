/**
 * Turning a failed system call into a {@link WparError} that says what the runtime was doing.
 * @module
 */

import { WparError, type ErrnoCode } from '../kernel/errno.ts';

// The project's errno set is small: map the system's codes onto the nearest one.
const CODES: Readonly<Record<string, ErrnoCode>> = {
  EPERM: 'EPERM', EACCES: 'EPERM', EROFS: 'EPERM',
  ENOENT: 'ENOENT', EBUSY: 'EBUSY', EEXIST: 'EEXIST', EAGAIN: 'EAGAIN', ENOSPC: 'ENOSPC', EDQUOT: 'ENOSPC',
  ENOMEM: 'EAGAIN', EIO: 'EIO',
};

/** A WparError for `what` failing with the Node system error `err` (its code and message kept as the cause). */
export function systemError(what: string, err: unknown): WparError {
  if (err instanceof WparError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code ?? '';
  const why = err instanceof Error ? err.message : String(err);
  return new WparError(CODES[code] ?? 'EINVAL', `${what}: ${why}`, { cause: err });
}

/** The Node error code of `err` (`'ESRCH'`, `'ENOENT'`...), or `undefined`. */
export function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}
