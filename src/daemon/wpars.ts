/**
 * The WPAR manager: definitions, and the runtime as a kernel subsystem (R2). `startwpar` is a kernel
 * activation — WPARSTART callouts run, then this subsystem starts the processes — and `stopwpar` a
 * deactivation — this subsystem stops every process, then WPARSTOP callouts run. Each WPAR is one
 * record with one state (`lifecycle.ts`); every change of it goes through that module's table.
 * @module
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { privateDir } from '../runtime/private-files.ts';
import { stopSecondsProblem } from '../definition/rules.ts';
import type { Kernel } from '../api/kernel.ts';
import type { Owner } from '../api/owner.ts';
import type { KernelCorral } from '../kernel/corral.ts';
import { rootCause, WparError } from '../kernel/errno.ts';
import type { Subsystem } from '../kernel/subsystem.ts';
import type { WparDefinition } from '../runtime/definition.ts';
import type { IdRange } from '../runtime/idmap.ts';
import type { Isolation } from '../runtime/isolation.ts';
import { adopt, examineRecorded, launch, type AdoptOptions, type StopOptions, type WparExit, type WparProcess } from '../runtime/launch.ts';
import type { HomeLayout } from './home.ts';
import { clearPendingKill, takePendingKill } from './pending-kill.ts';
import { decide, enter, holdsRun, illegal, letterOf, refusal, type LifecycleEvent, type Refusal, type WparState } from './lifecycle.ts';
import type { Journal } from './journal.ts';
import type { ExitInfo, WparInfo, WparLetter } from './protocol.ts';
import type { RunningRecord, StoredWpar, Store } from './store.ts';

/** The agent endpoint of one running WPAR, as the manager needs it (see `src/agent/server.ts`). */
export interface AgentEndpoint {
  /** Asks every participant for its state: participant name → opaque envelope. */
  save(): Promise<Record<string, unknown>>;
  /** Tells participants the checkpoint is over (`completed: false` when it failed). Never rejects. */
  saved(options?: { completed?: boolean }): Promise<void>;
  /** Hands saved states to the participants as they register; resolves when every one has restored. */
  restore(states: Record<string, unknown>): Promise<void>;
  /** Names of the registered participants. */
  participants(): string[];
  /** Closes the socket and every connection (their kernel owners close, releasing their denials). */
  close(): Promise<void>;
}

/** What a checkpoint may do to one active WPAR (see `checkpoint.ts`). */
export interface CheckpointAccess {
  readonly definition: WparDefinition;
  readonly root: string;
  readonly cid: number;
  readonly agents: AgentEndpoint | null;
  /** Freezes every process (state F). */
  freeze(): Promise<void>;
  /** Thaws them (back to A). */
  thaw(): Promise<void>;
  /** The checkpoint is over (the WPAR leaves T/F). */
  release(): void;
  /**
   * Ends the hold by killing the processes where they are, still frozen (`chkptwpar -k`, a move's
   * hand-over), with `reason` as the recorded exit: straight from T/F/M to the stop, never back to A.
   */
  stop(reason: string): Promise<WparInfo>;
}

/** Opens the agent endpoint of a WPAR about to start. */
export type AgentFactory = (options: {
  socketPath: string;
  wparName: string;
  cid: () => number | undefined;
  /** Opens the kernel owner of one agent connection (`agent:NAME/PID`). */
  openOwner: (ownerName: string) => Owner;
}) => Promise<AgentEndpoint>;

/** One run of a WPAR, from its start to the end of its stop: what the kernel and the runtime gave it. */
interface Run {
  /** The cid while the kernel holds one (set by the runtime subsystem's start). */
  cid: number | null;
  proc: WparProcess | null;
  agents: AgentEndpoint | null;
  startedAt: number | null;
  /** Whether a checkpoint or move froze the processes (cgroup freezer or SIGSTOP). */
  frozen: boolean;
  /** How the processes ended, as the runtime saw it. */
  lastRun: WparExit | null;
  /** While restarting from an image: resolves when every agent participant has restored. */
  restored: Promise<void> | null;
}

/** How a run starts: the agent states a restart hands over, or the processes an adoption takes over (R7). */
interface StartPlan {
  readonly agentStates: Record<string, unknown> | undefined;
  readonly adopting: RunningRecord | null;
}

/** How a run stops: how the runtime stops the processes, what to record as the reason, and whether it broke. */
interface StopPlan {
  readonly options: StopOptions;
  readonly reason: string;
  readonly broken: boolean;
}

/** The state of one WPAR (see `lifecycle.ts`): what it is doing, with the run and the plan on it. */
type State = WparState<Run, StartPlan, StopPlan, WparInfo>;

