// Clusters when things fail (C1, C8): a host whose link is cut counts itself lost by its own
// deadline — no later than etcd expires its lease — and re-joins when the link is back; a
// three-member etcd that loses a member changes nothing for running WPARs, and commands still work.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { processesOf, subscribe, type System } from './harness.ts';
import { CLUSTER_SKIP, ClusterNet, type ClusterHost, type HostLine } from './cluster-hosts.ts';

const skip = CLUSTER_SKIP;

/** Subscribes to `h`'s events; `.event` resolves with the first matching one (the test's timeout bounds it). */
function next(h: ClusterHost, type: string): Promise<{ event: Promise<Record<string, unknown>> }> {
  return subscribe({ home: h.home } as unknown as System, (e) => e.type === type);
}

/** Polls `wpar hosts` on `h` until `ok` holds; bounded by `ms`. */
async function until(h: ClusterHost, ok: (hosts: HostLine[]) => boolean, ms: number): Promise<number> {
  const end = Date.now() + ms;
  for (;;) {
    if (ok(await h.hosts())) return Date.now();
    if (Date.now() > end) throw new Error(`hosts did not change as expected within ${ms} ms: ${JSON.stringify(await h.hosts())}`);
    await delay(100);
  }
}

describe('a host cut off from the cluster', { skip, timeout: 90_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost; let b: ClusterHost;
  before(async () => {
    [a, b] = await net.up(['alpha', 'beta']);
  });
  after(async () => { await net.destroy(); });

  it('counts itself lost no later than etcd expires its lease, and re-joins when the link is back', async () => {
    await b.ok('mkwpar', ['-n', 'steady', '--host', 'beta', '-s', '--', 'sleep', '600']);
    const pid = (await b.list()).find((w) => w.name === 'steady')?.pid;
    assert.ok(pid !== null && pid !== undefined && processesOf('steady', b.home).includes(pid));
    const lost = await next(b, 'cluster.lease.lost');
    const cutAt = Date.now();
    b.link(false);
    const e = await lost.event;
    const othersSee = await until(a, (hs) => hs.find((x) => x.name === 'beta')?.state === 'lost', 15_000);
    assert.ok((e.time as number) <= othersSee, `beta counted itself lost at +${(e.time as number) - cutAt} ms, alpha saw it lost at +${othersSee - cutAt} ms`);
    assert.ok((e.renewedAgoMs as number) >= 2700, `lost after ${String(e.renewedAgoMs)} ms`); // TTL 3 s less the 300 ms margin
    // Without --failover nothing is fenced: the same processes run on (C4).
    assert.ok(processesOf('steady', b.home).includes(pid), 'the same main process runs on');
    const back = await next(b, 'cluster.rejoined');
    b.link(true);
    await back.event;
    await until(a, (hs) => hs.find((x) => x.name === 'beta')?.state === 'up', 15_000);
    const steady = (await a.list()).find((w) => w.name === 'steady');
    assert.deepEqual([steady?.host, steady?.state, steady?.pid], ['beta', 'A', pid]);
  });

  it('stops cleanly and in bounded time while cut off', async () => {
    b.link(false);
    const t = Date.now();
    assert.equal(await b.stop(), 0);
    assert.ok(Date.now() - t < 10_000, `stop took ${Date.now() - t} ms`);
    assert.deepEqual(processesOf('steady', b.home), []);
    b.link(true);
  });
});

describe('a three-member etcd that loses one member', { skip, timeout: 90_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost; let b: ClusterHost;
  before(async () => {
    [a, b] = await net.up(['alpha', 'beta'], { etcdMembers: 3, extra: ['--lease-ttl', '4'] });
  });
  after(async () => { await net.destroy(); });

  it('changes nothing for running WPARs; commands still work; no host loses its lease', async () => {
    await a.ok('mkwpar', ['-n', 'job', '--host', 'beta', '-s', '--', 'sleep', '600']);
    const pid = (await b.list()).find((w) => w.name === 'job')?.pid;
    assert.ok(pid !== null && pid !== undefined && processesOf('job', b.home).includes(pid));
    const killedAt = Date.now();
    await net.etcd!.members[0]!.kill();
    await a.ok('mkwpar', ['-n', 'more', '--host', 'alpha', '--', 'sleep', '600']);
    await b.ok('startwpar', ['more']);
    const listed = await b.list();
    assert.deepEqual(listed.map((w) => [w.name, w.host, w.state]), [['job', 'beta', 'A'], ['more', 'alpha', 'A']]);
    // Outlive a lease TTL and a half with a member gone: renewals go to the other two.
    await delay(Math.max(0, killedAt + 6000 - Date.now()));
    for (const h of [a, b]) assert.deepEqual(h.events('cluster.lease.lost'), [], `${h.ns} lost its lease`);
    assert.deepEqual((await a.hosts()).map((x) => [x.name, x.state]), [['alpha', 'up'], ['beta', 'up']]);
    assert.ok(processesOf('job', b.home).includes(pid), 'the same main process runs on');
    assert.equal((await a.list()).find((w) => w.name === 'job')?.pid, pid);
    await b.ok('stopwpar', ['-F', 'more']);
  });
});
