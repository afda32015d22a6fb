/**
 * Benchmark of checkpoint images against GNU tar on the same disk: writeImage ÷ `tar cf` and
 * restoreImage ÷ `tar xf` for a generated ~200 MB root of mixed file sizes (target ≤ 1.25× each).
 * Run: node bench/image.ts [--mb 200] [--runs 5] [--dir DIR] (Node 24). The generated data is removed after.
 * `imageBench()` returns the same measures as rows for `bench/run.ts`'s table.
 *
 * The machine matters: writing uses three threads (walk, read, hash and write) and restoring two
 * (parse and hash, create files), so on two cores shared with other busy processes the ratios rise
 * (the same code measured 1.0–1.1× on a quiet machine and up to ~1.8× at a load average of 4). Restores
 * go to fresh directories: on an ext4 mounted with `discard`, creating files right after deleting
 * 20,000 is up to ten times slower, at random, for tar as for us.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { restoreImage, writeImage } from '../src/image/index.ts';
import { IMAGE_FILE } from '../src/image/format/format.ts';
import { printTable, verdict, type Row } from './measure.ts';

/** The target for both ratios. */
const TARGET = 1.25;

/** A root of ~MB megabytes (also used by bench/daemon.ts): 40% in many small files, 30% in medium ones, 30% in a few large ones. */
export function generate(root: string, mb: number): { files: number; bytes: number } {
  const pool = randomFillSync(Buffer.allocUnsafe(32 << 20));
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const slice = (size: number) => {
    const start = rand(pool.length - size);
    return pool.subarray(start, start + size);
  };
  const total = mb << 20;
  let files = 0;
  let bytes = 0;
  const dirs: string[] = [];
  for (let i = 0; i < 40; i++) {
    for (let j = 0; j < 5; j++) {
      const d = join(root, `dir${i}`, `sub${j}`);
      mkdirSync(d, { recursive: true });
      dirs.push(d);
    }
  }
  const put = (size: number) => {
    writeFileSync(join(dirs[rand(dirs.length)]!, `f${files}.dat`), slice(size));
    files++;
    bytes += size;
  };
  while (bytes < total * 0.4) put(rand(8192)); // small: 0–8 KiB
  while (bytes < total * 0.7) put(256 * 1024 + rand(1536 * 1024)); // medium: 0.25–1.75 MiB
  while (bytes < total) put(Math.min(20 << 20, total - bytes)); // large: up to 20 MiB
  for (let i = 0; i < 100; i++) symlinkSync(`../sub0/f${i}.dat`, join(dirs[i]!, `link${i}`));
  return { files, bytes };
}

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} failed`);
}

/** One timed step: `setup` (untimed, then `sync` so earlier writes do not interfere), then `run`. */
interface Step {
  readonly setup: () => void;
  readonly run: () => Promise<unknown> | void;
}

/**
 * Time several steps, interleaved (a, b, a, b, ...) so that a busy machine hurts both alike, after
 * one untimed warm-up round. Returns each step's times in milliseconds.
 */
async function timeInterleaved(steps: readonly Step[], runs: number): Promise<number[][]> {
  const times = steps.map(() => [] as number[]);
  for (let round = 0; round <= runs; round++) {
    for (const [i, step] of steps.entries()) {
      step.setup();
      sh('sync');
      const t0 = performance.now();
      await step.run();
      if (round > 0) times[i]!.push(performance.now() - t0);
    }
  }
  return times;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const min = (xs: number[]) => Math.min(...xs);

/** Options of {@link imageBench}. */
export interface ImageBenchOptions {
  /** Size of the generated root in MiB (default 200). */
  readonly mb?: number;
  /** Timed runs of each step, after one warm-up (default 5). */
  readonly runs?: number;
  /** Where to generate the data (default: the system's temporary directory). */
  readonly dir?: string;
  /** Called with lines describing the set-up. */
  readonly log?: (line: string) => void;
}

/** writeImage ÷ `tar cf` and restoreImage ÷ `tar xf`, as report rows (medians; minimums in brackets). */
export async function imageBench(options: ImageBenchOptions = {}): Promise<Row[]> {
  const { mb = 200, runs = 5, log = console.log } = options;
  const base = mkdtempSync(join(options.dir ?? tmpdir(), 'corral-image-bench-'));
  try {
    const root = join(base, 'root');
    const { files, bytes } = generate(root, mb);
    log(`root: ${files} files (${(bytes / 2 ** 20).toFixed(0)} MiB), 200 directories, 100 symlinks, in ${base}`);
    log(`${runs} interleaved runs after a warm-up; cpus: ${availableParallelism()}, load average: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const def = { name: 'bench', argv: ['true'], env: {}, hostname: null, checkpointable: true, limits: {}, autostart: false };
    const agents = new Map<string, unknown>([['app', { at: new Date(), n: 1 }]]);
    const tarFile = join(base, 'baseline.tar');
    const imgDir = join(base, 'img');
    const clean = (p: string) => () => rmSync(p, { recursive: true, force: true });

    const [tarCf, tarCfSync, write] = await timeInterleaved([
      { setup: clean(tarFile), run: () => sh(`tar cf ${tarFile} -C ${root} .`) },
      { setup: clean(tarFile), run: () => sh(`tar cf ${tarFile} -C ${root} . && sync ${tarFile}`) },
      { setup: clean(imgDir), run: () => writeImage(imgDir, { definition: def, root, agents }) },
    ], runs) as [number[], number[], number[]];
    // Restores go to fresh directories, removed only at the end: deleting 20,000 files between runs
    // makes the next creations on this ext4 (mounted with discard) ten times slower, at random.
    let n = 0;
    const [tarXf, restore] = await timeInterleaved([
      { setup: () => mkdirSync(join(base, `x${++n}`)), run: () => sh(`tar xf ${tarFile} --no-same-owner -C ${join(base, `x${n}`)}`) },
      { setup: () => undefined, run: () => restoreImage(imgDir, join(base, `r${++n}`)) },
    ], runs) as [number[], number[]];
    log(`image: ${(statSync(join(imgDir, IMAGE_FILE)).size / 2 ** 20).toFixed(1)} MiB; baseline: ${spawnSync('tar', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]}, same disk`);

    const ms = (xs: number[]) => `${median(xs).toFixed(0)} ms (${min(xs).toFixed(0)})`;
    const row = (measure: string, ours: number[], baseName: string, baseline: number[], target: boolean): Row => {
      const ratio = median(ours) / median(baseline);
      return {
        measure,
        value: ms(ours),
        baseline: `${baseName} ${ms(baseline)}`,
        ratio: `${ratio.toFixed(2)}× (min/min ${(min(ours) / min(baseline)).toFixed(2)}×)`,
        target: target ? verdict(ratio <= TARGET, `≤ ${TARGET}×`) : 'for reference',
      };
    };
    return [
      row(`writeImage ${mb} MiB`, write, 'tar cf', tarCf, true),
      row(`writeImage ${mb} MiB`, write, 'tar cf + fsync', tarCfSync, false),
      row(`restoreImage ${mb} MiB`, restore, 'tar xf', tarXf, true),
    ];
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { mb: { type: 'string', default: '200' }, runs: { type: 'string', default: '5' }, dir: { type: 'string' } },
  });
  printTable('Checkpoint images (median, minimum in brackets)', await imageBench({
    mb: Number(values.mb), runs: Number(values.runs), dir: values.dir,
  }));
}
