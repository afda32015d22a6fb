/**
 * A strict, push-driven tar parser: feed it chunks as they arrive (from a file or a socket) and it
 * calls its sink for each entry's headers, data and padding, handing over the raw bytes so that the
 * caller can hash every byte of the stream. It never looks ahead and never seeks.
 * @module
 */
import { BLOCK, LIMITS, padding } from '../format/format.ts';
import { decodeHeader, decodePax, isZeroBlock, type PaxFields, type TarEntry } from '../format/tar.ts';

/** What the parser reports; every Buffer is only valid during the call (copy to keep). */
export interface TarSink {
  /** An entry begins at stream `offset`; `raw` is every byte from there through its ustar header. */
  header(entry: TarEntry, raw: readonly Buffer[], offset: number): void;
  /** A slice of the current entry's data. */
  data(bytes: Buffer): void;
  /** A slice of the zero padding after the current entry's data. */
  padding(bytes: Buffer): void;
  /** The current entry (data and padding) is complete. */
  entryEnd(): void;
  /** The two zero blocks that end a tar archive were read. */
  archiveEnd(): void;
}

type State = 'header' | 'pax' | 'data' | 'pad' | 'zero2' | 'done';

/**
 * Parses one tar stream; throws through `fail` at the first thing it does not accept, with the offset
 * of the block at fault (null when the reason says where) and whether a header was being read.
 */
export class TarParser {
  readonly #sink: TarSink;
  readonly #fail: (reason: string, offset: number | null, inHeader: boolean) => never;
  #state: State = 'header';
  /** Stream offset of the next byte to be consumed. */
  #offset = 0;
  /** A header block gathered across chunks. */
  readonly #block = Buffer.alloc(BLOCK);
  #gathered = 0;
  /** Bytes left in the current data, padding or pax section. */
  #left = 0;
  #size = 0;
  /** A pending pax header: its raw bytes, its data (with padding) being gathered, its start. */
  #paxRaw: Buffer[] = [];
  #paxData: Buffer | null = null;
  #paxSize = 0;
  #pax: PaxFields | null = null;
  #entryStart = 0;

  constructor(sink: TarSink, fail: (reason: string, offset: number | null, inHeader: boolean) => never) {
    this.#sink = sink;
    this.#fail = fail;
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#offset;
  }

  /** Whether the end-of-archive blocks were read. */
  get done(): boolean {
    return this.#state === 'done';
  }

  /** Consume the next chunk of the stream. */
  write(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const avail = chunk.length - pos;
      switch (this.#state) {
        case 'header':
        case 'zero2': {
          let block: Buffer;
          if (this.#gathered === 0 && avail >= BLOCK) {
            block = chunk.subarray(pos, pos + BLOCK);
            pos += BLOCK;
            this.#offset += BLOCK;
          } else {
            const n = Math.min(BLOCK - this.#gathered, avail);
            chunk.copy(this.#block, this.#gathered, pos, pos + n);
            this.#gathered += n;
            pos += n;
            this.#offset += n;
            if (this.#gathered < BLOCK) break;
            this.#gathered = 0;
            block = this.#block;
          }
          this.#onBlock(block, this.#offset - BLOCK);
          break;
        }
        case 'pax': {
          const n = Math.min(this.#left, avail);
          const data = this.#paxData!;
          chunk.copy(data, data.length - this.#left, pos, pos + n);
          this.#left -= n;
          pos += n;
          this.#offset += n;
          if (this.#left === 0) this.#onPax(data);
          break;
        }
        case 'data': {
          const n = Math.min(this.#left, avail);
          this.#sink.data(chunk.subarray(pos, pos + n));
          this.#left -= n;
          pos += n;
          this.#offset += n;
          if (this.#left === 0) this.#startPadding();
          break;
        }
        case 'pad': {
          const n = Math.min(this.#left, avail);
          this.#sink.padding(chunk.subarray(pos, pos + n));
          this.#left -= n;
          pos += n;
          this.#offset += n;
          if (this.#left === 0) this.#endEntry();
          break;
        }
        case 'done':
          this.#fail('data after the end of the archive', this.#offset, true);
      }
    }
  }

  /** The stream ended: refuse it unless the archive was complete. */
  end(): void {
    if (this.#state !== 'done') {
      this.#fail(`cut short after ${this.#offset} bytes (image truncated)`, null, this.#state !== 'data' && this.#state !== 'pad');
    }
  }

  #onBlock(block: Buffer, at: number): void {
    if (this.#state === 'zero2') {
      if (!isZeroBlock(block)) this.#fail('the end-of-archive block is not zero', at, true);
      this.#state = 'done';
      this.#sink.archiveEnd();
      return;
    }
    if (isZeroBlock(block)) {
      if (this.#pax !== null) this.#fail('a pax header without an entry', at, true);
      this.#state = 'zero2';
      return;
    }
    const h = decodeHeader(block);
    if (typeof h === 'string') this.#fail(h, at, true);
    if (h.type === 'pax') {
      if (this.#pax !== null) this.#fail('two pax headers in a row', at, true);
      if (h.size === 0 || h.size > LIMITS.pax) this.#fail(`a pax header of ${h.size} bytes`, at, true);
      this.#entryStart = at;
      this.#paxRaw = [Buffer.from(block)];
      this.#paxSize = h.size;
      this.#left = h.size + padding(h.size);
      this.#paxData = Buffer.alloc(this.#left);
      this.#state = 'pax';
      return;
    }
    const pax = this.#pax;
    const entry: TarEntry = pax === null ? h as TarEntry : {
      path: pax.path ?? h.path,
      type: h.type,
      mode: h.mode,
      size: pax.size ?? h.size,
      mtime: pax.mtime ?? h.mtime,
      linkpath: pax.linkpath ?? h.linkpath,
      uid: h.uid,
      gid: h.gid,
    };
    if (entry.type !== 'file' && entry.size !== 0) {
      this.#fail(`the ${entry.type} entry ${JSON.stringify(entry.path)} has data`, at, true);
    }
    const raw = pax === null ? [block] : [...this.#paxRaw, block];
    const start = pax === null ? at : this.#entryStart;
    this.#pax = null;
    this.#paxRaw = [];
    this.#sink.header(entry, raw, start);
    this.#size = entry.size;
    this.#left = entry.size;
    this.#state = 'data';
    if (this.#left === 0) this.#startPadding();
  }

  #onPax(data: Buffer): void {
    const fields = decodePax(data.subarray(0, this.#paxSize));
    if (typeof fields === 'string') this.#fail(fields, this.#offset, true);
    this.#paxRaw.push(data);
    this.#paxData = null;
    this.#pax = fields;
    this.#state = 'header';
  }

  #startPadding(): void {
    this.#left = padding(this.#size);
    this.#state = 'pad';
    if (this.#left === 0) this.#endEntry();
  }

  #endEntry(): void {
    this.#state = 'header';
    this.#sink.entryEnd();
  }
}
