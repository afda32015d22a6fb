// What Corral reads back from etcd is checked field by field (docs/cluster.md §1), and wpard's
// cluster flags are refused in one line naming the flag.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HOSTS, parseHost, parseKnown, parseReplica, parseWpar, REPLICAS, WPARS, KNOWN } from '../../src/cluster/records.ts';
import { parseClusterFlags } from '../../src/cluster/etcd.ts';
import { checkCall } from '../../src/cluster/calls.ts';
import { checkStreamCall } from '../../src/cluster/relay.ts';
import { restartEpoch } from '../../src/cluster/restart-claim.ts';

const FP = `sha256:${'ab'.repeat(32)}`;
const host = { name: 'alpha', address: '10.0.0.1:7070', fingerprint: FP, state: 'up', load: { wpars: 1, active: 0 }, ttl: 10, since: 1 };
const definition = { name: 'web', argv: ['sleep', '1'], env: {}, limits: {}, checkpointable: false, autostart: false };

describe('records read back from etcd', () => {
  it('a replica record (C5) parses only whole: its key, epoch >= 1, counts, host names', () => {
    const r = { name: 'web', epoch: 2, seq: 7, time: 5, size: 9216, owner: 'alpha', hosts: ['beta', 'gamma'] };
    assert.deepEqual(parseReplica(REPLICAS + 'web', JSON.stringify(r)), r);
    assert.equal(parseReplica(REPLICAS + 'other', JSON.stringify(r)), null);
    for (const bad of [{ epoch: 0 }, { seq: -1 }, { size: 1.5 }, { owner: '../x' }, { hosts: ['ok', 'no/pe'] }, { hosts: 'beta' }, { time: null }]) {
      assert.equal(parseReplica(REPLICAS + 'web', JSON.stringify({ ...r, ...bad })), null, JSON.stringify(bad));
    }
  });

  it('a good host record parses; its key must name it', () => {
    assert.deepEqual(parseHost(HOSTS + 'alpha', JSON.stringify(host)), host);
    assert.equal(parseHost(HOSTS + 'beta', JSON.stringify(host)), null);
  });

  it('a host record with its capacity parses (C1); one from before capacity was published still does', () => {
    const withCapacity = { ...host, capacity: { cpus: 4, memoryBytes: 8 * 2 ** 30 } };
    assert.deepEqual(parseHost(HOSTS + 'alpha', JSON.stringify(withCapacity)), withCapacity);
    assert.equal(parseHost(HOSTS + 'alpha', JSON.stringify(host))?.capacity, undefined);
    for (const capacity of [{ cpus: 0, memoryBytes: 1 }, { cpus: 2 }, { cpus: 2, memoryBytes: -1 }, { cpus: 1.5, memoryBytes: 1 }, 'big', null]) {
      assert.equal(parseHost(HOSTS + 'alpha', JSON.stringify({ ...host, capacity })), null, JSON.stringify(capacity));
    }
  });

  it('a host record with any bad field is ignored whole', () => {
    for (const bad of [
      { address: 'nowhere' }, { fingerprint: 'sha256:12' }, { state: 'gone' }, { load: { wpars: -1, active: 0 } },
      { ttl: 1.5 }, { name: '../x' },
    ]) assert.equal(parseHost(HOSTS + 'alpha', JSON.stringify({ ...host, ...bad })), null, JSON.stringify(bad));
    assert.equal(parseHost(HOSTS + 'alpha', 'not json'), null);
    assert.equal(parseHost(HOSTS + 'alpha', '[1]'), null);
  });

  it('known hosts and WPAR records', () => {
    assert.deepEqual(parseKnown(KNOWN + 'alpha', JSON.stringify({ name: 'alpha', address: '10.0.0.1:7070', fingerprint: FP })), { name: 'alpha', address: '10.0.0.1:7070', fingerprint: FP });
    const w = parseWpar(WPARS + 'web', JSON.stringify({ name: 'web', host: 'alpha', definition, created: 5, epoch: 1 }));
    assert.equal(w?.host, 'alpha');
    assert.deepEqual(w?.definition.argv, ['sleep', '1']);
    assert.equal(parseWpar(WPARS + 'web', JSON.stringify({ name: 'web', host: 'alpha', definition: { ...definition, name: 'other' }, created: 5, epoch: 1 })), null);
    assert.equal(parseWpar(WPARS + 'web', JSON.stringify({ name: 'web', host: 'alpha', definition, created: 5, epoch: 0 })), null);
    assert.equal(parseWpar(WPARS + 'web', JSON.stringify({ name: 'web', host: 'alpha', definition: { ...definition, argv: [] }, created: 5, epoch: 1 })), null);
  });
});

