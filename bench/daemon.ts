/**
 * Daemon benchmarks (issues #3 and #4), each beside a baseline measured in the same run:
 * WPAR start latency ÷ a bare spawn of the same command, `lswpar --json` with 1,000 WPARs, and
 * checkpoint / restart of a mixed 200 MB root ÷ `tar c` / `tar x` of it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, constants, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from './image.ts';
import { verdict, type Row } from './measure.ts';
import { call, ROOT, startDaemon, stopDaemon, type Daemon } from './wpard.ts';


const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * Start latency: from the start request until the main process runs, ÷ a bare spawn of the same
 * command until it runs. "Runs" is detected the same way for both: the command's first act is to
 * write to a FIFO the bench is reading.
 */
async function startLatency(d: Daemon, label: string, target: number, runs: number): Promise<Row> {
  // A sealed WPAR sees neither its daemon's home nor a 0700 directory: the FIFO lives in a
  // directory others may search, writable by all.
  const fifoDir = mkdtempSync(join(tmpdir(), 'corral-bench-fifo-'));
  chmodSync(fifoDir, 0o755);
  const fifo = join(fifoDir, 'up.fifo');
  spawnSync('mkfifo', ['-m', '0666', fifo]);
  const argv = ['sh', '-c', `echo up > ${fifo}; exec sleep 60`];
  // One reader for the whole measure, opened read-write so it never sees end-of-file: a writer's
  // open never blocks and each run's line is one 'data' event. (Blocking opens per run go through
  // libuv's thread pool and can stall.)
  const pipe = new Socket({ fd: openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
  let arrived: (() => void) | undefined;
  pipe.on('data', () => { const a = arrived; arrived = undefined; a?.(); });
  const running = (): Promise<void> => new Promise((ok) => { arrived = ok; });
  const bare: number[] = [];
  const ours: number[] = [];
  await call(d, 'POST', '/v1/wpars', { definition: { name: 'lat', argv } });
  for (let i = 0; i < runs + 2; i++) {
    let up = running();
    let t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    await up;
    const tb = performance.now() - t0;
    child.kill('SIGKILL');
    up = running();
    t0 = performance.now();
    const answered = call(d, 'POST', '/v1/wpars/lat/start');
    await up; // "until the main process runs" — the answer follows once activation completes
    const tw = performance.now() - t0;
    await answered;
    await call(d, 'POST', '/v1/wpars/lat/stop', { force: true });
    if (i >= 2) { bare.push(tb); ours.push(tw); } // two warm-up rounds
  }
  pipe.destroy();
  rmSync(fifoDir, { recursive: true, force: true });
  const ratio = median(ours) / median(bare);
  return { measure: `WPAR start latency, ${label}`, value: `${median(ours).toFixed(1)} ms`, baseline: `${median(bare).toFixed(1)} ms bare spawn`, ratio: `${ratio.toFixed(2)}×`, target: verdict(ratio <= target, `≤ ${target}×`) };
}

/** `lswpar --json` (the real command, a new node process) with 1,000 defined WPARs; baseline: `node -e 0`. */
async function lswpar1000(d: Daemon): Promise<Row> {
  for (let i = 0; i < 1000; i++) await call(d, 'POST', '/v1/wpars', { definition: { name: `w${i}`, argv: ['true'], checkpointable: i % 2 === 0 } });
  const time = (args: string[]): number => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(r.stderr);
    return performance.now() - t0;
  };
  const cmd: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < 7; i++) {
    cmd.push(time([join(ROOT, 'dist/cli/bin/lswpar.js'), '--home', d.home, '--json']));
    bare.push(time(['-e', '0']));
  }
  const api: number[] = [];
  for (let i = 0; i < 7; i++) { const t0 = performance.now(); await call(d, 'GET', '/v1/wpars'); api.push(performance.now() - t0); }
  return { measure: 'lswpar --json, 1000 WPARs', value: `${median(cmd).toFixed(1)} ms (API ${median(api).toFixed(1)} ms)`, baseline: `${median(bare).toFixed(1)} ms node -e 0`, ratio: `+${(median(cmd) - median(bare)).toFixed(1)} ms over node`, target: verdict(median(cmd) <= 100, '≤ 100 ms') };
}

/**
 * chkptwpar ÷ `tar cf`, restartwpar ÷ `tar xf`, of the same root on the same disk; frozen time ÷
 * chkptwpar's total (M5). Nothing is deleted between repetitions (restores and extractions go to
 * fresh directories, removed at the end): on this ext4, creating files soon after deleting many is
 * several times slower, at random, for tar as for us.
 */
