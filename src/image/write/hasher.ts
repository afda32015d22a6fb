/**
 * SHA-256 on a second thread: the writer hands over chunks (SharedArrayBuffers, so nothing is copied)
 * with the ranges each part covers, and keeps reading files while they are hashed and, when writing
 * to a file, written there by the same thread (one hand-off per chunk rather than two). One worker
 * (`hash-worker`) serves every writer in the process; it is started on first use and keeps the
 * process alive only while it has work.
 * @module
 */
import type { Chunk } from '../chunks.ts';
import { WorkerHost } from '../threads.ts';

interface Reply {
  readonly id: number;
  readonly hex?: string[];
  /** Why writing the chunk failed. */
  readonly error?: string;
}

const thread = new WorkerHost<Reply>('write/hash-worker', (r) => r.id);
let nextId = 1;
let nextJob = 1;

function send(message: object): Promise<Reply> {
  const id = nextId++;
  return new Promise<Reply>((resolve, reject) => {
    thread.wait(id, (r) => {
      thread.done(id);
      if (r instanceof Error) reject(r);
      else resolve(r);
    });
    thread.post({ ...message, id });
  });
}

/** Start the hashing thread now (it takes a few tens of milliseconds), so it is ready when needed. */
export function warmHasher(): void {
  void send({ job: 0, parts: [] }).catch(() => undefined);
}

/** One stream's hashing: chunks go in as they are completed, digests come out at the end. */
export class ChunkHasher {
  readonly #job = nextJob++;
  #backlog = 0;
  #failure: Error | null = null;
  readonly #drained: Array<() => void> = [];

  /** Chunks handed over and not yet hashed. */
  get backlog(): number {
    return this.#backlog;
  }

  /**
   * Hash `chunk`'s ranges and, with `fd`, write the whole chunk there at its stream offset; `done`
   * runs once the thread no longer needs its bytes.
   */
  submit(chunk: Chunk, done: () => void, fd?: number): void {
    if (chunk.ranges.length === 0 && fd === undefined) {
      done();
      return;
    }
    const { buffer, byteOffset, length } = chunk.bytes;
    this.#backlog++;
    send({ job: this.#job, buffer, byteOffset, length, ranges: chunk.ranges, fd, position: chunk.offset }).then(
      (reply) => {
        if (reply.error !== undefined) this.#failure ??= new Error(`writing the image failed: ${reply.error}`);
      },
      (err: Error) => {
        this.#failure ??= err;
      },
    ).finally(() => {
      this.#backlog--;
      done();
      for (const wake of this.#drained.splice(0)) wake();
    });
  }

  /** Wait until at most `max` chunks are waiting to be hashed (and written). */
  async settle(max = 2): Promise<void> {
    while (this.#backlog > max) await new Promise<void>((resolve) => this.#drained.push(resolve));
    if (this.#failure !== null) throw this.#failure;
  }

  /** Wait until nothing submitted is still being hashed or written, whatever the outcome. */
  async idle(): Promise<void> {
    while (this.#backlog > 0) await new Promise<void>((resolve) => this.#drained.push(resolve));
  }

  /** The hex SHA-256 of each listed part, once every chunk submitted before has been hashed. */
  async digests(parts: readonly number[]): Promise<string[]> {
    const reply = await send({ job: this.#job, parts });
    if (this.#failure !== null) throw this.#failure;
    return reply.hex!;
  }

  /** Forget this stream's partial hashes (after a failure). */
  discard(): void {
    void send({ job: this.#job, parts: [] }).catch(() => undefined);
  }
}
