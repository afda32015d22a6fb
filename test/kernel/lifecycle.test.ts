// K14–K17: activation, failed activation, deactivation, callout arguments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CalloutError, createKernel, WPAR_NOTIFY_HOOK, WPARSTART, WPARSTOP, type Kernel, type KernelCorral, type WparError,
} from '../../src/index.ts';
import { FakeClock, settle } from '../support/fake-clock.ts';

/** Records hook callouts and subsystem steps in one ordered log. */
function traced(k: Kernel, log: string[], hooks: { owner: string; result?: () => unknown }[], subsystems: string[] = []): number[] {
  for (const s of subsystems) {
    k.use({
      name: s,
      start: (cid) => { log.push(`${s}.start ${cid}`); },
      stop: (cid) => { log.push(`${s}.stop ${cid}`); },
    });
  }
  const owners = new Map<string, ReturnType<Kernel['extension']>>();
  return hooks.map(({ owner, result }) => {
    const o = owners.get(owner) ?? owners.set(owner, k.extension(owner)).get(owner)!;
    const key = o.kwpar_reghook(WPAR_NOTIFY_HOOK, {
      current_hiwater: 0,
      configp: (flags, cid) => {
        log.push(`${owner}#${key} ${flags === WPARSTART ? 'START' : 'STOP'} ${cid}`);
        return flags === WPARSTART && result ? result() as number : 0;
      },
    });
    return key;
  });
}

test('K14.1: invalid names → EINVAL; a held name → EEXIST; nothing allocated', async () => {
  const k = createKernel();
  for (const name of ['', '../x', 'a b', '-a', '.a', 'a'.repeat(65), 'é', 42, undefined]) {
    await assert.rejects(k.activate({ name } as never), (e: WparError) => e.code === 'EINVAL' && /name/.test(e.message), String(name));
  }
  assert.equal(await k.activate({ name: 'a'.repeat(64) }), 1);
  await k.activate({ name: 'Z9_.-' });
  await assert.rejects(k.activate({ name: 'Z9_.-' }), { code: 'EEXIST' });
  assert.equal(k.hiwater, 2);
  await assert.rejects(k.activate(null as never), { code: 'EINVAL' });
  await assert.rejects(k.activate({ name: 'f', fn: () => 1 } as never), (e: WparError) => e.code === 'EINVAL' && /corral\.fn is a function/.test(e.message));
});

test('K14.1: a name is held until the WPAR is gone, stopping included', async () => {
  const k = createKernel();
  let release!: () => void;
  k.use({ name: 's', start() {}, stop: () => new Promise<void>((r) => { release = r; }) });
  const cid = await k.activate({ name: 'w' });
  const stopped = k.deactivate(cid);
  await assert.rejects(k.activate({ name: 'w' }), { code: 'EEXIST' });
  release();
  await stopped;
  assert.equal(await k.activate({ name: 'w' }), 1);
});

test('K14: WPARSTART callouts in registration order, before any subsystem; subsystems in use() order', async () => {
  const k = createKernel();
  const log: string[] = [];
  traced(k, log, [{ owner: 'a' }, { owner: 'b' }, { owner: 'a' }], ['runtime', 'net']);
  const cid = await k.activate({ name: 'w' });
  assert.equal(k.status(cid)!.state, 'active');
  assert.deepEqual(log, ['a#1 START 1', 'b#2 START 1', 'a#3 START 1', 'runtime.start 1', 'net.start 1']);
});

test('K14.3: asynchronous callouts run one at a time, each awaited', async () => {
  const k = createKernel();
  const log: string[] = [];
  const ext = k.extension('e');
  for (const tag of ['x', 'y']) {
    ext.kwpar_reghook(WPAR_NOTIFY_HOOK, {
      current_hiwater: 0,
      configp: async () => { log.push(`${tag} begin`); await settle(); log.push(`${tag} end`); return 0; },
    });
  }
  await k.activate({ name: 'w' });
  assert.deepEqual(log, ['x begin', 'x end', 'y begin', 'y end']);
});

test('K14.2: state is starting during callouts; with restart the phase is restarting from the start', async () => {
  const k = createKernel();
  const seen: unknown[] = [];
  k.services.kwpar_reghook(WPAR_NOTIFY_HOOK, {
    current_hiwater: 0,
    configp: (flags, cid) => { if (flags === WPARSTART) seen.push(k.status(cid)); return 0; },
  });
  await k.activate({ name: 'a' });
  await k.activate({ name: 'b' }, { restart: true });
  assert.deepEqual(seen, [
    { cid: 1, name: 'a', state: 'starting', phase: 'normal', denials: [] },
    { cid: 2, name: 'b', state: 'starting', phase: 'restarting', denials: [] },
  ]);
  assert.equal(k.status(2)!.phase, 'restarting');
});

