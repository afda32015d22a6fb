/**
 * Error numbers and {@link WparError}. The numbers are this project's (AIX's for ETIMEDOUT and
 * ECANCELED); the facade returns them, the idiomatic API throws them inside a WparError.
 * @module
 */

/** Not permitted: the key or denial belongs to another owner, or the owner is closed. */
export const EPERM = 1;
/** No such WPAR (none with that cid is starting or active). */
export const ENOENT = 2;
/** The wait was interrupted (an AbortSignal fired). */
export const EINTR = 4;
/** An input/output error: the daemon's store or a file it keeps could not be read or written, a damaged stream. */
export const EIO = 5;
/** No free cid (or other resource) right now. */
export const EAGAIN = 11;
/** The WPAR's checkpoint state does not allow the command now. */
export const EBUSY = 16;
/** The name is already in use. */
export const EEXIST = 17;
/** A command or argument is not valid. */
export const EINVAL = 22;
/** No space left on the device that holds the daemon's home. */
export const ENOSPC = 28;
/** A message (a request body, an agent line) is larger than the receiver accepts. */
export const EMSGSIZE = 90;
/** A wait expired (TRY timeout, callout timeout). AIX's value. */
export const ETIMEDOUT = 78;
/** The peer's identity is not trusted, or the network refused the connection. */
export const EACCES = 13;
/** The peer endpoint refused the connection. */
export const ECONNREFUSED = 111;
/** The peer broke the connection. */
export const ECONNRESET = 104;
/** The peer did not follow the wire protocol. */
export const EPROTO = 71;
/** An operation was cancelled (a WPARSTART callout or subsystem refused the activation). AIX's value. */
export const ECANCELED = 117;

/** The errno names this project uses. */
export type ErrnoCode =
  | 'EPERM' | 'ENOENT' | 'EINTR' | 'EIO' | 'EAGAIN' | 'EBUSY' | 'EEXIST' | 'EINVAL' | 'ENOSPC' | 'EMSGSIZE'
  | 'ETIMEDOUT' | 'ECANCELED' | 'EACCES' | 'ECONNREFUSED' | 'ECONNRESET' | 'EPROTO';

const NUMBERS: Readonly<Record<ErrnoCode, number>> = {
  EPERM, ENOENT, EINTR, EIO, EAGAIN, EBUSY, EEXIST, EINVAL, ENOSPC, EMSGSIZE, ETIMEDOUT, ECANCELED, EACCES, ECONNREFUSED, ECONNRESET, EPROTO,
};
const NAMES: ReadonlyMap<number, ErrnoCode> = new Map(
  Object.entries(NUMBERS).map(([name, n]) => [n, name as ErrnoCode]),
);

/** The name of an errno number (`22` → `'EINVAL'`), or `undefined` for a number this project does not use. */
export function errnoName(errno: number): ErrnoCode | undefined {
  return NAMES.get(errno);
}

/** The number of an errno name (`'EINVAL'` → `22`). */
export function errnoNumber(code: ErrnoCode): number {
  return NUMBERS[code];
}

/**
 * An error from the WPAR kernel or the system built on it: `code` is the errno's name, `errno` its
 * number, and the message says what failed and why (which WPAR, which owner, which step).
 */
export class WparError extends Error {
  /** The errno's name, e.g. `'ETIMEDOUT'`. */
  readonly code: ErrnoCode;
  /** The errno's number, e.g. `78`. */
  readonly errno: number;

  constructor(code: ErrnoCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WparError';
    this.code = code;
    this.errno = NUMBERS[code];
  }

  /** A WparError for an errno number returned by a facade call; unknown numbers become EINVAL. */
  static fromErrno(errno: number, message: string, options?: ErrorOptions): WparError {
    return new WparError(errnoName(errno) ?? 'EINVAL', message, options);
  }
}

/**
 * The innermost {@link WparError} in `err`'s `cause` chain (`err` itself when none of its causes is
 * one), or `undefined` when there is none: the root cause to show a user, while the whole chain
 * stays on the error for whoever wants it. A `WparError` ECANCELED from an activation whose
 * subsystem failed with ENOENT has that ENOENT as its root cause.
 */
export function rootCause(err: unknown): WparError | undefined {
  let found: WparError | undefined;
  const seen = new Set<unknown>();
  for (let e: unknown = err; e instanceof Error && !seen.has(e); e = e.cause) {
    seen.add(e);
    if (e instanceof WparError) found = e;
  }
  return found;
}
