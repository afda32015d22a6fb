// The namespace's transactions against a real etcd (loopback): of concurrent claims of one name
// exactly one wins; a transfer raises the epoch and fails (EBUSY) on a record that changed; a
// release leaves a record that names another owner alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { etcdClient } from '../../src/cluster/etcd.ts';
import { Namespace } from '../../src/cluster/namespace.ts';
import { haveEtcd, startEtcd, type Etcd } from '../support/etcd.ts';
import type { Etcd3 } from 'etcd3';
import type { WparDefinition } from '../../src/runtime/definition.ts';

const def = (name: string): WparDefinition => ({ name, argv: ['sleep', '1'], env: {}, limits: {}, hostname: null, checkpointable: true, autostart: false });

describe('the namespace in etcd', { skip: !haveEtcd() && 'needs etcd (scripts/install-system-deps.sh --tests)', timeout: 60_000 }, () => {
  let etcd: Etcd;
  let client: Etcd3;
  let ns: Namespace;
  before(async () => {
    etcd = await startEtcd();
    client = etcdClient({ urls: etcd.hosts, leaseTtl: 10 });
    ns = new Namespace(client, etcd.hosts);
  });
  after(async () => {
    client?.close();
    await etcd?.stop();
  });

  it('of ten concurrent claims of one name, exactly one wins; the others get EEXIST naming the owner', async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => ns.claim(def('one'), `h${i}`)));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    const owner = (won[0] as PromiseFulfilledResult<{ host: string }>).value.host;
    for (const r of results.filter((x) => x.status === 'rejected')) {
      assert.match(String((r as PromiseRejectedResult).reason.message), new RegExp(`one: the name is taken in the cluster \\(defined on ${owner}\\)`));
      assert.equal((r as PromiseRejectedResult).reason.code, 'EEXIST');
    }
    assert.equal((await ns.get('one'))?.epoch, 1);
  });

  it('a transfer raises the epoch; one from a stale record is refused and changes nothing', async () => {
    const first = await ns.claim(def('two'), 'a');
    const second = await ns.transfer(first, 'b');
    assert.deepEqual([second.host, second.epoch], ['b', 2]);
    await assert.rejects(ns.transfer(first, 'c'), (e: Error & { code?: string }) => e.code === 'EBUSY' && /changed while handing it to c/.test(e.message));
    assert.deepEqual([(await ns.get('two'))?.host, (await ns.get('two'))?.epoch], ['b', 2]);
  });

  it('release removes only a record that names that owner', async () => {
    await ns.claim(def('three'), 'a');
    await ns.release('three', 'b');
    assert.equal((await ns.get('three'))?.host, 'a');
    await ns.release('three', 'a');
    assert.equal(await ns.get('three'), undefined);
    assert.deepEqual((await ns.all()).map((r) => r.name), ['one', 'two']);
  });
});
