/**
 * The writer's side of walking on another thread: one walking thread serves the process (started on
 * first use, holding the process open only while it has a job), and each walk arrives as batches of
 * entries, in order, that the writer consumes while later ones are still being found.
 * @module
 */
import { WparError, type ErrnoCode } from '../../kernel/errno.ts';
import { WorkerHost } from '../threads.ts';
import type { SourceEntry } from './walk.ts';

interface Message {
  readonly job: number;
  readonly entries?: SourceEntry[];
  readonly done?: true;
  readonly removed?: string[];
  readonly error?: { readonly code: ErrnoCode; readonly message: string };
}

const thread = new WorkerHost<Message>('write/walk-worker', (m) => m.job);
let nextJob = 1;
let nextTree = 1;

/** Start the walking thread now, so that it is ready by the time a writer needs it. */
export function warmWalker(): void {
  thread.warm();
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
  thread.postIfRunning({ tree, forget: true });
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
  const job = nextJob++;
  let removed: readonly string[] = [];
  const queue: Array<readonly SourceEntry[] | Error | null> = [];
  let wake: (() => void) | null = null;
  let complete = false;
  let wanted = true;
  thread.wait(job, (m) => {
    const last = m instanceof Error || m.done === true || m.error !== undefined;
    if (last) thread.done(job);
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
  thread.post({ job, root, label, live, ...tree });

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
