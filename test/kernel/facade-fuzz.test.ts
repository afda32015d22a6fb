/**
 * K3: the C-shaped facade never throws, answers every `cmd` but TRY with a number synchronously and
 * TRY with a Promise<number> that never rejects, and an invalid call changes nothing. Garbage of every
 * type (and hostile proxies) is thrown at kwpar_reghook / kwpar_unreghook / kwpar_checkpoint_status of
 * several owners, open and closed, on a kernel with WPARs in every phase; each answer is checked against
 * the reference model (test/support/model/), and so is the whole kernel state after every call.
 * Also: K10's check order, with targeted examples.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { WparError } from '../../src/index.ts';
import { expectSame } from '../support/model/check.ts';
import { Activate, Advance, Checkpoint, Close, Deactivate, Reghook, fmt } from '../support/model/commands.ts';
import { settle } from '../support/fake-clock.ts';
import { garbageArb, GARBAGE, mostlyValid, type Garbage } from '../support/model/garbage.ts';
import { Model, type MHook } from '../support/model/model.ts';
import { Real, type RealConfig } from '../support/model/real.ts';
import {
  ALLOW, BADREGKEY, CLEAR, DENY, EBUSY, EINVAL, ENOENT, EPERM, ETIMEDOUT, RESTART_CLEAR, SPEC, TRY,
} from '../support/model/spec.ts';

const SCALE = Number(process.env.CORRAL_MODEL_SCALE ?? '1') || 1;
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));

const CFG: RealConfig = {
  maxWpars: 4, maxHooks: 6, calloutTimeoutMs: 1000, epoch: 1_700_000_000_000,
  ownerNames: ['kernel', 'ext-a', 'ext-b', 'ext-c'],
};
/** Slot 3 (ext-c) is closed in every world. */
const CLOSED = 3;

interface World {
  m: Model;
  r: Real;
}

/**
 * A kernel with a hook per open owner and a WPAR in each phase:
 * cid 1 `pending` (ext-a's denial, ext-b's TRY waiting 5 s), cid 2 `restarting`, cid 3 `checkpointing`;
 * cid 4 is free. ext-c is closed.
 */
async function world(): Promise<World> {
  const m = new Model(CFG);
  const r = new Real(CFG);
  const steps = [
    new Reghook(0, false, 1, 'ok', 'ok'),
    new Reghook(1, false, 1, 'ok', 'ok'),
    new Reghook(2, false, 1, 'ok', 'ok'),
    new Reghook(3, false, 1, 'ok', 'ok'),
    new Activate('w-pending', false, 'none'),
    new Activate('w-restart', true, 'none'),
    new Activate('w-ckpt', false, 'none'),
    new Checkpoint(1, false, 1, DENY, 'held'),
    new Checkpoint(2, false, 1, TRY, 5),
    new Checkpoint(0, false, 3, TRY, 0),
    new Close(CLOSED),
  ];
  for (const s of steps) await s.run(m, r);
  assert.deepStrictEqual(r.kernel.list().map((s) => [s.cid, s.state, s.phase]),
    [[1, 'active', 'pending'], [2, 'active', 'restarting'], [3, 'active', 'checkpointing']]);
  return { m, r };
}

function snapshot(r: Real): string {
  return JSON.stringify({ list: r.kernel.list(), hiwater: r.kernel.hiwater, log: r.log.length });
}

type Fn = 'kwpar_reghook' | 'kwpar_unreghook' | 'kwpar_checkpoint_status';

interface Call {
  readonly fn: Fn;
  readonly slot: number;
  readonly args: readonly Garbage[];
}

function describe(c: Call): string {
  return `${['K', 'A', 'B', 'C'][c.slot]}.${c.fn}(${c.args.map((a) => a.label).join(', ')})`;
}

