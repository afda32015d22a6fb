// Clusters on etcd, end to end (C1–C3): a real etcd in its own network namespace, real daemons on
// test hosts in namespaces joined by a bridge, and the real commands run against each host.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processesOf, ROOT, runNode, System } from './harness.ts';
import { CLUSTER_SKIP, ClusterNet, type ClusterHost } from './cluster-hosts.ts';
import { freePort } from '../support/etcd.ts';

const skip = CLUSTER_SKIP;

describe('a cluster of three hosts', { skip, timeout: 120_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost; let b: ClusterHost; let c: ClusterHost;
  before(async () => {
    [a, b, c] = await net.up(['alpha', 'beta', 'gamma']);
  });
  after(async () => { await net.destroy(); });

  it('three hosts join and every one lists the three, up, with their addresses', async () => {
    for (const h of [a, b, c]) {
      const hosts = await h.hosts();
      assert.deepEqual(hosts.map((x) => [x.name, x.address, x.state, x.wpars]), [
        ['alpha', a.endpoint, 'up', 0], ['beta', b.endpoint, 'up', 0], ['gamma', c.endpoint, 'up', 0],
      ]);
      for (const x of hosts) assert.ok(x.ttl >= 1 && x.ttl <= 3, `ttl ${x.ttl}`);
    }
    const table = await a.ok('wpar', ['hosts']);
    assert.match(table, /^Name\s+Address\s+State\s+WPARs\s+TTL\s+CPUs\s+Memory\n/);
  });

  it('a second live host with a taken name is refused at start, in one line with EEXIST', async () => {
    const d = net.host('d');
    const r = await d.tryStart('beta');
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^wpard: cannot start: .*host name beta is taken by a live member.*\(EEXIST\)$/);
    // Nothing changed: still the three, beta still at b's address.
    assert.deepEqual((await a.hosts()).map((x) => [x.name, x.address]), [['alpha', a.endpoint], ['beta', b.endpoint], ['gamma', c.endpoint]]);
  });

  it('defined on one host for another, started from a third, listed from anywhere with its host', async () => {
    assert.match(await a.ok('mkwpar', ['-n', 'web', '--host', 'beta', '--', 'sleep', '600']), /Workload partition web created on beta\./);
    await c.ok('startwpar', ['web']);
    for (const h of [a, b, c]) {
      const web = (await h.list()).find((w) => w.name === 'web');
      assert.equal(web?.host, 'beta');
      assert.equal(web?.state, 'A');
    }
    const onBeta = processesOf('web', b.home);
    assert.ok(onBeta.length > 0, 'runs on beta');
    // C4: its processes know the ownership epoch, which lswpar shows too.
    const main = (await b.list()).find((w) => w.name === 'web')!.pid!;
    assert.ok(readFileSync(`/proc/${main}/environ`, 'latin1').split('\0').includes('WPAR_EPOCH=1'));
    assert.equal((await a.list()).find((w) => w.name === 'web')?.epoch, 1);
    assert.deepEqual([processesOf('web', a.home).length, processesOf('web', c.home).length], [0, 0]);
    assert.match(await c.ok('lswpar', []), /^Name\s+Host\s+State/);
    assert.equal((await a.hosts()).find((x) => x.name === 'beta')?.wpars, 1);
    // Stopped from alpha, removed from gamma: gone everywhere.
    await a.ok('stopwpar', ['-F', 'web']);
    await c.ok('rmwpar', ['web']);
    for (const h of [a, b, c]) assert.deepEqual((await h.list()).map((w) => w.name), []);
    const gone = await a.run('startwpar', ['web']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /web.*no such WPAR.*\(ENOENT\)/);
  });

  it('concurrent mkwpar of one name on two hosts: exactly one wins, the other gets EEXIST', async () => {
    const [ra, rb] = await Promise.all([
      a.run('mkwpar', ['-n', 'twin', '--host', 'alpha', '--', 'sleep', '600']),
      b.run('mkwpar', ['-n', 'twin', '--host', 'beta', '--', 'sleep', '600']),
    ]);
    assert.deepEqual([ra.code, rb.code].sort(), [0, 1], `${ra.stderr}${rb.stderr}`);
    const loser = ra.code === 1 ? ra : rb;
    assert.match(loser.stderr, /twin.*taken in the cluster.*\(EEXIST\)/);
    const twins = (await c.list()).filter((w) => w.name === 'twin');
    assert.equal(twins.length, 1);
    assert.equal(twins[0]!.host, ra.code === 0 ? 'alpha' : 'beta');
    await c.ok('rmwpar', ['twin']);
  });

  it('without --host, each WPAR goes to the least-loaded up host', async () => {
    const placed: string[] = [];
    for (const n of ['p1', 'p2', 'p3']) {
      const info = JSON.parse(await c.ok('mkwpar', ['--json', '-n', n, '--', 'sleep', '600'])) as { host: string };
      placed.push(info.host);
    }
    assert.deepEqual(placed, ['alpha', 'beta', 'gamma']);
    const bad = await a.run('mkwpar', ['-n', 'p4', '--host', 'nowhere', '--', 'true']);
    assert.match(bad.stderr, /host nowhere is not a live member.*\(ENOENT\)/);
    for (const n of ['p1', 'p2', 'p3']) await a.ok('rmwpar', [n]);
  });

  it('a host that leaves is listed lost, and its name is free again', async () => {
    await c.stop();
    const hosts = await a.hosts();
    assert.deepEqual(hosts.map((x) => [x.name, x.state]), [['alpha', 'up'], ['beta', 'up'], ['gamma', 'lost']]);
    await c.start('gamma');
    assert.equal((await a.hosts()).find((x) => x.name === 'gamma')?.state, 'up');
  });
});

