/**
 * Scheduled checkpoints (C5): every WPAR that runs here with `checkpointEvery` is checkpointed at
 * that interval, without stopping it — TRY with a short wait ({@link tryWaitMs}); a checkpoint its
 * agents deny (or that cannot happen now: a move, a manual checkpoint) is skipped with a
 * `checkpoint.skipped` event naming the denials, and tried again at the next tick. It never blocks
 * the WPAR: the denials simply win.
 *
 * Each image goes to `HOME/checkpoints/NAME/EPOCH-SEQ/` (two kept); in a cluster it is then copied
 * to the WPAR's `replicas` other hosts and recorded in etcd (`replicas.ts`). Outside a cluster the
 * same schedule runs, with local images only. One checkpoint (and its copies) per WPAR at a time:
 * an interval shorter than that takes simply stretches.
 * @module
 */
import { rm } from 'node:fs/promises';
import { CheckpointDeniedError } from '../api/errors.ts';
import { WparError } from '../kernel/errno.ts';
import type { Journal } from '../daemon/journal.ts';
import type { CheckpointRequest, CheckpointResult, WparInfo } from '../daemon/protocol.ts';
import type { WparManager } from '../daemon/wpars.ts';
import { imageDir, localImages, prune, type ReplicaImage } from './replicas.ts';

/**
 * TRY's wait of a scheduled checkpoint: short — a quarter of the interval, at most 500 ms — so that a
 * denial skips the tick rather than holding the WPAR's agents (which cannot take a new denial while
 * TRY waits) for much of the time.
 */
export function tryWaitMs(everySec: number): number {
  return Math.min(500, Math.floor((everySec * 1000) / 4));
}
/** How often the scheduler looks for due WPARs. */
const TICK_MS = 250;

/** What the scheduler works with. */
export interface ScheduleDeps {
  readonly manager: WparManager;
  readonly journal: Journal;
  readonly home: string;
  /** The daemon's checkpoint (R4), TRY waiting `waitMs`. */
  readonly checkpoint: (name: string, request: CheckpointRequest, waitMs: number) => Promise<CheckpointResult>;
  /** The WPAR's ownership epoch (1 outside a cluster); throws when this host may not checkpoint it. */
  readonly epochOf: (name: string) => Promise<number>;
  /** In a cluster: copies the image to `replicas` other hosts and records it. */
  readonly replicate?: (image: ReplicaImage & { readonly size: number }, replicas: number) => Promise<unknown>;
  readonly log: (line: string) => void;
}

/** The last scheduled checkpoint of a WPAR on this host. */
export interface LastCheckpoint {
  readonly epoch: number;
  readonly seq: number;
  readonly time: number;
  readonly size: number;
  readonly dir: string;
}

/** The checkpoint schedule of this host's running WPARs. */
export class Scheduler {
  readonly #d: ScheduleDeps;
  /** When each scheduled WPAR is next due (ms since the epoch). */
  readonly #due = new Map<string, number>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #seq = new Map<string, number>();
  readonly #last = new Map<string, LastCheckpoint>();
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(deps: ScheduleDeps) {
    this.#d = deps;
  }

  /** Starts looking for due WPARs. */
  start(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  /** The last scheduled checkpoint of `name` here, if any since the daemon started. */
  last(name: string): LastCheckpoint | undefined {
    return this.#last.get(name);
  }

  /** `w` with its last scheduled checkpoint here (`lswpar -L`; in a cluster etcd's record replaces it). */
  describe(w: WparInfo): WparInfo {
    const l = this.#last.get(w.name);
    if (!l) return w;
    return { ...w, checkpoint: { epoch: l.epoch, seq: l.seq, time: l.time, ageSec: Math.max(0, Math.round((Date.now() - l.time) / 1000)), size: l.size, hosts: [] } };
  }

  /** Stops the schedule and waits for the checkpoints under way. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await Promise.allSettled(this.#running.values());
  }

  #tick(): void {
    const { manager } = this.#d;
    const now = Date.now();
    const active = new Set(manager.active());
    for (const name of this.#due.keys()) if (!active.has(name)) this.#due.delete(name);
    for (const name of active) {
      if (this.#running.has(name) || !manager.has(name)) continue;
      const info = manager.info(name);
      const every = info.definition.checkpointEvery;
      if (every === undefined || info.state !== 'A') continue;
      const due = this.#due.get(name) ?? (info.startedAt ?? now) + every * 1000;
      this.#due.set(name, due);
      if (now < due) continue;
      // The next one is due an interval after this one begins (not after it ends): the rhythm holds.
      this.#due.set(name, now + every * 1000);
      const run = this.#run(name, every, info.definition.replicas ?? 0).finally(() => this.#running.delete(name));
      this.#running.set(name, run);
    }
  }

  /** One scheduled checkpoint of `name`, then its copies. Never throws: what fails is an event. */
  async #run(name: string, every: number, replicas: number): Promise<void> {
    const d = this.#d;
    let dir: string | null = null;
    let epoch: number;
    let seq: number;
    let result: CheckpointResult;
    try {
      epoch = await d.epochOf(name);
      seq = await this.#nextSeq(name);
      dir = imageDir(d.home, name, epoch, seq);
      result = await d.checkpoint(name, { dir }, tryWaitMs(every));
    } catch (err) {
      if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
      const denied = deniedBy(err);
      d.journal.record({
        type: 'checkpoint.skipped', time: Date.now(), name, reason: (err as Error).message, code: err instanceof WparError ? err.code : 'EIO',
        denials: denied.map((x) => ({ owner: x.owner, reason: x.reason })),
      });
      return;
    }
    const last: LastCheckpoint = { epoch, seq, time: Date.now(), size: result.bytes, dir };
    this.#last.set(name, last);
    try {
      if (d.replicate && replicas > 0 && !this.#closed) await d.replicate({ name, epoch, seq, time: last.time, dir, size: result.bytes }, replicas);
    } catch (err) {
      d.journal.record({ type: 'cluster.replica.failed', time: Date.now(), name, epoch, seq, reason: (err as Error).message, code: err instanceof WparError ? err.code : 'EIO' });
    }
    // After the copies: the two newest stay (this one among them), deleting the rest delays nothing.
    try {
      await prune(d.home, name);
    } catch (err) {
      d.log(`${name}: pruning its old checkpoints: ${(err as Error).message}`);
    }
  }

  /** The next sequence number of `name`'s images: one more than any kept here (they survive restarts). */
  async #nextSeq(name: string): Promise<number> {
    let next = this.#seq.get(name);
    if (next === undefined) next = Math.max(0, ...(await localImages(this.#d.home, name)).map((i) => i.seq)) + 1;
    this.#seq.set(name, next + 1);
    return next;
  }
}

/** The denials that made a checkpoint time out in TRY, if that is why it failed. */
function deniedBy(err: unknown): readonly { owner: string; reason: string }[] {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof CheckpointDeniedError) return e.denials;
  return [];
}
