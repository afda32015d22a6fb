/**
 * The main thread's side of extraction on another thread: a {@link RootSink} that batches the
 * reader's calls per chunk and posts them to `extract-worker`. File data is not copied: chunks are
 * SharedArrayBuffers, each sent to the thread once and then named by number. One thread serves the
 * process (started on first use, holding the process open only while a restore runs).
 * @module
 */
import { WparError, type ErrnoCode } from '../../kernel/errno.ts';
import type { RootEntry, RootSink } from './reader.ts';
import { WorkerHost } from '../threads.ts';
import type { IdRange } from '../../runtime/idmap.ts';

/**
 * One operation: an entry begins, a data slice `[buffer id, offset, length]`, the entry ends, or a
 * path is removed (a delta's).
 */
export type ExtractOp = readonly [RootEntry] | readonly [number, number, number] | readonly [] | readonly ['remove', string];

/** Batches posted and not yet done before the reader waits: bounds the memory held. */
const MAX_IN_FLIGHT = 3;

interface Reply {
  readonly job: number;
  readonly ack?: number;
  readonly error?: { readonly code: ErrnoCode; readonly message: string };
  readonly finished?: true;
  readonly aborted?: true;
}

const thread = new WorkerHost<Reply>('read/extract-worker', (r) => r.job);
let nextJob = 1;

/** Extracts into `dir` (an empty directory) on the extraction thread; {@link flush} after each chunk, then {@link finish}. */
export class ThreadedExtractor implements RootSink {
  readonly #job = nextJob++;
  readonly #dir: string;
  readonly #ids: IdRange | null;
  readonly #label: string;
  #ops: ExtractOp[] = [];
  /** Chunks sent to the thread for this job, by number: each is sent once, then named. */
  readonly #known = new Map<ArrayBufferLike, number>();
  #newBuffers: Array<[number, SharedArrayBuffer]> = [];
  #seq = 0;
  readonly #onAck = new Map<number, () => void>();
  #failure: WparError | null = null;
  #wake: (() => void) | null = null;
  #finished = false;
  #closed = false;

  /** `ids`: the host ids the restored WPAR's ids map to (see {@link Extractor}). */
  constructor(dir: string, label: string, ids: IdRange | null = null) {
    this.#dir = dir;
    this.#label = label;
    this.#ids = ids;
    thread.wait(this.#job, (r) => {
      if (r instanceof Error) {
        this.#failure ??= new WparError('EINVAL', `image ${label}: the extraction thread failed: ${r.message}`, { cause: r });
        this.#closed = true;
      } else {
        if (r.ack !== undefined) {
          this.#onAck.get(r.ack)?.();
          this.#onAck.delete(r.ack);
        }
        if (r.error !== undefined) this.#failure ??= new WparError(r.error.code, r.error.message);
        if (r.finished) this.#finished = true;
        if (r.aborted) this.#closed = true;
      }
      const wake = this.#wake;
      this.#wake = null;
      wake?.();
    });
  }

  entry(e: RootEntry): void {
    this.#ops.push([e]);
  }

  data(bytes: Buffer): void {
    const sab = bytes.buffer;
    if (!(sab instanceof SharedArrayBuffer)) throw new TypeError('extraction data must live in a SharedArrayBuffer');
    let id = this.#known.get(sab);
    if (id === undefined) {
      id = this.#known.size + 1;
      this.#known.set(sab, id);
      this.#newBuffers.push([id, sab]);
    }
    this.#ops.push([id, bytes.byteOffset, bytes.length]);
  }

  entryEnd(): void {
    this.#ops.push([]);
  }

  remove(rel: string): void {
    this.#ops.push(['remove', rel]);
  }

  /** Post the operations gathered from the last chunk; `done` runs once the thread no longer needs it. */
  async flush(done: () => void): Promise<void> {
    this.#check();
    const seq = ++this.#seq;
    this.#onAck.set(seq, done);
    const first = seq === 1 ? { dir: this.#dir, label: this.#label, ids: this.#ids } : {};
    thread.post({ job: this.#job, seq, ops: this.#ops, buffers: this.#newBuffers, ...first });
    this.#ops = [];
    this.#newBuffers = [];
    await this.#until(() => this.#onAck.size <= MAX_IN_FLIGHT);
  }

  /** Wait for every operation, then apply the directories' modes and times. */
  async finish(): Promise<void> {
    this.#check();
    thread.post({ job: this.#job, finish: true });
    await this.#until(() => this.#finished);
  }

  /**
   * End the job: stop its work (closing any file it has open) unless it finished, wait for that,
   * then hand back every chunk still lent to the thread. Safe to call twice.
   */
  async close(): Promise<void> {
    if (!this.#closed && !this.#finished) {
      thread.post({ job: this.#job, abort: true });
      await this.#until(() => this.#closed, true);
    }
    this.#closed = true;
    thread.done(this.#job);
    for (const done of this.#onAck.values()) done();
    this.#onAck.clear();
  }

  #check(): void {
    if (this.#failure !== null) throw this.#failure;
  }

  async #until(ready: () => boolean, ignoreFailure = false): Promise<void> {
    while (!ready()) {
      if (!ignoreFailure) this.#check();
      if (this.#closed && !ready()) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    if (!ignoreFailure) this.#check();
  }
}
