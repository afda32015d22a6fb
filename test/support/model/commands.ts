/**
 * fast-check commands for the model-based test. Each command acts on the model and on the kernel,
 * lets promise work settle, then compares everything observable (see check.ts). Commands choose
 * their targets by index modulo what exists, so any subsequence is still a valid sequence and
 * failures shrink to short, readable programs.
 * @module
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WparError } from '../../../src/index.ts';
import { expectSame } from './check.ts';
import { settle } from '../fake-clock.ts';
import type { GateMode, HookKind, LogEntry, Model } from './model.ts';
import { track, type Real } from './real.ts';
import { BADREGKEY, DENY, SPEC, TRY } from './spec.ts';

export type Cmd = fc.AsyncCommand<Model, Real>;

/** A short, unambiguous rendering of a test value. */
export function fmt(v: unknown): string {
  if (typeof v === 'string') return v.length > 12 ? `'${v[0] ?? ''}'.repeat(${v.length})` : JSON.stringify(v);
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return v.toString();
  if (v === undefined) return 'undefined';
  try {
    return fc.stringify(v);
  } catch {
    return '<hostile value>';
  }
}

function slotName(slot: number, stale: boolean): string {
  return `${['K', 'A', 'B', 'C', 'D'][slot] ?? `o${slot}`}${stale ? "'" : ''}`;
}

/** Runs `fn`; a synchronous throw from the kernel is a K3 violation. */
function noThrow<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    assert.fail(`K3: ${what} threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  }
}

async function finish(m: Model, r: Real, ctx: string): Promise<void> {
  await settle();
  // Hooks registered from inside callouts: the model learns the keys the kernel gave them.
  while (m.unkeyed.length > 0 && r.nestedKeys.length > 0) m.unkeyed.shift()!.key = r.nestedKeys.shift()!;
  expectSame(m, r, ctx);
}

export class Activate implements Cmd {
  readonly name: string;
  readonly restart: boolean;
  readonly gate: GateMode;
  constructor(name: string, restart: boolean, gate: GateMode) {
    this.name = name;
    this.restart = restart;
    this.gate = gate;
  }
  check(): boolean {
    return true;
  }
  /** The synchronous part: acts on the model and the kernel; returns a description. */
  act(m: Model, r: Real): string {
    const id = r.nextId();
    m.activate(id, this.name, this.restart, this.gate);
    const corral = r.corral(this.name, this.gate);
    const p = noThrow('activate()', () => r.kernel.activate(corral, this.restart ? { restart: true } : {}));
    assert.ok(p instanceof Promise, 'activate() returns a Promise');
    track(p, r.acts, id);
    // K17: the caller cannot change the kernel's copy.
    corral.name = 'mutated';
    corral.extra.n = 2;
    corral.extra.list.push(3);
    return `${this} (#${id})`;
  }
  async run(m: Model, r: Real): Promise<void> {
    await finish(m, r, this.act(m, r));
  }
  toString(): string {
    return `activate(${fmt(this.name)}${this.restart ? ', restart' : ''}${this.gate === 'none' ? '' : `, gate:${this.gate}`})`;
  }
}

/** Hook kinds whose callouts touch nothing shared, so concurrent activations may interleave them freely. */
const BURST_SAFE: ReadonlySet<HookKind> = new Set<HookKind>(['ok', 'async', 'veto', 'throw', 'reject', 'deny']);

function perCid(entries: readonly LogEntry[]): Map<number, LogEntry[]> {
  const out = new Map<number, LogEntry[]>();
  for (const e of entries) out.set(e.cid, [...(out.get(e.cid) ?? []), e]);
  return out;
}

