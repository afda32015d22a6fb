/**
 * The system under test, wrapped for the model-based tests: a kernel on a fake clock, its owners,
 * recording hooks, two recording subsystems (one of which can hold its start or stop until the test
 * releases it), and the outcomes of every promise the kernel handed out.
 * @module
 */
import { createKernel, type Kernel, type Owner, type wpar_config_func_t } from '../../../src/index.ts';
import { FakeClock } from '../fake-clock.ts';
import type { GateMode, HookKind, LogEntry } from './model.ts';
import { DENY, WPARSTART, WPARSTOP } from './spec.ts';

export type Settled =
  | { s: 'pending' }
  | { s: 'resolved'; v: unknown }
  | { s: 'rejected'; err: unknown };

export interface RealConfig {
  readonly maxWpars: number;
  readonly maxHooks: number;
  readonly calloutTimeoutMs: number;
  readonly epoch: number;
  readonly ownerNames: readonly string[];
}

interface OwnerSlot {
  cur: Owner;
  stale: Owner | undefined;
}

/** What a corral the tests activate looks like. */
export interface TestCorral {
  name: string;
  gate: GateMode;
  extra: { n: number; list: number[] };
  [key: string]: unknown;
}

/** A promise's outcome, written when it settles. */
export function track<T>(p: Promise<T>, into: Map<number, Settled>, id: number): void {
  into.set(id, { s: 'pending' });
  p.then(
    (v) => into.set(id, { s: 'resolved', v }),
    (err: unknown) => into.set(id, { s: 'rejected', err }),
  );
}

export class Real {
  readonly clock: FakeClock;
  readonly kernel: Kernel;
  readonly owners: OwnerSlot[];
  readonly log: LogEntry[] = [];
  /** Held subsystem steps, by `${cid}:${op}`. */
  readonly gates = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  readonly tries = new Map<number, Settled>();
  readonly acts = new Map<number, Settled>();
  readonly deacts = new Map<number, Settled>();
  readonly deactPromises = new Map<number, Promise<void>>();
  /** Every key kwpar_reghook ever returned, in order. */
  readonly issuedKeys: number[] = [];
  /** Violations noticed outside the callout log (e.g. a facade function threw). */
  readonly problems: string[] = [];
  #ids = 0;
  /** Hooks registered so far (the model numbers its hooks the same way). */
  hooksMade = 0;
  /** Keys of hooks registered from inside callouts, for the model to learn. */
  readonly nestedKeys: number[] = [];

  readonly calloutTimeoutMs: number;

  constructor(cfg: RealConfig) {
    this.calloutTimeoutMs = cfg.calloutTimeoutMs;
    this.clock = new FakeClock(cfg.epoch);
    this.kernel = createKernel({
      maxWpars: cfg.maxWpars, maxHooks: cfg.maxHooks, calloutTimeoutMs: cfg.calloutTimeoutMs, clock: this.clock,
    });
    this.owners = cfg.ownerNames.map((name, i) => ({ cur: i === 0 ? this.kernel.services : this.kernel.extension(name), stale: undefined }));
    const log = this.log;
    const gates = this.gates;
    const hold = (cid: number, op: 'start' | 'stop'): Promise<void> =>
      new Promise<void>((resolve, reject) => gates.set(`${cid}:${op}`, { resolve, reject }));
    this.kernel.use({
      name: 'sysA',
      start: (cid, corral) => void log.push({ t: 'sub', sub: 'sysA', op: 'start', cid, name: corral.name }),
      stop: (cid, corral) => void log.push({ t: 'sub', sub: 'sysA', op: 'stop', cid, name: corral.name }),
    });
    this.kernel.use({
      name: 'gate',
      start: (cid, corral) => {
        log.push({ t: 'sub', sub: 'gate', op: 'start', cid, name: corral.name });
        const g = corral.gate;
        return g === 'start' || g === 'both' ? hold(cid, 'start') : undefined;
      },
      stop: (cid, corral) => {
        log.push({ t: 'sub', sub: 'gate', op: 'stop', cid, name: corral.name });
        const g = corral.gate;
        return g === 'stop' || g === 'both' ? hold(cid, 'stop') : undefined;
      },
    });
  }

