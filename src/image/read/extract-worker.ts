/**
 * The extraction thread: runs an {@link Extractor} per job on the operations the main thread sends,
 * so that creating files (the kernel's work) overlaps with reading, parsing and hashing the image.
 * One thread serves every restore of the process, one job at a time per restore.
 * Messages in: `{ job, seq, ops, buffers, dir, label }`, `{ job, finish: true }`, `{ job, abort: true }`.
 * Out: `{ job, ack: seq }`, `{ job, error: { code, message } }`, `{ job, finished: true }`, `{ job, aborted: true }`.
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { WparError } from '../../kernel/errno.ts';
import { Extractor } from './extract.ts';
import type { ExtractOp } from './extract-thread.ts';
import type { IdRange } from '../../runtime/idmap.ts';

interface Message {
  readonly job: number;
  readonly seq?: number;
  readonly ops?: readonly ExtractOp[];
  readonly buffers?: ReadonlyArray<readonly [number, SharedArrayBuffer]>;
  readonly dir?: string;
  readonly label?: string;
  readonly ids?: IdRange | null;
  readonly finish?: true;
  readonly abort?: true;
}

interface Job {
  extractor: Extractor | null;
  failed: boolean;
  /** The job's chunks by number; let go when the job ends. */
  readonly buffers: Map<number, Buffer>;
}

const port = parentPort!;
const jobs = new Map<number, Job>();

function fail(id: number, job: Job, err: unknown): void {
  job.failed = true;
  job.extractor?.abort();
  const code = err instanceof WparError ? err.code : 'EINVAL';
  port.postMessage({ job: id, error: { code, message: err instanceof Error ? err.message : String(err) } });
}

port.on('message', (m: Message) => {
  let job = jobs.get(m.job);
  if (job === undefined) jobs.set(m.job, (job = { extractor: null, failed: false, buffers: new Map() }));
  for (const [id, sab] of m.buffers ?? []) job.buffers.set(id, Buffer.from(sab));
  if (m.abort) {
    job.extractor?.abort();
    jobs.delete(m.job);
    port.postMessage({ job: m.job, aborted: true });
    return;
  }
  if (m.finish) {
    if (job.failed) return;
    try {
      job.extractor?.finish();
      jobs.delete(m.job);
      port.postMessage({ job: m.job, finished: true });
    } catch (err) {
      fail(m.job, job, err);
    }
    return;
  }
  if (!job.failed) {
    try {
      job.extractor ??= new Extractor(m.dir!, m.label!, m.ids ?? null);
      for (const op of m.ops ?? []) {
        if (op.length === 1) job.extractor.entry(op[0]);
        else if (op.length === 3) job.extractor.data(job.buffers.get(op[0])!.subarray(op[1], op[1] + op[2]));
        else if (op.length === 2) job.extractor.remove(op[1]);
        else job.extractor.entryEnd();
      }
    } catch (err) {
      fail(m.job, job, err);
    }
  }
  port.postMessage({ job: m.job, ack: m.seq });
});
