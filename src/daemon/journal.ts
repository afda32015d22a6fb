/**
 * The event journal: every kernel and runtime event goes to `HOME/events.log` (JSON lines), to the
 * store's bounded history, and to live followers (`wpar events -f`). The log is rotated like a
 * console log (`events.log` → `events.log.1` → ...), so it never holds more than `files × maxBytes`
 * however often a WPAR denies and allows; every file is 0600.
 * @module
 */
import { ConsoleLog } from '../runtime/console-log.ts';
import type { DaemonEvent } from './protocol.ts';
import type { Store } from './store.ts';

/** A live follower of the journal. */
export type EventFollower = (event: DaemonEvent) => void;

/** Size bounds of `events.log` (`wpard --journal-size`, `--journal-files`). */
export interface JournalOptions {
  /** Bytes per file before it is rotated; default {@link DEFAULT_JOURNAL_BYTES}. */
  readonly maxBytes?: number;
  /** Files kept, the current one included; default {@link DEFAULT_JOURNAL_FILES}. */
  readonly files?: number;
}

/** Default bytes per `events.log` file: 16 MiB. */
export const DEFAULT_JOURNAL_BYTES = 16 * 1024 * 1024;
/** Default number of `events.log` files kept (the current one and three rotated ones): 64 MiB in all. */
export const DEFAULT_JOURNAL_FILES = 4;

/** Records events in order; never throws into its caller. */
export class Journal {
  readonly #file: ConsoleLog;
  readonly #store: Store;
  readonly #followers = new Set<EventFollower>();
  readonly #onError: (err: unknown) => void;

  /** Opens (appending to) the log at `path`; failures to write it go to `onError`, never to callers. */
  constructor(path: string, store: Store, onError: (err: unknown) => void, options: JournalOptions = {}) {
    this.#file = ConsoleLog.create(path, { maxBytes: options.maxBytes ?? DEFAULT_JOURNAL_BYTES, files: options.files ?? DEFAULT_JOURNAL_FILES });
    this.#file.on('error', onError);
    this.#store = store;
    this.#onError = onError;
  }

  /** Records one event. */
  record(event: DaemonEvent): void {
    try {
      this.#file.write(JSON.stringify(event) + '\n');
      this.#store.addEvent(event);
    } catch (err) {
      this.#onError(err);
    }
    for (const f of this.#followers) {
      try { f(event); } catch (err) { this.#onError(err); }
    }
  }

  /** Delivers every event from now on to `follower` until the returned function is called. */
  follow(follower: EventFollower): () => void {
    this.#followers.add(follower);
    return () => this.#followers.delete(follower);
  }

  /** The last `n` events from the store's history, oldest first. */
  recent(n: number): DaemonEvent[] {
    return this.#store.recentEvents(n);
  }

  /** Flushes and closes the log file. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#file.destroyed) return resolve();
      this.#file.end(() => resolve());
      this.#file.once('error', () => resolve());
    });
  }
}
