/**
 * Command start-up (issue 11, item 19), each beside a baseline from the same run:
 * - `lswpar` (a new node process, table of 5 WPARs) ÷ `node -e 0` on the same Node;
 * - `startwpar NAME` of a Node program until the program runs ÷ a bare spawn of the same program
 *   until it runs ("runs": its first act is to write a line to a FIFO the bench reads);
 * - 50 WPARs started by one `startwpar a1 ... a50` ÷ by 50 `startwpar` commands.
 * Runs are interleaved (command, baseline, command, ...) so load from other work affects both alike.
 */
import { spawn, spawnSync } from 'node:child_process';
import { constants, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { verdict, type Row } from './measure.ts';
import { call, ROOT, startDaemon, stopDaemon, type Daemon } from './wpard.ts';

// BENCH_CLI_BIN=OTHER/dist/cli/bin measures another build's commands against this daemon (how the
// numbers before item 19 in docs/performance.md were taken); the several-names measure then is skipped.
const BIN = process.env['BENCH_CLI_BIN'] ?? join(ROOT, 'dist/cli/bin');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

function run(args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return performance.now() - t0;
}

async function lswparStart(d: Daemon): Promise<Row> {
  for (let i = 0; i < 5; i++) await call(d, 'POST', '/v1/wpars', { definition: { name: `w${i}`, argv: ['true'] } });
  const cmd: number[] = [];
  const bare: number[] = [];
  run([join(BIN, 'lswpar.js'), '--home', d.home]); // the compile cache is written once
  for (let i = 0; i < 15; i++) {
    cmd.push(run([join(BIN, 'lswpar.js'), '--home', d.home]));
    bare.push(run(['-e', '0']));
  }
  const ratio = median(cmd) / median(bare);
  return { measure: 'lswpar (a new process), 5 WPARs', value: `${median(cmd).toFixed(1)} ms`, baseline: `${median(bare).toFixed(1)} ms node -e 0`, ratio: `${ratio.toFixed(2)}×`, target: verdict(ratio <= 1.3, '≤ 1.3×') };
}

async function startwparUntilRunning(d: Daemon): Promise<Row> {
  const fifo = join(d.home, 'up.fifo');
  spawnSync('mkfifo', [fifo]);
  const program = [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(fifo)}, 'up\\n'); setInterval(() => {}, 1e9)`];
  const pipe = new Socket({ fd: openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
  let arrived: (() => void) | undefined;
  pipe.on('data', () => { const a = arrived; arrived = undefined; a?.(); });
  const running = (): Promise<void> => new Promise((ok) => { arrived = ok; });
  await call(d, 'POST', '/v1/wpars', { definition: { name: 'node-prog', argv: program } });
  const bare: number[] = [];
  const ours: number[] = [];
  for (let i = 0; i < 12; i++) {
    let up = running();
    let t0 = performance.now();
    const child = spawn(program[0]!, program.slice(1), { stdio: 'ignore' });
    await up;
    const tb = performance.now() - t0;
    child.kill('SIGKILL');
    up = running();
    t0 = performance.now();
    const cmd = spawn(process.execPath, [join(BIN, 'startwpar.js'), '--home', d.home, 'node-prog'], { stdio: 'ignore' });
    const exited = new Promise((r) => cmd.once('exit', r));
    await up;
    const tw = performance.now() - t0;
    await exited;
    await call(d, 'POST', '/v1/wpars/node-prog/stop', { force: true });
    if (i >= 2) { bare.push(tb); ours.push(tw); }
  }
  pipe.destroy();
  const ratio = median(ours) / median(bare);
  return { measure: 'startwpar of a Node program, until it runs', value: `${median(ours).toFixed(1)} ms`, baseline: `${median(bare).toFixed(1)} ms bare spawn`, ratio: `${ratio.toFixed(2)}×`, target: verdict(ratio <= 2, '≤ 2×') };
}

async function manyStarts(d: Daemon): Promise<Row> {
  const names = Array.from({ length: 50 }, (_, i) => `m${i}`);
  for (const n of names) await call(d, 'POST', '/v1/wpars', { definition: { name: n, argv: ['sleep', '300'] } });
  const stopAll = (): number => run([join(BIN, 'stopwpar.js'), '--home', d.home, '-F', ...names]);
  const one = run([join(BIN, 'startwpar.js'), '--home', d.home, ...names]);
  stopAll();
  let each = 0;
  for (const n of names) each += run([join(BIN, 'startwpar.js'), '--home', d.home, n]);
  stopAll();
  const ratio = one / each;
  return { measure: '50 WPARs started by one startwpar', value: `${one.toFixed(0)} ms`, baseline: `${each.toFixed(0)} ms 50 commands`, ratio: `${ratio.toFixed(2)}×`, target: verdict(ratio <= 0.3, '≤ 0.3×') };
}

/** Every command start-up measure. */
export async function commandsBench(): Promise<Row[]> {
  // The fallback isolation, as the command-start numbers before item 19 were taken: what is measured is the commands.
  const d = await startDaemon(['--fallback-isolation']);
  try {
    const rows = [await lswparStart(d), await startwparUntilRunning(d)];
    if (process.env['BENCH_CLI_BIN'] === undefined) rows.push(await manyStarts(d));
    return rows;
  } finally {
    await stopDaemon(d);
  }
}
