// Spec §5: the idiomatic API over the same kernel, status/list, and events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CheckpointDeniedError, createKernel, WPAR_CHECKPOINT_DENY, WPAR_CHECKPOINT_TRY, type KernelEvent, type WparError,
} from '../../src/index.ts';
import { FakeClock, settle } from '../support/fake-clock.ts';

test('watch(): start/stop handlers; a throwing start refuses the activation', async () => {
  const k = createKernel();
  const ext = k.extension('quota');
  const seen: string[] = [];
  using hook = ext.watch({
    start: (w) => { seen.push(`start ${w.name} ${w.cid}`); if (w.name === 'bad') throw new Error('over quota'); },
    stop: async (w) => { seen.push(`stop ${w.name}`); },
  });
  assert.equal(hook.hiwater, 0);
  assert.ok(hook.registered);
  const cid = await k.activate({ name: 'ok' });
  await assert.rejects(k.activate({ name: 'bad' }), (e: WparError) => e.code === 'ECANCELED' && /owner "quota" threw: over quota/.test(e.message));
  await k.deactivate(cid);
  assert.deepEqual(seen, ['start ok 1', 'start bad 2', 'stop ok']);
});

test('HookHandle: using unregisters at scope exit; await using also waits for callouts in flight', async () => {
  const k = createKernel();
  const ext = k.extension('e');
  let finish!: () => void;
  let finished = false;
  const activation = (async () => {
    await using _hook = ext.watch({ start: () => new Promise<void>((r) => { finish = () => { finished = true; r(); }; }) });
    const p = k.activate({ name: 'w' });
    await settle();
    setImmediate(() => finish());
    return p;
  })();
  await activation;
  assert.ok(finished, 'scope exit waited for the in-flight callout');
  {
    using h = ext.watch({});
    assert.ok(h.registered);
    var escaped = h; // eslint-disable-line no-var
  }
  assert.equal(escaped.registered, false);
});

test('HookHandle.unregister(): resolves only after the in-flight callout settles; no new callout begins', async () => {
  const k = createKernel();
  const ext = k.extension('e');
  let release!: () => void;
  let calls = 0;
  const hook = ext.watch({ start: () => { calls++; return new Promise<void>((r) => { release = r; }); } });
  const activation = k.activate({ name: 'w' });
  await settle();
  let unregistered = false;
  const done = hook.unregister().then(() => { unregistered = true; });
  assert.equal(hook.registered, false);
  await settle();
  assert.equal(unregistered, false);
  release();
  await done;
  await activation;
  await k.activate({ name: 'v' });
  assert.equal(calls, 1);
});

test('deny(): a handle that allows exactly its own denial; using releases it', async () => {
  const k = createKernel();
  const ext = k.extension('db');
  const cid = await k.activate({ name: 'w' });
  const first = ext.deny(cid, 'txn 1');
  {
    using second = ext.deny(cid, 'txn 2');
    assert.equal(second.owner, 'db');
    assert.deepEqual(k.status(cid)!.denials.map((d) => d.reason), ['txn 1', 'txn 2']);
  }
  assert.deepEqual(k.status(cid)!.denials.map((d) => d.reason), ['txn 1']);
  assert.ok(first.active);
  assert.equal(first.allow(), true);
  assert.equal(first.allow(), false, 'idempotent');
  assert.throws(() => ext.deny(cid, ''), { code: 'EINVAL' });
  assert.throws(() => ext.deny(99, 'r'), (e: WparError) => e.code === 'ENOENT' && /cid 99/.test(e.message));
});

test('deny() during a checkpoint: EBUSY with an explanation', async () => {
  const k = createKernel();
  const cid = await k.activate({ name: 'w' });
  const ckpt = await k.services.tryCheckpoint(cid, { timeoutMs: 0 });
  assert.throws(() => k.extension('a').deny(cid, 'r'), (e: WparError) => e.code === 'EBUSY' && /checkpoint is in progress/.test(e.message));
  assert.equal(ckpt.clear(), true);
  assert.equal(k.status(cid)!.phase, 'normal');
});

test('tryCheckpoint(): ETIMEDOUT names every denial, its owner, reason and since', async () => {
  const clock = new FakeClock();
  const k = createKernel({ clock });
  const cid = await k.activate({ name: 'web' });
  k.extension('agent:web/4711').deny(cid, 'writing batch 12');
  k.extension('db').deny(cid, 'txn open');
  const p = k.services.tryCheckpoint(cid, { timeoutMs: 1000 });
  clock.advance(1000);
  await assert.rejects(p, (e: CheckpointDeniedError) =>
    e instanceof CheckpointDeniedError && e.code === 'ETIMEDOUT' && e.denials.length === 2 &&
    /WPAR "web" \(cid 1\) not checkpointed after 1 s: denied by agent:web\/4711 "writing batch 12" since \d\d:\d\d:\d\d; denied by db "txn open"/.test(e.message));
  assert.equal(k.status(cid)!.phase, 'normal');
});