async function checkpointRestart(a: Daemon, b: Daemon, mb: number): Promise<Row[]> {
  const work = mkdtempSync(join(tmpdir(), 'corral-bench-ckpt-'));
  try {
    // Images are signed (M8): B restarts what A wrote once it trusts A.
    const ida = await call<{ fingerprint: string }>(a, 'GET', '/v1/identity');
    await call(b, 'POST', '/v1/peers', { name: 'bench-a', fingerprint: ida.fingerprint });
    await call(a, 'POST', '/v1/wpars', { definition: { name: 'big', argv: ['sleep', '600'], checkpointable: true } });
    const root = join(a.home, 'wpars/big/root');
    generate(root, mb);
    await call(a, 'POST', '/v1/wpars/big/start');
    const sh = (cmd: string): number => {
      spawnSync('sync');
      const t0 = performance.now();
      const r = spawnSync('sh', ['-c', cmd]);
      if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
      return performance.now() - t0;
    };
    const tarC: number[] = []; const ckpt: number[] = []; const frozen: number[] = []; const share: number[] = [];
    const tarX: number[] = []; const rest: number[] = [];
    for (let i = 0; i < 3; i++) {
      const tarFile = join(work, `t${i}.tar`);
      tarC.push(sh(`tar cf ${tarFile} -C ${root} .`));
      const img = join(work, `img${i}`);
      spawnSync('sync');
      let t0 = performance.now();
      const r = await call<{ frozenMs: number; totalMs: number }>(a, 'POST', '/v1/wpars/big/checkpoint', { dir: img, waitSec: 0 });
      ckpt.push(performance.now() - t0);
      frozen.push(r.frozenMs);
      share.push(r.frozenMs / r.totalMs);
      const x = join(work, `x${i}`);
      mkdirSync(x);
      tarX.push(sh(`tar xf ${tarFile} --no-same-owner -C ${x}`));
      spawnSync('sync');
      t0 = performance.now();
      await call(b, 'POST', '/v1/restart', { dir: img, name: 'big', newName: `big${i}` });
      rest.push(performance.now() - t0);
    }
    for (let i = 0; i < 3; i++) await call(b, 'DELETE', `/v1/wpars/big${i}?force=1`);
    const c = median(ckpt) / median(tarC);
    const r = median(rest) / median(tarX);
    return [
      { measure: `chkptwpar, ${mb} MB mixed root`, value: `${median(ckpt).toFixed(0)} ms`, baseline: `${median(tarC).toFixed(0)} ms tar cf`, ratio: `${c.toFixed(2)}×`, target: verdict(c <= 1.25, '≤ 1.25×') },
      { measure: '  of which frozen', value: `${median(frozen).toFixed(1)} ms`, baseline: `${median(ckpt).toFixed(0)} ms total`, ratio: `${median(share).toFixed(3)} of it`, target: verdict(median(share) <= 0.1, '≤ 0.1 of it') },
      { measure: `restartwpar, ${mb} MB mixed root`, value: `${median(rest).toFixed(0)} ms`, baseline: `${median(tarX).toFixed(0)} ms tar xf`, ratio: `${r.toFixed(2)}×`, target: verdict(r <= 1.25, '≤ 1.25×') },
    ];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Only the checkpoint and restart measures (`npm run bench -- checkpoint`). */
export async function checkpointBench(options: { mb?: number } = {}): Promise<Row[]> {
  const a = await startDaemon();
  const b = await startDaemon();
  try {
    return await checkpointRestart(a, b, options.mb ?? 200);
  } finally {
    await stopDaemon(a);
    await stopDaemon(b);
  }
}

/** Only the start-latency measures (for profiling). */
export async function startBench(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const args of [['--fallback-isolation'], []]) {
    const d = await startDaemon(args);
    try { rows.push(await startLatency(d, args.length ? 'process group' : 'sealed + cgroup', args.length ? 1.3 : 2, 15)); } finally { await stopDaemon(d); }
  }
  return rows;
}

/** Runs every daemon measure. */
export async function daemonBench(options: { mb?: number } = {}): Promise<Row[]> {
  const rows: Row[] = [];
  const fallback = await startDaemon(['--fallback-isolation']);
  try {
    rows.push(await startLatency(fallback, 'process group', 1.3, 15));
    rows.push(await lswpar1000(fallback));
  } finally {
    await stopDaemon(fallback);
  }
  const a = await startDaemon();
  const b = await startDaemon();
  try {
    rows.push(await startLatency(a, 'sealed + cgroup', 2, 15));
    rows.push(...await checkpointRestart(a, b, options.mb ?? 200));
  } finally {
    await stopDaemon(a);
    await stopDaemon(b);
  }
  return rows;
}
