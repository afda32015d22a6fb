/**
 * The commands' side of the control API (`src/daemon/protocol.ts`): HTTP/1.1 + JSON over the
 * daemon's Unix socket (through the minimal client in `http.ts`), with the daemon's errors turned
 * into {@link CliError}s.
 * @module
 */
import type { Writable } from 'node:stream';
import type { ApiError } from '../daemon/protocol.ts';
import { CliError } from './errors.ts';
import { socketPath } from './home.ts';
import { sendRequest, type HttpAnswer } from './http.ts';

/** An answer being read: its status, headers and body stream. */
export type Answer = HttpAnswer;

/** Options of one request. */
export interface RequestOptions {
  /** A JSON body. */
  readonly body?: unknown;
  /** What a failure is about (the WPAR's name), for the error line. */
  readonly subject?: string;
  /** Aborts the request; the promise then rejects with an `AbortError`. */
  readonly signal?: AbortSignal;
  /** The `accept` header (default `application/json`); `application/x-ndjson` asks for a stream. */
  readonly accept?: string;
}

/** A client of one daemon, found by its home. */
export class DaemonClient {
  /** The daemon's home. */
  readonly home: string;
  /** The control socket, `HOME/run/wpard.sock`. */
  readonly socketPath: string;

  constructor(home: string) {
    this.home = home;
    this.socketPath = socketPath(home);
  }

  /**
   * Sends a request; resolves with the answer once its status is known to be 2xx (its body still to
   * be read). A non-2xx answer rejects with the daemon's error as a {@link CliError}.
   */
  open(method: string, path: string, options: RequestOptions = {}): Promise<Answer> {
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    return sendRequest({
      socketPath: this.socketPath,
      method,
      path,
      headers: {
        accept: options.accept ?? 'application/json',
        ...(body !== undefined && { 'content-type': 'application/json', 'content-length': body.length }),
      },
      ...(body !== undefined && { body }),
      ...(options.signal !== undefined && { signal: options.signal }),
    }).then(
      async (res) => {
        const status = res.statusCode;
        if (status >= 200 && status < 300) return res;
        let text: string;
        try {
          text = await readAll(res);
        } catch (err) {
          throw this.#transportError(err, options.signal);
        }
        throw apiError(status, text, options.subject);
      },
      (err: unknown) => { throw this.#transportError(err, options.signal); },
    );
  }

  /** A request whose JSON answer is returned (`undefined` for 204 No Content). */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, options);
    let text: string;
    try {
      text = await readAll(res);
    } catch (err) {
      throw this.#transportError(err, options.signal);
    }
    if (res.statusCode === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`wpard answered something that is not JSON: ${JSON.stringify(text.slice(0, 80))}`, {
        code: 'EIO', ...(options.subject !== undefined && { subject: options.subject }),
      });
    }
  }

  /**
   * Copies a streaming answer (`logs?follow=1`, `events?follow=1`) chunk by chunk to `onChunk` (or a
   * stream, with back-pressure) until the daemon ends it or `signal` aborts; an abort is a clean end.
   */
  async stream(path: string, sink: Writable | ((chunk: Buffer) => void), options: RequestOptions = {}): Promise<void> {
    let res: Answer;
    try {
      res = await this.open('GET', path, options);
    } catch (err) {
      if (options.signal?.aborted) return;
      throw err;
    }
    await this.pipe(res, sink, options.signal);
  }

  /** Copies an answer already opened with {@link DaemonClient.open} to `sink` until it ends or `signal` aborts. */
  async pipe(res: Answer, sink: Writable | ((chunk: Buffer) => void), signal?: AbortSignal): Promise<void> {
    await pump(res, sink, signal).catch((err: unknown) => {
      if (!signal?.aborted) throw this.#transportError(err, signal);
    });
  }

  #transportError(err: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted || (err as Error | null)?.name === 'AbortError') return err;
    if (err instanceof CliError) return err;
    const code = (err as NodeJS.ErrnoException | null)?.code;
    const sock = this.socketPath;
    switch (code) {
      case 'ENOENT':
      case 'ECONNREFUSED':
        return new CliError(
          `wpard is not running: ${code === 'ENOENT' ? 'no socket at' : 'nothing listens on'} ${sock} (${code}); start it with "wpard --home ${this.home}" (or "npm start" in the corral checkout)`,
          { code, cause: err },
        );
      case 'EACCES':
      case 'EPERM':
        return new CliError(`cannot use wpard's socket ${sock}: permission denied (${code}); it belongs to another user`, { code, cause: err });
      default:
        return new CliError(`lost the connection to wpard at ${sock}: ${(err as Error | null)?.message ?? String(err)}`, { code: code ?? 'EIO', cause: err });
    }
  }
}

/** The CliError for a non-2xx answer: the daemon's `error.message` and `error.code`. */
export function apiError(status: number, text: string, subject?: string): CliError {
  let body: Partial<ApiError> | undefined;
  try {
    body = JSON.parse(text) as Partial<ApiError>;
  } catch {
    body = undefined;
  }
  const e = body?.error;
  if (e && typeof e.message === 'string') {
    return new CliError(e.message, { code: typeof e.code === 'string' ? e.code : 'EIO', ...(subject !== undefined && { subject }) });
  }
  return new CliError(`wpard answered HTTP ${status} without an error message`, { code: 'EIO', ...(subject !== undefined && { subject }) });
}

async function readAll(res: Answer): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Copies `res` into `sink` until it ends, errors, or `signal` aborts (which resolves). */
function pump(res: Answer, sink: Writable | ((chunk: Buffer) => void), signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: unknown): void => {
      if (done) return;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined || signal?.aborted) resolve();
      else reject(err);
    };
    const onAbort = (): void => { res.destroy(); finish(); };
    if (signal?.aborted) { onAbort(); return; }
    signal?.addEventListener('abort', onAbort, { once: true });
    res.on('data', (chunk: Buffer) => {
      if (typeof sink === 'function') {
        sink(chunk);
      } else if (!sink.write(chunk)) {
        res.pause();
        sink.once('drain', () => res.resume());
      }
    });
    res.on('end', () => finish());
    res.on('error', (err) => finish(err));
    res.on('close', () => {
      if (!res.complete) finish(Object.assign(new Error('the answer stopped before its end'), { code: 'ECONNRESET' }));
      else finish();
    });
  });
}
