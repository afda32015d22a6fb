// K10–K13: kwpar_checkpoint_status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createKernel, EBUSY, EINVAL, ENOENT, EPERM, ETIMEDOUT, BADREGKEY, WPAR_NOTIFY_HOOK,
  WPAR_CHECKPOINT_ALLOW as ALLOW, WPAR_CHECKPOINT_CLEAR as CLEAR, WPAR_CHECKPOINT_DENY as DENY,
  WPAR_CHECKPOINT_TRY as TRY, WPAR_RESTART_CLEAR as RESTART_CLEAR, type Kernel, type Owner,
} from '../../src/index.ts';
import { FakeClock, settle } from '../support/fake-clock.ts';

interface Setup { k: Kernel; clock: FakeClock; x: Owner; y: Owner; cid: number; pendingTry?: Promise<number>; release?: () => void }

/** One WPAR in each column of the K11 table; owner x holds one denial where the column allows it. */
const columns: Record<string, () => Promise<Setup>> = {
  async normal() {
    const s = await base();
    assert.equal(s.x.kwpar_checkpoint_status(s.cid, DENY, 'x1'), 0);
    return s;
  },
  async pending() {
    const s = await columns.normal!();
    s.pendingTry = s.k.services.kwpar_checkpoint_status(s.cid, TRY, 100);
    assert.equal(s.k.status(s.cid)!.phase, 'pending');
    return s;
  },
  async checkpointing() {
    const s = await base();
    assert.equal(await s.k.services.kwpar_checkpoint_status(s.cid, TRY, 0), 0);
    return s;
  },
  async restarting() {
    const s = await base({ restart: true });
    assert.equal(s.x.kwpar_checkpoint_status(s.cid, DENY, 'x1'), 0);
    return s;
  },
  async starting() {
    const clock = new FakeClock();
    const k = createKernel({ clock });
    let release!: () => void;
    k.services.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: () => new Promise<number>((r) => { release = () => r(0); }) });
    void k.activate({ name: 'w' });
    const x = k.extension('x');
    assert.equal(x.kwpar_checkpoint_status(1, DENY, 'x1'), 0);
    assert.equal(k.status(1)!.state, 'starting');
    return { k, clock, x, y: k.extension('y'), cid: 1, release };
  },
};

async function base(opts: { restart?: boolean } = {}): Promise<Setup> {
  const clock = new FakeClock();
  const k = createKernel({ clock });
  const cid = await k.activate({ name: 'w' }, opts);
  return { k, clock, x: k.extension('x'), y: k.extension('y'), cid };
}

// [command, column, expected return, expected phase after, expected denial reasons after]
const K11: [string, string, number, string, string[]][] = [
  ['DENY', 'normal', 0, 'normal', ['x1', 'x2']],
  ['DENY', 'pending', 0, 'pending', ['x1', 'x2']],
  ['DENY', 'checkpointing', EBUSY, 'checkpointing', []],
  ['DENY', 'restarting', 0, 'restarting', ['x1', 'x2']],
  ['DENY', 'starting', 0, 'normal', ['x1', 'x2']],
  ['ALLOW', 'normal', 0, 'normal', []],
  ['ALLOW', 'pending', 0, 'checkpointing', []],
  ['ALLOW', 'checkpointing', EINVAL, 'checkpointing', []],
  ['ALLOW', 'restarting', 0, 'restarting', []],
  ['ALLOW', 'starting', 0, 'normal', []],
  ['CLEAR', 'normal', EINVAL, 'normal', ['x1']],
  ['CLEAR', 'pending', EINVAL, 'pending', ['x1']],
  ['CLEAR', 'checkpointing', 0, 'normal', []],
  ['CLEAR', 'restarting', EINVAL, 'restarting', ['x1']],
  ['CLEAR', 'starting', EBUSY, 'normal', ['x1']],
  ['RESTART_CLEAR', 'normal', EINVAL, 'normal', ['x1']],
  ['RESTART_CLEAR', 'pending', EINVAL, 'pending', ['x1']],
  ['RESTART_CLEAR', 'checkpointing', EINVAL, 'checkpointing', []],
  ['RESTART_CLEAR', 'restarting', 0, 'normal', ['x1']],
  ['RESTART_CLEAR', 'starting', EBUSY, 'normal', ['x1']],
];
const CMD: Record<string, number> = { DENY, ALLOW, CLEAR, RESTART_CLEAR };

for (const [cmd, column, expected, phase, reasons] of K11) {
  test(`K11: ${cmd} in ${column} → ${expected === 0 ? '0' : expected === EBUSY ? 'EBUSY' : 'EINVAL'}, phase ${phase}`, async () => {
    const s = await columns[column]!();
    assert.equal(s.x.kwpar_checkpoint_status(s.cid, CMD[cmd]!, 'x2'), expected);
    const st = s.k.status(s.cid)!;
    assert.equal(st.phase, phase);
    assert.deepEqual(st.denials.map((d) => d.reason), reasons);
    if (s.pendingTry) {
      s.clock.advance(100_000);
      assert.equal(await s.pendingTry, phase === 'checkpointing' ? 0 : ETIMEDOUT);
    }
    s.release?.();
  });
}

