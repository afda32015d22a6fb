/**
 * `npm run demo:move`: a counting job checkpointed on system A and continuing on system B.
 * Two daemons with two homes are two systems on one machine; every step is a real command.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'dist/cli/bin');
const work = mkdtempSync(join(tmpdir(), 'corral-demo-'));
const homes = { A: join(work, 'system-a'), B: join(work, 'system-b') };
const image = join(work, 'image');
const daemons: ChildProcess[] = [];

function say(text: string): void {
  process.stdout.write(`\n\x1b[1m${text}\x1b[0m\n`);
}

function run(system: 'A' | 'B', command: string, ...args: string[]): string {
  process.stdout.write(`  [${system}] $ ${command} ${args.join(' ')}\n`);
  const out = execFileSync(process.execPath, [join(BIN, `${command}.js`), '--home', homes[system], ...args], { encoding: 'utf8' });
  process.stdout.write(out.replace(/^/gm, '        ').replace(/ +$/, ''));
  return out;
}

async function startDaemon(system: 'A' | 'B'): Promise<void> {
  const d = spawn(process.execPath, [join(ROOT, 'dist/daemon/wpard.js'), '--home', homes[system]], { stdio: ['ignore', 'ignore', 'pipe'] });
  daemons.push(d);
  for await (const line of createInterface({ input: d.stderr! })) {
    if (line.includes(' serving ')) { process.stdout.write(`  [${system}] ${line}\n`); return; }
  }
  throw new Error(`wpard for system ${system} did not start`);
}

async function untilOutput(system: 'A' | 'B', name: string, pattern: RegExp): Promise<void> {
  const follow = spawn(process.execPath, [join(BIN, 'wpar.js'), '--home', homes[system], 'logs', '-f', name], { stdio: ['ignore', 'pipe', 'ignore'] });
  for await (const line of createInterface({ input: follow.stdout! })) {
    if (pattern.test(line)) { follow.kill(); return; }
  }
}

function lastCounts(system: 'A' | 'B', name: string): string {
  const lines = readFileSync(join(homes[system], 'wpars', name, 'root', 'count.txt'), 'utf8').trim().split('\n');
  return `${lines.length} lines, last: ${lines.slice(-3).join(', ')}`;
}

try {
  say('Two systems on one machine: a daemon for each home');
  await startDaemon('A');
  await startDaemon('B');

  say('On system A: a counting job that uses the agent (it denies checkpoints while it writes a batch)');
  run('A', 'mkwpar', '-n', 'counter', '-c', '-e', 'COUNTER_STEP_MS=40', '-e', 'COUNTER_PAUSE_MS=200', '-s', '--', process.execPath, join(ROOT, 'examples/agent-counter.ts'));
  await untilOutput('A', 'counter', /batch 3 written/);
  run('A', 'lswpar');
  process.stdout.write(`        count.txt on A: ${lastCounts('A', 'counter')}\n`);

  say('Checkpoint on A (the TRY waits for the batch being written), then stop it there (-k)');
  run('A', 'chkptwpar', '-d', image, '-k', 'counter');
  process.stdout.write(`        count.txt on A: ${lastCounts('A', 'counter')}\n`);

  say('B trusts A: images are signed by the home that wrote them (wpar identity on A, wpar peer add on B)');
  const idA = JSON.parse(run('A', 'wpar', 'identity', '--json')) as { name: string; fingerprint: string };
  run('B', 'wpar', 'peer', 'add', 'system-a', idA.fingerprint);

  say('Restart on B: the image is verified, the root restored, the agent handed its saved count');
  run('B', 'restartwpar', '-d', image, 'counter');
  await untilOutput('B', 'counter', /batch \d+ written/);
  await untilOutput('B', 'counter', /batch \d+ written/);
  run('B', 'wpar', 'logs', 'counter');
  process.stdout.write(`        count.txt on B: ${lastCounts('B', 'counter')} (no gap, no repeat)\n`);
  run('B', 'lswpar', '-L', 'counter');
  run('B', 'stopwpar', 'counter');
} finally {
  for (const d of daemons) d.kill('SIGTERM');
  await Promise.all(daemons.map((d) => new Promise((r) => (d.exitCode !== null ? r(null) : d.once('exit', r)))));
  rmSync(work, { recursive: true, force: true });
}