/** One WPAR as the manager keeps it: its definition, its one state, and who waits for its end. */
interface WparRecord {
  readonly definition: WparDefinition;
  readonly transient: boolean;
  readonly createdAt: number;
  lastExit: ExitInfo | null;
  state: State;
  /** Waiting for the end of the next (or current) run, or the removal. */
  readonly waiters: ((exit: ExitInfo) => void)[];
}

/** What {@link WparManager.recover} did with a WPAR an earlier daemon had running (R7). */
export interface Recovery {
  /** `adopted`: running again under this daemon; `exited`: it ended meanwhile (recorded); `stopped`: not adoptable, so its leftovers must be stopped. */
  readonly outcome: 'adopted' | 'exited' | 'stopped';
  /** Why, for `stopped`. */
  readonly reason?: string;
  /** Its cgroup, for `adopted`: leftover cleaning must leave it alone. */
  readonly cgroupPath?: string | null;
}

/** Default grace between SIGTERM and SIGKILL (`stopwpar -t`). */
export const DEFAULT_STOP_SECONDS = 10;

/** Owns every WPAR of one daemon. */
export class WparManager {
  /** One record per WPAR, by name. */
  readonly #records = new Map<string, WparRecord>();
  readonly #kernel: Kernel;
  readonly #store: Store;
  readonly #layout: HomeLayout;
  readonly #isolation: Isolation;
  readonly #journal: Journal;
  readonly #agents: AgentFactory;
  // Two things are kept by name because no WPAR (no record) exists for them: a name held before its
  // WPAR exists, and the exit of a transient WPAR already removed.
  /** Exits of transient WPARs already removed, so a `wait` that arrives late still gets the status. */
  readonly #ended = new Map<string, ExitInfo>();
  /** Names held by a restart or an incoming move before their WPAR exists (nothing else may take them). */
  readonly #reserved = new Set<string>();

  constructor(options: { kernel: Kernel; store: Store; layout: HomeLayout; isolation: Isolation; journal: Journal; agents: AgentFactory }) {
    this.#kernel = options.kernel;
    this.#store = options.store;
    this.#layout = options.layout;
    this.#isolation = options.isolation;
    this.#journal = options.journal;
    this.#agents = options.agents;
    this.#kernel.use(this.#subsystem());
  }

  /**
   * The host ids its sealed WPARs' ids map to, or `null` when they are not sealed in a user namespace:
   * images record ownership as the WPAR sees it and restores map it back through these (S6).
   */
  get ids(): IdRange | null {
    return this.#isolation.seal?.ids ?? null;
  }
  /** In a cluster (`src/cluster`): the ownership epoch a WPAR's processes get as `WPAR_EPOCH` (C4), or undefined. */
  epochOf: (name: string) => Promise<number | undefined> | number | undefined = () => undefined;
  /** In a cluster: why a WPAR's processes ended when something outside the daemon killed them (the fencing watchdog, C4), or undefined. */
  endedBy: (name: string) => string | undefined = () => undefined;