for (const column of ['pending', 'checkpointing', 'restarting', 'starting']) {
  test(`K11: TRY in ${column} → EBUSY and changes nothing`, async () => {
    const s = await columns[column]!();
    const before = s.k.status(s.cid);
    assert.equal(await s.y.kwpar_checkpoint_status(s.cid, TRY, 5), EBUSY);
    assert.deepEqual(s.k.status(s.cid), before);
    s.release?.();
  });
}

for (const column of ['normal', 'pending', 'restarting', 'starting']) {
  test(`K11*: ALLOW by an owner with no denial there → EINVAL; another owner's denial stays (${column})`, async () => {
    const s = await columns[column]!();
    assert.equal(s.y.kwpar_checkpoint_status(s.cid, ALLOW), EINVAL);
    assert.deepEqual(s.k.status(s.cid)!.denials.map((d) => [d.owner, d.reason]), [['x', 'x1']]);
    s.release?.();
  });
}

test('K11*: ALLOW removes the oldest denial of the same owner', async () => {
  const s = await base();
  for (const [o, r] of [[s.x, 'x1'], [s.y, 'y1'], [s.x, 'x2']] as const) o.kwpar_checkpoint_status(s.cid, DENY, r);
  assert.equal(s.x.kwpar_checkpoint_status(s.cid, ALLOW), 0);
  assert.deepEqual(s.k.status(s.cid)!.denials.map((d) => d.reason), ['y1', 'x2']);
});

test('K11: denials record owner, reason and since (epoch ms)', async () => {
  const s = await base();
  s.clock.epoch = 1_800_000_000_123 - s.clock.elapsed;
  s.x.kwpar_checkpoint_status(s.cid, DENY, 'open device');
  assert.deepEqual(s.k.status(s.cid)!.denials, [{ owner: 'x', reason: 'open device', since: 1_800_000_000_123 }]);
});

test('K11†: the last ALLOW hands over to the waiting TRY in the same step: no DENY slips in', async () => {
  const s = await columns.pending!();
  assert.equal(s.x.kwpar_checkpoint_status(s.cid, ALLOW), 0);
  assert.equal(s.y.kwpar_checkpoint_status(s.cid, DENY, 'too late'), EBUSY, 'already checkpointing, synchronously');
  assert.equal(await s.pendingTry, 0);
  assert.equal(s.clock.pending, 0, 'the TRY timer was cancelled');
});

test('K11: cumulative denials: each DENY needs its ALLOW before the TRY proceeds', async () => {
  const s = await base();
  for (let i = 0; i < 3; i++) s.x.kwpar_checkpoint_status(s.cid, DENY, `d${i}`);
  let result: number | undefined;
  void s.k.services.kwpar_checkpoint_status(s.cid, TRY, 60).then((r) => { result = r; });
  for (let i = 0; i < 2; i++) { s.x.kwpar_checkpoint_status(s.cid, ALLOW); await settle(); assert.equal(result, undefined); }
  s.x.kwpar_checkpoint_status(s.cid, ALLOW);
  await settle();
  assert.equal(result, 0);
});

test('K12: no denial → checkpointing and 0, also with timeout 0', async () => {
  for (const timeout of [0, 30]) {
    const s = await base();
    assert.equal(await s.y.kwpar_checkpoint_status(s.cid, TRY, timeout), 0);
    assert.equal(s.k.status(s.cid)!.phase, 'checkpointing');
  }
});

test('K12: denials and timeout 0 → ETIMEDOUT at once, phase stays normal', async () => {
  const s = await columns.normal!();
  assert.equal(await s.y.kwpar_checkpoint_status(s.cid, TRY, 0), ETIMEDOUT);
  assert.equal(s.k.status(s.cid)!.phase, 'normal');
  assert.equal(s.clock.pending, 0);
});

test('K12: a waiting TRY times out no earlier than its timeout; denials untouched; one timer, no polling', async () => {
  const s = await columns.normal!();
  let result: number | undefined;
  void s.y.kwpar_checkpoint_status(s.cid, TRY, 3).then((r) => { result = r; });
  assert.equal(s.clock.pending, 1);
  s.clock.advance(2999);
  await settle();
  assert.equal(result, undefined);
  assert.equal(s.k.status(s.cid)!.phase, 'pending');
  s.clock.advance(1);
  await settle();
  assert.equal(result, ETIMEDOUT);
  assert.equal(s.k.status(s.cid)!.phase, 'normal');
  assert.deepEqual(s.k.status(s.cid)!.denials.map((d) => d.reason), ['x1']);
});

