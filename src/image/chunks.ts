/**
 * The writer's output: fixed-size zeroed chunks that headers and file data are written into in place
 * (no intermediate copies). Chunks live in SharedArrayBuffers so that the hashing thread reads them
 * without a copy, and a pool recycles them once both the hasher and the consumer are done.
 * @module
 */

/**
 * Default chunk size. Each chunk costs a hand-over to the hashing thread and a write on the thread
 * pool; on a busy machine each wake-up of another thread is expensive, so chunks are large (1 MiB
 * chunks made writing ~1.5× slower on two shared cores). Filling one takes ~10 ms of work at most.
 */
export const CHUNK_BYTES = 4 << 20;

/** Chunks a recycling pool keeps for later (memory kept between images until {@link ChunkPool.trim}). */
const MAX_FREE = 8;

/** `[part, start, end]`: bytes `start..end` of a chunk belong to part number `part`. */
export type HashRange = readonly [number, number, number];

/** A completed chunk and which parts its bytes belong to. */
export interface Chunk {
  readonly bytes: Buffer;
  /** Stream offset of its first byte. */
  readonly offset: number;
  readonly ranges: readonly HashRange[];
}

/**
 * Hands out zeroed chunks. With `recycle`, a chunk comes back to the pool when its holders have all
 * released it (see {@link ChunkPool.hold}); without, every chunk is fresh and may be kept forever.
 */
export class ChunkPool {
  readonly chunkBytes: number;
  readonly #recycle: boolean;
  readonly #free: Buffer[] = [];
  readonly #holds = new Map<ArrayBufferLike, { full: Buffer; count: number }>();

  constructor(chunkBytes = CHUNK_BYTES, recycle = false) {
    this.chunkBytes = chunkBytes;
    this.#recycle = recycle;
  }

  /**
   * A chunk of at least `size` bytes (the pool's size unless more is asked for). A recycled chunk
   * holds old bytes: the builder zeroes what it does not overwrite (zeroing a whole shared buffer is
   * slow, a tenth of the write time for a large root).
   */
  take(size = this.chunkBytes): Buffer {
    const reused = size === this.chunkBytes ? this.#free.pop() : undefined;
    return reused ?? Buffer.from(new SharedArrayBuffer(Math.max(size, this.chunkBytes)));
  }

  /** Let go of the chunks kept for later (when no image has been written for a while). */
  trim(): void {
    this.#free.length = 0;
  }

  /** Return a chunk that was taken but never handed out. */
  giveBack(bytes: Buffer): void {
    const full = Buffer.from(bytes.buffer);
    if (this.#recycle && full.length === this.chunkBytes && this.#free.length < MAX_FREE) this.#free.push(full);
  }

  /** `count` holders now use the chunk behind `bytes`; each calls {@link release} when done. */
  hold(bytes: Buffer, count: number): void {
    if (!this.#recycle) return;
    this.#holds.set(bytes.buffer, { full: Buffer.from(bytes.buffer), count });
  }

  /** Whether the chunk behind `bytes` is one of this pool's, currently held. */
  holds(bytes: Buffer): boolean {
    return this.#holds.has(bytes.buffer);
  }

  /** One holder is done with the chunk behind `bytes`. */
  release(bytes: Buffer): void {
    const hold = this.#holds.get(bytes.buffer);
    if (hold === undefined || --hold.count > 0) return;
    this.#holds.delete(bytes.buffer);
    if (hold.full.length === this.chunkBytes && this.#free.length < MAX_FREE) this.#free.push(hold.full);
  }
}

/** A part's place in the stream. */
export interface PartPlace {
  readonly offset: number;
  readonly bytes: number;
}

/**
 * Fills chunks. Positions stay 512-aligned at every header, and chunk sizes are a multiple of 512,
 * so a header block never straddles two chunks.
 */
export class ChunkBuilder {
  readonly #pool: ChunkPool;
  /** The chunk being filled. */
  buf: Buffer;
  /** Fill position in `buf`. */
  pos = 0;
  /** Completed chunks, waiting to be handed out. */
  readonly ready: Chunk[] = [];
  /** Stream offset of `buf[0]`. */
  #base = 0;
  #part = -1;
  #partStart = 0;
  #hashFrom = 0;
  #ranges: HashRange[] = [];

  constructor(pool: ChunkPool) {
    this.#pool = pool;
    this.buf = pool.take();
  }

  /** Bytes produced so far (stream offset of `pos`). */
  get offset(): number {
    return this.#base + this.pos;
  }

  /** Room left in the current chunk. */
  get room(): number {
    return this.buf.length - this.pos;
  }

  /** Make sure `n` contiguous bytes fit in the current chunk. */
  ensure(n: number): void {
    if (this.room >= n) return;
    this.flush();
    if (n > this.buf.length) this.buf = this.#pool.take(n);
  }

  /** Move the filled part of the current chunk to `ready` and start a fresh chunk. */
  flush(): void {
    if (this.pos === 0) return;
    this.#closeRange();
    this.ready.push({ bytes: this.buf.subarray(0, this.pos), offset: this.#base, ranges: this.#ranges });
    this.#ranges = [];
    this.#base += this.pos;
    this.buf = this.#pool.take();
    this.pos = 0;
    this.#hashFrom = 0;
  }

  /** Append `n` zero bytes (padding, end-of-archive blocks); they must fit in the current chunk. */
  zeros(n: number): void {
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }

  /** Give the unfilled current chunk back to the pool; the builder is not used after this. */
  dispose(): void {
    if (this.pos === 0) this.#pool.giveBack(this.buf);
  }

  /** Copy `data` into the stream, across chunks as needed. */
  put(data: Buffer): void {
    let done = 0;
    while (done < data.length) {
      if (this.room === 0) this.flush();
      const n = Math.min(this.room, data.length - done);
      data.copy(this.buf, this.pos, done, done + n);
      this.pos += n;
      done += n;
    }
  }

  /** Bytes from here on belong to part number `part` (ending the previous part, whose place is returned). */
  beginPart(part: number): PartPlace | null {
    const ended = this.endPart();
    this.#part = part;
    this.#partStart = this.offset;
    return ended;
  }

  /** Bytes from here on belong to no part; returns the place of the part that ended, if any. */
  endPart(): PartPlace | null {
    if (this.#part < 0) return null;
    this.#closeRange();
    this.#part = -1;
    return { offset: this.#partStart, bytes: this.offset - this.#partStart };
  }

  #closeRange(): void {
    if (this.#part >= 0 && this.pos > this.#hashFrom) this.#ranges.push([this.#part, this.#hashFrom, this.pos]);
    this.#hashFrom = this.pos;
  }
}
