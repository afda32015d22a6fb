// Fencing (C4), end to end with real etcd and test hosts in network namespaces: a host that cannot
// renew its lease — its daemon stopped (SIGSTOP), cut off, or killed — has its --failover WPARs
// killed by the watchdog before etcd expires the lease, while WPARs without --failover keep their
// processes; the daemon then shows them B with the reason and does not run them again by itself.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { processesOf, subscribe, type System } from './harness.ts';
import { CLUSTER_SKIP, ClusterNet, type ClusterHost, type HostLine } from './cluster-hosts.ts';
import type { WparInfo } from '../../src/daemon/protocol.ts';
import { verifyImage } from '../../src/image/index.ts';

const skip = CLUSTER_SKIP;
const TTL_MS = 3000;
/** The daemon renews every TTL/3: at any moment the last acknowledged renewal was sent at most this long ago (plus a round trip). */
const RENEW_EVERY_MS = TTL_MS / 3;

/** Subscribes to `h`'s events; `.event` resolves with the first matching one (the test's timeout bounds it). */
function next(h: ClusterHost, type: string): Promise<{ event: Promise<Record<string, unknown>> }> {
  return subscribe({ home: h.home } as unknown as System, (e) => e.type === type);
}

/** Samples every 50 ms until `name`'s processes on `h` are gone; resolves when (bounded by `ms`). */
async function goneAt(h: ClusterHost, name: string, ms: number): Promise<number> {
  const end = Date.now() + ms;
  for (;;) {
    if (processesOf(name, h.home).length === 0) return Date.now();
    if (Date.now() > end) throw new Error(`${name}'s processes still run after ${ms} ms: ${processesOf(name, h.home).join(' ')}`);
    await delay(50);
  }
}

/** Polls `wpar hosts` on `h` until `ok` holds; bounded by `ms`. */
async function until(h: ClusterHost, ok: (hosts: HostLine[]) => boolean, ms: number): Promise<number> {
  const end = Date.now() + ms;
  for (;;) {
    if (ok(await h.hosts())) return Date.now();
    if (Date.now() > end) throw new Error(`hosts did not change as expected within ${ms} ms: ${JSON.stringify(await h.hosts())}`);
    await delay(50);
  }
}

/** Defines and starts `fo` (--failover, auto-started) and `plain` on `h` (host `name`); resolves their main pids. */
async function twoWpars(h: ClusterHost, name: string): Promise<{ fo: number; plain: number }> {
  await h.ok('mkwpar', ['-n', 'fo', '--failover', '-A', '--host', name, '-s', '--', 'sleep', '600']);
  await h.ok('mkwpar', ['-n', 'plain', '--host', name, '-s', '--', 'sleep', '600']);
  const list = await h.list();
  const fo = list.find((w) => w.name === 'fo')!;
  const plain = list.find((w) => w.name === 'plain')!;
  assert.equal(fo.definition.failover, true);
  assert.equal(plain.definition.failover, undefined);
  assert.ok(processesOf('fo', h.home).includes(fo.pid!) && processesOf('plain', h.home).includes(plain.pid!));
  return { fo: fo.pid!, plain: plain.pid! };
}

/** The watchdog processes of `h`'s home (by their marker directory in the command line). */
function watchdogs(h: ClusterHost): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes('fence-watchdog.sh') && l.includes(h.home)).map((l) => Number(l.trim().split(' ')[0]));
}

function assertFenced(w: WparInfo | undefined): void {
  assert.equal(w?.state, 'B', JSON.stringify(w));
  assert.match(w!.lastExit?.reason ?? '', /^fenced: lease not renewed for \d+\.\d s/);
  assert.equal(w!.pid, null);
}

