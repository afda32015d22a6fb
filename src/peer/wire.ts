/**
 * The framing of the peer protocol (docs/mobility.md §2): over one TLS 1.3 connection, a sequence of
 * frames `[u32 big-endian length][u8 kind][payload]`, where `length` counts the kind byte and the
 * payload. Kind 1 is a message (one JSON object, UTF-8, with a `type`), kind 2 raw file data. Frames
 * are at most {@link MAX_FRAME} bytes; anything else is a protocol error (EPROTO), and the reader
 * never buffers more than one frame.
 * @module
 */
import type { Socket } from 'node:net';
import { WparError } from '../kernel/errno.ts';

/** Largest frame (kind byte and payload): 4 MiB of data and a byte. */
export const MAX_FRAME = (4 << 20) + 1;
/** Largest JSON message. */
export const MAX_MESSAGE = 8 << 20;
/** Outgoing frames are written in batches of about this many bytes. */
const BATCH_BYTES = 256 << 10;
/** Payloads up to this size are copied into the batch; larger ones are written as they are. */
export const COPY_MAX = 128 << 10;
/** The frame kinds. */
export const KIND = { message: 1, data: 2 } as const;

/** A message of the peer protocol: an object with a `type`. */
export interface Message {
  readonly type: string;
  readonly [field: string]: unknown;
}

/** What {@link Wire.next} yields. */
export type Frame = { readonly kind: 'message'; readonly message: Message } | { readonly kind: 'data'; readonly data: Buffer };

/** Both directions of one connection, framed. */
export class Wire {
  readonly #socket: Socket;
  readonly #label: string;
  #buffered: Buffer[] = [];
  #out: Buffer = Buffer.allocUnsafe(BATCH_BYTES + COPY_MAX + 5);
  #outBytes = 0;
  #bytes = 0;
  #frames: Frame[] = [];
  #waiting: { resolve: (f: Frame) => void; reject: (e: Error) => void } | null = null;
  #error: Error | null = null;
  #idleMs: number;
  #timer: NodeJS.Timeout | null = null;

  /** `label` names the other side in errors; a wait for a frame longer than `idleMs` fails (ETIMEDOUT). */
  constructor(socket: Socket, label: string, idleMs: number) {
    this.#socket = socket;
    this.#label = label;
    this.#idleMs = idleMs;
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(new WparError(wireCode(err), `${label}: connection failed: ${err.message}`, { cause: err })));
    socket.on('close', () => this.#fail(new WparError('ECONNRESET', `${label}: the connection closed`)));
    // Nothing read or written for that long (a cut link: writes stall, nothing arrives) ends it.
    socket.setTimeout(idleMs);
    socket.on('timeout', () => {
      this.#fail(new WparError('ETIMEDOUT', `${label}: no traffic for ${Math.round(this.#idleMs / 1000)} s (link down or peer stalled)`));
      socket.destroy();
    });
  }

  /** Changes how long {@link next} waits, and how long the connection may go without traffic. */
  set idleMs(ms: number) {
    this.#idleMs = ms;
    this.#socket.setTimeout(ms);
  }

  /** Sends a message; resolves once the socket can take more. */
  send(message: Message): Promise<void> {
    const json = Buffer.from(JSON.stringify(message));
    if (json.length > MAX_MESSAGE) throw new WparError('EINVAL', `${this.#label}: message ${message.type} is too large`);
    return this.#write(KIND.message, json);
  }

  /** Sends raw data (split into frames of at most 4 MiB). */
  async sendData(data: Buffer): Promise<void> {
    for (let pos = 0; pos < data.length; pos += MAX_FRAME - 1) await this.#write(KIND.data, data.subarray(pos, Math.min(data.length, pos + MAX_FRAME - 1)));
  }

