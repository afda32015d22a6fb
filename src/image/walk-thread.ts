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
  readonly error?: { readonly code: ErrnoCode; readonly message: string };
}

let worker: Worker | null = null;
let nextJob = 1;
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

/**
 * Walk `root` on the walking thread (`live`: a root that may be changing, see `walkEntries`).
 * `onBatch` runs for each batch as soon as it arrives (the writer counts sizes there, to know the
 * total early); the generator then hands out the batches in order, and `complete()` tells whether
 * the last one has arrived.
 */
export function walkOnThread(
  root: string, label: string, onBatch: (entries: readonly SourceEntry[]) => void, live = false,
): { batches: AsyncGenerator<readonly SourceEntry[], void, void>; complete: () => boolean } {
  const w = (worker ??= start());
  const job = nextJob++;
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
    }
    if (last) queue.push(null);
    const resolve = wake;
    wake = null;
    resolve?.();
  });
  w.ref();
  w.postMessage({ job, root, label, live });

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
  return { batches: batches(), complete: () => complete };
}
