/**
 * The reference model of the WPAR kernel services, written from kernel-services.md (K1–K17) alone.
 *
 * It is a discrete-event simulation: activations and deactivations are generator "processes" that run
 * until they block on a gate (a test subsystem holding its start or stop) or on a timer (a hanging
 * callout), and resume when the test releases the gate or advances the clock. Everything else is
 * synchronous. Decisions the spec leaves open are marked "ASSUMPTION" and kept observable-lenient.
 * @module
 */
import {
  ALLOW, BADREGKEY, CLEAR, DENY, EBUSY, EINVAL, ENOENT, EPERM, ETIMEDOUT, NAME_RE, RESTART_CLEAR, TRY,
  WPARSTART, WPARSTOP, isCid, isCommand, isVarpValid, type ErrCode,
} from './spec.ts';

/** How a test hook behaves when called out to. */
export type HookKind =
  | 'ok' // returns 0
  | 'async' // returns Promise.resolve(0)
  | 'veto' // returns 7 (WPARSTART: refuses the activation; WPARSTOP: reported, not fatal)
  | 'throw' // throws (same effect as veto)
  | 'hang' // WPARSTART: a promise that never settles (times out); WPARSTOP: 0
  | 'hangstop' // WPARSTART: 0; WPARSTOP: a promise that never settles
  | 'deny' // WPARSTART: DENYs a checkpoint of the WPAR being started (K17 re-entrancy), returns 0
  | 'selfunreg' // WPARSTART: unregisters itself, returns 0
  | 'reg' // WPARSTART: registers a new 'ok' hook for its owner (K7/K14.3: not called for this WPARSTART), returns 0
  | 'reject' // returns a rejected promise (as veto)
  | 'slow'; // returns a promise that resolves 0 after calloutTimeoutMs / 2 (fake clock)

/** Which of the gate subsystem's steps wait for the test to release them (carried in the corral). */
export type GateMode = 'none' | 'start' | 'stop' | 'both';

export interface CalloutEntry {
  t: 'callout';
  hook: number;
  flags: number;
  cid: number;
  name: string;
  /** Invariant violations seen inside the callout (K2, K17): '' when none. */
  bad: string;
  /** What a re-entrant service call made from inside the callout returned, else null. */
  ret: number | null;
}
export interface SubEntry {
  t: 'sub';
  sub: string;
  op: 'start' | 'stop';
  cid: number;
  name: string;
}
export type LogEntry = CalloutEntry | SubEntry;

/** What a promise (activate, deactivate, TRY) is expected to have done by now. */
export type Expect =
  | { s: 'pending' }
  | { s: 'resolved'; v: unknown }
  | { s: 'rejected'; code: ErrCode; mentions?: string[] }
  | { s: 'oneOf'; vs: readonly unknown[] }
  /** A deactivation of a WPAR whose activation then failed: must have settled, resolved or ENOENT. */
  | { s: 'gone' };

export type Phase = 'normal' | 'pending' | 'checkpointing' | 'restarting';
export type State = 'starting' | 'active' | 'stopping';

export interface MDenial {
  owner: string;
  reason: string;
  since: number;
}

export interface MHook {
  readonly id: number;
  key: number;
  readonly slot: number;
  readonly kind: HookKind;
}

export interface MWpar {
  readonly cid: number;
  readonly name: string;
  readonly gate: GateMode;
  state: State;
  phase: Phase;
  denials: MDenial[];
  waiter: { tryId: number; timer: number } | undefined;
  /** A failed activation rolling back: the spec does not say whether it is `starting` or `stopping`. */
  limbo: boolean;
  /** deactivate() calls made while it was starting: settled once its activation settles (K16.1). */
  pendingDeacts: number[];
  /** deactivate() calls that wait for the stop under way. */
  stopDeacts: number[];
  /** The deactivate() call that began the stop (a later call must return the same promise). */
  stopOrigin: number | undefined;
}

export interface ModelConfig {
  readonly maxWpars: number;
  readonly maxHooks: number;
  readonly calloutTimeoutMs: number;
  readonly epoch: number;
  /** Owner names by slot; slot 0 is `kernel` (kernel.services). */
  readonly ownerNames: readonly string[];
}

interface MOwner {
  readonly name: string;
  gen: number;
  closed: boolean;
}

type Resume = 'ok' | 'fail' | 'timeout';
type Block = { t: 'gate'; key: string } | { t: 'timer'; ms: number };
type Proc = Generator<Block, void, Resume>;
type CalloutResult = 'ok' | 'fail' | 'timeout';