const cidArb = mostlyValid([1, 2, 3, 4, 2 ** 31 - 1], (x) => String(x));
const cmdArb = mostlyValid([DENY, ALLOW, TRY, CLEAR, RESTART_CLEAR], (x) => String(x));
const varpArb = mostlyValid<unknown>(['reason', 0, 1, 5, 2147483], (x) => fmt(x));
const hooktypeArb = mostlyValid([SPEC.WPAR_NOTIFY_HOOK], (x) => String(x));
const hookpArb = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(...GARBAGE.filter((x) => x.hookp !== 'invalid')) },
  { weight: 3, arbitrary: garbageArb },
);
const keyArb = mostlyValid([1, 2, 3, 4, 5, 6], (x) => String(x));

/** Up to one argument more or fewer than the C signature. */
function argsArb(parts: fc.Arbitrary<Garbage>[]): fc.Arbitrary<Garbage[]> {
  return fc.tuple(fc.tuple(...parts), fc.integer({ min: -2, max: 2 }), garbageArb).map(([xs, d, extra]) =>
    d === -2 ? xs.slice(0, -1) : d === 2 ? [...xs, extra] : xs);
}

const call = (fn: Fn, slot: number, args: Garbage[]): Call => {
  const c: Call = { fn, slot, args };
  return Object.assign(c, { [fc.toStringMethod]: () => describe(c) });
};

const callArb: fc.Arbitrary<Call> = fc.integer({ min: 0, max: 3 }).chain((slot) => fc.oneof(
  { weight: 2, arbitrary: argsArb([hooktypeArb, hookpArb]).map((args) => call('kwpar_reghook', slot, args)) },
  { weight: 1, arbitrary: argsArb([keyArb]).map((args) => call('kwpar_unreghook', slot, args)) },
  { weight: 4, arbitrary: argsArb([cidArb, cmdArb, varpArb]).map((args) => call('kwpar_checkpoint_status', slot, args)) },
));

/** Performs one facade call on the kernel and on the model, and checks the answer (K3 + the model). */
async function perform(w: World, c: Call): Promise<void> {
  const { m, r } = w;
  const ctx = describe(c);
  const owner = r.owner(c.slot, false);
  const before = snapshot(r);
  const hookRef = { key: 0 };
  const hookId = r.hooksMade;
  const fnForHook = r.hookFn(hookId, 'ok', owner, hookRef) as (...args: unknown[]) => unknown;
  const args = c.args.map((a) => a.make(fnForHook));
  const f = owner[c.fn] as (...a: unknown[]) => unknown;
  let ret: unknown;
  try {
    ret = Reflect.apply(f, owner, args);
  } catch (err) {
    assert.fail(`K3: ${ctx} threw ${String(err)}`);
  }
  let changed = false;
  if (c.fn === 'kwpar_reghook') {
    assert.equal(typeof ret, 'number', `K3: ${ctx} returns a number`);
    const typeOk = args[0] === SPEC.WPAR_NOTIFY_HOOK;
    const cls = args.length >= 2 ? c.args[1]!.hookp : 'invalid';
    const key = ret as number;
    if (cls === 'either' && key === BADREGKEY) {
      // The kernel refused an unusual hookp: allowed; nothing registered.
    } else {
      const h: typeof BADREGKEY | MHook = m.reghook(c.slot, false, typeOk, cls !== 'invalid', 'ok');
      if (h === BADREGKEY) {
        assert.equal(key, BADREGKEY, `K4/K6: ${ctx} returns BADREGKEY`);
      } else {
        assert.ok(Number.isInteger(key) && key > (r.issuedKeys.at(-1) ?? 0), `K4/K5: ${ctx} returns a new key, got ${fmt(key)}`);
        assert.equal(h.id, hookId);
        h.key = key;
        hookRef.key = key;
        r.issuedKeys.push(key);
        r.hooksMade++;
        changed = true;
      }
    }
  } else if (c.fn === 'kwpar_unreghook') {
    const expected = m.unreghook(c.slot, false, args[0]);
    assert.equal(ret, expected, `K8/K9: ${ctx}`);
    changed = expected === 0;
  } else {
    const id = r.nextId();
    const exp = m.checkpoint(id, c.slot, false, args[0], args[1], args[2]);
    if ('try' in exp) {
      assert.ok(ret instanceof Promise, `K3: ${ctx}: TRY returns a Promise, got ${fmt(ret)}`);
      m.noteTry(id, exp.try);
      const tracked = r.tries;
      tracked.set(id, { s: 'pending' });
      ret.then((v: unknown) => tracked.set(id, { s: 'resolved', v }), (err: unknown) => {
        tracked.set(id, { s: 'rejected', err });
        r.problems.push(`K3: ${ctx}: the TRY promise rejected: ${String(err)}`);
      });
      changed = !(exp.try.s === 'resolved' && exp.try.v !== 0);
    } else {
      assert.equal(typeof ret, 'number', `K3: ${ctx}: returns a number synchronously, got ${fmt(ret)}`);
      assert.equal(ret, exp.sync, `K10/K11/K13: ${ctx}`);
      changed = exp.sync === 0;
    }
  }
  await settle();
  if (!changed) assert.equal(snapshot(r), before, `K3: ${ctx} failed, and must change nothing`);
  expectSame(m, r, ctx);
}

