/**
 * The state store (R2, R7): definitions, last exits, what was running (for crash recovery) and a
 * bounded event history, in the embedded `node:sqlite` database `HOME/corral.db`.
 * @module
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
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

/** The database of one home. Synchronous: each call is one short statement. */
export class Store implements Disposable {
  readonly #db: DatabaseSync;
  readonly #insertEvent: StatementSync;
  readonly #trimEvents: StatementSync;
  #sinceTrim = 0;

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec(SCHEMA);
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

  /** Removes a WPAR's row. */
  remove(name: string): void {
    this.#db.prepare('DELETE FROM wpars WHERE name = ?').run(name);
  }

  /** Records that a WPAR is running (or, with null, that it is not). */
  setRunning(name: string, running: RunningRecord | null): void {
    this.#db.prepare('UPDATE wpars SET running = ? WHERE name = ?').run(running && JSON.stringify(running), name);
  }

  /** Records how a WPAR last ended and whether that leaves it broken; clears `running`. */
  setExit(name: string, exit: ExitInfo, broken: boolean): void {
    this.#db.prepare('UPDATE wpars SET last_exit = ?, running = NULL, broken = ? WHERE name = ?')
      .run(JSON.stringify(exit), broken ? 1 : 0, name);
  }

  /** Marks a WPAR broken (failed to start) or not. */
  setBroken(name: string, broken: boolean): void {
    this.#db.prepare('UPDATE wpars SET broken = ? WHERE name = ?').run(broken ? 1 : 0, name);
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

  /** Closes the database. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
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