/** Several activate() calls in one synchronous step (K1, K14.1: names and cids are taken at once). */
export class ActivateBurst implements Cmd {
  readonly items: readonly Activate[];
  sequential = false;
  constructor(items: readonly Activate[]) {
    this.items = items;
  }
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    // With hooks that change shared state from inside callouts, the interleaving would decide the outcome.
    this.sequential = !m.hooks.every((h) => BURST_SAFE.has(h.kind));
    if (this.sequential) {
      for (const a of this.items) await a.run(m, r);
      return;
    }
    const logStart = m.log.length;
    const batch = this.items.map((a) => ({ actId: r.nextId(), name: a.name, restart: a.restart, gate: a.gate }));
    m.activateBurst(batch);
    for (const it of batch) {
      const c = r.corral(it.name, it.gate);
      const p = noThrow('activate()', () => r.kernel.activate(c, it.restart ? { restart: true } : {}));
      assert.ok(p instanceof Promise, 'activate() returns a Promise');
      track(p, r.acts, it.actId);
      c.name = 'mutated';
      c.extra.n = 2;
    }
    await settle();
    const ctx = `${this} (#${batch.map((b) => b.actId).join(',#')})`;
    assert.deepStrictEqual(perCid(r.log.slice(logStart)), perCid(m.log.slice(logStart)), `${ctx}: callouts per WPAR`);
    // The interleaving across WPARs is the kernel's to choose: adopt it.
    m.log.splice(logStart, m.log.length - logStart, ...r.log.slice(logStart).map((e) => ({ ...e })));
    await finish(m, r, ctx);
  }
  toString(): string {
    return `burst[${this.items.map(String).join(', ')}]${this.sequential ? ' /* run one by one */' : ''}`;
  }
}

export class Deactivate implements Cmd {
  readonly cid: unknown;
  constructor(cid: unknown) {
    this.cid = cid;
  }
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const id = r.nextId();
    const before = typeof this.cid === 'number' ? m.wpars.get(this.cid) : undefined;
    const sameAs = before !== undefined && before.state === 'stopping' && !before.limbo ? before.stopOrigin : undefined;
    m.deactivate(id, this.cid);
    const p = noThrow('deactivate()', () => r.kernel.deactivate(this.cid as number));
    assert.ok(p instanceof Promise, 'deactivate() returns a Promise');
    r.deactPromises.set(id, p);
    track(p, r.deacts, id);
    if (sameAs !== undefined) {
      assert.equal(p, r.deactPromises.get(sameAs), `K16.1: ${this}: a second deactivate of a stopping WPAR returns the same promise (#${sameAs})`);
    }
    await finish(m, r, `${this} (#${id})`);
  }
  toString(): string {
    return `deactivate(${fmt(this.cid)})`;
  }
}

export class Release implements Cmd {
  readonly index: number;
  readonly fail: boolean;
  last = '';
  constructor(index: number, fail: boolean) {
    this.index = index;
    this.fail = fail;
  }
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const keys = m.gateKeys();
    this.last = keys.length === 0 ? 'nothing held' : keys[this.index % keys.length]!;
    if (keys.length > 0) {
      const key = this.last;
      m.release(key, this.fail);
      const g = r.gates.get(key);
      assert.ok(g, `${this}: the kernel has not called the subsystem step ${key}`);
      r.gates.delete(key);
      if (this.fail && key.endsWith(':start')) g.reject(new Error('gate subsystem refuses to start'));
      else g.resolve();
    }
    await finish(m, r, String(this));
  }
  toString(): string {
    return `release(${this.index}${this.fail ? ', fail' : ''})${this.last ? ` /* ${this.last} */` : ''}`;
  }
}

export type HookpShape = 'ok' | 'null' | 'number' | 'no-configp' | 'configp-not-fn';

