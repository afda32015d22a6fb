/**
 * A WPAR's console log (R2): its processes' stdout and stderr in `console.log`, rotated to
 * `console.log.1`, `console.log.2`... so it never holds more than about `files × maxBytes`; plus
 * reading the tail and following it for `wpar logs [-f]`.
 *
 * Two writers: {@link ConsoleLog}, a stream the daemon pipes output into (rotating by rename), and a
 * WPAR's own processes, which the runtime gives the file itself (`O_APPEND`) so their output never
 * depends on the daemon being alive (R7); {@link ConsoleLogKeeper} bounds that one by copy and
 * truncate, as logrotate's `copytruncate` does.
 * @module
 */

import { closeSync, mkdirSync, openSync, watch, type FSWatcher } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { WparError } from '../kernel/errno.ts';
import { errorCode, systemError } from './errors.ts';
import { openPrivateAppend, PRIVATE_DIR } from './private-files.ts';

/** Size bounds of a console log. */
export interface ConsoleLogOptions {
  /** Bytes per file before it is rotated; default 1 MiB. */
  readonly maxBytes?: number;
  /** Files kept, the current one included (`console.log` plus `files - 1` rotated ones); default 3. */
  readonly files?: number;
}

/** Default bytes per console log file. */
export const DEFAULT_LOG_BYTES = 1024 * 1024;
/** Default number of console log files kept. */
export const DEFAULT_LOG_FILES = 3;

/**
 * A writable stream into a rotated log. Pipe the process's stdout and stderr into it with
 * `{ end: false }` and end it once both have closed. Writes are serial, so a chatty process is slowed
 * down by its pipe instead of filling the daemon's memory.
 */
export class ConsoleLog extends Writable {
  /** The current file (`console.log`). */
  readonly path: string;
  readonly #maxBytes: number;
  readonly #files: number;
  /** Resolves once the file is open; rejects (WparError) if it cannot be opened. */
  readonly ready: Promise<void>;
  #opened!: (err?: Error) => void;
  #handle: FileHandle | null = null;
  #size = 0;