  /**
   * Frames are gathered into a batch buffer and written about {@link BATCH_BYTES} at a time (one TLS
   * record per small frame would cost a record and a syscall each); a wait for the peer flushes
   * first. A payload of at most {@link COPY_MAX} bytes is copied into the batch before this returns,
   * so its caller may reuse it; a larger one is written as it is.
   */
  async #write(kind: number, payload: Buffer): Promise<void> {
    if (this.#error) throw this.#error;
    if (payload.length > COPY_MAX) {
      await this.flush();
      const head = Buffer.allocUnsafe(5);
      head.writeUInt32BE(payload.length + 1, 0);
      head[4] = kind;
      this.#socket.write(head);
      if (!this.#socket.write(payload)) await this.#drained();
      return;
    }
    if (this.#outBytes + 5 + payload.length > this.#out.length) await this.flush();
    this.#out.writeUInt32BE(payload.length + 1, this.#outBytes);
    this.#out[this.#outBytes + 4] = kind;
    payload.copy(this.#out, this.#outBytes + 5);
    this.#outBytes += 5 + payload.length;
    if (this.#outBytes >= BATCH_BYTES) await this.flush();
  }

  /** Writes what is gathered; resolves once the socket can take more. */
  async flush(): Promise<void> {
    if (this.#error) throw this.#error;
    if (this.#outBytes === 0) return;
    const batch = this.#out.subarray(0, this.#outBytes);
    this.#out = Buffer.allocUnsafe(BATCH_BYTES + COPY_MAX + 5);
    this.#outBytes = 0;
    if (!this.#socket.write(batch)) await this.#drained();
  }

  #drained(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (): void => { this.#socket.off('drain', done); this.#socket.off('close', done); if (this.#error) reject(this.#error); else resolve(); };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
  }

  /** The next frame; rejects when the connection fails or nothing arrives in time. */
  async next(): Promise<Frame> {
    if (this.#outBytes > 0) await this.flush();
    return this.#nextFrame();
  }

  #nextFrame(): Promise<Frame> {
    const f = this.#frames.shift();
    if (f) return Promise.resolve(f);
    if (this.#error) return Promise.reject(this.#error);
    this.#socket.resume();
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#timer = setTimeout(() => {
        const err = new WparError('ETIMEDOUT', `${this.#label}: nothing received for ${Math.round(this.#idleMs / 1000)} s`);
        this.#fail(err);
        this.#socket.destroy();
      }, this.#idleMs);
    });
  }

  /** The next frame, which must be a message (of `type`, if given; an `error` message is thrown as the peer's error). */
  async message(type?: string): Promise<Message> {
    const f = await this.next();
    if (f.kind !== 'message') throw this.#protocol(`expected a message${type ? ` (${type})` : ''}, got data`);
    const m = f.message;
    if (m.type === 'error' && type !== 'error') throw peerError(m, this.#label);
    if (type !== undefined && m.type !== type) throw this.#protocol(`expected ${type}, got ${m.type}`);
    return m;
  }

  /** Ends the connection (after what was gathered and written is flushed). */
  end(): void {
    if (this.#outBytes > 0 && !this.#error) this.#socket.write(this.#out.subarray(0, this.#outBytes));
    this.#outBytes = 0;
    this.#socket.end();
  }

  /** Destroys the connection at once. */
  destroy(): void {
    this.#socket.destroy();
  }

  #protocol(why: string): WparError {
    const err = new WparError('EPROTO', `${this.#label}: protocol error: ${why}`);
    this.#fail(err);
    this.#socket.destroy();
    return err;
  }

  #receive(chunk: Buffer): void {
    this.#buffered.push(chunk);
    this.#bytes += chunk.length;
    while (this.#bytes >= 4) {
      const head = this.#peek(5);
      const length = head.readUInt32BE(0);
      if (length < 1 || length > MAX_FRAME) { this.#protocol(`frame of ${length} bytes`); return; }
      if (this.#bytes < 4 + length) break;
      const all = this.#take(4 + length);
      const kind = all[4];
      const payload = all.subarray(5);
      if (kind === KIND.message) {
        let message: unknown;
        try { message = JSON.parse(payload.toString('utf8')); } catch { this.#protocol('a message is not JSON'); return; }
        if (typeof message !== 'object' || message === null || typeof (message as Message).type !== 'string') { this.#protocol('a message without a type'); return; }
        this.#deliver({ kind: 'message', message: message as Message });
      } else if (kind === KIND.data) {
        this.#deliver({ kind: 'data', data: payload });
      } else {
        this.#protocol(`unknown frame kind ${kind}`);
        return;
      }
    }
    // Back-pressure: a reader that is not waiting holds the socket after a few frames.
    if (this.#frames.length > 4) this.#socket.pause();
  }

  #peek(n: number): Buffer {
    if (this.#buffered[0]!.length >= n || this.#buffered.length === 1) return this.#buffered[0]!;
    const joined = Buffer.concat(this.#buffered);
    this.#buffered = [joined];
    return joined;
  }

  #take(n: number): Buffer {
    const joined = this.#buffered.length === 1 ? this.#buffered[0]! : Buffer.concat(this.#buffered);
    const out = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.#buffered = rest.length > 0 ? [rest] : [];
    this.#bytes -= n;
    return out;
  }

  #deliver(f: Frame): void {
    const w = this.#waiting;
    if (w) {
      this.#waiting = null;
      if (this.#timer) clearTimeout(this.#timer);
      w.resolve(f);
    } else {
      this.#frames.push(f);
    }
  }

  #fail(err: Error): void {
    if (this.#error) return;
    this.#error = err;
    if (this.#timer) clearTimeout(this.#timer);
    const w = this.#waiting;
    this.#waiting = null;
    w?.reject(err);
  }
}

/** The error a peer reported in an `error` message, as a WparError with its code. */
export function peerError(m: Message, label: string): WparError {
  const code = typeof m.code === 'string' && KNOWN.has(m.code) ? m.code as WparError['code'] : 'EIO';
  return new WparError(code, `${label}: ${typeof m.message === 'string' ? m.message : 'refused'}`);
}

const KNOWN = new Set(['EPERM', 'ENOENT', 'EINTR', 'EAGAIN', 'EBUSY', 'EEXIST', 'EINVAL', 'ETIMEDOUT', 'ECANCELED', 'EIO', 'EACCES', 'ECONNREFUSED', 'ECONNRESET', 'EPROTO']);

function wireCode(err: NodeJS.ErrnoException): WparError['code'] {
  const c = err.code ?? '';
  if (c === 'ECONNREFUSED' || c === 'ETIMEDOUT' || c === 'EACCES') return c;
  if (c === 'EPIPE' || c === 'ECONNRESET') return 'ECONNRESET';
  return 'EIO';
}
