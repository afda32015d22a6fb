/**
 * Kernel benchmarks (issue #2 targets), each beside a baseline measured in the same run.
 */
import {
  createKernel, WPAR_CHECKPOINT_ALLOW, WPAR_CHECKPOINT_CLEAR, WPAR_CHECKPOINT_DENY, WPAR_CHECKPOINT_TRY,
  WPAR_NOTIFY_HOOK,
} from '../src/index.ts';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fmtNs, nsPerOp, nsPerOpAsync, nsPerOpPair, verdict, type Row } from './measure.ts';

/** Runs every kernel measure and returns the report rows. */
export async function kernelBench(): Promise<Row[]> {
  return [await denyAllow(), await denyAllowWithListener(), await tryLatency(), ...(await calloutDispatch()), await heapPerWpar()];
}

async function newWpar(): Promise<{ k: ReturnType<typeof createKernel>; cid: number }> {
  const k = createKernel();
  return { k, cid: await k.activate({ name: 'bench' }) };
}

// Bare work: record the same denial objects (owner, reason, since) in an array and remove them.
function bareDenyAllow(n: number): void {
  const denials: { owner: string; reason: string; since: number }[] = [];
  for (let i = 0; i < n; i++) {
    denials.push({ owner: 'ext', reason: 'io in flight', since: Date.now() });
    for (let j = 0; j < denials.length; j++) if (denials[j]!.owner === 'ext') { denials.splice(j, 1); break; }
  }
}

async function denyAllow(): Promise<Row> {
  const { k, cid } = await newWpar();
  const ext = k.extension('ext');
  const s = ext.kwpar_checkpoint_status;
  const facade = (n: number): void => {
    for (let i = 0; i < n; i++) {
      s(cid, WPAR_CHECKPOINT_DENY, 'io in flight');
      s(cid, WPAR_CHECKPOINT_ALLOW);
    }
  };
  const [bare, ours] = nsPerOpPair(bareDenyAllow, facade, 2_000_000);
  const ratio = bare / ours;
  return { measure: 'deny+allow pair via facade', value: fmtNs(ours), baseline: `${fmtNs(bare)} bare array`, ratio: `${ratio.toFixed(2)} of bare speed`, target: verdict(ratio >= 0.5, '≥ 0.5 (aim 0.7)') };
}

/**
 * Events with no listener: deny+allow on a kernel that never had a listener vs one whose listener
 * unsubscribed (and, for reference, one with a listener). Each run is a fresh process, alternating,
 * best of three: two kernels in one process would share JIT history and differ by noise alone.
 */
async function denyAllowWithListener(): Promise<Row> {
  const run = (mode: string): number => Number(execFileSync(process.execPath, [join(import.meta.dirname, 'kernel-events.ts'), mode], { encoding: 'utf8' }));
  const best: Record<string, number> = { never: Infinity, unsubscribed: Infinity, listening: Infinity };
  for (let r = 0; r < 3; r++) for (const mode of Object.keys(best)) best[mode] = Math.min(best[mode]!, run(mode));
  const ratio = best.unsubscribed! / best.never!;
  return { measure: 'deny+allow, listener unsubscribed', value: fmtNs(best.unsubscribed!), baseline: `${fmtNs(best.never!)} never subscribed`, ratio: `${ratio.toFixed(2)}× (listening: ${fmtNs(best.listening!)})`, target: verdict(ratio < 1.1, 'no measurable cost (< 1.1×)') };
}

async function tryLatency(): Promise<Row> {
  const { k, cid } = await newWpar();
  const ext = k.extension('ext');
  const s = ext.kwpar_checkpoint_status;
  const samples: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    s(cid, WPAR_CHECKPOINT_DENY, 'r');
    const waiting = k.services.kwpar_checkpoint_status(cid, WPAR_CHECKPOINT_TRY, 60);
    const t0 = performance.now();
    s(cid, WPAR_CHECKPOINT_ALLOW);
    await waiting;
    samples.push((performance.now() - t0) * 1000);
    k.services.kwpar_checkpoint_status(cid, WPAR_CHECKPOINT_CLEAR);
  }
  samples.sort((x, y) => x - y);
  const med = samples[samples.length >> 1]!;
  const p99 = samples[Math.floor(samples.length * 0.99)]!;
  // Baseline: the bare cost of resolving a promise and resuming an await.
  const bare: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    let resolve!: () => void;
    const p = new Promise<void>((r) => { resolve = r; });
    const t0 = performance.now();
    resolve();
    await p;
    bare.push((performance.now() - t0) * 1000);
  }
  bare.sort((x, y) => x - y);
  return { measure: 'waiting TRY resolves after last ALLOW', value: `${med.toFixed(2)} µs median, ${p99.toFixed(2)} µs p99`, baseline: `${bare[bare.length >> 1]!.toFixed(2)} µs bare resolve+await`, ratio: `${(med / bare[bare.length >> 1]!).toFixed(1)}×`, target: verdict(med <= 20, '≤ 20 µs (aim 5 µs)') };
}

async function calloutDispatch(): Promise<Row[]> {
  const perHook = async (hooks: number): Promise<number> => {
    const k = createKernel({ maxHooks: hooks + 1 });
    const ext = k.extension('ext');
    let calls = 0;
    for (let i = 0; i < hooks; i++) ext.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: () => { calls++; return 0; } });
    const empty = createKernel();
    const cycle = (kk: typeof k) => async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await kk.deactivate(await kk.activate({ name: 'w' }));
    };
    const n = Math.max(200, 200_000 / Math.max(hooks, 1));
    const withHooks = await nsPerOpAsync(cycle(k), n);
    const without = await nsPerOpAsync(cycle(empty), n);
    if (calls === 0) throw new Error('hooks were not called');
    return (withHooks - without) / hooks;
  };
  // Baseline: calling the same number of plain functions twice (start + stop) in a loop.
  const fns = Array.from({ length: 1000 }, () => () => 0);
  const bare = nsPerOp((n) => { for (let i = 0; i < n; i++) for (const f of fns) { f(); f(); } }, 2000) / 1000;
  const at100 = await perHook(100);
  const at1000 = await perHook(1000);
  return [
    { measure: 'callout dispatch per hook, 1000 hooks', value: `${fmtNs(at1000)} per start+stop`, baseline: `${fmtNs(bare)} bare 2 calls`, ratio: `${(at1000 / bare).toFixed(1)}×`, target: verdict(at1000 <= 1000, '≤ 1 µs') },
    { measure: 'callout dispatch per hook, 100 hooks', value: `${fmtNs(at100)} per start+stop`, baseline: `${fmtNs(at1000)} at 1000`, ratio: `${(at1000 / at100).toFixed(2)}× growth 100→1000`, target: verdict(at1000 / at100 < 1.5, 'no growth per hook') },
  ];
}

async function heapPerWpar(): Promise<Row> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return { measure: 'heap per active WPAR', value: 'n/a', baseline: 'run with --expose-gc', ratio: '', target: '' };
  const k = createKernel();
  const names = Array.from({ length: 8000 }, (_, i) => `wpar-${i}`); // the names are the caller's, not the kernel's
  gc(); gc();
  const before = process.memoryUsage().heapUsed;
  for (const name of names) await k.activate({ name });
  gc(); gc();
  const per = (process.memoryUsage().heapUsed - before) / 8000;
  if (k.list().length !== 8000) throw new Error('not all active');
  return { measure: 'heap per active WPAR (8000 active)', value: `${Math.round(per)} B`, baseline: '1024 B budget', ratio: `${(per / 1024).toFixed(2)} of budget`, target: verdict(per <= 1024, '≤ 1 KiB') };
}