describe('fencing a host whose daemon is stopped (SIGSTOP)', { skip, timeout: 120_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost; let b: ClusterHost;
  before(async () => {
    [a, b] = await net.up(['alpha', 'beta']);
  });
  after(async () => { a?.signal('SIGCONT'); await net.destroy(); });

  it('kills its failover WPARs before the lease expires; the others run on; after SIGCONT it shows them B and does not run them', async (t) => {
    const pids = await twoWpars(a, 'alpha');
    assert.equal(watchdogs(a).length, 1, 'one watchdog per host');
    a.signal('SIGSTOP');
    const stoppedAt = Date.now();
    const killedAt = await goneAt(a, 'fo', 10_000);
    const seenLost = await until(b, (hs) => hs.find((x) => x.name === 'alpha')?.state === 'lost', 15_000);
    // The last acknowledged renewal was sent at most RENEW_EVERY_MS before the stop: etcd expires the lease no sooner than that + TTL.
    assert.ok(killedAt - stoppedAt < TTL_MS - RENEW_EVERY_MS, `fenced ${killedAt - stoppedAt} ms after the stop, not before the lease could expire`);
    assert.ok(killedAt < seenLost, `fenced at +${killedAt - stoppedAt} ms, the lease expired (beta saw alpha lost) at +${seenLost - stoppedAt} ms`);
    t.diagnostic(`SIGSTOP: fenced at +${killedAt - stoppedAt} ms, beta saw alpha lost at +${seenLost - stoppedAt} ms`);
    assert.ok(processesOf('plain', a.home).includes(pids.plain), 'a WPAR without --failover keeps running');
    assert.deepEqual(watchdogs(a), [], 'the watchdog exits once it has fenced');

    const back = await subscribeAfterCont(a);
    const fenced = await back.fenced;
    assert.equal(fenced.name, 'fo');
    assert.ok((fenced.renewedAgoMs as number) >= 1400 && (fenced.renewedAgoMs as number) < TTL_MS, String(fenced.renewedAgoMs));
    await back.rejoined;
    const list = await a.list();
    assertFenced(list.find((w) => w.name === 'fo'));
    assert.deepEqual([list.find((w) => w.name === 'plain')?.state, list.find((w) => w.name === 'plain')?.pid], ['A', pids.plain]);
    // Re-joined: a new watchdog guards the host, and the fenced WPAR stays down.
    await delay(TTL_MS);
    assert.deepEqual(processesOf('fo', a.home), []);
    assert.equal(watchdogs(a).length, 1);
    assert.equal(a.events('cluster.fenced').length, 1);
    // A clean restart: the fenced WPAR (auto-start) is not started, not reported again; the watchdog stopped with the daemon.
    assert.equal(await a.stop(), 0);
    assert.deepEqual(watchdogs(a), []);
    await a.start('alpha');
    assertFenced((await a.list()).find((w) => w.name === 'fo'));
    assert.deepEqual(processesOf('fo', a.home), []);
    assert.equal(a.events('cluster.fenced').length, 1);
  });
});

/** SIGCONTs `h`'s daemon; resolves its `cluster.fenced` and `cluster.rejoined` events. */
async function subscribeAfterCont(h: ClusterHost): Promise<{ fenced: Promise<Record<string, unknown>>; rejoined: Promise<Record<string, unknown>> }> {
  // The daemon is stopped: it cannot serve a subscription now. Continue it, then read its log.
  h.signal('SIGCONT');
  const read = async (type: string): Promise<Record<string, unknown>> => {
    const end = Date.now() + 15_000;
    for (;;) {
      const found = h.events(type);
      if (found.length > 0) return found[found.length - 1]!;
      if (Date.now() > end) throw new Error(`no ${type} event within 15 s`);
      await delay(50);
    }
  };
  return { fenced: read('cluster.fenced'), rejoined: read('cluster.rejoined') };
}

describe('fencing a host cut off from the cluster', { skip, timeout: 120_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost; let b: ClusterHost;
  before(async () => {
    [a, b] = await net.up(['alpha', 'beta']);
  });
  after(async () => { await net.destroy(); });

  it('kills its failover WPARs before the lease expires; the others keep their pids; link back: re-joins, the fenced stay down', async (t) => {
    const pids = await twoWpars(a, 'alpha');
    const fenced = await next(a, 'cluster.fenced');
    const cutAt = Date.now();
    a.link(false);
    const killedAt = await goneAt(a, 'fo', 10_000);
    const seenLost = await until(b, (hs) => hs.find((x) => x.name === 'alpha')?.state === 'lost', 15_000);
    assert.ok(killedAt - cutAt < TTL_MS - RENEW_EVERY_MS, `fenced ${killedAt - cutAt} ms after the cut`);
    assert.ok(killedAt < seenLost, `fenced at +${killedAt - cutAt} ms, beta saw alpha lost at +${seenLost - cutAt} ms`);
    t.diagnostic(`cut off: fenced at +${killedAt - cutAt} ms, beta saw alpha lost at +${seenLost - cutAt} ms`);
    assert.equal((await fenced.event).name, 'fo');
    assert.ok(processesOf('plain', a.home).includes(pids.plain));
    // While cut off (lswpar needs etcd then), no failover WPAR starts here.
    const refused = await a.run('startwpar', ['fo']);
    assert.notEqual(refused.code, 0);
    const back = await next(a, 'cluster.rejoined');
    a.link(true);
    await back.event;
    await until(b, (hs) => hs.find((x) => x.name === 'alpha')?.state === 'up', 15_000);
    const list = await b.list();
    assertFenced(list.find((w) => w.name === 'fo'));
    assert.deepEqual([list.find((w) => w.name === 'plain')?.state, list.find((w) => w.name === 'plain')?.pid], ['A', pids.plain]);
    assert.deepEqual(processesOf('fo', a.home), []);
    // An operator may start it again once the host holds its lease (its epoch is checked as for any start).
    await a.ok('startwpar', ['fo']);
    assert.equal((await a.list()).find((w) => w.name === 'fo')?.state, 'A');
    await a.ok('stopwpar', ['-F', 'fo']);
  });
});

