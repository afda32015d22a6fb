/**
 * The lifecycle of one WPAR in its daemon, as an explicit state machine: the states, the events, and
 * one table (state × event → what happens) checked in one place. Pure: no I/O, no clock. The
 * `WparManager` (`wpars.ts`) keeps one record per WPAR whose `state` is a {@link WparState}, and
 * changes it only through {@link decide} / {@link enter}; the AIX state letter comes from
 * {@link letterOf}. See docs/architecture.md ("The WPAR state machine").
 * @module
 */
import { WparError, type ErrnoCode } from '../kernel/errno.ts';
import type { WparLetter } from './protocol.ts';

/** Where a WPAR is in its lifecycle. The states that hold a run carry it (see {@link WparState}). */
export type StateKind = 'defined' | 'broken' | 'starting' | 'active' | 'checkpointing' | 'moving' | 'stopping' | 'removing';

/** Every state, in the order of the table (for tests and documentation). */
export const STATE_KINDS: readonly StateKind[] = ['defined', 'broken', 'starting', 'active', 'checkpointing', 'moving', 'stopping', 'removing'];

/**
 * What may happen to a WPAR. Requests come from commands (`start` … `remove`, `lost`); the others
 * report how an operation under way ended.
 */
export type LifecycleEvent =
  /** `startwpar`, `restartwpar`, an incoming move's activation, or an adoption after a daemon crash (R7). */
  | 'start'
  /** The kernel activation completed (the processes run). */
  | 'started'
  /** The kernel activation failed (nothing runs). */
  | 'start-failed'
  /** `stopwpar` (and `rmwpar -F`). */
  | 'stop'
  /** The checkpoint or move that holds it kills its (frozen) processes: `chkptwpar -k`, a move's hand-over. */
  | 'hand-off'
  /** The processes ended with nobody here asking (an exit, a signal, the memory limit). */
  | 'exit'
  /** The kernel deactivation completed: the run is over. */
  | 'stopped'
  /** `chkptwpar` takes the WPAR. */
  | 'checkpoint'
  /** `movewpar` takes the WPAR. */
  | 'move'
  /** The checkpoint or move gives it back (running, or still frozen for the stop that follows). */
  | 'release'
  /** `rmwpar`. */
  | 'remove'
  /** Its directory is gone: the record goes. */
  | 'removed'
  /** Its directory could not be removed: it stays as it was. */
  | 'remove-failed'
  /** Its processes were lost elsewhere (an unadoptable run, an uncertain move): recorded as broken. */
  | 'lost';

/** Every event, in the order of the table. */
export const LIFECYCLE_EVENTS: readonly LifecycleEvent[] = [
  'start', 'started', 'start-failed', 'stop', 'hand-off', 'exit', 'stopped', 'checkpoint', 'move', 'release', 'remove', 'removed', 'remove-failed', 'lost',
];

/** Why a request is refused (each with its errno and words, see {@link refusal}). */
export type Refusal = 'busy' | 'already-active' | 'not-active' | 'stop-first';

/** One cell of the table. */
export type Cell =
  /** The WPAR goes to one of these states (`gone`: its record is deleted); the manager picks by the run's plan. */
  | { readonly to: readonly (StateKind | 'gone')[] }
  /** The same request is already under way: the caller joins it (a second `stopwpar`, `rmwpar`). */
  | { readonly join: true }
  /** The event arrived after the WPAR had moved on (e.g. an exit during a stop, which records it itself). */
  | { readonly ignore: string }
  /** The request is refused; nothing changes. */
  | { readonly refuse: Refusal };

const to = (...kinds: (StateKind | 'gone')[]): Cell => ({ to: kinds });
const busy: Cell = { refuse: 'busy' };
const idle: Cell = { refuse: 'not-active' };
const stopFirst: Cell = { refuse: 'stop-first' };
const join: Cell = { join: true };
const recordedOnly: Cell = { ignore: 'the exit is recorded; the state follows the run under way' };
const noHold: Cell = { ignore: 'no checkpoint or move holds it any more' };

/** A state that holds no run: what may be done with it is the same whether it ended well or broken. */
const IDLE: Partial<Record<LifecycleEvent, Cell>> = {
  start: to('starting'),
  stop: idle,
  checkpoint: idle,
  move: idle,
  release: noHold,
  remove: to('removing'),
  lost: to('broken'),
};

/** A checkpoint or a move holds the WPAR: only its own end, or the processes' end, changes that. */
const HELD: Partial<Record<LifecycleEvent, Cell>> = {
  start: busy,
  stop: busy,
  'hand-off': to('stopping'),
  exit: to('stopping'),
  checkpoint: busy,
  move: busy,
  release: to('active'),
  remove: stopFirst,
  lost: recordedOnly,
};

/**
 * THE table. A missing cell is an event that cannot happen in that state: {@link decide} answers
 * `undefined` and {@link enter} throws (a daemon bug, never a user's mistake).
 */