  /** Loads stored definitions (at daemon start). */
  load(stored: Map<string, StoredWpar>): void {
    for (const [name, s] of stored) {
      this.#records.set(name, {
        definition: s.definition, transient: s.transient, createdAt: s.createdAt, lastExit: s.lastExit,
        state: s.broken ? { kind: 'broken' } : { kind: 'defined' }, waiters: [],
      });
    }
  }

  /** Names of every WPAR, sorted. */
  names(): string[] {
    return [...this.#records.keys()].sort();
  }

  /** Whether a WPAR of that name is defined. */
  has(name: string): boolean {
    return this.#records.has(name);
  }

  /** `lswpar`: one WPAR. */
  info(name: string): WparInfo {
    return this.#info(this.#get(name));
  }

  /** `lswpar`: these WPARs (all when `names` is empty), by name. Unknown names → ENOENT. */
  list(names: readonly string[] = []): WparInfo[] {
    if (names.length === 0) return this.names().map((n) => this.#info(this.#records.get(n)!));
    return names.map((n) => this.info(n));
  }

  /**
   * Holds a free name for a restart or an incoming move before anything touches the disk: until the
   * returned release is called, `mkwpar`, another restart and another move of that name get EEXIST.
   * The holder passes `{ reserved: true }` to {@link create}.
   */
  reserve(name: string): () => void {
    if (this.#records.has(name)) throw new WparError('EEXIST', `${name}: a WPAR of that name already exists on this system`);
    if (this.#reserved.has(name)) throw new WparError('EEXIST', `${name}: a WPAR of that name is being restarted or moved in on this system`);
    this.#reserved.add(name);
    let held = true;
    return () => { if (held) { held = false; this.#reserved.delete(name); } };
  }

  /** `mkwpar`: stores a (validated) definition and creates its root. EEXIST if the name is taken. */
  async create(definition: WparDefinition, transient = false, options: { reserved?: boolean } = {}): Promise<WparInfo> {
    if (this.#records.has(definition.name)) throw new WparError('EEXIST', `${definition.name}: a WPAR of that name already exists`);
    if (this.#reserved.has(definition.name) && options.reserved !== true) {
      throw new WparError('EEXIST', `${definition.name}: a WPAR of that name is being restarted or moved in on this system`);
    }
    const createdAt = Date.now();
    // The root first: a definition is only stored once its root exists (nothing half-made). Its
    // directory (console log beside the root) is private whatever the umask.
    await privateDir(this.#layout.wparsDir);
    await privateDir(this.#layout.wparDir(definition.name));
    await mkdir(this.#layout.root(definition.name), { recursive: true, mode: 0o755 });
    if (!this.#store.insert(definition, transient, createdAt)) throw new WparError('EEXIST', `${definition.name}: a WPAR of that name already exists`);
    this.#ended.delete(definition.name);
    const r: WparRecord = { definition, transient, createdAt, lastExit: null, state: { kind: 'defined' }, waiters: [] };
    this.#records.set(definition.name, r);
    this.#event('runtime.defined', definition.name, { transient });
    return this.#info(r);
  }

  /**
   * `startwpar`: kernel activation, then the runtime starts the processes. With `restart`, the kernel
   * phase is `restarting` and `agentStates` are handed to the agents before any process starts.
   */
  async start(name: string, options: { restart?: boolean; agentStates?: Record<string, unknown> } = {}): Promise<WparInfo> {
    const r = this.#get(name);
    this.#ask(r, 'start', 'start');
    // A new run: a `chkptwpar -k` record left by a stop that failed is about the run before.
    clearPendingKill(this.#layout, name);
    const wasBroken = r.state.kind === 'broken';
    // The agent states are this run's own: a refused start (above) never touches another's.
    const run = this.#begin(r, { agentStates: options.agentStates, adopting: null });
    try {
      await this.#kernel.activate({ name, checkpointable: r.definition.checkpointable }, { restart: options.restart === true });
      this.#settle(r, run, 'started'); // unless the command has already exited and is being stopped
      if (wasBroken) this.#store.setBroken(name, false);
      return this.#info(r);
    } catch (caught) {
      // The root cause once, with its own errno (ENOENT for a missing command, not the activation's
      // ECANCELED), the WPAR named once; the whole chain stays as `cause`.
      const err = startFailure(name, caught);
      if (this.#settle(r, run, 'start-failed')) {
        const reason = `failed to start: ${err.message.slice(name.length + 2)} (${err.code})`;
        r.lastExit = { code: null, signal: null, at: Date.now(), reason };
        this.#store.setExit(name, r.lastExit, true);
        this.#event('runtime.start-failed', name, { reason });
        // A transient WPAR exists only to run once: one that cannot start leaves nothing behind.
        if (r.transient) await this.remove(name).catch(() => {});
      }
      throw err;
    }
  }

  /** `stopwpar`: SIGTERM (or SIGKILL with force), SIGKILL after the timeout, then deactivation. */
  stop(name: string, options: { force?: boolean; timeoutSec?: number; reason?: string } = {}): Promise<WparInfo> {
    let r: WparRecord;
    try {
      r = this.#get(name);
      if (this.#ask(r, 'stop', 'stop') === 'join') return (r.state as Extract<State, { kind: 'stopping' }>).done;
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const seconds = options.timeoutSec ?? DEFAULT_STOP_SECONDS;
    const wrong = stopSecondsProblem(seconds);
    if (wrong !== undefined) return Promise.reject(new WparError('EINVAL', `${name}: ${wrong}`));
    return this.#stop(r, 'stop', {
      options: { force: options.force === true, graceMs: Math.round(seconds * 1000) },
      reason: options.reason ?? (options.force ? 'stopped by stopwpar -F' : 'stopped by stopwpar'),
      broken: false,
    });
  }

  /** `rmwpar`: removes definition and root. An active WPAR needs `force` (it is stopped first). */
  async remove(name: string, options: { force?: boolean } = {}): Promise<void> {
    let r = this.#get(name);
    const cell = decide(r.state.kind, 'remove');
    if (cell !== undefined && 'refuse' in cell && options.force) {
      await this.stop(name, { force: true, reason: 'removed by rmwpar -F' });
      if (this.#records.get(name) !== r) return; // removed meanwhile (a transient WPAR removes itself)
      r = this.#get(name);
    }
    if (this.#ask(r, 'remove', 'remove') === 'join') return (r.state as Extract<State, { kind: 'removing' }>).done;
    const from = r.state.kind === 'broken' ? 'broken' : 'defined';
    const done = Promise.withResolvers<void>();
    r.state = enter(name, r.state.kind, 'remove', { kind: 'removing', from, done: done.promise });
    (async () => {
      try {
        await rm(this.#layout.wparDir(name), { recursive: true, force: true });
      } catch (err) {
        r.state = enter(name, 'removing', 'remove-failed', { kind: from });
        throw err;
      }
      enter(name, 'removing', 'removed', 'gone');
      this.#store.remove(name);
      this.#records.delete(name);
      // Nobody waits forever on a WPAR that is gone: a waiter gets its last exit, or a removal notice.
      const last = r.lastExit ?? { code: null, signal: null, at: Date.now(), reason: 'removed' };
      for (const w of r.waiters.splice(0)) w(last);
      this.#event('runtime.removed', name, {});
    })().then(done.resolve, done.reject);
    return done.promise;
  }

  /** Resolves how the WPAR next ends (at once if it is not running and has ended before). */
  wait(name: string): Promise<ExitInfo> {
    const ended = this.#ended.get(name);
    const r = this.#records.get(name);
    if (!r) {
      if (ended) return Promise.resolve(ended);
      return Promise.reject(new WparError('ENOENT', `${name}: no such WPAR`));
    }
    if (!holdsRun(r.state.kind) && r.lastExit) return Promise.resolve(r.lastExit);
    return new Promise((resolve) => r.waiters.push(resolve));
  }

  /** Resolves when the WPAR's next run ends (after a start that has not happened yet, if need be). */
  nextExit(name: string): Promise<ExitInfo> {
    const r = this.#get(name);
    return new Promise((resolve) => r.waiters.push(resolve));
  }

  /** Whether processes of the WPAR may still produce console output. */
  running(name: string): boolean {
    const r = this.#records.get(name);
    return r !== undefined && holdsRun(r.state.kind);
  }

  /** Names of WPARs that hold a cid. */
  active(): string[] {
    return this.names().filter((n) => (runOf(this.#records.get(n)!.state)?.cid ?? null) !== null);
  }

  /** Starts every auto-start WPAR (but those in `except`); failures are reported as events, not thrown. */
  async autostart(except: ReadonlySet<string> = new Set()): Promise<void> {
    for (const name of this.names()) {
      const r = this.#records.get(name);
      if (!r || !r.definition.autostart || (runOf(r.state)?.cid ?? null) !== null || except.has(name)) continue;
      try {
        await this.start(name);
      } catch (err) {
        this.#event('runtime.autostart-failed', name, { reason: (err as Error).message });
      }
    }
  }

  /**
   * R7: a WPAR the previous daemon recorded as running. If its processes are still there and still it
   * (see {@link examineRecorded}), it is activated again in the kernel with the same cid (WPARSTART
   * callouts see an activation), its agent endpoint re-opened in the same directory, and it carries
   * on (`adopted`); if it ended meanwhile, its exit is recorded from bwrap's status file (`exited`);
   * otherwise it is recorded as lost (state B with the reason) and the caller stops what is left
   * (`stopped`). Call before {@link autostart} and before serving.
   */
  async recover(name: string, record: RunningRecord, options: { handedOver?: boolean } = {}): Promise<Recovery> {
    const r = this.#records.get(name);
    if (!r) return { outcome: 'stopped', reason: 'no definition' };
    // The agent directory of a run that is over (its processes are stopped by the caller).
    const forget = async (): Promise<void> => {
      const cid = record.cid;
      if (cid === undefined || [...this.#records.values()].some((x) => runOf(x.state)?.cid === cid)) return;
      await rm(this.#layout.agentDir(cid), { recursive: true, force: true }).catch(() => {});
    };
    const lost = async (why: string): Promise<Recovery> => {
      this.markLost(name, `lost: the daemon stopped unexpectedly and its processes could not be adopted (${why}); they were stopped at restart`);
      await forget();
      return { outcome: 'stopped', reason: why };
    };
    if (record.cid === undefined) return lost('recorded without a cid (by an older daemon)');
    // M4: a WPAR that was being handed over to another system may run there now: never thawed here.
    // Its (frozen) processes are stopped by the caller; the mover says what became of it.
    if (options.handedOver) {
      await forget();
      return { outcome: 'stopped', reason: 'it was being moved to another system' };
    }
    // R7: `chkptwpar -k` had completed its image: its frozen processes are stopped, never thawed.
    const pending = takePendingKill(this.#layout, name);
    if (pending) {
      const reason = `stopped after checkpoint (chkptwpar -k into ${pending.dir}): the image was complete when the daemon stopped`;
      r.lastExit = { code: null, signal: null, at: Date.now(), reason };
      this.#store.setExit(name, r.lastExit, false);
      this.#event('runtime.recovered', name, { outcome: 'stopped', reason });
      await forget();
      return { outcome: 'stopped', reason };
    }
    const seen = examineRecorded(this.#adoptOptions(r, record));
    if (seen.kind === 'refused') return lost(seen.reason);
    if (seen.kind === 'exited') {
      const { code, signal } = seen.exit;
      const reason = this.endedBy(name) ?? (signal ? `killed by ${signal} while the daemon was down`
        : code !== null ? `exited with status ${code} while the daemon was down`
        : 'ended while the daemon was down; its exit status is unknown (bwrap left none)');
      const broken = code === null;
      r.lastExit = { code, signal, at: Date.now(), reason };
      this.#store.setExit(name, r.lastExit, broken);
      if (broken) this.#idle(r, 'lost', 'broken');
      this.#event('runtime.exited', name, { code, signal, reason, broken });
      this.#event('runtime.recovered', name, { outcome: 'exited', reason });
      await forget();
      return { outcome: 'exited' };
    }
    this.#ask(r, 'start', 'adopt');
    const run = this.#begin(r, { agentStates: undefined, adopting: record });
    try {
      await this.#kernel.activate({ name, checkpointable: r.definition.checkpointable }, { cid: record.cid });
    } catch (err) {
      this.#settle(r, run, 'start-failed');
      return lost((err as Error).message);
    }
    this.#settle(r, run, 'started');
    this.#event('runtime.recovered', name, { outcome: 'adopted', cid: run.cid, pid: run.proc?.pid ?? null });
    return { outcome: 'adopted', cgroupPath: run.proc?.cgroupPath ?? null };
  }

  #adoptOptions(r: WparRecord, record: RunningRecord): AdoptOptions {
    const name = r.definition.name;
    return {
      definition: r.definition, consoleLog: this.#layout.consoleLog(name), statusFile: this.#layout.statusFile(name),
      agentPath: this.#layout.agentSocket(record.cid ?? 0), isolation: this.#isolation, cgroupParent: this.#layout.cgroupParent,
      record: { pid: record.pid, startTime: record.startTime ?? null, cgroupPath: record.cgroupPath },
    };
  }

  /**
   * Records that a WPAR's processes were lost (with the previous daemon, or to an uncertain move) and
   * have been stopped: state B with the reason. A WPAR that runs again meanwhile keeps running; its
   * run's end decides its state.
   */
  markLost(name: string, reason: string): void {
    const r = this.#records.get(name);
    if (!r) return;
    r.lastExit = { code: null, signal: null, at: Date.now(), reason };
    this.#store.setExit(name, r.lastExit, true);
    this.#idle(r, 'lost', 'broken');
    this.#event('runtime.recovered', name, { reason });
  }

  /**
   * Takes an active, checkpointable WPAR for a checkpoint (state T, then F while frozen) or, with
   * `movingTo`, for a move (state M throughout) — R4.1's refusals with their reasons. The caller
   * must `release()` it, or `stop()` it. This is the checkpoint hand-off: the only way into and out of those states.
   */
  beginCheckpoint(name: string, options: { movingTo?: string } = {}): CheckpointAccess {
    const r = this.#get(name);
    const event = options.movingTo === undefined ? 'checkpoint' : 'move';
    if (!r.definition.checkpointable) throw new WparError('EINVAL', `${name}: not checkpointable (define it with mkwpar -c)`);
    this.#ask(r, event, event);
    const run = runOf(r.state)!;
    const proc = run.proc;
    if (run.cid === null || !proc) throw this.#refusal(r, 'not-active', event);
    const hold: State = options.movingTo === undefined ? { kind: 'checkpointing', run } : { kind: 'moving', run, to: options.movingTo };
    r.state = enter(name, r.state.kind, event, hold);
    return {
      definition: r.definition, root: this.#layout.root(name), cid: run.cid, agents: run.agents,
      freeze: async () => { await proc.freeze(); run.frozen = true; this.#event('runtime.frozen', name, {}); },
      thaw: async () => { if (run.frozen) { await proc.thaw(); run.frozen = false; this.#event('runtime.thawed', name, {}); } },
      // Back to active: running again, or still frozen for the stop that follows (chkptwpar -k, a move's hand-over).
      release: () => { if (r.state === hold) r.state = enter(name, hold.kind, 'release', { kind: 'active', run }); },
      // A hold that has ended (its processes exited meanwhile, or it was released) stops like stopwpar -F.
      stop: (reason) => r.state === hold
        ? this.#stop(r, 'hand-off', { options: { force: true }, reason, broken: false })
        : this.stop(name, { force: true, reason }),
    };
  }

  /** While restarting: resolves when every agent participant has restored (at once if none had state). */
  restored(name: string): Promise<void> {
    return runOf(this.#get(name).state)?.restored ?? Promise.resolve();
  }

  #subsystem(): Subsystem {
    return {
      name: 'runtime',
      start: (cid, corral) => this.#startProcesses(cid, corral),
      stop: (cid, corral) => this.#stopProcesses(cid, corral),
    };
  }

  /** Subsystem start: the agent endpoint first (a program may connect at once), then the processes. */
  async #startProcesses(cid: number, corral: KernelCorral): Promise<void> {
    const r = this.#records.get(corral.name);
    if (!r) throw new WparError('ENOENT', `${corral.name}: not defined in this daemon`);
    if (r.state.kind !== 'starting') throw new WparError('EINVAL', `${corral.name}: activated while ${r.state.kind}, not by this daemon's start`);
    const { run, plan } = r.state;
    if (plan.adopting) return this.#adoptProcesses(cid, r, run, plan.adopting);
    const name = r.definition.name;
    const socketPath = this.#layout.agentSocket(cid);
    // The socket's own directory (what a sealed WPAR sees of the home's run directory); the runtime
    // hands it to the WPAR's uid 0 (launch).
    mkdirSync(this.#layout.agentDir(cid), { recursive: true, mode: 0o700 });
    run.cid = cid;
    // The agent endpoint opens while the processes are being set up; the command is not let go
    // before it exists (launch's gate), so a program can connect from its first instruction.
    const opening = this.#agents({ socketPath, wparName: name, cid: () => this.#cidOf(r, run), openOwner: (n) => this.#kernel.extension(n) })
      .then((agents) => {
        run.agents = agents;
        // Restart: states go to the endpoint before any process runs, so a participant that
        // registers at once is handed its state.
        if (plan.agentStates) {
          run.restored = agents.restore(plan.agentStates);
          run.restored.catch(() => {}); // awaited by the restart; a failure there is reported by it
        }
      });
    opening.catch(() => {}); // awaited by launch (the gate) and below; never an unhandled rejection
    try {
      const epoch = await this.epochOf(name);
      run.proc = await launch({
        definition: r.definition, cid, root: this.#layout.root(name), agentPath: socketPath, ...(epoch !== undefined && { epoch }),
        consoleLog: this.#layout.consoleLog(name), statusFile: this.#layout.statusFile(name), isolation: this.#isolation, cgroupParent: this.#layout.cgroupParent,
        privateDir: this.#layout.home, tmpDir: this.#layout.tmpDir(name),
        gate: opening,
      });
    } catch (err) {
      await opening.catch(() => {});
      await this.#forgetRun(run, cid);
      throw err;
    }
    run.startedAt = Date.now();
    this.#running(r, run, cid, run.proc, 'runtime.started');
  }

  /** Records a started or adopted WPAR's processes, and deactivates it when they end. */
  #running(r: WparRecord, run: Run, cid: number, proc: WparProcess, event: string): void {
    const name = r.definition.name;
    this.#store.setRunning(name, {
      pid: proc.pid, pgid: proc.pgid, cgroupPath: proc.cgroupPath, startedAt: run.startedAt ?? Date.now(), cid, startTime: proc.startTime,
    });
    this.#event(event, name, { cid, pid: proc.pid, isolation: proc.isolation.summary, unenforcedLimits: proc.unenforcedLimits });
    proc.exited.then(
      (exit) => this.#onExit(r, run, proc, exit),
      (err: unknown) => this.#onExit(r, run, proc, { code: null, signal: null, oomKilled: false }, err),
    );
  }

  /**
   * Subsystem start of an adoption (R7): the agent endpoint again in the same directory (bind-mounted
   * into the WPAR, so the new socket is what its programs reach), then the processes taken over.
   */
  async #adoptProcesses(cid: number, r: WparRecord, run: Run, record: RunningRecord): Promise<void> {
    const name = r.definition.name;
    const agentDir = this.#layout.agentDir(cid);
    // A new directory would not be the one mounted inside: the WPAR could no longer reach its agent.
    if (!existsSync(agentDir)) throw new WparError('ENOENT', `${name}: its agent directory ${agentDir} is gone`);
    run.cid = cid;
    const opening = this.#agents({ socketPath: this.#layout.agentSocket(cid), wparName: name, cid: () => this.#cidOf(r, run), openOwner: (n) => this.#kernel.extension(n) })
      .then((agents) => { run.agents = agents; });
    opening.catch(() => {});
    try {
      run.proc = await adopt({ ...this.#adoptOptions(r, record), gate: opening });
    } catch (err) {
      await opening.catch(() => {});
      await this.#forgetRun(run, cid);
      throw err;
    }
    run.startedAt = record.startedAt;
    this.#running(r, run, cid, run.proc, 'runtime.adopted');
  }

  /** After a failed launch or adoption: the agent endpoint closed, the cid and its agent directory gone. */
  async #forgetRun(run: Run, cid: number): Promise<void> {
    await run.agents?.close();
    run.agents = null;
    run.cid = null;
    await rm(this.#layout.agentDir(cid), { recursive: true, force: true }).catch(() => {});
  }

  /**
   * Subsystem stop: every process gone (TERM, then KILL, as the stop's plan says), then the agent
   * endpoint closed. Also the kernel's roll-back of a start that failed after this subsystem started.
   */
  async #stopProcesses(cid: number, corral: KernelCorral): Promise<void> {
    const r = this.#records.get(corral.name);
    const run = r ? runOf(r.state) : undefined;
    if (!r || !run || run.cid !== cid) return;
    const proc = run.proc;
    // A roll-back (still starting): the kernel asked for this end, so it is no unasked exit; the
    // start records its failure.
    if (r.state.kind === 'starting') run.proc = null;
    try {
      if (proc) run.lastRun = await proc.stop(r.state.kind === 'stopping' ? r.state.plan.options : {});
    } finally {
      run.proc = null;
      await run.agents?.close();
      run.agents = null;
      await rm(this.#layout.agentDir(cid), { recursive: true, force: true }).catch(() => {});
    }
  }

  /** The main process ended. If nobody asked for it, deactivate: WPARSTOP callouts run, then D (or B). */
  #onExit(r: WparRecord, run: Run, proc: WparProcess, exit: WparExit, err?: unknown): void {
    if (runOf(r.state) !== run || run.proc !== proc) return; // an earlier run's processes
    const cell = decide(r.state.kind, 'exit');
    if (cell !== undefined && 'ignore' in cell) return; // a stop is under way and records the exit itself
    run.lastRun = exit;
    const reason = this.endedBy(r.definition.name) ?? (err ? `lost: ${(err as Error).message}`
      : exit.oomKilled ? `killed by the memory limit (${exit.signal ?? 'exit ' + exit.code})`
      : exit.signal ? `killed by ${exit.signal}`
      : `exited with status ${exit.code}`);
    // An exit is the program's business (D); a kill nobody here asked for lost its processes (B).
    const broken = err !== undefined || exit.signal !== null || exit.oomKilled;
    this.#stop(r, 'exit', { options: { force: true }, reason, broken }).catch(() => {});
  }

  /**
   * The stop direction: into `stopping` with its plan (a second stop joins it), the kernel deactivation
   * (the runtime subsystem stops the processes by the plan, WPARSTOP callouts run), then D or B with
   * the exit recorded and every waiter told. A transient WPAR is then removed.
   */
  #stop(r: WparRecord, event: 'stop' | 'hand-off' | 'exit', plan: StopPlan): Promise<WparInfo> {
    const name = r.definition.name;
    const run = runOf(r.state)!;
    const done = Promise.withResolvers<WparInfo>();
    r.state = enter(name, r.state.kind, event, { kind: 'stopping', run, plan, done: done.promise });
    this.#deactivate(r, run, plan).then(done.resolve, done.reject);
    return done.promise;
  }

  async #deactivate(r: WparRecord, run: Run, plan: StopPlan): Promise<WparInfo> {
    const name = r.definition.name;
    try {
      await this.#kernel.deactivate(run.cid!);
    } finally {
      const last = run.lastRun;
      const exit: ExitInfo = { code: last?.code ?? null, signal: last?.signal ?? null, at: Date.now(), reason: plan.reason };
      r.state = enter(name, 'stopping', 'stopped', plan.broken ? { kind: 'broken' } : { kind: 'defined' });
      r.lastExit = exit;
      this.#store.setExit(name, exit, plan.broken);
      this.#event('runtime.exited', name, { code: exit.code, signal: exit.signal, reason: plan.reason, broken: plan.broken });
      for (const w of r.waiters.splice(0)) w(exit);
      if (r.transient && this.#records.get(name) === r) {
        this.#ended.set(name, exit);
        setTimeout(() => this.#ended.get(name) === exit && this.#ended.delete(name), 10 * 60_000).unref();
        this.remove(name).catch(() => {});
      }
    }
    return this.#info(r);
  }

  /** The start direction: a new run, in `starting` with its plan (the table has allowed it: {@link #ask}). */
  #begin(r: WparRecord, plan: StartPlan): Run {
    const run: Run = { cid: null, proc: null, agents: null, startedAt: null, frozen: false, lastRun: null, restored: null };
    r.state = enter(r.definition.name, r.state.kind, 'start', { kind: 'starting', run, plan });
    return run;
  }

  /**
   * How a start ended, if the WPAR is still starting that run: `started` → A, `start-failed` → B (the
   * caller records why). False when it had moved on (its command exited meanwhile: the stop records it).
   */
  #settle(r: WparRecord, run: Run, event: 'started' | 'start-failed'): boolean {
    if (r.state.kind !== 'starting' || r.state.run !== run) return false;
    r.state = enter(r.definition.name, 'starting', event, event === 'started' ? { kind: 'active', run } : { kind: 'broken' });
    return true;
  }

  /** An idle WPAR goes to `target` by `event`; in any other state the event only records (the table says so). */
  #idle(r: WparRecord, event: 'lost', target: 'broken'): void {
    const cell = decide(r.state.kind, event);
    if (cell !== undefined && 'ignore' in cell) return;
    r.state = enter(r.definition.name, r.state.kind, event, { kind: target });
  }

  /**
   * A request, by the table: refused with its errno and reason (nothing changes), `join` when the same
   * request is under way, `go` when it may proceed.
   */
  #ask(r: WparRecord, event: LifecycleEvent, verb: string): 'go' | 'join' {
    const cell = decide(r.state.kind, event);
    if (cell === undefined) throw illegal(r.definition.name, r.state.kind, event);
    if ('refuse' in cell) throw this.#refusal(r, cell.refuse, verb);
    if ('join' in cell) return 'join';
    if ('ignore' in cell) throw illegal(r.definition.name, r.state.kind, event);
    return 'go';
  }

  #refusal(r: WparRecord, why: Refusal, verb: string): WparError {
    return refusal(why, { name: r.definition.name, verb, kind: r.state.kind, cid: runOf(r.state)?.cid ?? null, letter: this.#letter(r) });
  }

  /** The cid the agents of `run` see: while the WPAR is still in that run. */
  #cidOf(r: WparRecord, run: Run): number | undefined {
    return runOf(r.state) === run ? run.cid ?? undefined : undefined;
  }

  #get(name: string): WparRecord {
    const r = this.#records.get(name);
    if (!r) throw new WparError('ENOENT', `${name}: no such WPAR`);
    return r;
  }

  #letter(r: WparRecord): WparLetter {
    return letterOf(r.state.kind, runOf(r.state)?.frozen ?? false);
  }

  #info(r: WparRecord): WparInfo {
    const run = runOf(r.state);
    const cid = run?.cid ?? null;
    const st = cid !== null ? this.#kernel.status(cid) : undefined;
    return {
      name: r.definition.name,
      state: this.#letter(r),
      cid,
      phase: st?.phase ?? null,
      checkpointable: r.definition.checkpointable,
      denials: st?.denials ?? [],
      autostart: r.definition.autostart,
      definition: r.definition,
      root: this.#layout.root(r.definition.name),
      isolation: run?.proc?.isolation.summary ?? null,
      isolationMissing: this.#isolation.notes,
      unenforcedLimits: run?.proc?.unenforcedLimits ?? [],
      pid: run?.proc?.pid ?? null,
      startedAt: run?.startedAt ?? null,
      lastExit: r.lastExit,
      transient: r.transient,
      ...(r.state.kind === 'moving' && { movingTo: r.state.to }),
    };
  }

  #event(type: string, name: string, fields: Record<string, unknown>): void {
    this.#journal.record({ type, time: Date.now(), name, ...fields });
  }
}

/** The run a state holds, if any. */
function runOf(state: State): Run | undefined {
  return holdsRun(state.kind) ? (state as Extract<State, { run: Run }>).run : undefined;
}

/**
 * `NAME: ROOT CAUSE` with the root cause's errno, for a start that failed with `err` (kept as the
 * cause). Prefixes that name the WPAR again (`WPAR web: `, `web: `) are dropped from the root's message.
 */
function startFailure(name: string, err: unknown): WparError {
  const root = rootCause(err);
  if (root === undefined) return new WparError('EINVAL', `${name}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  let message = root.message;
  for (const prefix of [`WPAR ${name}: `, `${name}: `, `WPAR "${name}": `]) {
    if (message.startsWith(prefix)) message = message.slice(prefix.length);
  }
  return new WparError(root.code, `${name}: ${message}`, { cause: err });
}
