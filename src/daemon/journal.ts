/**
 * The event journal: every kernel and runtime event goes to `HOME/events.log` (JSON lines, all of
 * them), to the store's bounded history, and to live followers (`wpar events -f`).
 * @module
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { DaemonEvent } from './protocol.ts';
import type { Store } from './store.ts';

/** A live follower of the journal. */
export type EventFollower = (event: DaemonEvent) => void;

/** Records events in order; never throws into its caller. */
export class Journal {
  readonly #file: WriteStream;
  readonly #store: Store;
  readonly #followers = new Set<EventFollower>();
  readonly #onError: (err: unknown) => void;

  constructor(path: string, store: Store, onError: (err: unknown) => void) {
    this.#file = createWriteStream(path, { flags: 'a', mode: 0o600 });
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
    return new Promise((resolve) => this.#file.end(resolve));
  }
}