describe('an etcd outage of twice the lease TTL', { skip, timeout: 120_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost;
  before(async () => {
    [a] = await net.up(['alpha']);
  });
  after(async () => { await net.destroy(); });

  it('a WPAR without --failover keeps the same processes; the failover one is fenced', async () => {
    const pids = await twoWpars(a, 'alpha');
    const before = processesOf('plain', a.home).sort();
    // etcd's link to the bridge (its namespace is wired as host 100).
    const etcdCable = `ccl${net.tag}100b`;
    const ip = (state: string): void => { execFileSync('ip', ['-n', net.bridge, 'link', 'set', etcdCable, state]); };
    const outAt = Date.now();
    ip('down');
    try {
      await goneAt(a, 'fo', 10_000);
      await delay(Math.max(0, outAt + 2 * TTL_MS - Date.now()));
      assert.deepEqual(processesOf('plain', a.home).sort(), before, 'the same processes through the outage');
    } finally {
      ip('up');
    }
    const end = Date.now() + 15_000;
    while (a.events('cluster.rejoined').length === 0) {
      if (Date.now() > end) throw new Error('alpha did not re-join within 15 s of etcd coming back');
      await delay(100);
    }
    const list = await a.list();
    assert.deepEqual([list.find((w) => w.name === 'plain')?.state, list.find((w) => w.name === 'plain')?.pid], ['A', pids.plain]);
    assert.deepEqual(processesOf('plain', a.home).sort(), before);
    assertFenced(list.find((w) => w.name === 'fo'));
  });
});

describe('fencing when the daemon is killed (SIGKILL)', { skip, timeout: 120_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost;
  before(async () => {
    [a] = await net.up(['alpha']);
  });
  after(async () => { await net.destroy(); });

  it('the watchdog still fences; the restarted daemon shows it B with the reason, says cluster.fenced, and adopts the rest', async (t) => {
    const pids = await twoWpars(a, 'alpha');
    const [dog] = watchdogs(a);
    a.signal('SIGKILL');
    const killedDaemonAt = Date.now();
    await a.exited();
    const killedAt = await goneAt(a, 'fo', 10_000);
    assert.ok(killedAt - killedDaemonAt < TTL_MS - RENEW_EVERY_MS, `fenced ${killedAt - killedDaemonAt} ms after the daemon died`);
    t.diagnostic(`SIGKILL: fenced at +${killedAt - killedDaemonAt} ms`);
    assert.ok(processesOf('plain', a.home).includes(pids.plain), 'left running for the next daemon to adopt');
    assert.deepEqual(watchdogs(a), [], `the watchdog (${dog}) exits once it has fenced`);
    await a.start('alpha');
    const list = await a.list();
    assertFenced(list.find((w) => w.name === 'fo'));
    assert.deepEqual([list.find((w) => w.name === 'plain')?.state, list.find((w) => w.name === 'plain')?.pid], ['A', pids.plain]);
    assert.deepEqual(a.events('cluster.fenced').map((e) => e.name), ['fo']);
    assert.equal(watchdogs(a).length, 1, 'the new daemon runs its own watchdog');
  });

});

describe('a daemon killed and restarted within fence-after', { skip, timeout: 120_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost;
  before(async () => {
    net.create();
    a = net.host('a');
    await net.startEtcd();
    await a.start('alpha', ['--lease-ttl', '10']);
  });
  after(async () => { await net.destroy(); });

  it('the new daemon adopts the failover WPAR and retires the old watchdog: nothing is fenced', async () => {
    await a.ok('mkwpar', ['-n', 'fo', '--failover', '--host', 'alpha', '-s', '--', 'sleep', '600']);
    const fo = (await a.list()).find((w) => w.name === 'fo')!.pid!;
    const [old] = watchdogs(a);
    a.signal('SIGKILL');
    await a.exited();
    await a.start('alpha', ['--lease-ttl', '10']);
    const dogs = watchdogs(a);
    assert.equal(dogs.length, 1);
    assert.notEqual(dogs[0], old, 'the old watchdog was retired');
    // Past the old watchdog's deadline (fence-after 5 s from its last feed).
    await delay(6000);
    const w = (await a.list()).find((x) => x.name === 'fo');
    assert.deepEqual([w?.state, w?.pid], ['A', fo]);
    assert.ok(processesOf('fo', a.home).includes(fo));
    assert.deepEqual(a.events('cluster.fenced'), []);
  });

  it('a checkpoint records the epoch the WPAR runs with (C4), also after an adoption', async () => {
    await a.ok('mkwpar', ['-n', 'ck', '-c', '--host', 'alpha', '-s', '--', 'sleep', '600']);
    const dir = join(a.home, 'images', 'ck');
    await a.ok('chkptwpar', ['-d', dir, 'ck']);
    assert.equal((await verifyImage(dir)).epoch, 1);
    a.signal('SIGKILL');
    await a.exited();
    await a.start('alpha', ['--lease-ttl', '10']);
    await a.ok('chkptwpar', ['-d', dir, '-F', 'ck']);
    assert.equal((await verifyImage(dir)).epoch, 1);
    await a.ok('stopwpar', ['-F', 'ck']);
  });
});