interface MTimer {
  readonly seq: number;
  readonly due: number;
  readonly fire: () => void;
}

/** A result of a checkpoint call: a number now, or (TRY) the expectation for its promise. */
export type CpsResult = { sync: number } | { sync: 'oneOf'; vs: readonly number[] } | { try: Expect };

export class Model {
  readonly cfg: ModelConfig;
  /** Milliseconds on the (fake) monotonic clock. */
  now = 0;
  hiwater = 0;
  /** Wall-clock reading at monotonic 0: denials are stamped `wall + now` (`since`, as Date.now()). */
  wall: number;
  readonly owners: MOwner[];
  /** Registered hooks, in registration order. */
  hooks: MHook[] = [];
  /** Every hook ever registered, by id (for readable logs). */
  readonly allHooks: MHook[] = [];
  readonly wpars = new Map<number, MWpar>();
  readonly log: LogEntry[] = [];
  readonly tries = new Map<number, Expect>();
  readonly acts = new Map<number, Expect>();
  readonly deacts = new Map<number, Expect>();
  /** Gates the test can release, by `${cid}:${op}`. */
  readonly gates = new Map<string, (r: Resume) => void>();
  /** Hooks registered from inside a callout, waiting to learn the key the kernel gave them. */
  readonly unkeyed: MHook[] = [];
  /** How often each interesting event happened (for the test's coverage check). */
  readonly stats = new Map<string, number>();
  #timers: MTimer[] = [];
  #timerSeq = 0;

  constructor(cfg: ModelConfig) {
    this.cfg = cfg;
    this.wall = cfg.epoch;
    this.owners = cfg.ownerNames.map((name) => ({ name, gen: 0, closed: false }));
  }

  note(event: string): void {
    this.stats.set(event, (this.stats.get(event) ?? 0) + 1);
  }

  ownerName(slot: number): string {
    return this.owners[slot]!.name;
  }

  /** Is the caller closed? `stale` means a previously closed Owner object of that slot (when there is one). */
  callerClosed(slot: number, stale: boolean): boolean {
    const o = this.owners[slot]!;
    return (stale && o.gen > 0) || o.closed;
  }

  isRegistered(h: MHook): boolean {
    return this.hooks.includes(h);
  }

  /** Gate keys the test can release now, sorted. */
  gateKeys(): string[] {
    return [...this.gates.keys()].sort();
  }

  // ---- processes and timers ---------------------------------------------------------------------