export class Reghook implements Cmd {
  readonly slot: number;
  readonly stale: boolean;
  readonly hooktype: unknown;
  readonly hookp: HookpShape;
  readonly kind: HookKind;
  constructor(slot: number, stale: boolean, hooktype: unknown, hookp: HookpShape, kind: HookKind) {
    this.slot = slot;
    this.stale = stale;
    this.hooktype = hooktype;
    this.hookp = hookp;
    this.kind = kind;
  }
  check(): boolean {
    return true;
  }
  /** The synchronous part: acts on the model and the kernel; returns a description. */
  act(m: Model, r: Real): string {
    const typeOk = this.hooktype === SPEC.WPAR_NOTIFY_HOOK;
    const h = m.reghook(this.slot, this.stale, typeOk, this.hookp === 'ok', this.kind);
    const owner = r.owner(this.slot, this.stale);
    const keyRef = { key: 0 };
    const fn = r.hookFn(h === BADREGKEY ? -1 : h.id, this.kind, owner, keyRef);
    const hookp: unknown = this.hookp === 'ok' ? { current_hiwater: -5, configp: fn }
      : this.hookp === 'null' ? null
        : this.hookp === 'number' ? 42
          : this.hookp === 'no-configp' ? { current_hiwater: -5 }
            : { current_hiwater: -5, configp: 'fn' };
    const key = noThrow('kwpar_reghook', () => owner.kwpar_reghook(this.hooktype as number, hookp as never));
    if (h === BADREGKEY) {
      assert.equal(key, BADREGKEY, `K6/K13: ${this} returns BADREGKEY`);
    } else {
      assert.ok(Number.isInteger(key) && key > 0, `K5: ${this} returns a positive integer key, got ${fmt(key)}`);
      const last = r.issuedKeys.at(-1) ?? 0;
      assert.ok(key > last, `K5: keys strictly increase: ${key} after ${last}`);
      assert.equal((hookp as { current_hiwater: number }).current_hiwater, m.hiwater, `K4/K7: ${this} writes hiwater`);
      h.key = key;
      keyRef.key = key;
      r.issuedKeys.push(key);
      r.hooksMade++;
    }
    return `${this}${h === BADREGKEY ? '' : ` -> hook ${h.id}, key ${key}`}`;
  }
  async run(m: Model, r: Real): Promise<void> {
    await finish(m, r, this.act(m, r));
  }
  toString(): string {
    const type = this.hooktype === SPEC.WPAR_NOTIFY_HOOK ? '' : `type=${fmt(this.hooktype)}, `;
    const shape = this.hookp === 'ok' ? this.kind : `hookp=${this.hookp}`;
    return `${slotName(this.slot, this.stale)}.reghook(${type}${shape})`;
  }
}

/** A key to unregister: the n-th key ever issued, the next key not yet issued, or a bogus value. */
export type KeyChoice = { issued: number } | { next: true } | { bogus: unknown };

export class Unreghook implements Cmd {
  readonly slot: number;
  readonly stale: boolean;
  readonly choice: KeyChoice;
  last: unknown = undefined;
  constructor(slot: number, stale: boolean, choice: KeyChoice) {
    this.slot = slot;
    this.stale = stale;
    this.choice = choice;
  }
  check(): boolean {
    return true;
  }
  /** The synchronous part: acts on the model and the kernel; returns a description. */
  act(m: Model, r: Real): string {
    const c = this.choice;
    const keys = r.issuedKeys;
    const key = 'issued' in c ? (keys.length > 0 ? keys[c.issued % keys.length] : 1)
      : 'next' in c ? (keys.at(-1) ?? 0) + 1 : c.bogus;
    this.last = key;
    const expected = m.unreghook(this.slot, this.stale, key);
    const ret = noThrow('kwpar_unreghook', () => r.owner(this.slot, this.stale).kwpar_unreghook(key as number));
    assert.equal(ret, expected, `K8/K9/K13: ${this}`);
    return String(this);
  }
  async run(m: Model, r: Real): Promise<void> {
    await finish(m, r, this.act(m, r));
  }
  toString(): string {
    const c = this.choice;
    const what = 'issued' in c ? `issued[${c.issued}]` : 'next' in c ? 'never-issued' : fmt(c.bogus);
    return `${slotName(this.slot, this.stale)}.unreghook(${what}${this.last !== undefined && !('bogus' in c) ? ` = ${fmt(this.last)}` : ''})`;
  }
}

const CMD_NAMES: Record<number, string> = { 1: 'DENY', 2: 'ALLOW', 3: 'TRY', 4: 'CLEAR', 5: 'RESTART_CLEAR' };

