/**
 * Launch latency of a WPAR, against a bare `child_process.spawn` of the same command, measured in
 * one run: from the call until the command runs (it writes a marker into a FIFO the bench reads).
 * Targets: process-group fallback ≤ 1.3× bare spawn, namespaces + cgroup ≤ 2× bare spawn.
 *
 * Where the time goes with namespaces and a cgroup:
 * - Moving a process into a cgroup (writing cgroup.procs) takes the kernel's cgroup threadgroup
 *   lock for writing, which waits for an RCU grace period unless another move happened within the
 *   last one. On the 2-CPU, HZ=250 VM this was written on that is about 10 ms, whichever controller
 *   comes first; the other hierarchies then cost ~0.1 ms. Any runtime that moves processes into v1
 *   cgroups (runc too) pays it; only cgroup v2's clone-into-cgroup or a host mounted with
 *   `favordynmods` avoids it.
 * - The chain: besides Node's own spawn (the same as bare), `unshare` (new PID, mount, UTS and IPC
 *   namespaces, a fork, mounting /proc), then `sh` (the held wpar-init.sh: wait for the cgroup, set
 *   the hostname), then `tini` (a fork), and only then the command: three more execs and two more
 *   forks than a bare spawn, at ~1-2 ms each there.
 * - The rest of the cgroup work (mkdir and limits in four v1 hierarchies) runs while `unshare`
 *   builds the namespaces, off the critical path.
 * The "(…)" lines split the cost up; "(unshare + tini, bare)" is the floor the tools themselves set.
 *
 *   node bench/runtime-launch.ts [ROUNDS [SETTLE_MS]]   (Node 24; namespaces and cgroup need root on Linux)
 * @module
 */

import { spawn, spawnSync } from 'node:child_process';
import { constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectIsolation, UNSHARE_FLAGS, type Isolation } from '../src/runtime/isolation.ts';
import { killLeftovers } from '../src/runtime/leftovers.ts';
import { launch } from '../src/runtime/launch.ts';

const rounds = Number(process.argv[2] ?? 40);
const settleMs = Number(process.argv[3] ?? 0);
const dir = mkdtempSync(join(tmpdir(), 'corral-bench-'));
const fifo = join(dir, 'marker');
if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error('mkfifo failed');
// O_RDWR: the reader never sees EOF between runs, and opening does not wait for a writer.
const reader = new Socket({ fd: openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
let onMarker: (() => void) | null = null;
reader.on('data', () => onMarker?.());
const marker = (): Promise<void> => new Promise((resolve) => (onMarker = resolve));

// The command: a shell that writes the marker and exits (the same for every variant).
const argv = ['/bin/sh', '-c', 'echo ready > "$0"', fifo];
const cgroupParent = `corral-bench/${process.pid}`;

type Variant = { name: string; run: () => Promise<{ ms: number; done: Promise<unknown> }> };

function bare(name = 'bare spawn', command: readonly string[] = argv): Variant {
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

function wpar(name: string, isolation: Isolation, limits: object): Variant {
  return {
    name,
    run: async () => {
      const seen = marker();
      const start = performance.now();
      const handle = await launch({
        definition: { name: 'bench', argv, env: {}, hostname: null, checkpointable: false, limits, autostart: false },
        cid: 1, root: join(dir, 'root'), agentPath: join(dir, 'agent.sock'), consoleLog: join(dir, 'console.log'),
        isolation, cgroupParent,
      });
      await seen;
      const ms = performance.now() - start;
      return { ms, done: handle.exited };
    },
  };
}

const full = detectIsolation();
const variants = [bare(), wpar('process group (fallback)', detectIsolation({ fallback: true }), {})];
if (full.namespaces && full.cgroup) {
  variants.push(wpar('namespaces + cgroup', full, { memoryBytes: 256 * 2 ** 20, cpuPercent: 100, procs: 64 }));
  // Where the time goes: each half of the isolation alone, and the tools spawned bare (no runtime,
  // no cgroup, no hold-and-hostname step). Each cgroup variant follows one without a cgroup: a
  // cgroup move right after another is cheaper (see above), which would flatter the second.
  variants.push(wpar('(namespaces only)', { ...full, cgroup: null }, {}));
  variants.push(wpar('(cgroup only)', { ...full, namespaces: null }, { memoryBytes: 256 * 2 ** 20, cpuPercent: 100, procs: 64 }));
  variants.push(bare('(unshare + tini, bare)', [full.namespaces.unshare, ...UNSHARE_FLAGS, '--', full.namespaces.tini, '--', ...argv]));
} else {
  console.log(`namespaces + cgroup: not measured (${full.notes.join('; ')})`);
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
const base = median(samples.get('bare spawn')!);
const targets: Record<string, number> = { 'process group (fallback)': 1.3, 'namespaces + cgroup': 2 };
console.log(`launch latency until the command runs (${rounds} rounds, ${settleMs} ms apart, ${process.version}, ${full.summary}, load ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} CPUs)`);
for (const [name, xs] of samples) {
  const ratio = median(xs) / base;
  const target = targets[name];
  const verdict = target === undefined ? '' : `  ${ratio <= target ? 'within' : 'OVER'} target ${target}×`;
  console.log(`  ${name.padEnd(28)} median ${median(xs).toFixed(2).padStart(6)} ms  p90 ${p90(xs).toFixed(2).padStart(6)} ms  ${ratio.toFixed(2)}× bare${verdict}`);
}
