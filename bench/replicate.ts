/**
 * Replicated checkpoints and failover (issue 9, C5 and C6), on two test hosts in network namespaces
 * with a real etcd (test/e2e/cluster-hosts.ts):
 * - replication throughput — bytes of a scheduled checkpoint's image ÷ the time from its
 *   `checkpoint.done` to `cluster.replicated` (sent over TLS, verified by the receiver, recorded in
 *   etcd) — ÷ the throughput of the same file sent over one plain TCP connection between the same
 *   hosts and written to disk there (`move-relay.ts`);
 * - failover time — from the crash of a host (daemon and WPAR SIGKILLed, link cut) to the WPAR
 *   running on the other host from its replica (`cluster.failover`'s `recoveredAt`) — ÷ (lease TTL +
 *   the lease margin).
 * Needs root, iproute2 and etcd; skipped otherwise.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterNet, type ClusterHost } from '../test/e2e/cluster-hosts.ts';
import { processesOf } from '../test/e2e/harness.ts';
import { canMakeHosts } from '../test/e2e/move-hosts.ts';
import { haveEtcd } from '../test/support/etcd.ts';
import { generate } from './image.ts';
import { verdict, type Row } from './measure.ts';

const RELAY = join(import.meta.dirname, 'move-relay.ts');
const TTL = 5;
/** The lease margin a host keeps (min(500 ms, TTL/10), docs/cluster.md): the "fence margin" of the ratio. */
const MARGIN_MS = Math.min(500, (TTL * 1000) / 10);
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;

function events(h: ClusterHost, type: string): Record<string, unknown>[] {
  return readFileSync(join(h.home, 'events.log'), 'utf8').split('\n').filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.type === type);
}