  /** A fresh id for a promise the kernel hands out. */
  nextId(): number {
    return ++this.#ids;
  }

  /** The Owner object a command acts through. */
  owner(slot: number, stale: boolean): Owner {
    const o = this.owners[slot]!;
    return stale && o.stale !== undefined ? o.stale : o.cur;
  }

  corral(name: string, gate: GateMode): TestCorral {
    return { name, gate, extra: { n: 1, list: [1, 2] } };
  }

  /** A recording hook function of kind `kind`; `keyRef.key` is filled in once registered. */
  hookFn(id: number, kind: HookKind, owner: Owner, keyRef: { key: number }): wpar_config_func_t {
    const kernel = this.kernel;
    const log = this.log;
    return (flags, cid, corralp, unused) => {
      const bad: string[] = [];
      if (!(cid <= kernel.hiwater)) bad.push(`K2: cid ${cid} > hiwater ${kernel.hiwater}`);
      if (!Object.isFrozen(corralp)) bad.push('K17: corralp not frozen');
      if (corralp?.cid !== cid) bad.push('K17: corralp.cid !== cid');
      if (unused !== null) bad.push('K17: 4th argument not null');
      const extra = corralp?.extra as TestCorral['extra'] | undefined;
      if (!Object.isFrozen(extra) || !Object.isFrozen(extra?.list)) bad.push('K17: corralp not deeply frozen');
      if (extra?.n !== 1 || extra.list.length !== 2) bad.push('K17: corralp changed');
      try {
        (corralp as { name: string }).name = 'hacked';
      } catch { /* frozen: strict mode throws */ }
      if (corralp.name === 'hacked') bad.push('K17: corralp writable');
      const entry: LogEntry = { t: 'callout', hook: id, flags, cid, name: corralp.name, bad: bad.join('; '), ret: null };
      log.push(entry);
      const start = flags === WPARSTART;
      if (flags !== WPARSTART && flags !== WPARSTOP) entry.bad += `bad flags ${flags}`;
      switch (kind) {
        case 'ok':
          return 0;
        case 'async':
          return Promise.resolve(0);
        case 'veto':
          return 7;
        case 'throw':
          throw new Error(`hook ${id} refuses`);
        case 'hang':
          return start ? new Promise<number>(() => {}) : 0;
        case 'hangstop':
          return start ? 0 : new Promise<number>(() => {});
        case 'deny':
          if (start) entry.ret = owner.kwpar_checkpoint_status(cid, DENY, `hook-${id}`);
          return 0;
        case 'selfunreg':
          if (start) entry.ret = owner.kwpar_unreghook(keyRef.key);
          return 0;
        case 'reject':
          return Promise.reject(new Error(`hook ${id} refuses`));
        case 'slow':
          return new Promise<number>((resolve) => this.clock.setTimer(() => resolve(0), this.calloutTimeoutMs / 2));
        case 'reg': {
          if (!start) return 0;
          const ref = { key: 0 };
          const hp = { current_hiwater: -5, configp: this.hookFn(this.hooksMade, 'ok', owner, ref) };
          const key = owner.kwpar_reghook(1, hp);
          if (key === -1) {
            entry.ret = key;
            return 0;
          }
          const last = this.issuedKeys.at(-1) ?? 0;
          if (!(Number.isInteger(key) && key > last)) this.problems.push(`K5: nested kwpar_reghook returned ${key} after ${last}`);
          if (hp.current_hiwater !== kernel.hiwater) this.problems.push(`K4: nested kwpar_reghook wrote hiwater ${hp.current_hiwater}, hiwater is ${kernel.hiwater}`);
          ref.key = key;
          this.issuedKeys.push(key);
          this.nestedKeys.push(key);
          this.hooksMade++;
          entry.ret = 0;
          return 0;
        }
      }
    };
  }
}
