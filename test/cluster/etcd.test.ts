// The test etcd helper (C8): a real single-member etcd and a three-member one that keeps serving
// after losing a member; both stopped and removed afterwards.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { haveEtcd, startEtcd, type Etcd } from '../support/etcd.ts';

describe('test etcd', { skip: !haveEtcd() && 'needs etcd (scripts/install-system-deps.sh --tests)', timeout: 60_000 }, () => {
  const started: Etcd[] = [];
  after(async () => { await Promise.allSettled(started.map((e) => e.stop())); });

  it('a single member serves, and stop removes its data directory', async () => {
    const etcd = await startEtcd();
    started.push(etcd);
    const client = new Etcd3({ hosts: etcd.hosts });
    try {
      await client.put('k').value('v');
      assert.equal(await client.get('k').string(), 'v');
    } finally {
      client.close();
    }
    await etcd.stop();
    assert.equal(existsSync(etcd.members[0]!.dataDir), false);
  });

  it('three members keep serving after one is killed', async () => {
    const etcd = await startEtcd([{}, {}, {}]);
    started.push(etcd);
    const client = new Etcd3({ hosts: etcd.hosts });
    try {
      await client.put('k').value('1');
      await etcd.members[0]!.kill();
      await client.put('k').value('2');
      assert.equal(await client.get('k').string(), '2');
    } finally {
      client.close();
    }
  });
});
