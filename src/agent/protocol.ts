/**
 * The agent wire protocol, shared by the SDK (`client.ts`, published as `corral/agent`) and the
 * daemon's server (`server.ts`): JSON lines over a Unix socket. `docs/agent-protocol.md` is the contract for
 * clients in other languages; this file is its TypeScript half (constants, message shapes, framing,
 * state envelopes).
 * @module
 */

/** The protocol version a `hello` carries and this implementation speaks. */
export const AGENT_PROTOCOL = 1;

/** The longest line (in bytes, without its `\n`) the daemon accepts from a program: 8 MiB. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

/** The longest participant name, program name or request id string, in characters. */
export const MAX_NAME_LENGTH = 256;

/**
 * A participant's saved state as it travels and is stored: plain JSON (`encoding: 'json'`), or a
 * structured-clone payload — V8's serialization format (`v8.serialize`), base64 — for anything JSON
 * cannot carry (Map, Set, Date, BigInt, typed arrays, cycles, `undefined`, NaN...). The daemon never
 * decodes it: it keeps the envelope and hands the same envelope back on restore.
 */
export type StateEnvelope =
  | { readonly encoding: 'json'; readonly value: unknown }
  | { readonly encoding: 'v8'; readonly data: string };

/** An error as it travels: `code` is an errno name (`EBUSY`, `EEXIST`, `EINVAL`, ...). */
export interface WireError {
  readonly code: string;
  readonly message: string;
  /** The participant the error is about, when there is one (answers to `save`, `saved`, `restore`). */
  readonly participant?: string;
}

/** Any message: a request carries `type`, an answer carries `ok`. Both carry the `id`. */
export type WireMessage = Record<string, unknown>;

/** A request id: a JSON number or string chosen by the sender. */
export type WireId = number | string;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** True for a valid request id: a finite number, or a string of 1 to {@link MAX_NAME_LENGTH} characters. */
export function isWireId(id: unknown): id is WireId {
  return (typeof id === 'number' && Number.isFinite(id))
    || (typeof id === 'string' && id.length > 0 && id.length <= MAX_NAME_LENGTH);
}

/** True for a participant (or program) name: 1 to {@link MAX_NAME_LENGTH} characters, no control characters. */
export function isAgentName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= MAX_NAME_LENGTH && !/[\p{Cc}]/u.test(name);
}

/**
 * The envelope `x` describes, normalised to its two fields, or `undefined` if `x` is not a valid
 * {@link StateEnvelope} (unknown encoding, missing `value`, `data` that is not base64).
 */
export function toStateEnvelope(x: unknown): StateEnvelope | undefined {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return undefined;
  const o = x as Record<string, unknown>;
  if (o['encoding'] === 'json' && Object.hasOwn(o, 'value')) return { encoding: 'json', value: o['value'] };
  const data = o['data'];
  if (o['encoding'] === 'v8' && typeof data === 'string' && data.length % 4 === 0 && BASE64.test(data)) {
    return { encoding: 'v8', data };
  }
  return undefined;
}

/** One message as a line: JSON and `\n`. */
export function encodeLine(message: WireMessage): string {
  return `${JSON.stringify(message)}\n`;
}

/**
 * A bound on the bytes buffered in partial lines across many {@link LineReader}s (all the agent
 * connections of a daemon): each takes what it buffers and gives it back when the line completes,
 * is discarded, or its connection closes.
 */
export class ByteBudget {
  /** The most bytes that may be held at once. */
  readonly limit: number;
  #used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** Takes `n` bytes if they fit; false (and nothing taken) if they do not. */
  take(n: number): boolean {
    if (this.#used + n > this.limit) return false;
    this.#used += n;
    return true;
  }

  /** Gives back `n` bytes taken before. */
  give(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }
}

/** Why a {@link LineReader} discarded a line: longer than its own limit, or no room left in the shared budget. */
export type OversizeReason = 'line' | 'budget';

/**
 * Splits a byte stream into `\n`-terminated lines (a trailing `\r` is dropped, empty lines are
 * skipped, invalid UTF-8 becomes U+FFFD). A line longer than `max` bytes, or one that does not fit
 * the shared `budget`, is reported once through `onOversize` and then discarded up to its `\n`; the
 * stream stays usable. Buffered bytes are copied out of the socket's chunks (a small partial line
 * never pins a large chunk) and given back to the budget as soon as they are not needed.
 */
export class LineReader {
  readonly #max: number;
  readonly #onLine: (line: string) => void;
  readonly #onOversize: (why: OversizeReason) => void;
  readonly #budget: ByteBudget | undefined;
  #chunks: Buffer[] = [];
  #size = 0;
  #discarding = false;
  #stopped = false;

  /**
   * @param max the longest line accepted, in bytes without the `\n`
   * @param onLine receives each complete line
   * @param onOversize called when a line passes `max` or the budget (before its end has arrived)
   * @param budget shared with other readers: what all of them may buffer at once
   */
  constructor(max: number, onLine: (line: string) => void, onOversize: (why: OversizeReason) => void, budget?: ByteBudget) {
    this.#max = max;
    this.#onLine = onLine;
    this.#onOversize = onOversize;
    this.#budget = budget;
  }

  /** Bytes of the partial line held now. */
  get buffered(): number {
    return this.#size;
  }

  #release(): void {
    this.#budget?.give(this.#size);
    this.#chunks = [];
    this.#size = 0;
  }

  /** Feeds bytes; calls back for every line they complete. */
  push(chunk: Buffer): void {
    let start = 0;
    while (start <= chunk.length && !this.#stopped) {
      const nl = chunk.indexOf(0x0a, start);
      const piece = chunk.subarray(start, nl < 0 ? chunk.length : nl);
      if (!this.#discarding && piece.length > 0) {
        const tooLong = this.#size + piece.length > this.#max;
        // A complete line (nl found) in one chunk is parsed from the chunk itself; only a partial
        // line is held, and only what fits the budget.
        const held = nl < 0 || this.#chunks.length > 0;
        if (tooLong || (held && this.#budget !== undefined && !this.#budget.take(piece.length))) {
          this.#discarding = true;
          this.#release();
          this.#onOversize(tooLong ? 'line' : 'budget');
        } else if (held) {
          this.#chunks.push(nl < 0 ? Buffer.from(piece) : piece);
          this.#size += piece.length;
        } else {
          this.#chunks.push(piece);
        }
      }
      if (nl < 0) return;
      start = nl + 1;
      if (this.#discarding) {
        this.#discarding = false;
        continue;
      }
      const chunks = this.#chunks;
      let line = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
      this.#release();
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.length > 0) this.#onLine(line);
    }
  }

  /** Stops delivering lines (the connection is gone). */
  stop(): void {
    this.#stopped = true;
    this.#release();
  }
}
