// Drain (C7) with ownership epochs (C4): a drained host places nothing new; each of its active,
// checkpointable WPARs moves live to another host, its epoch raised; the rest are listed and run on.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { processesOf } from './harness.ts';
import { CLUSTER_SKIP, ClusterNet, epochOf, type ClusterHost } from './cluster-hosts.ts';

const skip = CLUSTER_SKIP;

describe('draining a host', { skip, timeout: 120_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost; let b: ClusterHost; let c: ClusterHost;
  before(async () => {
    [a, b, c] = await net.up(['alpha', 'beta', 'gamma']);
  });
  after(async () => { await net.destroy(); });

  it('moves the checkpointable WPARs off with a raised epoch, lists the others, places nothing new there', async () => {
    await c.ok('mkwpar', ['-c', '-n', 'job', '--host', 'beta', '-s', '--', 'sleep', '600']);
    await c.ok('mkwpar', ['-n', 'pinned', '--host', 'beta', '-s', '--', 'sleep', '600']);
    const pinned = (await b.list()).find((w) => w.name === 'pinned')?.pid;
    assert.equal(epochOf(processesOf('job', b.home)[0]!), 'WPAR_EPOCH=1');

    const r = JSON.parse(await a.ok('wpar', ['drain', '--json', 'beta'])) as { host: string; moved: { name: string; to: string; epoch: number }[]; notMoved: { name: string; reason: string }[] };
    assert.equal(r.host, 'beta');
    assert.deepEqual(r.moved.map((m) => [m.name, m.to, m.epoch]), [['job', 'alpha', 2]]);
    assert.deepEqual(r.notMoved, [{ name: 'pinned', reason: 'not checkpointable' }]);

    const listed = await c.list();
    assert.deepEqual(listed.map((w) => [w.name, w.host, w.state, w.epoch]), [['job', 'alpha', 'A', 2], ['pinned', 'beta', 'A', 1]]);
    const moved = processesOf('job', a.home);
    assert.ok(moved.length > 0);
    assert.deepEqual([...new Set(moved.map(epochOf).filter((e) => e !== undefined))], ['WPAR_EPOCH=2']);
    assert.deepEqual(processesOf('job', b.home), []);
    assert.ok(pinned !== null && pinned !== undefined && processesOf('pinned', b.home).includes(pinned), 'left running');
    assert.equal(listed.find((w) => w.name === 'pinned')?.pid, pinned);
    assert.equal((await a.hosts()).find((h) => h.name === 'beta')?.state, 'draining');

    // Nothing new is placed on beta: not by choice, not by --host.
    const placed = [];
    for (const n of ['n1', 'n2']) placed.push((JSON.parse(await b.ok('mkwpar', ['--json', '-n', n, '--', 'sleep', '1'])) as { host: string }).host);
    assert.ok(!placed.includes('beta'), placed.join(','));
    const refused = await a.run('mkwpar', ['-n', 'n3', '--host', 'beta', '--', 'sleep', '1']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /host beta is draining.*\(EBUSY\)/);

    // A command on the moved WPAR from the drained host reaches its new owner.
    await b.ok('stopwpar', ['-F', 'job']);
    assert.equal((await a.list()).find((w) => w.name === 'job')?.state, 'D');

    assert.match(await c.ok('wpar', ['undrain', 'beta']), /Host beta is up/);
    assert.equal((await a.hosts()).find((h) => h.name === 'beta')?.state, 'up');
    await a.ok('mkwpar', ['-n', 'n3', '--host', 'beta', '--', 'sleep', '1']);
  });

  it('movewpar of a cluster WPAR from any host hands its ownership over: the epoch rises, the old host has nothing', async () => {
    await a.ok('mkwpar', ['-c', '-n', 'mv', '--host', 'gamma', '-s', '--', 'sleep', '600']);
    const before = (await a.list()).find((w) => w.name === 'mv')!;
    assert.deepEqual([before.host, before.state], ['gamma', 'A']);

    // Refused before anything changes: an unknown target.
    const refused = await a.run('movewpar', ['mv', 'nosuch']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /nosuch/);
    const same = (await a.list()).find((w) => w.name === 'mv')!;
    assert.deepEqual([same.host, same.epoch, same.pid], ['gamma', before.epoch, before.pid]);

    // From alpha (not its host): forwarded to gamma, which moves it to beta.
    const r = JSON.parse(await a.ok('movewpar', ['--json', 'mv', 'beta'])) as { name: string; from: string; to: string };
    assert.deepEqual([r.name, r.from, r.to], ['mv', 'gamma', 'beta']);
    const after = (await c.list()).find((w) => w.name === 'mv')!;
    assert.deepEqual([after.host, after.state, after.epoch], ['beta', 'A', before.epoch! + 1]);
    assert.deepEqual(processesOf('mv', c.home), []);
    assert.deepEqual([...new Set(processesOf('mv', b.home).map(epochOf).filter((e) => e !== undefined))], [`WPAR_EPOCH=${before.epoch! + 1}`]);
  });
});
