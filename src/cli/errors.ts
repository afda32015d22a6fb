/**
 * The commands' errors and the one line each failure prints (R3):
 * `COMMAND: NAME: what failed and why (ERRNO)`.
 * @module
 */

/** Exit status of a command that failed. */
export const EXIT_FAILURE = 1;
/** Exit status of a command given bad arguments. */
export const EXIT_USAGE = 2;

/** Options of {@link CliError}. */
export interface CliErrorOptions {
  /** The errno name (`ENOENT`, ...) when there is one. */
  readonly code?: string;
  /** What the error is about, usually the WPAR's name; printed after the command. */
  readonly subject?: string;
  /** Exit status; {@link EXIT_FAILURE} unless given. */
  readonly exitStatus?: number;
  /** Append a pointer to `--help` (syntax errors). */
  readonly hint?: boolean;
  /** The underlying error. */
  readonly cause?: unknown;
}

/** An expected failure: printed as one line, never with a stack trace. */
export class CliError extends Error {
  /** The errno name, if any. */
  readonly code: string | undefined;
  /** What the error is about (a WPAR name), if anything. */
  readonly subject: string | undefined;
  /** The exit status the command ends with. */
  readonly exitStatus: number;
  /** Whether the line points to `--help`. */
  readonly hint: boolean;

  constructor(message: string, options: CliErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.code = options.code;
    this.subject = options.subject;
    this.exitStatus = options.exitStatus ?? EXIT_FAILURE;
    this.hint = options.hint ?? false;
  }

  /** A copy about `subject` (unless it already names one). */
  about(subject: string | undefined): CliError {
    if (subject === undefined || this.subject !== undefined) return this;
    return new CliError(this.message, { code: this.code, subject, exitStatus: this.exitStatus, hint: this.hint, cause: this.cause });
  }
}

/** A bad command line: exits {@link EXIT_USAGE}. */
export class UsageError extends CliError {
  constructor(message: string, options: Omit<CliErrorOptions, 'exitStatus'> = {}) {
    super(message, { hint: options.code === undefined, ...options, exitStatus: EXIT_USAGE });
    this.name = 'UsageError';
  }
}

/**
 * The one error line: `PREFIX: SUBJECT: MESSAGE (CODE)`. The message is folded onto one line; a
 * leading `SUBJECT: ` in it is not repeated, nor is the code when the message already names it.
 */
export function formatErrorLine(prefix: string, message: string, options: { subject?: string | undefined; code?: string | undefined } = {}): string {
  let text = message.trim().replace(/\s*[\r\n]+\s*/g, '; ');
  const { subject, code } = options;
  if (subject !== undefined && text.startsWith(`${subject}: `)) text = text.slice(subject.length + 2);
  if (code !== undefined && code !== '' && !new RegExp(`\\b${escapeRegExp(code)}\\b`).test(text)) text += ` (${code})`;
  return subject === undefined ? `${prefix}: ${text}` : `${prefix}: ${subject}: ${text}`;
}

/** The error line for anything a command threw; `prefix` is how it was invoked (`startwpar`, `wpar start`). */
export function errorLine(prefix: string, err: unknown): string {
  if (err instanceof CliError) {
    const line = formatErrorLine(prefix, err.message, { subject: err.subject, code: err.code });
    return err.hint ? `${line}; see '${prefix} --help'` : line;
  }
  const e = err as { message?: unknown; code?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const code = typeof e?.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) ? e.code : undefined;
  return formatErrorLine(prefix, `unexpected error: ${message}`, { code });
}

/** The exit status for anything a command threw. */
export function exitStatusOf(err: unknown): number {
  return err instanceof CliError ? err.exitStatus : EXIT_FAILURE;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