/** Every registered hook, and only those, is called out to by a new activation, in order (K14.3, K16.4). */
async function probeHooks(w: World): Promise<void> {
  await new Activate('probe', false, 'none').run(w.m, w.r);
  const cid = w.m.hiwater; // the probe took the only free cid (4)
  assert.equal(w.r.kernel.status(cid)?.name, 'probe');
  await new Deactivate(cid).run(w.m, w.r);
  const calls = w.r.log.filter((e) => e.t === 'callout' && e.cid === cid).map((e) => e.t === 'callout' && [e.flags, e.hook]);
  const hooks = w.m.hooks.map((h) => h.id);
  assert.deepStrictEqual(calls, [...hooks.map((h) => [1, h]), ...hooks.toReversed().map((h) => [2, h])]);
}

test('K3: garbage into every facade function of open and closed owners', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(callArb, { minLength: 1, maxLength: 12 }), async (calls) => {
      const w = await world();
      for (const c of calls) await perform(w, c);
      await probeHooks(w);
      // Every TRY ends, with a number (the longest timeout is 2147483 s).
      await new Advance(2147484 * 1000).run(w.m, w.r);
      for (const [id, s] of w.r.tries) assert.equal(s.s === 'resolved' && typeof s.v, 'number', `TRY #${id} settled with a number`);
    }),
    { numRuns: runs(3000) },
  );
});

test('K3: every facade function, every owner, every single garbage value in every position', async () => {
  const w = await world();
  const base = w.m.hooks.length;
  for (let slot = 0; slot < 4; slot++) {
    for (const x of GARBAGE) {
      const valid = (n: unknown) => ({ label: fmt(n), make: () => n, hookp: 'invalid' as const });
      const calls: Call[] = [
        { fn: 'kwpar_reghook', slot, args: [x, valid(0)] },
        { fn: 'kwpar_reghook', slot, args: [valid(SPEC.WPAR_NOTIFY_HOOK), x] },
        { fn: 'kwpar_unreghook', slot, args: [x] },
        { fn: 'kwpar_checkpoint_status', slot, args: [x, valid(DENY), valid('r')] },
        { fn: 'kwpar_checkpoint_status', slot, args: [valid(4), x, valid('r')] },
        { fn: 'kwpar_checkpoint_status', slot, args: [valid(4), valid(DENY), x] },
        { fn: 'kwpar_checkpoint_status', slot, args: [valid(4), valid(TRY), x] },
        { fn: 'kwpar_checkpoint_status', slot, args: [x, valid(TRY), valid(0)] },
        { fn: 'kwpar_checkpoint_status', slot, args: [x, x, x] },
      ];
      for (const c of calls) {
        await perform(w, c);
        // Keep the hook table from filling up: undo any registration the call made.
        for (const h of w.m.hooks.slice(base)) {
          const ret = w.r.owner(h.slot, false).kwpar_unreghook(h.key);
          assert.equal(ret, w.m.unreghook(h.slot, false, h.key));
        }
      }
    }
  }
  await probeHooks(w);
  expectSame(w.m, w.r, 'after every garbage value');
});