  #run(p: Proc, input?: Resume): void {
    const r = input === undefined ? p.next() : p.next(input);
    if (r.done) return;
    const b = r.value;
    if (b.t === 'gate') {
      this.gates.set(b.key, (v) => {
        this.gates.delete(b.key);
        this.#run(p, v);
      });
    } else {
      this.#addTimer(this.now + b.ms, () => this.#run(p, 'timeout'));
    }
  }

  #addTimer(due: number, fire: () => void): number {
    const seq = ++this.#timerSeq;
    this.#timers.push({ seq, due, fire });
    return seq;
  }

  #clearTimer(seq: number): void {
    this.#timers = this.#timers.filter((t) => t.seq !== seq);
  }

  /** Due times of the timers still set (for the test to avoid nothing; informational). */
  timerDues(): number[] {
    return this.#timers.map((t) => t.due).sort((a, b) => a - b);
  }

  /** Moves time on by `ms`; timers fire in (due, creation) order. Returns how many fired. */
  advance(ms: number): number {
    const target = this.now + ms;
    let fired = 0;
    for (;;) {
      let best: MTimer | undefined;
      for (const t of this.#timers) {
        if (t.due <= target && (best === undefined || t.due < best.due || (t.due === best.due && t.seq < best.seq))) best = t;
      }
      if (best === undefined) break;
      this.#clearTimer(best.seq);
      this.now = Math.max(this.now, best.due);
      best.fire();
      fired++;
    }
    this.now = target;
    return fired;
  }

  /** Releases gate `key`: `fail` makes a gated subsystem start fail (a gated stop always succeeds). */
  release(key: string, fail: boolean): void {
    this.gates.get(key)?.(fail && key.endsWith(':start') ? 'fail' : 'ok');
  }

  // ---- lifecycle (K14–K17) ----------------------------------------------------------------------

  /** K14. `actId` names the activate() promise. */
  activate(actId: number, name: string, restart: boolean, gate: GateMode): void {
    this.activateBurst([{ actId, name, restart, gate }]);
  }

  /**
   * Several activate() calls in one synchronous step. ASSUMPTION: K14.1–2 (checks, cid allocation)
   * happen within the activate() call, so each call sees the names and cids of the ones before it;
   * the activations then proceed (their callouts may interleave: the test compares them per WPAR).
   */
  activateBurst(items: readonly { actId: number; name: string; restart: boolean; gate: GateMode }[]): void {
    const admitted: [MWpar, number][] = [];
    for (const it of items) {
      const w = this.#admit(it.actId, it.name, it.restart, it.gate);
      if (w !== undefined) admitted.push([w, it.actId]);
    }
    for (const [w, actId] of admitted) this.#run(this.#activation(w, actId));
  }

  #admit(actId: number, name: string, restart: boolean, gate: GateMode): MWpar | undefined {
    if (!NAME_RE.test(name)) return void this.acts.set(actId, { s: 'rejected', code: 'EINVAL' });
    // ASSUMPTION: a WPAR holds its name for as long as it holds its cid (also while stopping).
    for (const w of this.wpars.values()) {
      if (w.name === name) return void this.acts.set(actId, { s: 'rejected', code: 'EEXIST' });
    }
    if (this.wpars.size >= this.cfg.maxWpars) {
      this.note('no free cid');
      return void this.acts.set(actId, { s: 'rejected', code: 'EAGAIN' });
    }
    let cid = 1;
    while (this.wpars.has(cid)) cid++;
    this.hiwater = Math.max(this.hiwater, cid);
    const w: MWpar = {
      cid, name, gate, state: 'starting', phase: restart ? 'restarting' : 'normal', denials: [], waiter: undefined,
      limbo: false, pendingDeacts: [], stopDeacts: [], stopOrigin: undefined,
    };
    this.wpars.set(cid, w);
    this.acts.set(actId, { s: 'pending' });
    return w;
  }

  *#activation(w: MWpar, actId: number): Proc {
    const snapshot = this.hooks.slice();
    const started: MHook[] = [];
    let failure: { code: ErrCode; mentions?: string[] } | undefined;
    for (const h of snapshot) {
      if (!this.isRegistered(h)) continue;
      const r = yield* this.#callout(h, WPARSTART, w);
      if (r === 'ok') {
        started.push(h);
      } else {
        failure = { code: r === 'timeout' ? 'ETIMEDOUT' : 'ECANCELED', mentions: [this.ownerName(h.slot), String(h.key)] };
        break;
      }
    }
    if (failure === undefined) {
      this.#sub('sysA', 'start', w);
      this.#sub('gate', 'start', w);
      if (w.gate === 'start' || w.gate === 'both') {
        const g = yield { t: 'gate', key: `${w.cid}:start` };
        if (g === 'fail') {
          failure = { code: 'ECANCELED' };
          this.#sub('sysA', 'stop', w);
        }
      }
    }
    if (failure !== undefined) {
      this.note(`activation failed: ${failure.code}${failure.mentions ? ' (callout)' : ' (subsystem)'}`);
      if (w.pendingDeacts.length > 0) this.note('deactivate() of a WPAR whose activation failed');
      w.limbo = true;
      for (const h of started.reverse()) {
        if (!this.isRegistered(h)) continue;
        if (h.kind === 'hangstop' || h.kind === 'slow') this.note('rollback waits for a WPARSTOP callout');
        yield* this.#callout(h, WPARSTOP, w);
      }
      this.wpars.delete(w.cid);
      this.acts.set(actId, { s: 'rejected', ...failure });
      // ASSUMPTION: the spec does not say how deactivate() of a WPAR whose activation fails settles.
      for (const id of w.pendingDeacts) this.deacts.set(id, { s: 'gone' });
      return;
    }
    w.state = 'active';
    this.acts.set(actId, { s: 'resolved', v: w.cid });
    this.note(w.phase === 'restarting' ? 'activated (restart)' : 'activated');
    if (w.pendingDeacts.length > 0) {
      this.note('deactivate() of a starting WPAR');
      yield* this.#deactivation(w, w.pendingDeacts);
    }
  }

  /** K16. `deactId` names the deactivate() promise. */
  deactivate(deactId: number, cid: unknown): void {
    const w = typeof cid === 'number' ? this.wpars.get(cid) : undefined;
    if (w === undefined) return void this.deacts.set(deactId, { s: 'rejected', code: 'ENOENT' });
    this.deacts.set(deactId, { s: 'pending' });
    if (w.state === 'starting') {
      w.pendingDeacts.push(deactId);
    } else if (w.state === 'stopping') {
      this.note('deactivate() of a stopping WPAR');
      w.stopDeacts.push(deactId);
    } else {
      w.stopOrigin = deactId;
      this.#run(this.#deactivation(w, [deactId]));
    }
  }

  *#deactivation(w: MWpar, ids: number[]): Proc {
    w.state = 'stopping';
    w.stopDeacts = ids.slice();
    w.denials = [];
    if (w.waiter !== undefined) this.note('waiting TRY ends with its WPAR');
    this.#endTry(w, ENOENT);
    this.#sub('gate', 'stop', w);
    if (w.gate === 'stop' || w.gate === 'both') yield { t: 'gate', key: `${w.cid}:stop` };
    this.#sub('sysA', 'stop', w);
    for (const h of this.hooks.slice().reverse()) {
      if (this.isRegistered(h)) yield* this.#callout(h, WPARSTOP, w);
    }
    this.wpars.delete(w.cid);
    for (const id of w.stopDeacts) this.deacts.set(id, { s: 'resolved', v: undefined });
  }

  #sub(sub: string, op: 'start' | 'stop', w: MWpar): void {
    this.log.push({ t: 'sub', sub, op, cid: w.cid, name: w.name });
  }

  *#callout(h: MHook, flags: number, w: MWpar): Generator<Block, CalloutResult, Resume> {
    const entry: CalloutEntry = { t: 'callout', hook: h.id, flags, cid: w.cid, name: w.name, bad: '', ret: null };
    this.log.push(entry);
    const start = flags === WPARSTART;
    switch (h.kind) {
      case 'ok':
      case 'async':
        return 'ok';
      case 'veto':
      case 'throw':
      case 'reject':
        return start ? 'fail' : 'ok';
      case 'slow':
        yield { t: 'timer', ms: this.cfg.calloutTimeoutMs / 2 };
        return 'ok';
      case 'reg': {
        if (!start) return 'ok';
        const h2 = this.reghook(h.slot, false, true, true, 'ok');
        if (h2 === BADREGKEY) {
          entry.ret = BADREGKEY;
        } else {
          entry.ret = 0;
          this.unkeyed.push(h2);
        }
        return 'ok';
      }
      case 'hang':
        if (!start) return 'ok';
        yield { t: 'timer', ms: this.cfg.calloutTimeoutMs };
        this.note('WPARSTART callout timed out');
        return 'timeout';
      case 'hangstop':
        if (start) return 'ok';
        yield { t: 'timer', ms: this.cfg.calloutTimeoutMs };
        this.note('WPARSTOP callout timed out');
        return 'ok';
      case 'deny': {
        if (!start) return 'ok';
        const r = this.checkpoint(-1, h.slot, false, w.cid, DENY, `hook-${h.id}`);
        entry.ret = 'sync' in r && typeof r.sync === 'number' ? r.sync : -999;
        return 'ok';
      }
      case 'selfunreg':
        if (!start) return 'ok';
        entry.ret = this.unreghook(h.slot, false, h.key);
        return 'ok';
    }
  }

  // ---- hooks (K4–K9) ----------------------------------------------------------------------------

  /**
   * K4–K6. Returns BADREGKEY, or a new hook whose `key` the caller fills in from the kernel's answer
   * (K5 fixes only that keys increase).
   */
  reghook(slot: number, stale: boolean, typeOk: boolean, hookpOk: boolean, kind: HookKind): typeof BADREGKEY | MHook {
    if (this.callerClosed(slot, stale) || !typeOk || !hookpOk) return BADREGKEY;
    if (this.hooks.length >= this.cfg.maxHooks) {
      this.note('hook table full');
      return BADREGKEY;
    }
    const h: MHook = { id: this.allHooks.length, key: 0, slot, kind };
    this.allHooks.push(h);
    this.hooks.push(h);
    return h;
  }

  /** K8–K9, K13 (a closed owner gets EPERM). */
  unreghook(slot: number, stale: boolean, key: unknown): number {
    if (this.callerClosed(slot, stale)) return EPERM;
    const h = this.hooks.find((x) => x.key === key);
    if (h === undefined) return EINVAL;
    if (h.slot !== slot) {
      this.note('unregister another owner\'s hook');
      return EPERM;
    }
    this.hooks = this.hooks.filter((x) => x !== h);
    return 0;
  }

  // ---- owners (K13) -----------------------------------------------------------------------------

  close(slot: number): void {
    const o = this.owners[slot]!;
    if (o.closed) return;
    o.closed = true;
    this.hooks = this.hooks.filter((h) => h.slot !== slot);
    for (const w of this.wpars.values()) {
      if (w.state === 'stopping' || w.limbo) continue;
      if (w.denials.some((d) => d.owner === o.name)) this.note('close releases denials');
      w.denials = w.denials.filter((d) => d.owner !== o.name);
      if (w.phase === 'pending' && w.denials.length === 0) this.#tryCompletes(w);
    }
  }

  /** kernel.extension(name) again: EEXIST while the slot's owner is open. */
  reopen(slot: number): 'EEXIST' | 'ok' {
    const o = this.owners[slot]!;
    if (!o.closed) return 'EEXIST';
    o.closed = false;
    o.gen++;
    return 'ok';
  }

  // ---- checkpoint status (K10–K13) --------------------------------------------------------------

  /**
   * kwpar_checkpoint_status from owner `slot`. `tryId` names the promise if `cmd` is TRY.
   * ASSUMPTION (K13): a closed owner gets EPERM whatever the arguments.
   */
  checkpoint(tryId: number, slot: number, stale: boolean, kcid: unknown, cmd: unknown, varp: unknown): CpsResult {
    const isTry = cmd === TRY;
    const done = (n: number): CpsResult => (isTry ? { try: { s: 'resolved', v: n } } : { sync: n });
    if (this.callerClosed(slot, stale)) return done(EPERM);
    if (!isCommand(cmd) || !isCid(kcid) || !isVarpValid(cmd, varp)) return done(EINVAL);
    const w = this.wpars.get(kcid);
    if (w === undefined || w.state === 'stopping') return done(ENOENT);
    if (w.limbo) {
      this.note('checkpoint call on a WPAR rolling back');
      // Rolling back a failed activation: `starting` or already `stopping`, the spec does not say.
      const vs = cmd === DENY ? [0, ENOENT] : cmd === ALLOW ? [0, EINVAL, ENOENT] : [EBUSY, ENOENT];
      return isTry ? { try: { s: 'oneOf', vs } } : { sync: 'oneOf', vs };
    }
    const owner = this.ownerName(slot);
    const starting = w.state === 'starting';
    switch (cmd) {
      case DENY:
        if (w.phase === 'checkpointing') return done(EBUSY);
        this.note(`DENY (${starting ? 'starting' : w.phase})`);
        w.denials.push({ owner, reason: varp as string, since: this.wall + this.now });
        return done(0);
      case ALLOW: {
        if (w.phase === 'checkpointing') return done(EINVAL);
        const i = w.denials.findIndex((d) => d.owner === owner);
        if (i < 0) return done(EINVAL);
        w.denials.splice(i, 1);
        if (w.phase === 'pending' && w.denials.length === 0) this.#tryCompletes(w);
        return done(0);
      }
      case TRY: {
        if (starting || w.phase !== 'normal') return done(EBUSY);
        if (w.denials.length === 0) {
          w.phase = 'checkpointing';
          return done(0);
        }
        const seconds = varp as number;
        if (seconds === 0) return done(ETIMEDOUT);
        w.phase = 'pending';
        this.note('TRY waits');
        const timer = this.#addTimer(this.now + seconds * 1000, () => this.#tryTimesOut(w));
        w.waiter = { tryId, timer };
        return { try: { s: 'pending' } };
      }
      case CLEAR:
        if (starting) return done(EBUSY);
        if (w.phase !== 'checkpointing') return done(EINVAL);
        w.phase = 'normal';
        return done(0);
      case RESTART_CLEAR:
        if (starting) return done(EBUSY);
        if (w.phase !== 'restarting') return done(EINVAL);
        w.phase = 'normal';
        return done(0);
    }
    throw new Error('unreachable');
  }

  /** †: the last denial went while a TRY waited. */
  #tryCompletes(w: MWpar): void {
    this.note('waiting TRY succeeds');
    w.phase = 'checkpointing';
    this.#endTry(w, 0);
  }

  #tryTimesOut(w: MWpar): void {
    this.note('waiting TRY times out');
    w.phase = 'normal';
    this.#endTry(w, ETIMEDOUT);
  }

  #endTry(w: MWpar, errno: number): void {
    if (w.waiter === undefined) return;
    this.#clearTimer(w.waiter.timer);
    this.tries.set(w.waiter.tryId, { s: 'resolved', v: errno });
    w.waiter = undefined;
  }

  /** For `try` results: record the expectation under its id. */
  noteTry(tryId: number, e: Expect): void {
    this.tries.set(tryId, e);
  }
}