test('K12: a timer that fires early by the monotonic clock is re-armed, not trusted', async () => {
  const s = await columns.normal!();
  let result: number | undefined;
  void s.y.kwpar_checkpoint_status(s.cid, TRY, 2).then((r) => { result = r; });
  s.clock.skew = -5; // the timer will fire when the monotonic clock reads 5 ms short of the deadline
  s.clock.advance(2000);
  await settle();
  assert.equal(result, undefined);
  s.clock.advance(5);
  await settle();
  assert.equal(result, ETIMEDOUT);
});

test('K12 (real clock): ETIMEDOUT never before the timeout and normally within 100 ms after', async () => {
  const k = createKernel();
  const cid = await k.activate({ name: 'w' });
  k.extension('x').kwpar_checkpoint_status(cid, DENY, 'busy');
  const t0 = performance.now();
  assert.equal(await k.services.kwpar_checkpoint_status(cid, TRY, 1), ETIMEDOUT);
  const waited = performance.now() - t0;
  assert.ok(waited >= 1000 && waited < 1100, `waited ${waited} ms`);
});

test('K12/K13: a TRY waiting when the WPAR starts stopping resolves ENOENT; denials are dropped', async () => {
  const s = await columns.pending!();
  const stopping = s.k.deactivate(s.cid);
  assert.equal(await s.pendingTry, ENOENT);
  await stopping;
  assert.equal(s.k.status(s.cid), undefined);
  assert.equal(s.clock.pending, 0);
});

test('K13: closing an owner releases its denials, which can complete a waiting TRY', async () => {
  const s = await columns.pending!();
  s.x.close();
  assert.equal(s.k.status(s.cid)!.phase, 'checkpointing');
  assert.equal(await s.pendingTry, 0);
});

test('K13: a closed owner: reghook BADREGKEY, unreghook and checkpoint_status EPERM', async () => {
  const s = await base();
  const key = s.x.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: () => 0 });
  s.x.close();
  assert.equal(s.x.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: () => 0 }), BADREGKEY);
  assert.equal(s.x.kwpar_unreghook(key), EPERM);
  assert.equal(s.x.kwpar_checkpoint_status(s.cid, DENY, 'r'), EPERM);
  assert.equal(await s.x.kwpar_checkpoint_status(s.cid, TRY, 1), EPERM);
  assert.equal(s.y.kwpar_unreghook(key), EINVAL, 'the hook was unregistered by the close');
});

test('K10: checks run in order; the first failure decides', async () => {
  const s = await base();
  assert.equal(s.x.kwpar_checkpoint_status(999, 42), EINVAL, '1. bad cmd before bad cid');
  assert.equal(s.x.kwpar_checkpoint_status(0, DENY, 'r'), EINVAL, '2. cid 0 is the global environment');
  assert.equal(s.x.kwpar_checkpoint_status(2 ** 31, DENY, 'r'), EINVAL, '2. cid out of range');
  assert.equal(s.x.kwpar_checkpoint_status(77, DENY, ''), EINVAL, '3. empty reason before ENOENT');
  assert.equal(s.x.kwpar_checkpoint_status(77, DENY, 'a'.repeat(1025)), EINVAL, '3. reason too long');
  assert.equal(s.x.kwpar_checkpoint_status(77, DENY, 'a'.repeat(1024)), ENOENT, '4. no such WPAR');
  assert.equal(await s.x.kwpar_checkpoint_status(77, TRY, -1), EINVAL, '3. negative timeout');
  assert.equal(await s.x.kwpar_checkpoint_status(77, TRY, 1.5), EINVAL, '3. fractional timeout');
  assert.equal(await s.x.kwpar_checkpoint_status(77, TRY, 2147484), EINVAL, '3. timeout too large');
  assert.equal(await s.x.kwpar_checkpoint_status(77, TRY, 2147483), ENOENT, '4. largest timeout is valid');
  assert.equal(s.x.kwpar_checkpoint_status(s.cid, CLEAR, { ignored: true } as unknown as string), EINVAL, '5. CLEAR ignores varp');
  assert.equal(s.x.kwpar_checkpoint_status(s.cid, DENY, 'a'.repeat(1024)), 0);
});

test('K10.4: a stopping WPAR has left: ENOENT while its subsystems stop', async () => {
  const clock = new FakeClock();
  const k = createKernel({ clock });
  let release!: () => void;
  k.use({ name: 'slow', start() {}, stop: () => new Promise<void>((r) => { release = r; }) });
  const cid = await k.activate({ name: 'w' });
  const stopped = k.deactivate(cid);
  assert.equal(k.status(cid)!.state, 'stopping');
  assert.equal(k.services.kwpar_checkpoint_status(cid, DENY, 'r'), ENOENT);
  assert.equal(await k.services.kwpar_checkpoint_status(cid, TRY, 1), ENOENT);
  release();
  await stopped;
});