test('K3: two kernels share nothing: keys of one mean nothing to the other', async () => {
  const w = await world();
  const other = new Real(CFG);
  for (const key of w.r.issuedKeys) {
    assert.equal(other.kernel.services.kwpar_unreghook(key), EINVAL);
    assert.equal(other.owner(1, false).kwpar_unreghook(key), EINVAL);
  }
  assert.equal(other.owner(1, false).kwpar_checkpoint_status(1, ALLOW), ENOENT);
  assert.deepStrictEqual(other.kernel.list(), []);
  assert.equal(other.kernel.hiwater, 0);
  assert.equal(other.log.length, 0);
});

/** K10: the first failing check decides. Each case: [description, owner slot, kcid, cmd, varp, errno]. */
const ORDER: readonly [string, number, unknown, unknown, unknown, number][] = [
  ['invalid cmd + invalid cid', 1, 0, 99, undefined, EINVAL],
  ['invalid cmd + non-existent WPAR', 1, 4, 0, 'r', EINVAL],
  ['invalid cmd + WPAR checkpointing (would be EBUSY)', 1, 3, 6, 'r', EINVAL],
  ["cmd '3' (a string) is not TRY: EINVAL, synchronously", 1, 1, '3', 5, EINVAL],
  ['cmd new Number(1) is not DENY', 1, 1, new Number(1), 'r', EINVAL],
  ['cmd 1n is not DENY', 1, 1, 1n, 'r', EINVAL],
  ['DENY, invalid cid + invalid varp', 1, -1, DENY, '', EINVAL],
  ['DENY, cid 2^31 (out of range)', 1, 2 ** 31, DENY, 'r', EINVAL],
  ['DENY, cid 2^31-1 (valid, no WPAR)', 1, 2 ** 31 - 1, DENY, 'r', ENOENT],
  ['DENY, cid 1.5', 1, 1.5, DENY, 'r', EINVAL],
  ["DENY, cid '1'", 1, '1', DENY, 'r', EINVAL],
  ['DENY, cid 1n', 1, 1n, DENY, 'r', EINVAL],
  ['DENY, cid -0', 1, -0, DENY, 'r', EINVAL],
  ['DENY, bad varp, non-existent WPAR: EINVAL, not ENOENT', 1, 4, DENY, '', EINVAL],
  ['DENY, varp a number, non-existent WPAR', 1, 4, DENY, 5, EINVAL],
  ['DENY, varp 1025 characters, WPAR checkpointing: EINVAL, not EBUSY', 1, 3, DENY, 'x'.repeat(1025), EINVAL],
  ['DENY, varp missing, WPAR pending', 1, 1, DENY, undefined, EINVAL],
  ['DENY, varp new String("r")', 1, 1, DENY, new String('r'), EINVAL],
  ['DENY, varp 1024 characters, non-existent WPAR: ENOENT', 1, 4, DENY, 'x'.repeat(1024), ENOENT],
  ['DENY, valid, WPAR checkpointing', 1, 3, DENY, 'r', EBUSY],
  ['ALLOW ignores varp (a hostile proxy): removes ext-a\'s denial', 1, 1, ALLOW, new Proxy({}, {
    get: () => {
      throw new Error('x');
    },
  }), 0],
  ['ALLOW, no denial of this owner there', 2, 2, ALLOW, undefined, EINVAL],
  ['ALLOW ignores varp, non-existent WPAR', 2, 4, ALLOW, '', ENOENT],
  ['ALLOW, WPAR checkpointing', 2, 3, ALLOW, undefined, EINVAL],
  ['CLEAR ignores varp (a symbol): WPAR checkpointing', 1, 3, CLEAR, Symbol('s'), 0],
  ['CLEAR, WPAR pending', 1, 1, CLEAR, undefined, EINVAL],
  ['RESTART_CLEAR ignores varp (-1): WPAR restarting', 1, 2, RESTART_CLEAR, -1, 0],
  ['CLEAR, invalid cid beats non-existent', 1, 0, CLEAR, undefined, EINVAL],
  ['RESTART_CLEAR, non-existent WPAR', 1, 4, RESTART_CLEAR, 'x', ENOENT],
  ['RESTART_CLEAR, WPAR checkpointing', 1, 3, RESTART_CLEAR, undefined, EINVAL],
  ['closed owner, valid DENY', CLOSED, 1, DENY, 'r', EPERM],
  ['closed owner, valid ALLOW on a non-existent WPAR', CLOSED, 4, ALLOW, undefined, EPERM],
];

