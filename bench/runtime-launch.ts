/**
 * Launch latency of a WPAR, against a bare `child_process.spawn` of the same command, measured in
 * one run: from the call until the command runs (it writes a marker into a FIFO the bench reads).
 * Two commands: a shell (`sh -c 'echo > fifo'`, the tools' cost laid bare) and a Node program (what
 * most WPARs run). Targets: process-group fallback ≤ 1.3× bare spawn; sealed ≤ 1.5× for the Node
 * program (issue #7; must stay under 2×).
 *
 * Where the time goes, sealed (see `src/runtime/command.ts` for the chain):
 * - Moving a process into a cgroup (writing cgroup.procs) takes the kernel's cgroup threadgroup
 *   lock for writing, which waits for an RCU grace period unless another move happened within the
 *   last one. On the 2-CPU, HZ=250 VM this was written on that is about 10 ms, whichever controller
 *   comes first; the other hierarchies then cost ~0.1 ms. Any runtime that moves processes into v1
 *   cgroups (runc too) pays it; only cgroup v2's clone-into-cgroup or a host mounted with
 *   `favordynmods` avoids it. It overlaps the outer bwrap's mount set-up.
 * - The chain: outer `bwrap` (namespaces, ~20 mounts), `setpriv`, inner `bwrap` (user and cgroup
 *   namespaces, a bind of /), `tini`, then the command: four more execs and three more forks than a
 *   bare spawn, plus two hand-shake round trips with the daemon.
 * The "(…)" lines split the cost up.
 *
 *   node bench/runtime-launch.ts [ROUNDS [SETTLE_MS]]   (Node 24; namespaces and cgroup need root on Linux)
 * @module
 */

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectIsolation, type Isolation } from '../src/runtime/isolation.ts';
import { killLeftovers } from '../src/runtime/leftovers.ts';
import { launch } from '../src/runtime/launch.ts';

const rounds = Number(process.argv[2] ?? 40);
const settleMs = Number(process.argv[3] ?? 0);
const dir = mkdtempSync(join(tmpdir(), 'corral-bench-'));
// A sealed WPAR sees the host as others do and its home not at all: the FIFO lives outside the
// home, in a directory others may search, writable by all.
chmodSync(dir, 0o755);
const home = join(dir, 'home');
const fifo = join(dir, 'marker');
if (spawnSync('mkfifo', ['-m', '0666', fifo]).status !== 0) throw new Error('mkfifo failed');
// O_RDWR: the reader never sees EOF between runs, and opening does not wait for a writer.
const reader = new Socket({ fd: openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
let onMarker: (() => void) | null = null;
reader.on('data', () => onMarker?.());
const marker = (): Promise<void> => new Promise((resolve) => (onMarker = resolve));

// The commands: a shell, and a Node program, that write the marker and exit.
const shell = ['/bin/sh', '-c', 'echo ready > "$0"', fifo];
const nodeProgram = [process.execPath, '-e', 'require("fs").writeFileSync(process.argv[1], "ready\\n")', fifo];
const cgroupParent = `corral-bench/${process.pid}`;

type Variant = { name: string; run: () => Promise<{ ms: number; done: Promise<unknown> }> };

function bare(name: string, command: readonly string[]): Variant {
  return {
    name,
    run: async () => {
      const seen = marker();
      const start = performance.now();
      const child = spawn(command[0]!, command.slice(1));
      await seen;
      const ms = performance.now() - start;
      return { ms, done: new Promise((resolve) => child.once('close', resolve)) };
    },
  };
}

function wpar(name: string, isolation: Isolation, limits: object, argv: readonly string[]): Variant {
  return {
    name,
    run: async () => {
      const seen = marker();
      const start = performance.now();
      const handle = await launch({
        definition: { name: 'bench', argv, env: {}, hostname: null, checkpointable: false, limits, autostart: false },
        cid: 1, root: join(home, 'wpars', 'bench', 'root'), agentPath: join(home, 'run', 'agent-1', 'agent.sock'),
        consoleLog: join(home, 'wpars', 'bench', 'console.log'), isolation, cgroupParent, privateDir: home,
      });
      await seen;
      const ms = performance.now() - start;
      return { ms, done: handle.exited };
    },
  };
}

const full = detectIsolation();
const limits = { memoryBytes: 256 * 2 ** 20, cpuPercent: 100, procs: 64 };
const variants: Variant[] = [bare('bare spawn', shell), wpar('process group (fallback)', detectIsolation({ fallback: true }), {}, shell)];
if (full.seal && full.cgroup) {
  variants.push(wpar('sealed', full, limits, shell));
  // Where the time goes: the seal without its cgroup, without its user namespace, and the cgroup
  // alone. Each cgroup variant follows one without a cgroup: a cgroup move right after another is
  // cheaper (see above), which would flatter the second.
  variants.push(wpar('(sealed, no cgroup)', { ...full, cgroup: null }, {}, shell));
  variants.push(wpar('(cgroup only)', { ...full, seal: null }, limits, shell));
  variants.push(wpar('(sealed, no user namespace)', { ...full, seal: { ...full.seal, ids: null } }, limits, shell));
  variants.push(bare('bare spawn: node', nodeProgram));
  variants.push(wpar('sealed: node', full, limits, nodeProgram));
} else {
  console.log(`sealed: not measured (${full.notes.join('; ')})`);
}

const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
try {
  // Interleaved so that drift on the machine affects every variant alike; the first rounds warm up.
  for (let round = -5; round < rounds; round++) {
    for (const variant of variants) {
      const { ms, done } = await variant.run();
      await done;
      // The kernel tears namespaces and cgroups down in the background: let that finish, so each
      // launch is measured on a settled machine rather than on the previous one's cleanup.
      await sleep(settleMs);
      if (round >= 0) samples.get(variant.name)!.push(ms);
    }
  }
} finally {
  reader.destroy();
  await killLeftovers({ isolation: full, cgroupParent: 'corral-bench' }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;
const baseOf = (name: string): number => median(samples.get(name.endsWith(': node') ? 'bare spawn: node' : 'bare spawn')!);
const targets: Record<string, number> = { 'process group (fallback)': 1.3, 'sealed: node': 1.5 };
console.log(`launch latency until the command runs (${rounds} rounds, ${settleMs} ms apart, ${process.version}, ${full.summary}, load ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} CPUs)`);
for (const [name, xs] of samples) {
  const ratio = median(xs) / baseOf(name);
  const target = targets[name];
  const verdict = target === undefined ? '' : `  ${ratio <= target ? 'within' : 'OVER'} target ${target}×`;
  console.log(`  ${name.padEnd(28)} median ${median(xs).toFixed(2).padStart(6)} ms  p90 ${p90(xs).toFixed(2).padStart(6)} ms  ${ratio.toFixed(2)}× bare${verdict}`);
}