describe('wpard cluster flags', () => {
  it('URLs, TTL and TLS files', () => {
    assert.deepEqual(parseClusterFlags({ cluster: 'http://10.0.0.9:2379,http://10.0.0.10:2379' }), { urls: ['http://10.0.0.9:2379', 'http://10.0.0.10:2379'], leaseTtl: 10, fenceAfterMs: 5000 });
    assert.equal(parseClusterFlags({ cluster: 'http://a:1', leaseTtl: '3' }).leaseTtl, 3);
    // --fence-after: half the TTL by default; seconds with up to 3 decimals; below the TTL (C4).
    assert.equal(parseClusterFlags({ cluster: 'http://a:1', leaseTtl: '3' }).fenceAfterMs, 1500);
    assert.equal(parseClusterFlags({ cluster: 'http://a:1', leaseTtl: '4', fenceAfter: '2.25' }).fenceAfterMs, 2250);
    assert.equal(parseClusterFlags({ cluster: 'http://a:1', leaseTtl: '4', fenceAfter: '3.999' }).fenceAfterMs, 3999);
    for (const [flags, re] of [
      [{ cluster: '10.0.0.9:2379' }, /--cluster: bad etcd client URL/],
      [{ cluster: 'http://a' }, /--cluster: bad etcd client URL/],
      [{ cluster: 'ftp://a:1' }, /--cluster: bad etcd client URL/],
      [{ cluster: 'http://a:1', leaseTtl: '1' }, /--lease-ttl: bad value "1"/],
      [{ cluster: 'http://a:1', leaseTtl: 'ten' }, /--lease-ttl/],
      [{ cluster: 'http://a:1', leaseTtl: '4', fenceAfter: '4' }, /--fence-after: bad value "4": seconds more than 0 and less than the lease TTL \(4 s\)$/],
      [{ cluster: 'http://a:1', fenceAfter: '0' }, /--fence-after: bad value "0"/],
      [{ cluster: 'http://a:1', fenceAfter: '-1' }, /--fence-after: bad value "-1"/],
      [{ cluster: 'http://a:1', fenceAfter: '1.2345' }, /--fence-after: bad value "1.2345"/],
      [{ cluster: 'http://a:1', fenceAfter: '2s' }, /--fence-after: bad value "2s"/],
      [{ cluster: 'http://a:1', etcdCert: '/x' }, /--etcd-cert and --etcd-key go together/],
      [{ cluster: 'https://a:1' }, /needs --etcd-ca/],
      [{ cluster: 'http://a:1', etcdCa: '/nonexistent/ca.pem' }, /with --etcd-ca the URLs are https/],
      [{ cluster: 'https://a:1', etcdCa: '/nonexistent/ca.pem' }, /--etcd-ca \/nonexistent\/ca.pem: cannot read it/],
    ] as const) assert.throws(() => parseClusterFlags(flags), re);
  });
});

describe('forwarded calls', () => {
  it('only the WPAR and system routes, never a stream, in the known protocol', () => {
    assert.deepEqual(checkCall({ protocol: 1, method: 'POST', path: '/v1/wpars/web/start' }), { method: 'POST', path: '/v1/wpars/web/start' });
    for (const m of [
      { protocol: 2, method: 'GET', path: '/v1/wpars' }, { protocol: 1, method: 'PUT', path: '/v1/wpars' },
      { protocol: 1, method: 'POST', path: '/v1/peers' }, { protocol: 1, method: 'GET', path: '/v1/wpars/web/logs?follow=1' },
      { protocol: 1, method: 'GET', path: '/v1/events' }, { protocol: 1, method: 'POST', path: '/v1/restart' },
    ]) assert.throws(() => checkCall(m), /EPROTO|not supported|bad call/, JSON.stringify(m));
  });
});

describe('relayed streams', () => {
  it('only a followed log or a checkpoint, in the known protocol', () => {
    assert.deepEqual(checkStreamCall({ protocol: 1, method: 'GET', path: '/v1/wpars/web/logs?follow=1&tail=5' }), { method: 'GET', path: '/v1/wpars/web/logs?follow=1&tail=5' });
    assert.deepEqual(checkStreamCall({ protocol: 1, method: 'POST', path: '/v1/wpars/web/checkpoint', accept: 'application/x-ndjson', body: { dir: '/i' } }),
      { method: 'POST', path: '/v1/wpars/web/checkpoint', accept: 'application/x-ndjson', body: { dir: '/i' } });
    for (const m of [
      { protocol: 2, method: 'GET', path: '/v1/wpars/web/logs?follow=1' }, { protocol: 1, method: 'POST', path: '/v1/wpars/web/logs?follow=1' },
      { protocol: 1, method: 'GET', path: '/v1/wpars/web/logs' }, { protocol: 1, method: 'GET', path: '/v1/events?follow=1' },
      { protocol: 1, method: 'GET', path: '/v1/wpars/../system/logs?follow=1' }, { protocol: 1, method: 'POST', path: '/v1/wpars/web/checkpoint?x=1' },
      { protocol: 1, method: 'DELETE', path: '/v1/wpars/web/checkpoint' }, { protocol: 1, method: 'POST', path: '/v1/wpars/web/checkpoint', accept: 5 },
    ]) assert.throws(() => checkStreamCall(m), /EPROTO|not supported|bad relay/, JSON.stringify(m));
  });

  it('a restart starts at the image\'s epoch + 1, or 1 for an image without one', () => {
    assert.equal(restartEpoch(undefined), 1);
    assert.equal(restartEpoch(4), 5);
  });
});