/** TRY cases (the answer is a promise): [description, slot, kcid, varp, errno]. */
const TRY_ORDER: readonly [string, number, unknown, unknown, number][] = [
  ['TRY, invalid cid + invalid varp', 1, 0, -1, EINVAL],
  ['TRY, bad varp on a pending WPAR: EINVAL, not EBUSY', 1, 1, -1, EINVAL],
  ['TRY, varp 1.5', 1, 1, 1.5, EINVAL],
  ["TRY, varp '1'", 1, 1, '1', EINVAL],
  ['TRY, varp 2147484 (too long)', 1, 2, 2147484, EINVAL],
  ['TRY, varp NaN', 1, 4, Number.NaN, EINVAL],
  ['TRY, varp Infinity', 1, 4, Number.POSITIVE_INFINITY, EINVAL],
  ['TRY, varp missing', 1, 4, undefined, EINVAL],
  ['TRY, varp 1n', 1, 4, 1n, EINVAL],
  ['TRY, varp 2147483 (the longest), non-existent WPAR', 1, 4, 2147483, ENOENT],
  ['TRY, valid, non-existent WPAR', 1, 4, 0, ENOENT],
  ['TRY, cid 2^31', 1, 2 ** 31, 0, EINVAL],
  ['TRY, WPAR pending (another TRY waits)', 1, 1, 1, EBUSY],
  ['TRY, WPAR restarting', 1, 2, 1, EBUSY],
  ['TRY, WPAR checkpointing', 1, 3, 0, EBUSY],
  ['TRY, closed owner', CLOSED, 4, 0, EPERM],
];

test('K10: the checks run in order; the first that fails decides', async (t) => {
  for (const [what, slot, kcid, cmd, varp, errno] of ORDER) {
    await t.test(what, async () => {
      const w = await world();
      const before = snapshot(w.r);
      const ret = w.r.owner(slot, false).kwpar_checkpoint_status(kcid as number, cmd as number, varp as string);
      assert.equal(ret, errno);
      await settle();
      if (errno !== 0) assert.equal(snapshot(w.r), before, 'a failed call changes nothing');
    });
  }
  for (const [what, slot, kcid, varp, errno] of TRY_ORDER) {
    await t.test(what, async () => {
      const w = await world();
      const before = snapshot(w.r);
      const p: unknown = w.r.owner(slot, false).kwpar_checkpoint_status(kcid as number, TRY, varp as number);
      assert.ok(p instanceof Promise, 'TRY returns a Promise');
      assert.equal(await p, errno);
      assert.equal(snapshot(w.r), before, 'a failed call changes nothing');
    });
  }
});