export class Checkpoint implements Cmd {
  readonly slot: number;
  readonly stale: boolean;
  readonly cid: unknown;
  readonly cmd: unknown;
  readonly varp: unknown;
  constructor(slot: number, stale: boolean, cid: unknown, cmd: unknown, varp: unknown) {
    this.slot = slot;
    this.stale = stale;
    this.cid = cid;
    this.cmd = cmd;
    this.varp = varp;
  }
  check(): boolean {
    return true;
  }
  /** The synchronous part: acts on the model and the kernel; returns a description. */
  act(m: Model, r: Real): string {
    const id = r.nextId();
    const exp = m.checkpoint(id, this.slot, this.stale, this.cid, this.cmd, this.varp);
    const owner = r.owner(this.slot, this.stale);
    const ret: unknown = noThrow('kwpar_checkpoint_status', () =>
      owner.kwpar_checkpoint_status(this.cid as number, this.cmd as number, this.varp as string));
    const ctx = `${this} (#${id})`;
    if ('try' in exp) {
      assert.ok(ret instanceof Promise, `K3: ${ctx}: TRY returns a Promise, got ${fmt(ret)}`);
      m.noteTry(id, exp.try);
      track(ret, r.tries, id);
    } else {
      assert.equal(typeof ret, 'number', `K3: ${ctx}: returns a number synchronously, got ${fmt(ret)}`);
      if (exp.sync === 'oneOf') assert.ok(exp.vs.includes(ret as number), `${ctx}: returned ${fmt(ret)}, expected one of ${exp.vs.join('|')}`);
      else assert.equal(ret, exp.sync, `K10/K11: ${ctx}`);
    }
    return ctx;
  }
  async run(m: Model, r: Real): Promise<void> {
    await finish(m, r, this.act(m, r));
  }
  toString(): string {
    const cmd = typeof this.cmd === 'number' && CMD_NAMES[this.cmd] !== undefined ? CMD_NAMES[this.cmd] : `cmd=${fmt(this.cmd)}`;
    const varp = this.cmd === DENY || this.cmd === TRY || this.varp !== undefined ? `, ${fmt(this.varp)}` : '';
    return `${slotName(this.slot, this.stale)}.cps(${fmt(this.cid)}, ${cmd}${varp})`;
  }
}

/** An action with no asynchronous process behind it (so the model is exact within one tick). */
export type SyncAct = Reghook | Unreghook | Checkpoint | Close;

/**
 * Several calls in one synchronous step, with no settling in between (K11 †: no DENY slips in between
 * an ALLOW and the TRY's success; K7: an activation right after a registration calls the new hook).
 * An activate() may come last only: its callouts begin asynchronously.
 */
export class SameTick implements Cmd {
  readonly acts: readonly SyncAct[];
  readonly activate: Activate | undefined;
  constructor(acts: readonly SyncAct[], activate: Activate | undefined) {
    this.acts = acts;
    this.activate = activate;
  }
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const done: string[] = [];
    for (const a of [...this.acts, ...(this.activate ? [this.activate] : [])]) done.push(a.act(m, r));
    await finish(m, r, `same tick: ${done.join('; ')}`);
  }
  toString(): string {
    return `sameTick[${[...this.acts, ...(this.activate ? [this.activate] : [])].map(String).join('; ')}]`;
  }
}

export class Advance implements Cmd {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const expected = m.advance(this.ms);
    const fired = await r.clock.advanceSettled(this.ms);
    // K12: a waiting TRY spends no CPU polling: the only timers that fire are the deadlines themselves
    // (TRY timeouts, callout timeouts, and the test's slow hooks).
    assert.equal(fired, expected, `K12: ${this}: timers fired`);
    await finish(m, r, String(this));
  }
  toString(): string {
    return `advance(${this.ms})`;
  }
}

export class WallJump implements Cmd {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    m.wall += this.ms;
    r.clock.jumpWall(this.ms);
    await finish(m, r, String(this));
  }
  toString(): string {
    return `wallClockJump(${this.ms})`;
  }
}

