/**
 * The smallest HTTP/1.1 client the commands need, on `node:net`: one request per connection
 * (`connection: close`) to the daemon's Unix socket, an answer whose body is read as it arrives
 * (`content-length`, `chunked`, or until the daemon closes). It replaces `http.request` because a
 * command is mostly start-up: `node:http` loads eight more modules and builds a request through an
 * agent, which cost a command about a fifth of its run (measured in `npm run bench`, see
 * `docs/performance.md`). It speaks only to wpard: anything it does not understand is an error.
 * @module
 */
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';

/** One request. */
export interface HttpRequest {
  readonly socketPath: string;
  readonly method: string;
  /** The path and query, already encoded. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string | number>>;
  readonly body?: Buffer;
  /** Aborts the request or the reading of its answer (an `AbortError`). */
  readonly signal?: AbortSignal;
}

/** The longest status line and headers accepted: wpard sends a few hundred bytes. */
const MAX_HEAD_BYTES = 64 * 1024;

/** An answer: its status and headers, and its body as a stream. */
export class HttpAnswer extends Readable {
  /** The HTTP status. */
  statusCode = 0;
  /** The headers, names in lower case. */
  headers: Record<string, string> = {};
  /** True once the whole body has arrived (false if the connection broke off first). */
  complete = false;
  readonly #socket: Socket;

  /** @internal */
  constructor(socket: Socket) {
    super();
    this.#socket = socket;
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#socket.destroy();
    callback(err);
  }

  /** @internal Delivers body bytes; pauses the socket when the reader is behind. */
  deliver(bytes: Buffer): void {
    if (!this.push(bytes)) this.#socket.pause();
  }
}

/** Sends `request`; resolves once the answer's head has arrived (its body still streaming). */
export function sendRequest(request: HttpRequest): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const { signal } = request;
    if (signal?.aborted) return reject(abortError(signal));
    const socket = connect(request.socketPath);
    const answer = new HttpAnswer(socket);
    let head: Buffer | null = Buffer.alloc(0);
    let body: BodyDecoder | undefined;
    let settled = false; // the promise is resolved (the answer handed out) or rejected
    let handed = false; // the answer was handed out: its errors are its reader's from then on
    const fail = (err: Error): void => {
      if (!settled) { settled = true; reject(err); } else if (handed && !answer.destroyed) answer.destroy(err);
      socket.destroy();
    };
    const onAbort = (): void => fail(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => signal?.removeEventListener('abort', onAbort);

    socket.on('connect', () => {
      let text = `${request.method} ${request.path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n`;
      for (const [k, v] of Object.entries(request.headers)) text += `${k}: ${v}\r\n`;
      socket.write(request.body === undefined ? `${text}\r\n` : Buffer.concat([Buffer.from(`${text}\r\n`), request.body]));
    });
    socket.on('data', (chunk: Buffer) => {
      if (head !== null) {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_HEAD_BYTES) fail(protocolError(`an answer head longer than ${MAX_HEAD_BYTES} bytes`));
          return;
        }
        const rest = head.subarray(end + 4);
        const parsed = parseHead(head.subarray(0, end).toString('latin1'));
        head = null;
        if (typeof parsed === 'string') return fail(protocolError(parsed));
        answer.statusCode = parsed.status;
        answer.headers = parsed.headers;
        body = bodyDecoder(parsed.headers, (bytes) => answer.deliver(bytes), () => {
          answer.complete = true;
          answer.push(null);
          done();
          socket.end();
        }, (why) => fail(protocolError(why)));
        settled = true;
        handed = true;
        resolve(answer);
        if (rest.length > 0) body.write(rest);
        return;
      }
      body!.write(chunk);
    });
    socket.on('end', () => body?.end());
    socket.on('error', (err) => fail(err));
    socket.on('close', () => {
      done();
      if (!settled) { settled = true; reject(Object.assign(new Error('wpard closed the connection before answering'), { code: 'ECONNRESET' })); return; }
      if (handed && !answer.complete && !answer.destroyed) answer.destroy(Object.assign(new Error('the answer stopped before its end'), { code: 'ECONNRESET' }));
    });
  });
}

