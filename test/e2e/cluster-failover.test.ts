// Fencing (C4) and failover (C6) together, nothing killed by the test: the owner's daemon is
// SIGSTOPped (its WPAR's processes still running), or its link is cut with the daemon alive. Its
// watchdog kills the --failover WPAR before the lease expires, another host restarts it from its
// newest replica, and a sampler looking at every host every 50 ms for the whole episode never sees
// two running copies; once the stopped host runs again (SIGCONT, or the link back) it does not run
// the WPAR again. Real etcd, three test hosts in network namespaces.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { processesOf, ROOT } from './harness.ts';
import { until, CLUSTER_SKIP, ClusterNet, type ClusterHost } from './cluster-hosts.ts';

const skip = CLUSTER_SKIP;
const COUNTER = join(ROOT, 'examples/agent-counter.ts');
const fast = ['-e', 'COUNTER_STEP_MS=10', '-e', 'COUNTER_PAUSE_MS=40', '-e', 'COUNTER_BATCH=5'];

/** The hosts (namespace names) where processes of `name` exist, zombies aside (frozen ones count: a copy is a copy). */
function runningOn(hosts: readonly ClusterHost[], name: string): string[] {
  return hosts.filter((h) => processesOf(name, h.home).some((pid) => {
    try { return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
  })).map((h) => h.ns);
}

/** Samples every 50 ms until stopped; records the most hosts ever seen running `name` at once. */
function sampler(hosts: readonly ClusterHost[], name: string): { stop(): Promise<{ most: number; seen: string[] }> } {
  let most = 0;
  let seen: string[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const now = runningOn(hosts, name);
      if (now.length > most) { most = now.length; seen = now; }
      await delay(50);
    }
  })();
  return { async stop() { on = false; await loop; return { most, seen }; } };
}

describe('fencing and failover together: never two copies', { skip, timeout: 300_000 }, () => {
  const net = new ClusterNet({ prefix: 'cfo', subnet: '10.220.0' });
  let a: ClusterHost; let b: ClusterHost; let c: ClusterHost;
  let hosts: ClusterHost[] = [];
  const named = (n: unknown): ClusterHost => ({ alpha: a, beta: b, gamma: c } as Record<string, ClusterHost>)[String(n)]!;
  before(async () => {
    [a, b, c] = await net.up(['alpha', 'beta', 'gamma']);
    hosts = [a, b, c];
  });
  after(async () => { a?.signal('SIGCONT'); await net.destroy(); });

  it('the owner\'s daemon SIGSTOPped: fenced, run elsewhere from its replica, never twice; after SIGCONT not run again', async () => {
    const replicated = await a.next((e) => e.type === 'cluster.replicated' && e.name === 'job' && e.recorded === true && (e.seq as number) >= 2);
    await a.ok('mkwpar', ['-n', 'job', '-c', '--failover', '--checkpoint-every', '1', '--replicas', '2', '--host', 'alpha', '-s', ...fast, '--', process.execPath, COUNTER]);
    await replicated.event;
    const failedOver = await Promise.all([b, c].map((h) => h.next((e) => e.type === 'cluster.failover' && e.name === 'job')));
    const watch = sampler(hosts, 'job');
    const stoppedAt = Date.now();
    a.signal('SIGSTOP');
    const e = await Promise.race(failedOver.map((f) => f.event));
    const to = named(e.to);
    await until('it running on its new host', 20_000, () => (runningOn([to], 'job').length === 1 ? true : undefined));
    const w = (await to.list()).find((x) => x.name === 'job')!;
    assert.deepEqual([w.host, w.epoch], [e.to, 2]);
    // alpha runs again: it finds it fenced and no longer its own, and does not run it.
    a.signal('SIGCONT');
    await until('alpha re-joining', 30_000, () => (a.events('cluster.rejoined').some((x) => (x.time as number) > stoppedAt) ? true : undefined));
    await delay(2000);
    const { most, seen } = await watch.stop();
    assert.equal(most, 1, `never two copies (once seen on ${seen.join(', ')})`);
    assert.deepEqual(runningOn([a], 'job'), [], 'nothing of it runs on alpha');
    assert.equal(a.events('runtime.started').filter((x) => x.name === 'job' && (x.time as number) > stoppedAt).length, 0, 'alpha never started it again');
    const fenced = a.events('cluster.fenced').find((x) => JSON.stringify(x).includes('job'));
    assert.ok(fenced, 'alpha\'s watchdog fenced it');
    assert.equal([b, c].flatMap((h) => h.events('cluster.failover').filter((x) => x.name === 'job')).length, 1, 'exactly one restarter');
    assert.deepEqual((await a.list()).filter((x) => x.name === 'job').map((x) => x.host), [e.to]);
  });

  it('a partition (the owner\'s link cut, its daemon alive): the same guarantees', async () => {
    const owner = (await a.list()).find((x) => x.name === 'job')!.host!;
    const from = named(owner);
    const others = hosts.filter((h) => h !== from);
    // A replica of this epoch on another host first.
    const epoch = (await from.list()).find((x) => x.name === 'job')!.epoch;
    await (await from.next((e) => e.type === 'cluster.replicated' && e.name === 'job' && e.recorded === true && e.epoch === epoch)).event;
    const failedOver = await Promise.all(others.map((h) => h.next((e) => e.type === 'cluster.failover' && e.name === 'job' && e.from === owner)));
    const watch = sampler(hosts, 'job');
    const cutAt = Date.now();
    from.link(false);
    const e = await Promise.race(failedOver.map((f) => f.event));
    assert.equal(e.epoch, (epoch ?? 0) + 1);
    from.link(true);
    await until('the cut host re-joining', 30_000, () => (from.events('cluster.rejoined').some((x) => (x.time as number) > cutAt) ? true : undefined));
    await delay(2000);
    const { most, seen } = await watch.stop();
    assert.equal(most, 1, `never two copies (once seen on ${seen.join(', ')})`);
    assert.deepEqual(runningOn([from], 'job'), [], 'nothing of it runs on the cut host');
    assert.equal(from.events('runtime.started').filter((x) => x.name === 'job' && (x.time as number) > cutAt).length, 0);
  });
});