describe('cluster flags and commands outside a cluster', { timeout: 60_000 }, () => {
  const wpard = (args: readonly string[]): Promise<{ code: number | null; stderr: string }> =>
    runNode(join(ROOT, 'dist/daemon/wpard.js'), args).then((r) => ({ code: r.code, stderr: r.stderr }));

  it('wpar hosts and mkwpar --host say they need a cluster', async () => {
    await using sys = await System.start();
    const hosts = await sys.run('wpar', ['hosts']);
    assert.equal(hosts.code, 1);
    assert.match(hosts.stderr, /not in a cluster.*\(EINVAL\)/);
    const mk = await sys.run('mkwpar', ['-n', 'x', '--host', 'beta', '--', 'true']);
    assert.match(mk.stderr, /only in a cluster.*\(EINVAL\)/);
    assert.deepEqual(await sys.list(), []);
  });

  it('wpard refuses bad cluster flags in one line, before anything starts', async () => {
    const home = mkdtempSync(join(tmpdir(), 'corral-ccl-flags-'));
    try {
      const noCluster = await wpard(['--home', home, '--lease-ttl', '3']);
      assert.equal(noCluster.code, 2);
      assert.match(noCluster.stderr, /^wpard: --lease-ttl needs --cluster; see 'wpard --help'\n/);
      const noListen = await wpard(['--home', home, '--cluster', 'http://127.0.0.1:1']);
      assert.equal(noListen.code, 1);
      assert.match(noListen.stderr, /^wpard: cannot start: --cluster needs --listen ADDR:PORT.*\(EINVAL\)\n$/);
      const badUrl = await wpard(['--home', home, '--cluster', 'etcd:2379', '--listen', '127.0.0.1:0']);
      assert.match(badUrl.stderr, /^wpard: cannot start: --cluster: bad etcd client URL "etcd:2379".*\(EINVAL\)\n$/);
      const fenceAlone = await wpard(['--home', home, '--fence-after', '1']);
      assert.equal(fenceAlone.code, 2);
      assert.match(fenceAlone.stderr, /^wpard: --fence-after needs --cluster; see 'wpard --help'\n/);
      const fenceLate = await wpard(['--home', home, '--cluster', 'http://127.0.0.1:1', '--listen', '127.0.0.1:0', '--lease-ttl', '4', '--fence-after', '4']);
      assert.equal(fenceLate.code, 1);
      assert.match(fenceLate.stderr, /^wpard: cannot start: --fence-after: bad value "4": seconds more than 0 and less than the lease TTL \(4 s\) \(EINVAL\)\n$/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('an etcd that does not answer fails the start in one line with EAGAIN, bounded', async () => {
    const home = mkdtempSync(join(tmpdir(), 'corral-ccl-noetcd-'));
    try {
      const port = await freePort();
      const t = Date.now();
      const r = await wpard(['--home', home, '--name', 'lonely', '--cluster', `http://127.0.0.1:${port}`, '--listen', `127.0.0.1:${await freePort()}`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^wpard: cannot start: cannot join the cluster as lonely: the cluster's etcd .* cannot be reached.*\(EAGAIN\)\n$/);
      assert.ok(Date.now() - t < 30_000, `took ${Date.now() - t} ms`);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
