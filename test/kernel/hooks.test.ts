// K4–K9: kwpar_reghook and kwpar_unreghook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BADREGKEY, createKernel, EINVAL, EPERM, WPAR_NOTIFY_HOOK, WPARSTART, WPARSTOP, type wpar_config_hook_t,
} from '../../src/index.ts';

const hookp = (calls: unknown[] = [], tag = ''): wpar_config_hook_t => ({
  current_hiwater: -1,
  configp: (flags, cid) => { calls.push([tag, flags, cid]); return 0; },
});

test('K4: success writes the kernel hiwater into current_hiwater and returns a key', async () => {
  const k = createKernel();
  const ext = k.extension('acct');
  const h0 = hookp();
  assert.ok(ext.kwpar_reghook(WPAR_NOTIFY_HOOK, h0) > 0);
  assert.equal(h0.current_hiwater, 0);
  await k.activate({ name: 'a' });
  await k.activate({ name: 'b' });
  const h2 = hookp();
  ext.kwpar_reghook(WPAR_NOTIFY_HOOK, h2);
  assert.equal(h2.current_hiwater, 2);
});

test('K5: keys are positive, strictly increasing and never reused', () => {
  const k = createKernel({ maxHooks: 2 });
  const a = k.extension('a');
  const keys: number[] = [];
  for (let i = 0; i < 20; i++) {
    const key = a.kwpar_reghook(WPAR_NOTIFY_HOOK, hookp());
    keys.push(key);
    if (i % 2 === 1) { a.kwpar_unreghook(keys[i - 1]!); a.kwpar_unreghook(key); }
  }
  assert.ok(keys.every((key, i) => key > 0 && (i === 0 || key > keys[i - 1]!)), String(keys));
  assert.equal(new Set(keys).size, keys.length);
});

test('K6: wrong hooktype, missing or non-function configp → BADREGKEY and nothing registered', async () => {
  const k = createKernel();
  const ext = k.extension('x');
  const bad: [unknown, unknown][] = [
    [0, hookp()], [2, hookp()], ['1', hookp()], [1n, hookp()],
    [WPAR_NOTIFY_HOOK, null], [WPAR_NOTIFY_HOOK, {}], [WPAR_NOTIFY_HOOK, { configp: 'f' }], [WPAR_NOTIFY_HOOK, 42],
  ];
  for (const [t, h] of bad) assert.equal(ext.kwpar_reghook(t as number, h as wpar_config_hook_t), BADREGKEY);
  const calls: unknown[] = [];
  const good = hookp(calls);
  assert.equal(ext.kwpar_reghook(WPAR_NOTIFY_HOOK, good), 1, 'no key was consumed by the failures');
  await k.activate({ name: 'a' });
  assert.equal(calls.length, 1);
});

test('K6: at most maxHooks (default 256) at once; a slot frees on unregister', () => {
  const k = createKernel();
  const ext = k.extension('x');
  const keys = Array.from({ length: 256 }, () => ext.kwpar_reghook(WPAR_NOTIFY_HOOK, hookp()));
  assert.ok(keys.every((key) => key > 0));
  assert.equal(ext.kwpar_reghook(WPAR_NOTIFY_HOOK, hookp()), BADREGKEY);
  assert.equal(ext.kwpar_unreghook(keys[100]!), 0);
  assert.ok(ext.kwpar_reghook(WPAR_NOTIFY_HOOK, hookp()) > keys[255]!);
});

test('K6: a hookp whose current_hiwater cannot be written registers nothing', async () => {
  const k = createKernel();
  const ext = k.extension('x');
  const calls: unknown[] = [];
  const frozen = Object.freeze(hookp(calls));
  assert.equal(ext.kwpar_reghook(WPAR_NOTIFY_HOOK, frozen), BADREGKEY);
  await k.activate({ name: 'a' });
  assert.equal(calls.length, 0);
});

test('K7: a hook registered during an activation is not called for it; its hiwater covers that cid', async () => {
  const k = createKernel();
  const ext = k.extension('x');
  const late = hookp([], 'late');
  const lateCalls: unknown[] = [];
  late.configp = (f, cid) => { lateCalls.push([f, cid]); return 0; };
  ext.kwpar_reghook(WPAR_NOTIFY_HOOK, {
    current_hiwater: 0,
    configp: async (flags) => {
      if (flags === WPARSTART) ext.kwpar_reghook(WPAR_NOTIFY_HOOK, late);
      return 0;
    },
  });
  const cid = await k.activate({ name: 'a' });
  assert.equal(late.current_hiwater, cid, 'registered after cid 1 was allocated: hiwater says so');
  assert.deepEqual(lateCalls, [], 'no WPARSTART for a WPAR allocated before registration');
  await k.activate({ name: 'b' });
  assert.deepEqual(lateCalls, [[WPARSTART, 2]], 'an activation that allocates after registration is called out');
});

test('K8: unregister returns 0; from then on no new callout begins, even mid-activation', async () => {
  const k = createKernel();
  const ext = k.extension('x');
  const calls: unknown[] = [];
  let second = 0;
  ext.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: () => { assert.equal(ext.kwpar_unreghook(second), 0); return 0; } });
  second = ext.kwpar_reghook(WPAR_NOTIFY_HOOK, hookp(calls, 'second'));
  await k.activate({ name: 'a' });
  await k.deactivate(1);
  assert.deepEqual(calls, [], 'unregistered by the first hook before its turn came');
});

test('K9: EINVAL for a key never issued, already removed, or not an integer; EPERM for another owner\'s key', () => {
  const k = createKernel();
  const a = k.extension('a');
  const b = k.extension('b');
  const key = a.kwpar_reghook(WPAR_NOTIFY_HOOK, hookp());
  assert.equal(b.kwpar_unreghook(key), EPERM);
  assert.equal(k.services.kwpar_unreghook(key), EPERM);
  for (const bad of [999, 0, -1, BADREGKEY, 1.5, NaN, '1', null, undefined]) assert.equal(a.kwpar_unreghook(bad as number), EINVAL);
  assert.equal(a.kwpar_unreghook(key), 0);
  assert.equal(a.kwpar_unreghook(key), EINVAL, 'already removed');
});

test('kernel.services registers hooks as the owner "kernel"; extension names are unique while open', () => {
  const k = createKernel();
  assert.equal(k.services.name, 'kernel');
  assert.throws(() => k.extension('kernel'), { code: 'EEXIST' });
  const a = k.extension('a');
  assert.throws(() => k.extension('a'), { code: 'EEXIST' });
  a.close();
  assert.doesNotThrow(() => k.extension('a').close());
  assert.throws(() => k.services.close(), { code: 'EPERM' });
  assert.ok(k.services.kwpar_reghook(WPAR_NOTIFY_HOOK, hookp()) > 0);
});

test('WPARSTOP goes to every hook registered at deactivation, in reverse registration order', async () => {
  const k = createKernel();
  const calls: unknown[] = [];
  const [a, b] = [k.extension('a'), k.extension('b')];
  a.kwpar_reghook(WPAR_NOTIFY_HOOK, hookp(calls, 'a1'));
  const cid = await k.activate({ name: 'w' });
  b.kwpar_reghook(WPAR_NOTIFY_HOOK, hookp(calls, 'b1'));
  a.kwpar_reghook(WPAR_NOTIFY_HOOK, hookp(calls, 'a2'));
  await k.deactivate(cid);
  assert.deepEqual(calls, [['a1', WPARSTART, 1], ['a2', WPARSTOP, 1], ['b1', WPARSTOP, 1], ['a1', WPARSTOP, 1]]);
});
