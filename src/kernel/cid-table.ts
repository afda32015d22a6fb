/**
 * The WPAR table: cids allocated lowest-free-first (K1), the high-water mark (K2), and the WPAR
 * record of each held cid.
 * @module
 */

/**
 * Invariant: every cid in `[1, hiwater]` is either held (in `slots`) or in the `free` min-heap, so the
 * lowest free cid is the heap's minimum, or `hiwater + 1` when the heap is empty.
 */
export class CidTable<T> {
  #slots: (T | undefined)[] = [undefined];
  #free: number[] = [];
  #held = 0;
  #hiwater = 0;
  readonly #max: number;

  /** @param max the most cids held at once (`maxWpars`). */
  constructor(max: number) {
    this.#max = max;
  }

  /** The highest cid ever allocated; never decreases. */
  get hiwater(): number {
    return this.#hiwater;
  }

  /** How many cids are held. */
  get size(): number {
    return this.#held;
  }

  /** Allocates the lowest free cid for `value`, or returns 0 when `max` cids are held. */
  allocate(make: (cid: number) => T): number {
    if (this.#held >= this.#max) return 0;
    const cid = this.#free.length > 0 ? heapPop(this.#free) : ++this.#hiwater;
    this.#slots[cid] = make(cid);
    this.#held++;
    return cid;
  }

  /**
   * Allocates exactly `cid` for `value` (a daemon adopting a WPAR that kept its cid across a restart).
   * Returns 0 when `cid` is held or `max` cids are held. The cids below it that were never allocated
   * become free, so the invariant holds and the lowest free cid is still handed out next.
   */
  allocateAt(cid: number, make: (cid: number) => T): number {
    if (this.#held >= this.#max || this.#slots[cid] !== undefined) return 0;
    if (cid > this.#hiwater) {
      for (let c = this.#hiwater + 1; c < cid; c++) heapPush(this.#free, c);
      this.#hiwater = cid;
    } else {
      // A sorted array is a valid min-heap; adoption is rare, so O(n log n) here is fine.
      this.#free = this.#free.filter((c) => c !== cid).sort((a, b) => a - b);
    }
    this.#slots[cid] = make(cid);
    this.#held++;
    return cid;
  }

  /** The record holding `cid`, if any. `cid` must already be a valid integer. */
  get(cid: number): T | undefined {
    return this.#slots[cid];
  }

  /** Frees `cid` for reuse. */
  release(cid: number): void {
    if (this.#slots[cid] === undefined) return;
    this.#slots[cid] = undefined;
    this.#held--;
    heapPush(this.#free, cid);
  }

  /** Every held record, by cid. */
  *values(): IterableIterator<T> {
    for (const v of this.#slots) if (v !== undefined) yield v;
  }
}

function heapPush(h: number[], x: number): void {
  let i = h.push(x) - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p]! <= x) break;
    h[i] = h[p]!;
    i = p;
  }
  h[i] = x;
}

function heapPop(h: number[]): number {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length > 0) {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]! < h[l]! ? r : l;
      if (h[c]! >= last) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
  return top;
}