/** `file` from host `from` to host `to` over one plain TCP connection, written to disk there; ms. */
async function tcpCopy(from: ClusterHost, to: ClusterHost, file: string): Promise<number> {
  const dest = join(to.home, 'bench-tcp-copy');
  try {
    const t0 = performance.now();
    const recv = spawn('nsenter', [`--net=/run/netns/${to.ns}`, '--', 'sh', '-c', '"$0" "$1" recv 7171 > "$2" && sync "$2"', process.execPath, RELAY, dest], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((ready) => recv.stderr.once('data', () => ready()));
    const send = spawn('nsenter', [`--net=/run/netns/${from.ns}`, '--', 'sh', '-c', '"$0" "$1" send "$2" 7171 < "$3"', process.execPath, RELAY, to.address, file], { stdio: 'ignore' });
    await Promise.all([new Promise((r) => send.once('exit', r)), new Promise((r) => recv.once('exit', r))]);
    return performance.now() - t0;
  } finally {
    rmSync(dest, { force: true });
  }
}

/** Resolves the first event of `h` that `ok` accepts, from its event log (polled; bounded by `ms`: a loaded machine is slow). */
async function eventually(h: ClusterHost, ok: (e: Record<string, unknown>) => boolean, what: string, ms = 120_000): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  for (;;) {
    const e = readFileSync(join(h.home, 'events.log'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>).find(ok);
    if (e) return e;
    if (Date.now() > end) throw new Error(`bench: no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function killAll(pids: readonly number[]): void {
  for (const p of pids) {
    try { process.kill(p, 'SIGKILL'); } catch { /* gone already */ }
  }
}

/** The replication and failover rows of `npm run bench -- cluster`. */
export async function replicationBench(options: { mb?: number; failovers?: number } = {}): Promise<Row[]> {
  if (!canMakeHosts() || !haveEtcd()) return [{ measure: 'replication, failover', value: 'skipped', baseline: '-', ratio: '-', target: 'needs root, iproute2 and etcd' }];
  const mb = options.mb ?? 100;
  const net = new ClusterNet({ prefix: 'cbn', subnet: '10.217.0' });
  try {
    net.create();
    const a = net.host('a');
    const b = net.host('b');
    const names = new Map([[a, 'alpha'], [b, 'beta']]);
    await net.startEtcd();
    await Promise.all([a.start('alpha', ['--lease-ttl', String(TTL)]), b.start('beta', ['--lease-ttl', String(TTL)])]);

    // Replication: a big root, checkpointed every 4 s, each image copied to beta; three images.
    await a.ok('mkwpar', ['-n', 'big', '-c', '--checkpoint-every', '4', '--host', 'alpha', '--', 'sleep', '600']);
    generate(join(a.home, 'wpars/big/root'), mb);
    await a.ok('startwpar', ['big']);
    await eventually(a, (e) => e.type === 'cluster.replicated' && e.name === 'big' && (e.seq as number) >= 3, 'third copy of big');
    await a.ok('stopwpar', ['big']);
    const done = events(a, 'checkpoint.done').filter((e) => e.name === 'big');
    const copies = events(a, 'cluster.replicated').filter((e) => e.name === 'big' && e.recorded === true);
    const rates = copies.map((c) => {
      const d = done.find((x) => String(x.dir).endsWith(`/1-${String(c.seq)}`))!;
      return { bytes: c.bytes as number, ms: (c.time as number) - (d.time as number) };
    });
    const bytes = rates[0]!.bytes;
    const replMs = median(rates.map((r) => r.ms));
    const image = join(a.home, 'checkpoints/big', String(copies.at(-1)!.epoch) + '-' + String(copies.at(-1)!.seq), 'image.tar');
    if (statSync(image).size !== bytes) throw new Error('the image sent is not the one measured');
    const tcpMs = median([await tcpCopy(a, b, image), await tcpCopy(a, b, image), await tcpCopy(a, b, image)]);
    await a.ok('rmwpar', ['big']);
    const mbps = (ms: number): number => bytes / 1e6 / (ms / 1000);

    // Failover: a failover WPAR checkpointed every second; its host crashes; back and forth.
    await a.ok('mkwpar', ['-n', 'ha', '-c', '--failover', '--checkpoint-every', '1', '--host', 'alpha', '-s', '--', 'sleep', '600']);
    const failovers: { ms: number; restartMs: number }[] = [];
    let owner = a;
    let other = b;
    for (let i = 0; i < (options.failovers ?? 3); i++) {
      const since = Date.now();
      await eventually(owner, (e) => e.type === 'cluster.replicated' && e.name === 'ha' && e.recorded === true && (e.time as number) >= since
        && JSON.stringify(e.hosts) === JSON.stringify([names.get(other)]), 'a copy of ha');
      const crashedAt = Date.now();
      await owner.kill();
      killAll(processesOf('ha', owner.home));
      owner.link(false);
      const e = await eventually(other, (x) => x.type === 'cluster.failover' && x.name === 'ha' && (x.time as number) >= crashedAt, 'the failover of ha');
      failovers.push({ ms: (e.recoveredAt as number) - crashedAt, restartMs: e.ms as number });
      owner.link(true);
      await owner.start(names.get(owner)!, ['--lease-ttl', String(TTL)]);
      [owner, other] = [other, owner];
    }
    const fo = median(failovers.map((f) => f.ms));
    const budget = TTL * 1000 + MARGIN_MS;
    return [
      {
        measure: `replication of a ${(bytes / 1e6).toFixed(0)} MB image (send, verify, record; median of ${rates.length})`,
        value: `${mbps(replMs).toFixed(0)} MB/s (${replMs.toFixed(0)} ms)`, baseline: `${mbps(tcpMs).toFixed(0)} MB/s plain TCP to disk (${tcpMs.toFixed(0)} ms)`,
        ratio: `${(tcpMs / replMs).toFixed(2)}×`, target: verdict(tcpMs / replMs >= 0.8, '≥ 0.8×'),
      },
      {
        measure: `failover, crash to running elsewhere (median of ${failovers.length})`, value: `${fo.toFixed(0)} ms`,
        baseline: `lease TTL ${TTL} s + margin ${MARGIN_MS} ms`, ratio: `${(fo / budget).toFixed(2)}×`, target: verdict(fo / budget <= 1.2, '≤ 1.2×'),
      },
      { measure: '  of which the restart from the replica', value: `${median(failovers.map((f) => f.restartMs)).toFixed(0)} ms`, baseline: '-', ratio: '-', target: 'reported' },
      { measure: '  each failover', value: failovers.map((f) => `${f.ms}`).join(', ') + ' ms', baseline: '-', ratio: '-', target: 'reported' },
    ];
  } finally {
    await net.destroy();
  }
}
