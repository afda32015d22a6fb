/**
 * Streams that end cleanly on Ctrl-C.
 * @module
 */
import type { Io } from './io.ts';

/**
 * Runs `body` with a signal that aborts on the first interruption (Ctrl-C, SIGTERM, SIGHUP, a
 * closed stdout pipe); an interruption is a clean end, not a failure.
 */
export async function untilInterrupted(io: Io, body: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const ac = new AbortController();
  const off = io.onInterrupt(() => ac.abort());
  try {
    await body(ac.signal);
  } finally {
    off();
  }
}

/** Splits a byte stream into lines (UTF-8 safe across chunk boundaries); {@link LineSplitter.end} yields an unterminated last line. */
export class LineSplitter {
  #pending = '';
  readonly #decoder = new TextDecoder();

  /** The complete lines in `chunk` (and before it), without their newlines. */
  push(chunk: Uint8Array): string[] {
    const text = this.#pending + this.#decoder.decode(chunk, { stream: true });
    const lines = text.split('\n');
    this.#pending = lines.pop() ?? '';
    return lines;
  }

  /** The rest, if it is not empty. */
  end(): string[] {
    const rest = this.#pending + this.#decoder.decode();
    this.#pending = '';
    return rest === '' ? [] : [rest];
  }
}