export const TRANSITIONS: Readonly<Record<StateKind, Readonly<Partial<Record<LifecycleEvent, Cell>>>>> = {
  defined: IDLE,
  broken: IDLE,
  starting: {
    start: busy,
    started: to('active'),
    'start-failed': to('broken'),
    stop: busy,
    exit: to('stopping'),
    checkpoint: busy,
    move: busy,
    release: noHold,
    remove: stopFirst,
    lost: recordedOnly,
  },
  active: {
    start: { refuse: 'already-active' },
    stop: to('stopping'),
    exit: to('stopping'),
    checkpoint: to('checkpointing'),
    move: to('moving'),
    release: noHold,
    remove: stopFirst,
    lost: recordedOnly,
  },
  checkpointing: HELD,
  moving: HELD,
  stopping: {
    start: busy,
    started: { ignore: 'the run ended during its start; its stop records the end' },
    'start-failed': { ignore: 'the run ended during its start; its stop records the end' },
    stop: join,
    exit: { ignore: 'a stop is under way and records the exit itself' },
    stopped: to('defined', 'broken'),
    checkpoint: busy,
    move: busy,
    release: noHold,
    remove: stopFirst,
    lost: recordedOnly,
  },
  removing: {
    start: busy,
    stop: busy,
    checkpoint: busy,
    move: busy,
    release: noHold,
    remove: join,
    removed: to('gone'),
    'remove-failed': to('defined', 'broken'),
    lost: recordedOnly,
  },
};

/** The cell for `event` in state `kind`, or `undefined` when the event cannot happen there. */
export function decide(kind: StateKind, event: LifecycleEvent): Cell | undefined {
  return TRANSITIONS[kind][event];
}

/** The errno of each refusal. */
export const REFUSAL_ERRNO: Readonly<Record<Refusal, ErrnoCode>> = {
  busy: 'EBUSY', 'already-active': 'EBUSY', 'not-active': 'EINVAL', 'stop-first': 'EBUSY',
};

/** What a refusal needs to be said. */
export interface RefusalContext {
  readonly name: string;
  /** The command's verb (`start`, `stop`, `checkpoint`, `move`, `remove`). */
  readonly verb: string;
  readonly kind: StateKind;
  readonly cid: number | null;
  readonly letter: WparLetter;
}

/** The error a refused request gets: what was asked, of which WPAR, and why not. */
export function refusal(why: Refusal, c: RefusalContext): WparError {
  const message = why === 'busy' ? `${c.name}: cannot ${c.verb} while ${c.kind}`
    : why === 'already-active' ? `${c.name}: already active (cid ${c.cid})`
    : why === 'not-active' ? `${c.name}: not active (state ${c.letter})`
    : `${c.name}: is ${c.kind}; stop it first or use -F`;
  return new WparError(REFUSAL_ERRNO[why], message);
}

/** The error for an event the table has no cell for, or a target it does not allow (a daemon bug). */
export function illegal(name: string, kind: StateKind, event: LifecycleEvent, target?: StateKind | 'gone'): WparError {
  const cell = decide(kind, event);
  const allowed = cell && 'to' in cell ? `; the table allows ${cell.to.join(' or ')}` : '';
  return new WparError('EINVAL', target === undefined
    ? `${name}: no transition for "${event}" while ${kind} (a bug in the daemon's lifecycle)`
    : `${name}: "${event}" while ${kind} cannot lead to ${target}${allowed} (a bug in the daemon's lifecycle)`);
}

/** What every run-holding state carries: the run. `frozen` is the processes' own state (cgroup freezer or SIGSTOP). */
export interface RunLike {
  readonly frozen: boolean;
}

/**
 * One WPAR's state, with what belongs to it: the run (cid, processes, agents) while there is one, and
 * the plan of what is under way — how it starts (agent states to hand over, a run to adopt), how it
 * stops (options, reason, whether it broke) and the promise that a second request joins.
 */
export type WparState<Run extends RunLike, StartPlan, StopPlan, Done> =
  | { readonly kind: 'defined' }
  | { readonly kind: 'broken' }
  | { readonly kind: 'starting'; readonly run: Run; readonly plan: StartPlan }
  | { readonly kind: 'active'; readonly run: Run }
  | { readonly kind: 'checkpointing'; readonly run: Run }
  | { readonly kind: 'moving'; readonly run: Run; readonly to: string }
  | { readonly kind: 'stopping'; readonly run: Run; readonly plan: StopPlan; readonly done: Promise<Done> }
  | { readonly kind: 'removing'; readonly from: 'defined' | 'broken'; readonly done: Promise<void> };

/** Whether state `kind` holds a run (a cid, processes, agents). */
export function holdsRun(kind: StateKind): kind is 'starting' | 'active' | 'checkpointing' | 'moving' | 'stopping' {
  return kind === 'starting' || kind === 'active' || kind === 'checkpointing' || kind === 'moving' || kind === 'stopping';
}

/**
 * The one place a state changes: `event` must lead from `from` to `target` by the table, or this
 * throws {@link illegal} and nothing changes. Returns `target` (so a caller writes `r.state = enter(...)`).
 */
export function enter<S extends { readonly kind: StateKind }>(name: string, from: StateKind, event: LifecycleEvent, target: S): S;
export function enter(name: string, from: StateKind, event: LifecycleEvent, target: 'gone'): 'gone';
export function enter<S extends { readonly kind: StateKind }>(name: string, from: StateKind, event: LifecycleEvent, target: S | 'gone'): S | 'gone' {
  const cell = decide(from, event);
  const kind = target === 'gone' ? 'gone' : target.kind;
  if (cell === undefined || !('to' in cell) || !cell.to.includes(kind)) throw illegal(name, from, event, kind);
  return target;
}

/**
 * AIX's state letter: `M` while moving (frozen or not), `F` while the processes are frozen, `T` while
 * a start, stop, removal or checkpoint is under way, `A` active, `B` broken, `D` defined.
 */
export function letterOf(kind: StateKind, frozen: boolean): WparLetter {
  if (kind === 'moving') return 'M';
  if (frozen) return 'F';
  switch (kind) {
    case 'defined': return 'D';
    case 'broken': return 'B';
    case 'active': return 'A';
    default: return 'T';
  }
}
