// K1 (lowest free cid, maxWpars) and K2 (hiwater).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKernel, WparError, WPAR_NOTIFY_HOOK } from '../../src/index.ts';

test('K1: a new WPAR gets the lowest free cid, starting at 1', async () => {
  const k = createKernel();
  assert.equal(await k.activate({ name: 'a' }), 1);
  assert.equal(await k.activate({ name: 'b' }), 2);
  assert.equal(await k.activate({ name: 'c' }), 3);
  await k.deactivate(2);
  await k.deactivate(1);
  assert.equal(await k.activate({ name: 'd' }), 1);
  assert.equal(await k.activate({ name: 'e' }), 2);
  assert.equal(await k.activate({ name: 'f' }), 4);
});

test('K1: at most maxWpars hold a cid; one more fails with EAGAIN and changes nothing', async () => {
  const k = createKernel({ maxWpars: 2 });
  await k.activate({ name: 'a' });
  await k.activate({ name: 'b' });
  await assert.rejects(k.activate({ name: 'c' }), (e: WparError) => e.code === 'EAGAIN' && e.errno === 11 && /no free cid/.test(e.message));
  assert.equal(k.list().length, 2);
  assert.equal(k.hiwater, 2);
  await k.deactivate(1);
  assert.equal(await k.activate({ name: 'c' }), 1, 'the freed cid is reused');
});

test('K1: the default maxWpars is 8192', async () => {
  const k = createKernel();
  const all = [];
  for (let i = 0; i < 8192; i++) all.push(k.activate({ name: `w${i}` }));
  await Promise.all(all);
  await assert.rejects(k.activate({ name: 'one-more' }), { code: 'EAGAIN' });
});

test('K2: hiwater is 0 before any activation and never decreases', async () => {
  const k = createKernel();
  assert.equal(k.hiwater, 0);
  await k.activate({ name: 'a' });
  await k.activate({ name: 'b' });
  assert.equal(k.hiwater, 2);
  await k.deactivate(2);
  await k.deactivate(1);
  assert.equal(k.hiwater, 2);
  await k.activate({ name: 'c' });
  assert.equal(k.hiwater, 2, 'reusing cid 1 does not raise hiwater');
});

test('K2: every cid passed to a callout is <= hiwater at the time of the callout', async () => {
  const k = createKernel();
  const ext = k.extension('x');
  const seen: [number, number][] = [];
  ext.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: (_f, cid) => { seen.push([cid, k.hiwater]); return 0; } });
  for (const n of ['a', 'b', 'c']) await k.activate({ name: n });
  await k.deactivate(2);
  await k.activate({ name: 'd' });
  assert.ok(seen.length === 5 && seen.every(([cid, hw]) => cid <= hw), JSON.stringify(seen));
});

test('K1 with a given cid (adoption, R7): that cid is taken, callouts see an activation, K1 and K2 hold after it', async () => {
  const k = createKernel();
  const ext = k.extension('probe');
  const seen: string[] = [];
  ext.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: (flag, cid) => { seen.push(`${flag}:${cid}`); return 0; } });
  assert.equal(await k.activate({ name: 'adopted' }, { cid: 3 }), 3);
  assert.equal(k.hiwater, 3, 'hiwater covers the adopted cid');
  assert.deepEqual(seen, ['1:3'], 'WPARSTART callout for the adopted cid');
  assert.equal(await k.activate({ name: 'a' }), 1, 'the cids below it are free, lowest first');
  assert.equal(await k.activate({ name: 'b' }), 2);
  assert.equal(await k.activate({ name: 'c' }), 4);
  await k.deactivate(2);
  assert.equal(await k.activate({ name: 'again' }, { cid: 2 }), 2, 'a freed cid can be taken by number');
  assert.equal(await k.activate({ name: 'd' }), 5, 'and is no longer in the free list');
  await assert.rejects(k.activate({ name: 'e' }, { cid: 3 }), (e: WparError) => e.code === 'EEXIST' && /cid 3: the cid is held by "adopted"/.test(e.message));
  await assert.rejects(k.activate({ name: 'e' }, { cid: 0 }), { code: 'EINVAL' });
  await assert.rejects(k.activate({ name: 'e' }, { cid: 1.5 }), { code: 'EINVAL' });
  assert.equal(k.list().length, 5, 'refused activations change nothing');
  assert.equal(k.hiwater, 5);
});