interface Head { readonly status: number; readonly headers: Record<string, string> }

function parseHead(text: string): Head | string {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]!);
  if (!status) return `a status line that is not HTTP/1.x: ${JSON.stringify(lines[0]!.slice(0, 80))}`;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return `a header line without a name: ${JSON.stringify(line.slice(0, 80))}`;
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(status[1]), headers };
}

interface BodyDecoder {
  write(bytes: Buffer): void;
  /** The connection ended: complete for a body read to the end, else an error. */
  end(): void;
}

/** The body by `content-length`, `transfer-encoding: chunked`, or (neither) to the connection's end. */
function bodyDecoder(headers: Record<string, string>, deliver: (b: Buffer) => void, complete: () => void, fail: (why: string) => void): BodyDecoder {
  let finished = false;
  const finish = (): void => { if (!finished) { finished = true; complete(); } };
  if ((headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked') return chunkedDecoder(deliver, finish, fail);
  const lengthText = headers['content-length'];
  if (lengthText !== undefined) {
    if (!/^\d+$/.test(lengthText)) { fail(`a bad content-length ${JSON.stringify(lengthText)}`); return { write() {}, end() {} }; }
    let left = Number(lengthText);
    if (left === 0) queueMicrotask(finish);
    return {
      write(bytes) {
        if (finished) return;
        const piece = bytes.length > left ? bytes.subarray(0, left) : bytes;
        left -= piece.length;
        if (piece.length > 0) deliver(piece);
        if (left === 0) finish();
      },
      end() { if (!finished) fail('the answer stopped before its end'); },
    };
  }
  return { write: (bytes) => deliver(bytes), end: finish };
}

/** `SIZE\r\nDATA\r\n ... 0\r\n\r\n` (chunk extensions and trailers ignored). */
function chunkedDecoder(deliver: (b: Buffer) => void, finish: () => void, fail: (why: string) => void): BodyDecoder {
  let pending: Buffer = Buffer.alloc(0);
  let left = -1; // bytes of the current chunk still to come; -1: reading a size line
  let trailer = false;
  return {
    write(bytes) {
      pending = pending.length === 0 ? bytes : Buffer.concat([pending, bytes]);
      while (pending.length > 0) {
        if (trailer) {
          const end = pending.indexOf('\r\n');
          if (end < 0) return;
          pending = pending.subarray(end + 2);
          if (end === 0) return finish(); // the empty line after the last chunk
          continue;
        }
        if (left < 0) {
          const end = pending.indexOf('\r\n');
          if (end < 0) { if (pending.length > 1024) fail('a chunk size line longer than 1024 bytes'); return; }
          const size = /^([0-9a-fA-F]+)(;.*)?$/.exec(pending.subarray(0, end).toString('latin1'));
          if (!size) return fail('a bad chunk size');
          left = parseInt(size[1]!, 16);
          pending = pending.subarray(end + 2);
          if (left === 0) { trailer = true; left = -1; }
          continue;
        }
        if (left > 0) {
          const piece = pending.subarray(0, left);
          left -= piece.length;
          pending = pending.subarray(piece.length);
          deliver(piece);
          if (left > 0) return;
        }
        if (pending.length < 2) return; // the chunk's closing CRLF is still to come
        if (pending[0] !== 0x0d || pending[1] !== 0x0a) return fail('a chunk without its closing CRLF');
        pending = pending.subarray(2);
        left = -1;
      }
    },
    end() { if (!trailer) fail('the answer stopped before its end'); },
  };
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('the request was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

function protocolError(why: string): Error {
  return Object.assign(new Error(`wpard answered ${why}`), { code: 'EPROTO' });
}