test('tryCheckpoint(): an AbortSignal ends the wait with EINTR and leaves the phase normal', async () => {
  const k = createKernel();
  const cid = await k.activate({ name: 'w' });
  const d = k.extension('x').deny(cid, 'busy');
  const ac = new AbortController();
  const p = k.services.tryCheckpoint(cid, { timeoutMs: 60_000, signal: ac.signal });
  assert.equal(k.status(cid)!.phase, 'pending');
  ac.abort();
  await assert.rejects(p, { code: 'EINTR' });
  assert.equal(k.status(cid)!.phase, 'normal');
  await assert.rejects(k.services.tryCheckpoint(cid, { signal: AbortSignal.abort() }), { code: 'EINTR' });
  d.allow();
  await assert.rejects(k.services.tryCheckpoint(cid, { signal: ac.signal }), { code: 'EINTR' }, 'an aborted signal stays aborted');
  using ckpt = await k.services.tryCheckpoint(cid, { signal: new AbortController().signal });
  assert.equal(k.status(cid)!.phase, 'checkpointing');
  assert.equal(ckpt.cid, cid);
});

test('tryCheckpoint(): EBUSY says why', async () => {
  const k = createKernel();
  const cid = await k.activate({ name: 'w' }, { restart: true });
  await assert.rejects(k.services.tryCheckpoint(cid), (e: WparError) => e.code === 'EBUSY' && /restarting/.test(e.message));
  k.services.restartClear(cid);
  assert.throws(() => k.services.restartClear(cid), (e: WparError) => e.code === 'EINVAL' && /not restarting/.test(e.message));
});

test('the two faces share one kernel: a facade DENY holds an idiomatic TRY', async () => {
  const k = createKernel();
  const ext = k.extension('x');
  const cid = await k.activate({ name: 'w' });
  ext.kwpar_checkpoint_status(cid, WPAR_CHECKPOINT_DENY, 'r');
  const p = k.services.tryCheckpoint(cid, { timeoutMs: 60_000 });
  ext.kwpar_checkpoint_status(cid, 2);
  const ckpt = await p;
  assert.equal(await ext.kwpar_checkpoint_status(cid, WPAR_CHECKPOINT_TRY, 0), 16);
  ckpt[Symbol.dispose]();
  assert.equal(k.status(cid)!.phase, 'normal');
});

test('status() and list() are snapshots the caller cannot use to change the kernel', async () => {
  const k = createKernel();
  await k.activate({ name: 'b' });
  await k.activate({ name: 'a' });
  k.extension('x').deny(1, 'r');
  const s = k.status(1)!;
  s.denials[0]!.reason = 'changed';
  s.denials.length = 0;
  assert.deepEqual(k.status(1)!.denials.map((d) => d.reason), ['r']);
  assert.deepEqual(k.list().map((w) => [w.cid, w.name]), [[1, 'b'], [2, 'a']]);
  assert.equal(k.status(3), undefined);
  assert.equal(k.status(NaN), undefined);
});

test('events: every transition, in order; a throwing listener disturbs nothing', async () => {
  const errors: unknown[] = [];
  const k = createKernel({ onListenerError: (e) => errors.push(e) });
  const events: KernelEvent[] = [];
  k.subscribe(() => { throw new Error('bad listener'); });
  using _sub = k.subscribe((e) => events.push(e));
  const ext = k.extension('x');
  const hook = ext.watch({});
  const cid = await k.activate({ name: 'w' });
  const d = ext.deny(cid, 'r');
  const p = k.services.tryCheckpoint(cid, { timeoutMs: 10_000 });
  d.allow();
  (await p).clear();
  await hook.unregister();
  await k.deactivate(cid);
  ext.close();
  assert.deepEqual(events.map((e) => e.type), [
    'owner.open', 'hook.register', 'wpar.activating', 'callout', 'wpar.active', 'deny', 'try.wait', 'allow',
    'try.done', 'checkpoint.clear', 'hook.unregister', 'wpar.stopping', 'wpar.stopped', 'owner.close',
  ]);
  assert.ok(errors.length === events.length && errors.every((e) => (e as Error).message === 'bad listener'));
  const done = events.find((e) => e.type === 'try.done');
  assert.equal(done?.type === 'try.done' && done.result, 'ok');
});