  private constructor(path: string, maxBytes: number, files: number) {
    super();
    this.path = path;
    this.#maxBytes = maxBytes;
    this.#files = files;
    this.ready = new Promise<void>((resolve, reject) => { this.#opened = (err) => (err ? reject(err) : resolve()); });
    this.ready.catch(() => undefined); // a caller that awaits it sees the failure; none must not crash
  }

  /**
   * The log, usable at once: the file (and its directory) is opened in the background, and writes
   * wait for it. A process's output can be piped in the moment it is spawned.
   */
  static create(path: string, options: ConsoleLogOptions = {}): ConsoleLog {
    const { maxBytes, files } = checkOptions(options);
    return new ConsoleLog(path, maxBytes, files);
  }

  /** Opens (appending to) or creates the log and its directory; resolves once it is open. */
  static async open(path: string, options: ConsoleLogOptions = {}): Promise<ConsoleLog> {
    const log = ConsoleLog.create(path, options);
    await log.ready;
    return log;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    (async () => {
      // 0600, and its directory 0700 if it makes it: a WPAR's output is not for other users (the
      // daemon makes HOME/wpars/NAME private itself; an existing directory's mode is its owner's).
      await mkdir(dirname(this.path), { recursive: true, mode: PRIVATE_DIR });
      this.#handle = await openPrivateAppend(this.path);
      this.#size = (await this.#handle.stat()).size;
    })().then(
      () => { this.#opened(); callback(); },
      (err: unknown) => {
        const e = systemError(`cannot open console log ${this.path}`, err);
        this.#opened(e);
        callback(e);
      },
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#append(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#handle) return callback();
    this.#handle.close().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#handle) return callback(error);
    this.#handle.close().then(() => callback(error), () => callback(error));
  }

  async #append(chunk: Buffer): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      const room = this.#maxBytes - this.#size;
      let piece = rest.subarray(0, Math.max(room, 0));
      if (piece.length < rest.length) {
        // It does not all fit: cut after the last whole line that does, or start a new file so the
        // line is not split, unless the file is empty and the line is longer than a whole file.
        const newline = piece.lastIndexOf(0x0a);
        if (newline >= 0) piece = piece.subarray(0, newline + 1);
        else if (this.#size > 0) piece = piece.subarray(0, 0);
      }
      if (piece.length === 0) {
        await this.#rotate();
        continue;
      }
      await this.#handle!.write(piece);
      this.#size += piece.length;
      rest = rest.subarray(piece.length);
    }
  }

  /** console.log → .1 → .2 ...; the oldest is overwritten by the rename before it. */
  async #rotate(): Promise<void> {
    await this.#handle!.close();
    for (let i = this.#files - 1; i >= 1; i--) {
      await rename(rotatedPath(this.path, i - 1), rotatedPath(this.path, i)).catch(ignoreMissing);
    }
    if (this.#files === 1) await unlink(this.path).catch(ignoreMissing);
    this.#handle = await openPrivateAppend(this.path);
    this.#size = 0;
  }
}

/**
 * Opens (creating it, mode 0600, and its directory) the console log for a WPAR's processes to write
 * themselves: `O_APPEND`, so each write lands at the end even after {@link ConsoleLogKeeper}
 * truncates the file. Returns the descriptor; the caller closes it once the child has it.
 */
export function openConsoleFile(path: string): number {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    return openSync(path, 'a', 0o600);
  } catch (err) {
    throw systemError(`cannot open console log ${path}`, err);
  }
}

/** How often {@link ConsoleLogKeeper} looks at the file when no change event came (bounds a missed one). */
export const KEEPER_POLL_MS = 1000;
/** How long after a change event {@link ConsoleLogKeeper} looks (change events are coalesced meanwhile). */
export const KEEPER_THROTTLE_MS = 50;

/**
 * Keeps a console log that other processes append to within its bounds: whenever it reaches
 * `maxBytes` (seen through `fs.watch`, at most {@link KEEPER_THROTTLE_MS} after a change, and at
 * least every {@link KEEPER_POLL_MS}), the rotated files shift (`.1` → `.2` ...), the file is copied
 * to `.1` and truncated to 0 — the writers keep their descriptor, and `O_APPEND` puts their next
 * write at the new end. A file may pass `maxBytes` by what is written before the keeper looks
 * (50 ms of output, or one poll if a change event was missed); output written between the
 * copy and the truncation (microseconds) is lost, the price of not being in the data path.
 */
export class ConsoleLogKeeper {
  /** The current file. */
  readonly path: string;
  readonly #maxBytes: number;
  readonly #files: number;
  readonly #watcher: FSWatcher | null;
  readonly #timer: NodeJS.Timeout;
  #work: Promise<void> = Promise.resolve();
  #queued = false;
  #closed = false;
  #pending: NodeJS.Timeout | null = null;
  #rotations = 0;
  readonly #onError: (err: Error) => void;

  /** Starts keeping `path` (which must exist); `onError` hears rotations that failed (disk full...). */
  constructor(path: string, options: ConsoleLogOptions = {}, onError: (err: Error) => void = () => undefined) {
    const { maxBytes, files } = checkOptions(options);
    this.path = path;
    this.#maxBytes = maxBytes;
    this.#files = files;
    this.#onError = onError;
    let watcher: FSWatcher | null;
    try {
      watcher = watch(path, { persistent: false }, () => this.#soon());
      watcher.on('error', () => undefined);
    } catch {
      watcher = null; // the poll still bounds it
    }
    this.#watcher = watcher;
    this.#timer = setInterval(() => this.check(), KEEPER_POLL_MS).unref();
    this.check();
  }

  /** A change event: look within {@link KEEPER_THROTTLE_MS} (a chatty WPAR costs at most one stat per period). */
  #soon(): void {
    if (this.#closed || this.#pending) return;
    this.#pending = setTimeout(() => { this.#pending = null; void this.check(); }, KEEPER_THROTTLE_MS).unref();
  }

  /** How many times the file was rotated. */
  get rotations(): number {
    return this.#rotations;
  }

  /** Looks at the file now (coalesced); resolves once that look, and any rotation it made, is done. */
  check(): Promise<void> {
    if (this.#closed) return this.#work;
    if (this.#queued) return this.#work;
    this.#queued = true;
    this.#work = this.#work.then(async () => {
      this.#queued = false;
      try {
        const { size } = await stat(this.path);
        if (size >= this.#maxBytes) await this.rotate();
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') this.#onError(systemError(`cannot rotate console log ${this.path}`, err));
      }
    });
    return this.#work;
  }

  /**
   * Copy and truncate now, whatever the size. A file that grew past twice `maxBytes` (no daemon kept
   * it while it was down) keeps only its last `maxBytes`, from a line start, in `.1`.
   */
  async rotate(): Promise<void> {
    if (this.#files === 1) {
      await truncate(this.path, 0);
    } else {
      for (let i = this.#files - 1; i >= 2; i--) {
        await rename(rotatedPath(this.path, i - 1), rotatedPath(this.path, i)).catch(ignoreMissing);
      }
      const { size } = await stat(this.path);
      if (size > 2 * this.#maxBytes) await copyTail(this.path, rotatedPath(this.path, 1), this.#maxBytes);
      else await copyFile(this.path, rotatedPath(this.path, 1));
      await truncate(this.path, 0);
    }
    this.#rotations++;
  }

  /** Stops watching (after a last look); resolves once any rotation under way is done. */
  async close(): Promise<void> {
    await this.check();
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#timer);
    if (this.#pending) clearTimeout(this.#pending);
    await this.#work;
  }
}

/** Copies the last `bytes` of `from` (starting after a newline, if there is one in them) to `to`. */
async function copyTail(from: string, to: string, bytes: number): Promise<void> {
  const source = await open(from, 'r');
  try {
    const { size } = await source.stat();
    const start = Math.max(0, size - bytes);
    // One byte before the tail too: whether it starts a line.
    const read = await readRange(source, Math.max(0, start - 1), size);
    const tail = start === 0 ? read : read.subarray(1);
    const newline = tail.indexOf(0x0a);
    const atLineStart = start === 0 || read[0] === 0x0a;
    const text = atLineStart || newline < 0 || newline === tail.length - 1 ? tail : tail.subarray(newline + 1);
    const target = await open(to, 'w', 0o600);
    try {
      await target.writeFile(text);
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/** Closes a descriptor from {@link openConsoleFile}, ignoring one already closed. */
export function closeConsoleFile(fd: number): void {
  try {
    closeSync(fd);
  } catch { /* already closed */ }
}

/** The path of rotated file `n` (`0` is the current file). */
export function rotatedPath(path: string, n: number): string {
  return n === 0 ? path : `${path}.${n}`;
}

/** Options of {@link readLogTail} and {@link followLog}. */
export interface TailOptions {
  /** Only the last N lines; default the whole retained log. */
  readonly lines?: number;
  /** How many files the log keeps (as given to {@link ConsoleLog.open}); default 3. */
  readonly files?: number;
}

/** The retained log, oldest first, or only its last `lines` lines. A log never written is `''`. */
export async function readLogTail(path: string, options: TailOptions = {}): Promise<string> {
  const older = await readRotated(path, options.files ?? DEFAULT_LOG_FILES);
  const current = await readIfExists(path);
  return lastLines(Buffer.concat([older, current]), options.lines).toString('utf8');
}

/** The rotated files' contents, oldest first. */
async function readRotated(path: string, files: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = files - 1; i >= 1; i--) parts.push(await readIfExists(rotatedPath(path, i)));
  return Buffer.concat(parts);
}

async function readIfExists(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return Buffer.alloc(0);
    throw systemError(`cannot read console log ${path}`, err);
  }
}

/** Options of {@link followLog}. */
export interface FollowOptions extends TailOptions {
  /** Ends the iteration. */
  readonly signal: AbortSignal;
}

/**
 * Yields the log's tail (as {@link readLogTail}; `lines: 0` for none) and then everything written
 * to it, across rotations (by rename, or by copy and truncate), until `signal` aborts; then whatever was written before the abort and not
 * yet yielded. Driven by `fs.watch` on the log's directory.
 */
export async function* followLog(path: string, options: FollowOptions): AsyncGenerator<string, void, undefined> {
  const { signal } = options;
  const changes = new ChangeFeed(path, signal);
  let handle: FileHandle | null = null;
  let decoder = new StringDecoder('utf8');
  try {
    // The watcher is up before anything is read, so no write can fall between reading and watching.
    handle = await openIfExists(path);
    let position = handle ? (await handle.stat()).size : 0;
    if (options.lines !== 0) {
      // Exactly the current file's first `position` bytes: following goes on from there.
      const current = handle ? await readRange(handle, 0, position) : Buffer.alloc(0);
      const older = await readRotated(path, options.files ?? DEFAULT_LOG_FILES);
      const tail = lastLines(Buffer.concat([older, current]), options.lines).toString('utf8');
      if (tail !== '') yield tail;
    }
    while (!signal.aborted) {
      if (handle) {
        if ((await handle.stat()).size < position) {
          // Copied and truncated (ConsoleLogKeeper): what was written after `position` and before
          // the truncation is at the same offsets in the copy, `.1`.
          const copy = await openIfExists(rotatedPath(path, 1));
          if (copy) {
            try {
              const missed = await readFrom(copy, position, decoder);
              if (missed.text !== '') yield missed.text;
            } finally {
              await copy.close();
            }
          }
          position = 0;
        }
        const text = await readFrom(handle, position, decoder);
        position += text.bytes;
        if (text.text !== '') yield text.text;
        if (await wasRotated(path, handle)) {
          // The writer closes the old file before renaming it: what is left in it is final. Files
          // rotated after it (several rotations may pass between two wake-ups) come next, oldest first.
          const rest = await readFrom(handle, position, decoder);
          const { ino } = await handle.stat();
          await handle.close();
          handle = null;
          let catchUp = rest.text;
          for (const file of await rotatedAfter(path, ino, options.files ?? DEFAULT_LOG_FILES)) catchUp += decoder.write(await readIfExists(file));
          catchUp += decoder.end();
          if (catchUp !== '') yield catchUp;
          decoder = new StringDecoder('utf8');
          position = 0;
        }
      }
      if (!handle) {
        handle = await openIfExists(path);
        if (handle) continue;
      }
      await changes.next();
    }
    // Ending is "everything written so far, then stop": a writer that finished just before the
    // abort may have left bytes no change event has announced yet.
    if (handle) {
      const rest = await readFrom(handle, position, decoder);
      const tail = rest.text + decoder.end();
      if (tail !== '') yield tail;
    }
  } finally {
    changes.close();
    await handle?.close();
  }
}

/** Coalesced "something in the log's directory changed" notifications. */
class ChangeFeed {
  readonly #watcher: FSWatcher;
  #pending = true;
  #wake: (() => void) | null = null;
  readonly #onAbort = (): void => this.#notify();
  readonly #signal: AbortSignal;

  constructor(path: string, signal: AbortSignal) {
    const name = basename(path);
    this.#signal = signal;
    try {
      this.#watcher = watch(dirname(path), (_event, file) => {
        if (file === null || file.startsWith(name)) this.#notify();
      });
    } catch (err) {
      throw errorCode(err) === 'ENOENT'
        ? new WparError('ENOENT', `cannot follow console log ${path}: its directory does not exist`)
        : systemError(`cannot follow console log ${path}`, err);
    }
    signal.addEventListener('abort', this.#onAbort);
  }

  /** Resolves at the next change (or at once if one happened since the last call) or on abort. */
  next(): Promise<void> {
    if (this.#pending || this.#signal.aborted) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#pending = false;
        resolve();
      };
    });
  }

  close(): void {
    this.#watcher.close();
    this.#signal.removeEventListener('abort', this.#onAbort);
  }

  #notify(): void {
    this.#pending = true;
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

async function readFrom(handle: FileHandle, position: number, decoder: StringDecoder): Promise<{ text: string; bytes: number }> {
  let text = '';
  let bytes = 0;
  const buffer = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position + bytes);
    if (bytesRead === 0) return { text, bytes };
    text += decoder.write(buffer.subarray(0, bytesRead));
    bytes += bytesRead;
  }
}

async function readRange(handle: FileHandle, start: number, end: number): Promise<Buffer> {
  const buffer = Buffer.alloc(end - start);
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, start + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

/** The rotated files newer than the one with inode `ino`, oldest first (all of them if it is gone). */
async function rotatedAfter(path: string, ino: number, files: number): Promise<string[]> {
  const newer: string[] = [];
  for (let i = 1; i < files; i++) {
    const file = rotatedPath(path, i);
    const info = await stat(file).catch(() => null);
    if (info?.ino === ino) break;
    if (info) newer.unshift(file);
  }
  return newer;
}

async function wasRotated(path: string, handle: FileHandle): Promise<boolean> {
  const [current, open] = await Promise.all([stat(path).catch(() => null), handle.stat()]);
  return current === null || current.ino !== open.ino || current.dev !== open.dev;
}

async function openIfExists(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return null;
    throw systemError(`cannot read console log ${path}`, err);
  }
}

/** The last `lines` lines of `text` (a final unterminated line counts as one). */
function lastLines(text: Buffer, lines: number | undefined): Buffer {
  if (lines === undefined) return text;
  if (lines <= 0) return text.subarray(text.length);
  // A final newline ends the last line; it does not start an empty one.
  let start = text.length > 0 && text[text.length - 1] === 0x0a ? text.length - 1 : text.length;
  for (let i = 0; i < lines; i++) {
    const newline = start > 0 ? text.lastIndexOf(0x0a, start - 1) : -1;
    if (newline < 0) return text;
    start = newline;
  }
  return text.subarray(start + 1);
}

function checkOptions(options: ConsoleLogOptions): { maxBytes: number; files: number } {
  const maxBytes = options.maxBytes ?? DEFAULT_LOG_BYTES;
  const files = options.files ?? DEFAULT_LOG_FILES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new WparError('EINVAL', `bad console log size ${maxBytes}: must be a positive number of bytes`);
  if (!Number.isSafeInteger(files) || files < 1) throw new WparError('EINVAL', `bad console log file count ${files}: must be a positive integer`);
  return { maxBytes, files };
}

function ignoreMissing(err: unknown): void {
  if (errorCode(err) !== 'ENOENT') throw err;
}
