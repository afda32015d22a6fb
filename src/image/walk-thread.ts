/**
 * The writer's side of walking on another thread: one walking thread serves the process (started on
 * first use, holding the process open only while it has a job), and each walk arrives as batches of
 * entries, in order, that the writer consumes while later ones are still being found.
 * @module
 */
import type { Worker } from 'node:worker_threads';
import { WparError, type ErrnoCode } from '../kernel/errno.ts';
import { startWorker } from './threads.ts';
import type { SourceEntry } from './walk.ts';

interface Message {
  readonly job: number;
  readonly entries?: SourceEntry[];
  readonly done?: true;
  readonly removed?: string[];
  readonly error?: { readonly code: ErrnoCode; readonly message: string };
}

let worker: Worker | null = null;
let nextJob = 1;
let nextTree = 1;
const jobs = new Map<number, (m: Message | Error) => void>();

function start(): Worker {
  const w = startWorker('walk-worker');
  w.on('message', (m: Message) => jobs.get(m.job)?.(m));
  const fail = (err: Error) => {
    if (worker === w) worker = null;
    for (const deliver of jobs.values()) deliver(err);
    jobs.clear();
  };
  w.on('error', fail);
  w.on('exit', () => fail(new Error('the walking thread exited')));
  w.unref();
  return w;
}

/** Start the walking thread now, so that it is ready by the time a writer needs it. */
export function warmWalker(): void {
  worker ??= start();
}

/** How a walk relates to earlier ones (a pre-copied image). */
export interface WalkTree {
  /** The tree's number (from {@link newTree}): the walking thread remembers its entries under it. */
  readonly tree: number;
  /**
   * A delta: only what is new or changed since the tree's last walk comes back (with `final`, also
   * the racy entries), and `removed()` lists what is gone. `unstable`: paths stored since then that
   * changed while they were read.
   */
  readonly delta?: { readonly final: boolean; readonly unstable: readonly string[] };
}

/** A number for a new tree the walking thread remembers; {@link forgetTree} when done. */
export function newTree(): number {
  return nextTree++;
}

/** Let the walking thread forget what it remembers of `tree`. */
export function forgetTree(tree: number): void {
  worker?.postMessage({ tree, forget: true });
}

/**
 * Walk `root` on the walking thread (`live`: a root that may be changing, see `walkEntries`).
 * `onBatch` runs for each batch as soon as it arrives (the writer counts sizes there, to know the
 * total early); the generator then hands out the batches in order, and `complete()` tells whether
 * the last one has arrived; `removed()`, after a delta, the paths removed since the walk before.
 */
export function walkOnThread(
  root: string, label: string, onBatch: (entries: readonly SourceEntry[]) => void, live = false, tree?: WalkTree,
): { batches: AsyncGenerator<readonly SourceEntry[], void, void>; complete: () => boolean; removed: () => readonly string[] } {
  const w = (worker ??= start());
  const job = nextJob++;
  let removed: readonly string[] = [];
  const queue: Array<readonly SourceEntry[] | Error | null> = [];
  let wake: (() => void) | null = null;
  let complete = false;
  let wanted = true;
  jobs.set(job, (m) => {
    const last = m instanceof Error || m.done === true || m.error !== undefined;
    if (last) {
      jobs.delete(job);
      if (jobs.size === 0) w.unref();
    }
    if (!wanted) return; // the writer stopped early: the rest of this walk is dropped
    if (m instanceof Error) {
      queue.push(m);
    } else {
      if (m.entries !== undefined && m.entries.length > 0) {
        onBatch(m.entries);
        queue.push(m.entries);
      }
      if (m.error !== undefined) queue.push(new WparError(m.error.code, m.error.message));
      complete = m.done === true;
      if (m.removed !== undefined) removed = m.removed;
    }
    if (last) queue.push(null);
    const resolve = wake;
    wake = null;
    resolve?.();
  });
  w.ref();
  w.postMessage({ job, root, label, live, ...tree });

  async function* batches(): AsyncGenerator<readonly SourceEntry[], void, void> {
    try {
      while (true) {
        while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        const next = queue.shift()!;
        if (next === null) return;
        if (next instanceof Error) throw next;
        yield next;
      }
    } finally {
      wanted = false;
    }
  }
  return { batches: batches(), complete: () => complete, removed: () => removed };
}