export class Close implements Cmd {
  readonly slot: number;
  constructor(slot: number) {
    this.slot = slot;
  }
  check(): boolean {
    return true;
  }
  /** The synchronous part: acts on the model and the kernel; returns a description. */
  act(m: Model, r: Real): string {
    if (!m.owners[this.slot]!.closed) {
      m.close(this.slot);
      noThrow('Owner.close()', () => r.owners[this.slot]!.cur.close());
    }
    return String(this);
  }
  async run(m: Model, r: Real): Promise<void> {
    await finish(m, r, this.act(m, r));
  }
  toString(): string {
    return `${slotName(this.slot, false)}.close()`;
  }
}

export class Reopen implements Cmd {
  readonly slot: number;
  constructor(slot: number) {
    this.slot = slot;
  }
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const expected = m.reopen(this.slot);
    const o = r.owners[this.slot]!;
    const name = m.ownerName(this.slot);
    if (expected === 'EEXIST') {
      assert.throws(() => r.kernel.extension(name), (e: unknown) => e instanceof WparError && e.code === 'EEXIST',
        `${this}: opening an open name throws EEXIST`);
    } else {
      const fresh = noThrow('kernel.extension()', () => r.kernel.extension(name));
      o.stale = o.cur;
      o.cur = fresh;
    }
    await finish(m, r, String(this));
  }
  toString(): string {
    return `reopen(${slotName(this.slot, false)})`;
  }
}

/** Shapes of the generated programs. */
export interface CommandsConfig {
  readonly maxWpars: number;
  /** Number of owners: slot 0 is kernel.services, the rest extensions. */
  readonly owners: number;
  /** Relative weight of checkpoint commands and clock advances (the rest stay at their defaults). */
  readonly checkpointWeight: number;
  readonly lifecycleWeight: number;
}

const weighted = <T>(pairs: [number, fc.Arbitrary<T>][]): fc.Arbitrary<T> =>
  fc.oneof(...pairs.map(([weight, arbitrary]) => ({ weight, arbitrary })));

