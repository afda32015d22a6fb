/**
 * Both ends of the agent protocol share their framing and request plumbing: one JSON-lines channel
 * over a socket, used by the daemon's endpoint (`server.ts`) for each program's connection and by
 * the SDK (`client.ts`) for its connection to the daemon. It splits lines (bounded, see
 * {@link LineReader}), parses each into a JSON object, numbers the requests it sends, matches their
 * answers, times them out, and fails what is outstanding when the connection ends. What a message
 * means stays with its owner: the channel hands over every object it did not match to a request.
 * @module
 */
import type { Socket } from 'node:net';
import type { WparError } from '../kernel/errno.ts';
import { ByteBudget, encodeLine, LineReader, type OversizeReason, type WireMessage } from './protocol.ts';

/** Options of a {@link JsonLinesChannel}. */
export interface JsonLinesOptions {
  /** The longest line accepted, in bytes. */
  readonly maxLine: number;
  /** Shared with other channels: what all of them may buffer in partial lines at once. */
  readonly budget?: ByteBudget;
  /** Every line that is a JSON object and not the answer to one of this end's requests. */
  readonly onMessage: (message: WireMessage, line: string) => void;
  /** A line that is not JSON (`json`, with the parser's message) or not an object (`object`). */
  readonly onMalformed: (kind: 'json' | 'object', message: string) => void;
  /** A line discarded for its length or for the budget (before its end arrived). */
  readonly onOversize: (why: OversizeReason) => void;
  /** Which messages are answers (default: those without a `type`). */
  readonly isAnswer?: (message: WireMessage) => boolean;
}

/** How one request waits. */
export interface RequestWait {
  /** Fails it after this long; none: it waits until answered or the channel closes. */
  readonly timeoutMs?: number;
  /** The error a timeout rejects with. */
  readonly timeoutError?: () => WparError;
}

interface Outstanding {
  readonly type: string;
  readonly resolve: (answer: WireMessage) => void;
  readonly reject: (err: WparError) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

/** One connection's JSON-lines messages, both ways. */
export class JsonLinesChannel {
  readonly socket: Socket;
  readonly #reader: LineReader;
  readonly #options: JsonLinesOptions;
  readonly #outstanding = new Map<number, Outstanding>();
  #nextId = 1;
  #closed = false;

  /** Starts reading `socket`. */
  constructor(socket: Socket, options: JsonLinesOptions) {
    this.socket = socket;
    this.#options = options;
    this.#reader = new LineReader(options.maxLine, (line) => this.#onLine(line), options.onOversize, options.budget);
    socket.on('data', (chunk: Buffer) => this.#reader.push(chunk));
  }

  /** Whether {@link JsonLinesChannel.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes of a partial line held now. */
  get buffered(): number {
    return this.#reader.buffered;
  }

  /** Writes one message as a line (nothing once closed). */
  send(message: WireMessage): void {
    if (!this.#closed && this.socket.writable) this.socket.write(encodeLine(message));
  }

  /** Writes a line already encoded with `encodeLine` (a caller that measured it first). */
  sendLine(line: string): void {
    if (!this.#closed && this.socket.writable) this.socket.write(line);
  }

  /**
   * Sends request `type` with `fields` under a new numeric id and resolves its answer, whatever its
   * `ok` (the caller reads it); rejects on timeout, or through {@link JsonLinesChannel.failOutstanding}.
   */
  request(type: string, fields: WireMessage, wait: RequestWait = {}): Promise<WireMessage> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      const timer = wait.timeoutMs === undefined ? undefined : setTimeout(() => {
        this.#outstanding.delete(id);
        reject(wait.timeoutError!());
      }, Math.max(wait.timeoutMs, 0));
      this.#outstanding.set(id, { type, resolve, reject, timer });
      this.send({ id, type, ...fields });
    });
  }

  /** Rejects every outstanding request with `error(itsType)`. */
  failOutstanding(error: (type: string) => WparError): void {
    for (const [id, o] of this.#outstanding) {
      this.#outstanding.delete(id);
      clearTimeout(o.timer);
      o.reject(error(o.type));
    }
  }

  /** Stops reading (giving back what the partial line held) and fails what is outstanding with `error`. */
  close(error: (type: string) => WparError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reader.stop();
    this.failOutstanding(error);
  }

  #onLine(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      this.#options.onMalformed('json', (err as Error).message);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      this.#options.onMalformed('object', 'not a JSON object');
      return;
    }
    const m = parsed as WireMessage;
    const answer = this.#options.isAnswer ? this.#options.isAnswer(m) : !Object.hasOwn(m, 'type');
    const id = m['id'];
    const o = answer && typeof id === 'number' ? this.#outstanding.get(id) : undefined;
    if (o !== undefined) {
      this.#outstanding.delete(id as number);
      clearTimeout(o.timer);
      o.resolve(m);
      return;
    }
    this.#options.onMessage(m, line);
  }
}