for (const [how, result] of [
  ['returns non-zero', () => 22],
  ['throws', () => { throw new Error('no licence'); }],
  ['rejects', () => Promise.reject(new Error('no licence'))],
  ['resolves non-zero', () => Promise.resolve(5)],
] as const) {
  test(`K15: a WPARSTART callout that ${how} aborts: no later hook, no subsystem, WPARSTOP in reverse to those that succeeded, cid freed`, async () => {
    const k = createKernel();
    const log: string[] = [];
    traced(k, log, [{ owner: 'a' }, { owner: 'b' }, { owner: 'veto', result }, { owner: 'c' }], ['runtime']);
    await assert.rejects(k.activate({ name: 'w' }), (e: CalloutError) =>
      e instanceof CalloutError && e.code === 'ECANCELED' && e.errno === 117 && e.owner === 'veto' && e.key === 3 &&
      /hook 3 of owner "veto"/.test(e.message) && /"w" \(cid 1\)/.test(e.message));
    assert.deepEqual(log, ['a#1 START 1', 'b#2 START 1', 'veto#3 START 1', 'b#2 STOP 1', 'a#1 STOP 1']);
    assert.deepEqual(k.list(), []);
    assert.equal(await k.activate({ name: 'w' }).catch(() => 'again vetoed'), 'again vetoed');
  });
}

test('K15: a callout that outlasts calloutTimeoutMs aborts with ETIMEDOUT', async () => {
  const clock = new FakeClock();
  const k = createKernel({ clock, calloutTimeoutMs: 500 });
  const log: string[] = [];
  traced(k, log, [{ owner: 'a' }, { owner: 'slow', result: () => new Promise(() => {}) }], ['runtime']);
  const activation = k.activate({ name: 'w' });
  await settle();
  clock.advance(499);
  await settle();
  assert.equal(k.status(1)!.state, 'starting');
  clock.advance(1);
  await assert.rejects(activation, (e: CalloutError) => e.code === 'ETIMEDOUT' && e.errno === 78 && e.owner === 'slow' && /500 ms/.test(e.message));
  assert.deepEqual(log, ['a#1 START 1', 'slow#2 START 1', 'a#1 STOP 1']);
  assert.equal(k.status(1), undefined);
});

test('K15: a failing subsystem start stops those already started (reverse), then unwinds the hooks', async () => {
  const k = createKernel();
  const log: string[] = [];
  traced(k, log, [{ owner: 'a' }, { owner: 'b' }], ['s1', 's2']);
  k.use({ name: 'bad', start: async () => { throw new Error('cgroup unavailable'); }, stop: () => { log.push('bad.stop'); } });
  await assert.rejects(k.activate({ name: 'w' }), (e: WparError) => e.code === 'ECANCELED' && /subsystem "bad" failed to start: cgroup unavailable/.test(e.message));
  assert.deepEqual(log, ['a#1 START 1', 'b#2 START 1', 's1.start 1', 's2.start 1', 's2.stop 1', 's1.stop 1', 'b#2 STOP 1', 'a#1 STOP 1']);
  assert.equal(k.list().length, 0);
});

test('K16: subsystems stop in reverse use() order, then WPARSTOP in reverse registration order, then the cid is free', async () => {
  const k = createKernel();
  const log: string[] = [];
  traced(k, log, [{ owner: 'a' }, { owner: 'b' }], ['s1', 's2']);
  const cid = await k.activate({ name: 'w' });
  log.length = 0;
  await k.deactivate(cid);
  assert.deepEqual(log, ['s2.stop 1', 's1.stop 1', 'b#2 STOP 1', 'a#1 STOP 1']);
  assert.equal(k.status(cid), undefined);
});

test('K16.1: no WPAR → ENOENT; a second deactivate of a stopping WPAR returns the same promise', async () => {
  const k = createKernel();
  await assert.rejects(k.deactivate(1), { code: 'ENOENT' });
  await assert.rejects(k.deactivate('x' as never), { code: 'ENOENT' });
  let release!: () => void;
  k.use({ name: 's', start() {}, stop: () => new Promise<void>((r) => { release = r; }) });
  const cid = await k.activate({ name: 'w' });
  const first = k.deactivate(cid);
  assert.equal(k.deactivate(cid), first);
  release();
  await first;
});

