/**
 * Small measuring helpers: best-of-rounds timing (the least disturbed run), and the table printer.
 */

/** Nanoseconds per operation of `fn(n)` (which performs `n` operations), best of `rounds`. */
export function nsPerOp(fn: (n: number) => void, n: number, rounds = 7): number {
  fn(Math.min(n, 1000)); // warm up
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    fn(n);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

/** Best ns/op of `a` and of `b`, with their rounds interleaved so drift and JIT order affect both alike. */
export function nsPerOpPair(a: (n: number) => void, b: (n: number) => void, n: number, rounds = 9): [number, number] {
  a(Math.min(n, 1000));
  b(Math.min(n, 1000));
  let bestA = Infinity;
  let bestB = Infinity;
  for (let r = 0; r < rounds; r++) {
    for (const [fn, which] of (r % 2 === 0 ? [[a, 0], [b, 1]] : [[b, 1], [a, 0]]) as [(n: number) => void, number][]) {
      const t0 = process.hrtime.bigint();
      fn(n);
      const ns = Number(process.hrtime.bigint() - t0) / n;
      if (which === 0) bestA = Math.min(bestA, ns);
      else bestB = Math.min(bestB, ns);
    }
  }
  return [bestA, bestB];
}

/** Async variant of {@link nsPerOp}. */
export async function nsPerOpAsync(fn: (n: number) => Promise<void>, n: number, rounds = 5): Promise<number> {
  await fn(Math.min(n, 100));
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    await fn(n);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

/** One line of the report. */
export interface Row {
  /** What was measured. */
  measure: string;
  /** The measured value, formatted. */
  value: string;
  /** The same-run baseline, formatted. */
  baseline: string;
  /** The comparison (ratio, or a derived figure). */
  ratio: string;
  /** The target and whether it is met. */
  target: string;
}

/** Prints rows as an aligned table. */
export function printTable(title: string, rows: readonly Row[]): void {
  const cols: (keyof Row)[] = ['measure', 'value', 'baseline', 'ratio', 'target'];
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(width[i]!)).join('  ');
  console.log(`\n${title}`);
  console.log(line(cols));
  console.log(line(width.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => r[c])));
}

/** `12.3 ns`, `4.56 µs`, `7.89 ms`. */
export function fmtNs(ns: number): string {
  if (ns < 1000) return `${ns.toFixed(1)} ns`;
  if (ns < 1e6) return `${(ns / 1000).toFixed(2)} µs`;
  return `${(ns / 1e6).toFixed(2)} ms`;
}

/** `met` / `MISSED` against a bound. */
export function verdict(ok: boolean, text: string): string {
  return `${text} ${ok ? 'met' : 'MISSED'}`;
}
