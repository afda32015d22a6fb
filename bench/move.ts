/**
 * Live moves between two test hosts (network namespaces joined by a bridge, one wpard each), for a
 * 200 MB mixed root (`bench/image.ts`'s generator), issue 8:
 * - total `movewpar` time ÷ `tar c | tar x` of the same root through one TCP connection between the
 *   same hosts;
 * - the longest pause the program sees between its own heartbeats (every 10 ms) during `movewpar`
 *   ÷ during stop-and-copy (`chkptwpar -k` then `restartwpar`) of the same root;
 * - rounds, bytes per round, frozen and down time per move.
 * Needs root and iproute2; skipped otherwise.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canMakeHosts, pair, TestNet, type Host } from '../test/e2e/move-hosts.ts';
import { generate } from './image.ts';
import { verdict, type Row } from './measure.ts';

const RELAY = join(import.meta.dirname, 'move-relay.ts');
const BEAT = 'while true; do date +%s%N >> beat.txt; sleep 0.01; done';
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;

/** The longest gap between consecutive heartbeats in `file`, in ms. */
function longestGap(file: string): number {
  const t = readFileSync(file, 'utf8').trim().split('\n').map((l) => Number(l) / 1e6);
  let gap = 0;
  for (let i = 1; i < t.length; i++) gap = Math.max(gap, t[i]! - t[i - 1]!);
  return gap;
}

async function waitBeats(h: Host, name: string, n: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  const file = join(h.home, 'wpars', name, 'root', 'beat.txt');
  for (;;) {
    let lines = 0;
    try { lines = readFileSync(file, 'utf8').split('\n').length; } catch { /* not yet */ }
    if (lines >= n) return;
    if (Date.now() > deadline) throw new Error(`no heartbeats in ${file}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `tar c | tar x` of `root` from host `from` to a fresh directory through one TCP connection to `to`. */
async function tarOverTcp(from: Host, to: Host, root: string): Promise<number> {
  const dest = mkdtempSync(join(tmpdir(), 'corral-bench-tarx-'));
  try {
    spawnSync('sync');
    const t0 = performance.now();
    const recv = spawn('ip', ['netns', 'exec', to.ns, 'sh', '-c', `"$0" "$1" recv 7171 | tar xf - --no-same-owner -C "$2"`, process.execPath, RELAY, dest], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((ready) => recv.stderr.once('data', () => ready()));
    const send = spawnSync('ip', ['netns', 'exec', from.ns, 'sh', '-c', `tar cf - -C "$2" . | "$0" "$1" send ${to.address} 7171`, process.execPath, RELAY, root]);
    if (send.status !== 0) throw new Error(`tar send: ${send.stderr.toString()}`);
    await new Promise((done) => recv.once('exit', done));
    return performance.now() - t0;
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
}

/** Runs the move measures (empty when test hosts cannot be made). */
export async function moveBench(options: { mb?: number } = {}): Promise<Row[]> {
  if (!canMakeHosts()) return [{ measure: 'movewpar', value: 'skipped', baseline: 'needs root and iproute2', ratio: '-', target: '-' }];
  const mb = options.mb ?? 200;
  const net = TestNet.create();
  try {
    const a = net.host('a');
    const b = net.host('b');
    await Promise.all([a.start('alpha'), b.start('beta')]);
    await pair(a, b);
    await a.ok('mkwpar', ['-n', 'big', '-c', '--', 'sh', '-c', BEAT]);
    const rootA = join(a.home, 'wpars/big/root');
    generate(rootA, mb);
    await a.ok('startwpar', ['big']);

    // movewpar back and forth, with tar over TCP of the same root between the same hosts beside it.
    const hosts = [a, b];
    const moves: { totalMs: number; frozenMs: number; downtimeMs: number; rounds: { files: number; bytes: number; ms: number }[] }[] = [];
    const tars: number[] = [];
    const moveGaps: number[] = [];
    for (let i = 0; i < 2; i++) {
      const [from, to] = [hosts[i % 2]!, hosts[(i + 1) % 2]!];
      tars.push(await tarOverTcp(from, to, join(from.home, 'wpars/big/root')));
      await waitBeats(from, 'big', 50);
      spawnSync('sync');
      moves.push(JSON.parse(await from.ok('movewpar', ['--json', 'big', to === a ? 'alpha' : 'beta'])));
      await waitBeats(to, 'big', 50 + 50);
      moveGaps.push(longestGap(join(to.home, 'wpars/big/root/beat.txt')));
    }
    // Stop and copy of the same root: chkptwpar -k on a, restartwpar on b (the program starts again
    // from its command and appends to the same file).
    const img = mkdtempSync(join(tmpdir(), 'corral-bench-img-'));
    let stopCopyGap: number;
    let stopCopyMs: number;
    try {
      const from = hosts[moves.length % 2]!;
      const to = hosts[(moves.length + 1) % 2]!;
      await waitBeats(from, 'big', 150);
      // The gap so far is the last move's; the file is truncated so only the stop-and-copy one counts.
      spawnSync('sh', ['-c', `: > "${join(from.home, 'wpars/big/root/beat.txt')}"`]);
      await waitBeats(from, 'big', 20);
      spawnSync('sync');
      const t0 = performance.now();
      await from.ok('chkptwpar', ['-k', '-d', img, 'big']);
      await to.ok('restartwpar', ['-d', img, 'big']);
      stopCopyMs = performance.now() - t0;
      await waitBeats(to, 'big', 40);
      stopCopyGap = longestGap(join(to.home, 'wpars/big/root/beat.txt'));
    } finally {
      rmSync(img, { recursive: true, force: true });
    }
    const total = median(moves.map((m) => m.totalMs));
    const tar = median(tars);
    const gap = median(moveGaps);
    const rows: Row[] = [
      { measure: `movewpar total, ${mb} MB mixed root`, value: `${total.toFixed(0)} ms`, baseline: `${tar.toFixed(0)} ms tar c | tcp | tar x`, ratio: `${(total / tar).toFixed(2)}×`, target: verdict(total / tar <= 1.3, '≤ 1.3×') },
      { measure: '  gap the program sees, movewpar', value: `${gap.toFixed(0)} ms`, baseline: `${stopCopyGap.toFixed(0)} ms stop-and-copy (${stopCopyMs.toFixed(0)} ms)`, ratio: `${(gap / stopCopyGap).toFixed(3)}`, target: verdict(gap / stopCopyGap <= 0.1, '≤ 0.1') },
    ];
    for (const [i, m] of moves.entries()) {
      rows.push({
        measure: `  move ${i + 1}: ${m.rounds.length} rounds`,
        value: `frozen ${m.frozenMs} ms, down ${m.downtimeMs} ms`,
        baseline: m.rounds.map((r) => `${r.files} files/${(r.bytes / 2 ** 20).toFixed(1)} MiB/${r.ms} ms`).join('; '),
        ratio: `${(m.frozenMs / m.totalMs).toFixed(3)} frozen`,
        target: 'reported',
      });
    }
    return rows;
  } finally {
    await net.destroy();
  }
}