test('K16.1: a starting WPAR is stopped once its activation settles', async () => {
  const k = createKernel();
  const log: string[] = [];
  let release!: () => void;
  k.services.kwpar_reghook(WPAR_NOTIFY_HOOK, {
    current_hiwater: 0,
    configp: (flags) => { log.push(flags === WPARSTART ? 'START' : 'STOP'); return flags === WPARSTART ? new Promise<number>((r) => { release = () => r(0); }) : 0; },
  });
  const activation = k.activate({ name: 'w' });
  await settle();
  const stopped = k.deactivate(1);
  assert.equal(k.status(1)!.state, 'starting');
  release();
  assert.equal(await activation, 1);
  await stopped;
  assert.deepEqual(log, ['START', 'STOP']);
  assert.equal(k.status(1), undefined);
});

test('K16.4: WPARSTOP failures, throws and timeouts are reported, never fatal', async () => {
  const clock = new FakeClock();
  const k = createKernel({ clock, calloutTimeoutMs: 100 });
  const events: string[] = [];
  k.subscribe((e) => { if (e.type === 'callout' && e.flags === 'WPARSTOP') events.push(`${e.owner}:${e.outcome}`); });
  const ext = k.extension('e');
  ext.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: (f) => (f === WPARSTOP ? 7 : 0) });
  ext.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: (f) => { if (f === WPARSTOP) throw new Error('x'); return 0; } });
  k.services.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: (f) => (f === WPARSTOP ? new Promise<number>(() => {}) : 0) });
  const cid = await k.activate({ name: 'w' });
  const stopped = k.deactivate(cid);
  await settle();
  clock.advance(100);
  await stopped;
  assert.deepEqual(events, ['kernel:timeout', 'e:failed', 'e:failed']);
  assert.equal(k.list().length, 0);
});

test('K17: callout arguments are (flags, cid, corralp, null); corralp is a deeply frozen copy with cid', async () => {
  const k = createKernel();
  const args: unknown[][] = [];
  const ext = k.extension('e');
  ext.kwpar_reghook(WPAR_NOTIFY_HOOK, {
    current_hiwater: 0,
    configp: (...a) => {
      args.push(a);
      const c = a[2] as KernelCorral & { env: { list: number[] } };
      assert.throws(() => { (c as { name: string }).name = 'evil'; }, TypeError);
      assert.throws(() => { c.env.list.push(4); }, TypeError);
      return 0;
    },
  });
  const seenByOther: unknown[] = [];
  ext.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: (_f, _c, corralp) => { seenByOther.push(JSON.stringify(corralp)); return 0; } });
  const corral = { name: 'w', env: { list: [1, 2, 3] } };
  const cid = await k.activate(corral);
  corral.env.list.push(99);
  (corral as { name: string }).name = 'changed';
  await k.deactivate(cid);
  assert.equal(args.length, 2);
  assert.deepEqual(args[0]!.slice(0, 2), [WPARSTART, 1]);
  assert.deepEqual(args[1]!.slice(0, 2), [WPARSTOP, 1]);
  assert.equal(args[0]![3], null);
  assert.equal(args[0]![2], args[1]![2], 'the same kernel copy at start and stop');
  assert.deepEqual(args[1]![2], { name: 'w', env: { list: [1, 2, 3] }, cid: 1 });
  assert.deepEqual(seenByOther, [JSON.stringify({ name: 'w', env: { list: [1, 2, 3] }, cid: 1 }), JSON.stringify({ name: 'w', env: { list: [1, 2, 3] }, cid: 1 })]);
});

test('K17: a callout may itself call any service (register, unregister, deny, allow)', async () => {
  const k = createKernel();
  const ext = k.extension('e');
  let inner = 0;
  ext.kwpar_reghook(WPAR_NOTIFY_HOOK, {
    current_hiwater: 0,
    configp: (flags, cid) => {
      if (flags !== WPARSTART) return 0;
      inner = ext.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: () => 0 });
      assert.equal(ext.kwpar_checkpoint_status(cid, 1, 'configuring'), 0);
      assert.equal(ext.kwpar_checkpoint_status(cid, 1, 'configuring'), 0);
      assert.equal(ext.kwpar_checkpoint_status(cid, 2), 0);
      return ext.kwpar_unreghook(inner);
    },
  });
  const cid = await k.activate({ name: 'w' });
  assert.ok(inner > 0);
  assert.deepEqual(k.status(cid)!.denials.map((d) => d.reason), ['configuring']);
});