test('K10.3: TRY varp -0 is 0 seconds; a DENY reason of 1 and of 1024 characters is valid', async () => {
  const w = await world();
  await new Checkpoint(1, false, 1, DENY, 'x'.repeat(1024)).run(w.m, w.r);
  await new Checkpoint(2, false, 1, DENY, 'y').run(w.m, w.r);
  await new Checkpoint(0, false, 3, CLEAR, undefined).run(w.m, w.r);
  await new Checkpoint(0, false, 3, DENY, 'z').run(w.m, w.r);
  const p = w.r.owner(0, false).kwpar_checkpoint_status(3, TRY, -0);
  assert.equal(await p, ETIMEDOUT, 'denials and timeout -0 (= 0): ETIMEDOUT at once');
  assert.equal(w.r.kernel.status(3)?.phase, 'normal');
});

test('K13: a closed owner: BADREGKEY and EPERM whatever the arguments', async () => {
  const w = await world();
  const owner = w.r.owner(CLOSED, false);
  for (const x of GARBAGE) {
    const mk = () => x.make(w.r.hookFn(-1, 'ok', owner, { key: 0 }) as (...a: unknown[]) => unknown);
    assert.equal(owner.kwpar_reghook(1, mk() as never), BADREGKEY, `reghook(1, ${x.label})`);
    assert.equal(owner.kwpar_reghook(mk() as number, { current_hiwater: 0, configp: () => 0 }), BADREGKEY);
    assert.equal(owner.kwpar_unreghook(mk() as number), EPERM, `unreghook(${x.label})`);
    assert.equal(owner.kwpar_checkpoint_status(1, ALLOW, mk() as string), EPERM);
    assert.equal(owner.kwpar_checkpoint_status(mk() as number, ALLOW), EPERM, `cps(${x.label}, ALLOW)`);
    assert.equal(await owner.kwpar_checkpoint_status(mk() as number, TRY, 0), EPERM, `cps(${x.label}, TRY, 0)`);
  }
  expectSame(w.m, w.r, 'closed owner');
});

test('K14.1: activate() and deactivate() reject garbage with a WparError and change nothing', async () => {
  const w = await world();
  const before = snapshot(w.r);
  const bad: unknown[] = [
    undefined, null, 42, 'w9', Symbol('s'), 1n, [], () => 0, {}, { name: 5 }, { name: '' }, { name: '-x' },
    { name: 'x'.repeat(65) }, { name: 'w-pending' }, { name: 'w 9' },
    new Proxy({}, { get: () => { throw new Error('hostile'); } }),
    { get name(): string { throw new Error('hostile getter'); } },
  ];
  for (const c of bad) {
    let p: Promise<number> | undefined;
    assert.doesNotThrow(() => {
      p = w.r.kernel.activate(c as never);
    }, `activate(${fmt(c)}) does not throw`);
    await assert.rejects(p!, (e: unknown) => e instanceof WparError && (e.code === 'EINVAL' || e.code === 'EEXIST'), `activate(${fmt(c)})`);
  }
  for (const cid of [undefined, null, 0, -1, 1.5, 4, 2 ** 31, '1', 1n, Number.NaN, {}]) {
    let p: Promise<void> | undefined;
    assert.doesNotThrow(() => {
      p = w.r.kernel.deactivate(cid as number);
    }, `deactivate(${fmt(cid)}) does not throw`);
    await assert.rejects(p!, (e: unknown) => e instanceof WparError && e.code === 'ENOENT', `deactivate(${fmt(cid)})`);
  }
  await settle();
  assert.equal(snapshot(w.r), before);
});

test('kernel.services cannot be closed: trying leaves it working', async () => {
  const w = await world();
  try {
    w.r.kernel.services.close();
  } catch (err) {
    assert.ok(err instanceof WparError, 'a refusal is a WparError');
  }
  await new Reghook(0, false, 1, 'ok', 'ok').run(w.m, w.r);
  await new Checkpoint(0, false, 2, DENY, 'still here').run(w.m, w.r);
  await probeHooks(w);
});
