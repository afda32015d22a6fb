/**
 * The state store (R2, R7): definitions, last exits, what was running (for crash recovery) and a
 * bounded event history, in the embedded `node:sqlite` database `HOME/corral.db`.
 * @module
 */
import { statSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { WparError } from '../kernel/errno.ts';
import { makePrivateIfExists } from '../runtime/private-files.ts';
import type { WparDefinition } from '../runtime/definition.ts';
import type { DaemonEvent, ExitInfo } from './protocol.ts';

/** What the daemon records while a WPAR runs, to find its processes after a crash. */
export interface RunningRecord {
  readonly pid: number;
  readonly pgid: number;
  readonly cgroupPath: string | null;
  readonly startedAt: number;
  /** Its cid: an adopting daemon activates it again with the same one (its agent directory is named after it). */
  readonly cid?: number;
  /** The start time of `pid` (`/proc/PID/stat` field 22): a record without it is never adopted (R7). */
  readonly startTime?: number | null;
}

/** One stored WPAR. */
export interface StoredWpar {
  readonly definition: WparDefinition;
  readonly transient: boolean;
  readonly createdAt: number;
  readonly lastExit: ExitInfo | null;
  readonly running: RunningRecord | null;
  readonly broken: boolean;
}

/** How many events the database keeps (the log file keeps all). */
export const EVENT_HISTORY = 10_000;

const SCHEMA = `
  PRAGMA journal_mode = WAL;
  PRAGMA synchronous = NORMAL;
  CREATE TABLE IF NOT EXISTS wpars (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    transient INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    last_exit TEXT,
    running TEXT,
    broken INTEGER NOT NULL DEFAULT 0
  ) STRICT;
  CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    json TEXT NOT NULL
  ) STRICT;
`;

/** Options of {@link Store}. */
export interface StoreOptions {
  /**
   * Told, once per failing write, what could not be recorded yet and why (a full disk, a lock); the
   * write is kept and retried. Default: nothing (the caller learns nothing; the daemon logs it).
   */
  readonly onWriteFailure?: (message: string, err: unknown) => void;
  /** Told once every kept write has been recorded after a failure. */
  readonly onRecovered?: (message: string) => void;
  /** Milliseconds between retries of kept writes; default 1000. */
  readonly retryMs?: number;
}

/** A write that records an action already done (a stop, an exit): kept and retried until it is recorded. */
interface KeptWrite {
  /** What it records, for messages: `web stopped`. */
  readonly what: string;
  readonly run: () => void;
}

/**
 * The database of one home. Synchronous: each call is one short statement. A write that records an
 * action already completed (a process started or exited, a WPAR removed) cannot fail the action: if
 * the database refuses it (a full disk, a lock), it is kept in order, reported once through
 * `onWriteFailure` naming what was not recorded, and retried until it is — so `stopwpar` on a full
 * home answers that the WPAR stopped, and the record is not left stale once space returns.
 */
export class Store implements Disposable {
  readonly #db: DatabaseSync;
  readonly #insertEvent: StatementSync;
  readonly #trimEvents: StatementSync;
  readonly #options: StoreOptions;
  readonly #kept: KeptWrite[] = [];
  #retry: NodeJS.Timeout | null = null;
  #sinceTrim = 0;

  /**
   * Opens (or creates) the store at `path`, mode 0600 with its -wal and -shm files. Refuses (EIO,
   * naming the path and how to recover) a file that was emptied or is not a Corral database: starting
   * on it would silently forget every definition.
   */
  constructor(path: string, options: StoreOptions = {}) {
    this.#options = options;
    refuseEmptied(path);
    // Created under a 0077 umask (only for this synchronous call: no other JavaScript runs meanwhile);
    // SQLite gives its -wal and -shm files the database's own mode. An older home's 0644 is repaired.
    const umask = process.umask(0o077);
    try {
      this.#db = new DatabaseSync(path);
      this.#db.exec(SCHEMA);
    } catch (err) {
      throw new WparError('EIO', `cannot open the store ${path}: ${(err as Error).message}; ${RECOVERY(path)}`, { cause: err });
    } finally {
      process.umask(umask);
    }
    for (const f of [path, `${path}-wal`, `${path}-shm`]) makePrivateIfExists(f);
    this.#insertEvent = this.#db.prepare('INSERT INTO events (time, json) VALUES (?, ?)');
    this.#trimEvents = this.#db.prepare('DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?');
  }

  /** Every stored WPAR, by name. */
  all(): Map<string, StoredWpar> {
    const rows = this.#db.prepare('SELECT * FROM wpars ORDER BY name').all() as Record<string, unknown>[];
    return new Map(rows.map((r) => [r.name as string, fromRow(r)]));
  }

  /** Adds a definition; false if the name is taken. */
  insert(definition: WparDefinition, transient: boolean, createdAt: number): boolean {
    const r = this.#db.prepare('INSERT OR IGNORE INTO wpars (name, definition, transient, created_at) VALUES (?, ?, ?, ?)')
      .run(definition.name, JSON.stringify(definition), transient ? 1 : 0, createdAt);
    return r.changes === 1;
  }

  /** Removes a WPAR's row (kept and retried if the database refuses it). */
  remove(name: string): void {
    this.#keep(`the removal of ${name}`, () => this.#db.prepare('DELETE FROM wpars WHERE name = ?').run(name));
  }

  /** Records that a WPAR is running (or, with null, that it is not); kept and retried if refused. */
  setRunning(name: string, running: RunningRecord | null): void {
    this.#keep(running ? `that ${name} runs as pid ${running.pid}` : `that ${name} no longer runs`,
      () => this.#db.prepare('UPDATE wpars SET running = ? WHERE name = ?').run(running && JSON.stringify(running), name));
  }

  /** Records how a WPAR last ended and whether that leaves it broken; clears `running`. Kept and retried if refused. */
  setExit(name: string, exit: ExitInfo, broken: boolean): void {
    this.#keep(`how ${name} ended (${exit.reason})`, () => this.#db.prepare('UPDATE wpars SET last_exit = ?, running = NULL, broken = ? WHERE name = ?')
      .run(JSON.stringify(exit), broken ? 1 : 0, name));
  }

  /** Marks a WPAR broken (failed to start) or not; kept and retried if refused. */
  setBroken(name: string, broken: boolean): void {
    this.#keep(`that ${name} is ${broken ? '' : 'not '}broken`, () => this.#db.prepare('UPDATE wpars SET broken = ? WHERE name = ?').run(broken ? 1 : 0, name));
  }

  /** What is still waiting to be recorded (after a refused write), oldest first. */
  get unrecorded(): readonly string[] {
    return this.#kept.map((w) => w.what);
  }

  /** Queues a write behind any kept ones (order matters: a start's record before its exit's) and flushes. */
  #keep(what: string, run: () => void): void {
    this.#kept.push({ what, run });
    if (this.#kept.length === 1) this.#flush();
  }

  /** Runs kept writes in order; at the first refusal, reports it (once) and schedules a retry. */
  #flush(): boolean {
    const failing = this.#retry !== null;
    if (this.#retry !== null) { clearTimeout(this.#retry); this.#retry = null; }
    while (this.#kept.length > 0) {
      const w = this.#kept[0]!;
      try {
        w.run();
      } catch (err) {
        if (!failing) this.#options.onWriteFailure?.(`store: not recorded yet, will retry: ${w.what}: ${(err as Error).message}`, err);
        if (this.#db.isOpen) this.#retry = setTimeout(() => this.#flush(), this.#options.retryMs ?? 1000).unref();
        return false;
      }
      this.#kept.shift();
    }
    if (failing) this.#options.onRecovered?.('store: recorded every write it had kept');
    return true;
  }

  /** Appends an event to the bounded history. */
  addEvent(event: DaemonEvent): void {
    this.#insertEvent.run(event.time, JSON.stringify(event));
    if (++this.#sinceTrim >= 1000) {
      this.#sinceTrim = 0;
      this.#trimEvents.run(EVENT_HISTORY);
    }
  }

  /** The last `n` events, oldest first. */
  recentEvents(n: number): DaemonEvent[] {
    const rows = this.#db.prepare('SELECT json FROM (SELECT id, json FROM events ORDER BY id DESC LIMIT ?) ORDER BY id').all(n) as { json: string }[];
    return rows.map((r) => JSON.parse(r.json) as DaemonEvent);
  }

  /** Runs `fn` in one transaction. */
  transaction<T>(fn: () => T): T {
    this.#db.exec('BEGIN');
    try {
      const result = fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  /**
   * Closes the database after a last try at the kept writes; returns what could still not be
   * recorded (so the daemon can say exactly that), empty when everything was.
   */
  close(): readonly string[] {
    if (!this.#db.isOpen) return [];
    this.#flush();
    const lost = this.unrecorded;
    if (this.#retry !== null) { clearTimeout(this.#retry); this.#retry = null; }
    this.#db.close();
    return lost;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** How to recover from a damaged store at `path`. */
const RECOVERY = (path: string): string =>
  `restore it from a backup, or move it away (mv ${path} ${path}.damaged) to start this home with no WPAR definitions`;

/**
 * A zero-length database that exists was emptied (a full disk, a truncation, a bad copy): SQLite
 * would take it for a new, empty one. A store Corral made is never empty (setting WAL writes its
 * first page at once).
 */
function refuseEmptied(path: string): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // a new home
    throw new WparError('EIO', `cannot read the store ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (size === 0) throw new WparError('EIO', `the store ${path} is empty (0 bytes): its WPAR definitions are lost; ${RECOVERY(path)}`);
}

function fromRow(r: Record<string, unknown>): StoredWpar {
  return {
    definition: JSON.parse(r.definition as string) as WparDefinition,
    transient: r.transient === 1,
    createdAt: r.created_at as number,
    lastExit: r.last_exit ? JSON.parse(r.last_exit as string) as ExitInfo : null,
    running: r.running ? JSON.parse(r.running as string) as RunningRecord : null,
    broken: r.broken === 1,
  };
}