export function commandArbitraries(c: CommandsConfig): fc.Arbitrary<Cmd>[] {
  const slot = fc.integer({ min: 0, max: c.owners - 1 });
  const extSlot = fc.integer({ min: 1, max: c.owners - 1 });
  const stale = weighted([[5, fc.constant(false)], [1, fc.constant(true)]]);
  // Low cids are the ones most likely to be held (K1 allocates the lowest free cid).
  const cid = weighted<unknown>([
    [8, fc.constant(1)], [5, fc.constant(2)], [3, fc.integer({ min: 3, max: c.maxWpars + 1 })],
    [1, fc.constantFrom<unknown>(0, -1, 1.5, Number.NaN, '1', 2 ** 31, Number.POSITIVE_INFINITY, -0, null)],
  ]);
  const name = weighted([
    [12, fc.constantFrom('w0', 'w1', 'w2', 'w3', `L${'o'.repeat(62)}g`)],
    [1, fc.constantFrom('', '-w', '.w', 'w 1', 'w/1', `x${'y'.repeat(64)}`, 'wé')],
  ]);
  const gate = weighted<GateMode>([[6, fc.constant('none')], [2, fc.constant('start')], [2, fc.constant('stop')], [1, fc.constant('both')]]);
  const kind = weighted<HookKind>([
    [12, fc.constant('ok')], [3, fc.constant('async')], [1, fc.constant('veto')], [1, fc.constant('throw')],
    [1, fc.constant('hang')], [1, fc.constant('hangstop')], [3, fc.constant('deny')], [1, fc.constant('selfunreg')],
    [1, fc.constant('reg')], [1, fc.constant('reject')], [2, fc.constant('slow')],
  ]);
  const hooktype = weighted<unknown>([[10, fc.constant(SPEC.WPAR_NOTIFY_HOOK)], [1, fc.constantFrom<unknown>(0, 2, '1', 1.5, null)]]);
  const hookp = weighted<HookpShape>([[10, fc.constant('ok')], [1, fc.constantFrom<HookpShape>('null', 'number', 'no-configp', 'configp-not-fn')]]);
  const keyChoice = weighted<KeyChoice>([
    [8, fc.nat({ max: 20 }).map((issued) => ({ issued }))],
    [1, fc.constant({ next: true as const })],
    [1, fc.constantFrom<unknown>(0, -1, 1.5, Number.NaN, '1', 2 ** 53, undefined, BADREGKEY).map((bogus) => ({ bogus }))],
  ]);
  const cmd = weighted<unknown>([
    [5, fc.constant(SPEC.WPAR_CHECKPOINT_DENY)], [3, fc.constant(SPEC.WPAR_CHECKPOINT_ALLOW)],
    [4, fc.constant(SPEC.WPAR_CHECKPOINT_TRY)], [2, fc.constant(SPEC.WPAR_CHECKPOINT_CLEAR)],
    [1, fc.constant(SPEC.WPAR_RESTART_CLEAR)], [1, fc.constantFrom<unknown>(0, 6, '1', '3', 3.5, -3)],
  ]);
  const denyVarp = weighted<unknown>([
    [10, fc.constantFrom('r1', 'r2', 'x'.repeat(1024))],
    [1, fc.constantFrom<unknown>('', 'x'.repeat(1025), 7, undefined, null)],
  ]);
  const tryVarp = weighted<unknown>([
    [10, fc.constantFrom(0, 1, 1, 2, 2, 3, 5, 2147483)],
    [1, fc.constantFrom<unknown>(-1, 0.5, '1', Number.NaN, 2147484, undefined, Number.POSITIVE_INFINITY)],
  ]);
  const otherVarp = weighted<unknown>([[6, fc.constant(undefined)], [1, fc.constantFrom<unknown>('r1', 0, -1, null)]]);
  const checkpoint = fc.tuple(slot, stale, cid, cmd, denyVarp, tryVarp, otherVarp).map(([s, st, k, cm, dv, tv, ov]) =>
    new Checkpoint(s, st, k, cm, cm === DENY ? dv : cm === TRY ? tv : ov));
  const reghook = fc.tuple(slot, stale, hooktype, hookp, kind).map(([s, st, t, p, k]) => new Reghook(s, st, t, p, k));
  const unreghook = fc.tuple(slot, stale, keyChoice).map(([s, st, k]) => new Unreghook(s, st, k));
  const syncAct = weighted<SyncAct>([[6, checkpoint], [1, reghook], [1, unreghook], [1, extSlot.map((s) => new Close(s))]]);
  const activate = fc.tuple(name, weighted([[4, fc.constant(false)], [1, fc.constant(true)]]), gate)
    .map(([n, rs, g]) => new Activate(n, rs, g));
  const L = c.lifecycleWeight;
  const P = c.checkpointWeight;
  const arbs: [number, fc.Arbitrary<Cmd>][] = [
    [3 * L, activate],
    [1 * L, fc.array(fc.tuple(name, fc.boolean(), gate), { minLength: 2, maxLength: 4 })
      .map((xs) => new ActivateBurst(xs.map(([n, rs, g]) => new Activate(n, rs, g))))],
    [2.5 * L, cid.map((k) => new Deactivate(k))],
    [1.5 * L, fc.tuple(fc.nat({ max: 5 }), weighted([[3, fc.constant(false)], [1, fc.constant(true)]])).map(([i, f]) => new Release(i, f))],
    [3, reghook],
    [2, unreghook],
    [7 * P, checkpoint],
    [1.5 * P, fc.tuple(fc.array(syncAct, { minLength: 2, maxLength: 4 }), fc.option(activate, { freq: 4 }))
      .map(([acts, a]) => new SameTick(acts, a ?? undefined))],
    [2 * P, fc.constantFrom(1, 500, 999, 1000, 1500, 2000, 3000, 6000).map((ms) => new Advance(ms))],
    [0.25, fc.constantFrom(-3_600_000, 86_400_000).map((ms) => new WallJump(ms))],
    [1, extSlot.map((s) => new Close(s))],
    [1, extSlot.map((s) => new Reopen(s))],
  ];
  // fc.commands picks among its arbitraries uniformly: repeat each as often as its weight.
  return arbs.flatMap(([w, a]) => Array.from({ length: Math.max(1, Math.round(2 * w)) }, () => a));
}
