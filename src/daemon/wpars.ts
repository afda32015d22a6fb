/**
 * The WPAR manager: definitions, and the runtime as a kernel subsystem (R2). `startwpar` is a kernel
 * activation — WPARSTART callouts run, then this subsystem starts the processes — and `stopwpar` a
 * deactivation — this subsystem stops every process, then WPARSTOP callouts run.
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
}

/** Opens the agent endpoint of a WPAR about to start. */
export type AgentFactory = (options: {
  socketPath: string;
  wparName: string;
  cid: () => number | undefined;
  /** Opens the kernel owner of one agent connection (`agent:NAME/PID`). */
  openOwner: (ownerName: string) => Owner;
}) => Promise<AgentEndpoint>;

/** One WPAR as the manager keeps it. */
interface Entry {
  definition: WparDefinition;
  transient: boolean;
  createdAt: number;
  lastExit: ExitInfo | null;
  broken: boolean;
  /** The cid while the kernel holds one. */
  cid: number | null;
  proc: WparProcess | null;
  agents: AgentEndpoint | null;
  startedAt: number | null;
  /** A transition in progress (state T, or F while frozen), or null. */
  busy: 'starting' | 'stopping' | 'removing' | 'checkpointing' | 'restarting' | 'moving' | null;
  /** While moving (state M): the peer it is moving to. */
  movingTo: string | null;
  frozen: boolean;
  /** How the runtime subsystem should stop the processes, and what to record as the reason. */
  stopWith: { options: StopOptions; reason: string } | null;
  /** How the processes ended, as the runtime saw it. */
  lastRun: WparExit | null;
  stopping: Promise<WparInfo> | null;
  waiters: ((exit: ExitInfo) => void)[];
  /** While restarting from an image: resolves when every agent participant has restored. */
  restored: Promise<void> | null;
  /** While a start adopts the processes an earlier daemon left running (R7): what it recorded. */
  adopting?: RunningRecord | null;
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
  readonly #entries = new Map<string, Entry>();
  readonly #kernel: Kernel;
  readonly #store: Store;
  readonly #layout: HomeLayout;
  readonly #isolation: Isolation;
  readonly #journal: Journal;
  readonly #agents: AgentFactory;
  /** Exits of transient WPARs already removed, so a `wait` that arrives late still gets the status. */
  readonly #ended = new Map<string, ExitInfo>();
  /** Agent states to hand over when the next start of a WPAR opens its agent endpoint. */
  readonly #pendingStates = new Map<string, Record<string, unknown> | undefined>();
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
      this.#entries.set(name, {
        definition: s.definition, transient: s.transient, createdAt: s.createdAt, lastExit: s.lastExit,
        broken: s.broken, cid: null, proc: null, agents: null, startedAt: null, busy: null, movingTo: null, frozen: false,
        stopWith: null, lastRun: null, stopping: null, waiters: [], restored: null,
      });
    }
  }

  /** Names of every WPAR, sorted. */
  names(): string[] {
    return [...this.#entries.keys()].sort();
  }

  /** Whether a WPAR of that name is defined. */
  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** `lswpar`: one WPAR. */
  info(name: string): WparInfo {
    return this.#info(this.#get(name));
  }

  /** `lswpar`: these WPARs (all when `names` is empty), by name. Unknown names → ENOENT. */
  list(names: readonly string[] = []): WparInfo[] {
    if (names.length === 0) return this.names().map((n) => this.#info(this.#entries.get(n)!));
    return names.map((n) => this.info(n));
  }

  /**
   * Holds a free name for a restart or an incoming move before anything touches the disk: until the
   * returned release is called, `mkwpar`, another restart and another move of that name get EEXIST.
   * The holder passes `{ reserved: true }` to {@link create}.
   */
  reserve(name: string): () => void {
    if (this.#entries.has(name)) throw new WparError('EEXIST', `${name}: a WPAR of that name already exists on this system`);
    if (this.#reserved.has(name)) throw new WparError('EEXIST', `${name}: a WPAR of that name is being restarted or moved in on this system`);
    this.#reserved.add(name);
    let held = true;
    return () => { if (held) { held = false; this.#reserved.delete(name); } };
  }

  /** `mkwpar`: stores a (validated) definition and creates its root. EEXIST if the name is taken. */
  async create(definition: WparDefinition, transient = false, options: { reserved?: boolean } = {}): Promise<WparInfo> {
    if (this.#entries.has(definition.name)) throw new WparError('EEXIST', `${definition.name}: a WPAR of that name already exists`);
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
    const e: Entry = {
      definition, transient, createdAt, lastExit: null, broken: false, cid: null, proc: null, agents: null,
      startedAt: null, busy: null, movingTo: null, frozen: false, stopWith: null, lastRun: null, stopping: null, waiters: [], restored: null,
    };
    this.#entries.set(definition.name, e);
    this.#event('runtime.defined', definition.name, { transient });
    return this.#info(e);
  }

  /**
   * `startwpar`: kernel activation, then the runtime starts the processes. With `restart`, the kernel
   * phase is `restarting` and `agentStates` are handed to the agents before any process starts.
   */
  async start(name: string, options: { restart?: boolean; agentStates?: Record<string, unknown> } = {}): Promise<WparInfo> {
    const e = this.#get(name);
    if (e.busy) throw new WparError('EBUSY', `${name}: cannot start while ${e.busy}`);
    if (e.cid !== null) throw new WparError('EBUSY', `${name}: already active (cid ${e.cid})`);
    // Only a start that goes ahead sets what its agents are handed: a refused one must not touch it.
    e.restored = null;
    this.#pendingStates.set(name, options.agentStates);
    e.busy = 'starting';
    try {
      await this.#kernel.activate({ name, checkpointable: e.definition.checkpointable }, { restart: options.restart === true });
      if (e.busy === 'starting') e.busy = null; // the command may already have exited and be stopping
      if (e.broken) { e.broken = false; this.#store.setBroken(name, false); }
      return this.#info(e);
    } catch (caught) {
      // The root cause once, with its own errno (ENOENT for a missing command, not the activation's
      // ECANCELED), the WPAR named once; the whole chain stays as `cause`.
      const err = startFailure(name, caught);
      this.#pendingStates.delete(name);
      e.busy = null;
      e.broken = true;
      const reason = `failed to start: ${err.message.slice(name.length + 2)} (${err.code})`;
      e.lastExit = { code: null, signal: null, at: Date.now(), reason };
      this.#store.setExit(name, e.lastExit, true);
      this.#event('runtime.start-failed', name, { reason });
      // A transient WPAR exists only to run once: one that cannot start leaves nothing behind.
      if (e.transient) await this.remove(name).catch(() => {});
      throw err;
    }
  }

  /** `stopwpar`: SIGTERM (or SIGKILL with force), SIGKILL after the timeout, then deactivation. */
  stop(name: string, options: { force?: boolean; timeoutSec?: number; reason?: string } = {}): Promise<WparInfo> {
    const e = this.#get(name);
    if (e.stopping) return e.stopping;
    if (e.busy) return Promise.reject(new WparError('EBUSY', `${name}: cannot stop while ${e.busy}`));
    if (e.cid === null) return Promise.reject(new WparError('EINVAL', `${name}: not active (state ${this.#letter(e)})`));
    const seconds = options.timeoutSec ?? DEFAULT_STOP_SECONDS;
    const wrong = stopSecondsProblem(seconds);
    if (wrong !== undefined) return Promise.reject(new WparError('EINVAL', `${name}: ${wrong}`));
    e.stopWith = {
      options: { force: options.force === true, graceMs: Math.round(seconds * 1000) },
      reason: options.reason ?? (options.force ? 'stopped by stopwpar -F' : 'stopped by stopwpar'),
    };
    e.stopping = this.#deactivate(e, e.stopWith.reason, false);
    return e.stopping;
  }

  /** `rmwpar`: removes definition and root. An active WPAR needs `force` (it is stopped first). */
  async remove(name: string, options: { force?: boolean } = {}): Promise<void> {
    const e = this.#get(name);
    if (e.cid !== null || e.busy) {
      if (!options.force) throw new WparError('EBUSY', `${name}: is ${e.busy ?? 'active'}; stop it first or use -F`);
      await this.stop(name, { force: true, reason: 'removed by rmwpar -F' });
    }
    if (this.#entries.get(name) !== e) return; // removed meanwhile (a transient WPAR removes itself)
    e.busy = 'removing';
    try {
      await rm(this.#layout.wparDir(name), { recursive: true, force: true });
    } finally {
      e.busy = null;
    }
    this.#store.remove(name);
    this.#entries.delete(name);
    // Nobody waits forever on a WPAR that is gone: a waiter gets its last exit, or a removal notice.
    const last = e.lastExit ?? { code: null, signal: null, at: Date.now(), reason: 'removed' };
    for (const w of e.waiters.splice(0)) w(last);
    this.#event('runtime.removed', name, {});
  }

  /** Resolves how the WPAR next ends (at once if it is not running and has ended before). */
  wait(name: string): Promise<ExitInfo> {
    const ended = this.#ended.get(name);
    const e = this.#entries.get(name);
    if (!e) {
      if (ended) return Promise.resolve(ended);
      return Promise.reject(new WparError('ENOENT', `${name}: no such WPAR`));
    }
    if (e.cid === null && (e.busy === null || e.busy === 'removing') && e.lastExit) return Promise.resolve(e.lastExit);
    return new Promise((resolve) => e.waiters.push(resolve));
  }

  /** Resolves when the WPAR's next run ends (after a start that has not happened yet, if need be). */
  nextExit(name: string): Promise<ExitInfo> {
    const e = this.#get(name);
    return new Promise((resolve) => e.waiters.push(resolve));
  }

  /** Whether processes of the WPAR may still produce console output. */
  running(name: string): boolean {
    const e = this.#entries.get(name);
    return e !== undefined && (e.cid !== null || e.busy === 'starting');
  }

  /** Names of WPARs that hold a cid. */
  active(): string[] {
    return this.names().filter((n) => this.#entries.get(n)!.cid !== null);
  }

  /** Starts every auto-start WPAR (but those in `except`); failures are reported as events, not thrown. */
  async autostart(except: ReadonlySet<string> = new Set()): Promise<void> {
    for (const name of this.names()) {
      const e = this.#entries.get(name);
      if (!e || !e.definition.autostart || e.cid !== null || except.has(name)) continue;
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
    const e = this.#entries.get(name);
    if (!e) return { outcome: 'stopped', reason: 'no definition' };
    // The agent directory of a run that is over (its processes are stopped by the caller).
    const forget = async (): Promise<void> => {
      const cid = record.cid;
      if (cid === undefined || [...this.#entries.values()].some((x) => x.cid === cid)) return;
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
    const seen = examineRecorded(this.#adoptOptions(e, record));
    if (seen.kind === 'refused') return lost(seen.reason);
    if (seen.kind === 'exited') {
      const { code, signal } = seen.exit;
      const reason = this.endedBy(name) ?? (signal ? `killed by ${signal} while the daemon was down`
        : code !== null ? `exited with status ${code} while the daemon was down`
        : 'ended while the daemon was down; its exit status is unknown (bwrap left none)');
      const broken = code === null;
      e.lastExit = { code, signal, at: Date.now(), reason };
      e.broken = broken;
      this.#store.setExit(name, e.lastExit, broken);
      this.#event('runtime.exited', name, { code, signal, reason, broken });
      this.#event('runtime.recovered', name, { outcome: 'exited', reason });
      await forget();
      return { outcome: 'exited' };
    }
    e.adopting = record;
    e.busy = 'starting';
    try {
      await this.#kernel.activate({ name, checkpointable: e.definition.checkpointable }, { cid: record.cid });
    } catch (err) {
      return lost((err as Error).message);
    } finally {
      e.adopting = null;
      if (e.busy === 'starting') e.busy = null;
    }
    this.#event('runtime.recovered', name, { outcome: 'adopted', cid: e.cid, pid: e.proc?.pid ?? null });
    return { outcome: 'adopted', cgroupPath: e.proc?.cgroupPath ?? null };
  }

  #adoptOptions(e: Entry, record: RunningRecord): AdoptOptions {
    const name = e.definition.name;
    return {
      definition: e.definition, consoleLog: this.#layout.consoleLog(name), statusFile: this.#layout.statusFile(name),
      agentPath: this.#layout.agentSocket(record.cid ?? 0), isolation: this.#isolation, cgroupParent: this.#layout.cgroupParent,
      record: { pid: record.pid, startTime: record.startTime ?? null, cgroupPath: record.cgroupPath },
    };
  }

  /** Records that a WPAR's processes were lost with the previous daemon (and have been stopped). */
  markLost(name: string, reason: string): void {
    const e = this.#entries.get(name);
    if (!e) return;
    e.broken = true;
    e.lastExit = { code: null, signal: null, at: Date.now(), reason };
    this.#store.setExit(name, e.lastExit, true);
    this.#event('runtime.recovered', name, { reason });
  }

  /**
   * Takes an active, checkpointable WPAR for a checkpoint (state T, then F while frozen) or, with
   * `movingTo`, for a move (state M throughout) — R4.1's refusals with their reasons. The caller
   * must `release()` it.
   */
  beginCheckpoint(name: string, options: { movingTo?: string } = {}): CheckpointAccess {
    const e = this.#get(name);
    const what = options.movingTo === undefined ? 'checkpoint' : 'move';
    if (!e.definition.checkpointable) throw new WparError('EINVAL', `${name}: not checkpointable (define it with mkwpar -c)`);
    if (e.busy) throw new WparError('EBUSY', `${name}: cannot ${what} while ${e.busy}`);
    if (e.cid === null || !e.proc) throw new WparError('EINVAL', `${name}: not active (state ${this.#letter(e)})`);
    const proc = e.proc;
    const busy = options.movingTo === undefined ? 'checkpointing' : 'moving';
    e.busy = busy;
    e.movingTo = options.movingTo ?? null;
    return {
      definition: e.definition, root: this.#layout.root(name), cid: e.cid, agents: e.agents,
      freeze: async () => { await proc.freeze(); e.frozen = true; this.#event('runtime.frozen', name, {}); },
      thaw: async () => { if (e.frozen) { await proc.thaw(); e.frozen = false; this.#event('runtime.thawed', name, {}); } },
      release: () => { if (e.busy === busy) { e.busy = null; e.movingTo = null; } },
    };
  }

  /** While restarting: resolves when every agent participant has restored (at once if none had state). */
  restored(name: string): Promise<void> {
    return this.#get(name).restored ?? Promise.resolve();
  }

  #subsystem(): Subsystem {
    return {
      name: 'runtime',
      start: (cid, corral) => this.#startProcesses(cid, corral),
      stop: (_cid, corral) => this.#stopProcesses(corral),
    };
  }

  /** Subsystem start: the agent endpoint first (a program may connect at once), then the processes. */
  async #startProcesses(cid: number, corral: KernelCorral): Promise<void> {
    const e = this.#entries.get(corral.name);
    if (!e) throw new WparError('ENOENT', `${corral.name}: not defined in this daemon`);
    if (e.adopting) return this.#adoptProcesses(cid, e, e.adopting);
    const name = e.definition.name;
    const socketPath = this.#layout.agentSocket(cid);
    // The socket's own directory (what a sealed WPAR sees of the home's run directory); the runtime
    // hands it to the WPAR's uid 0 (launch).
    mkdirSync(this.#layout.agentDir(cid), { recursive: true, mode: 0o700 });
    e.cid = cid;
    e.lastRun = null;
    // The agent endpoint opens while the processes are being set up; the command is not let go
    // before it exists (launch's gate), so a program can connect from its first instruction.
    const opening = this.#agents({ socketPath, wparName: name, cid: () => e.cid ?? undefined, openOwner: (n) => this.#kernel.extension(n) })
      .then((agents) => {
        e.agents = agents;
        // Restart: states go to the endpoint before any process runs, so a participant that
        // registers at once is handed its state.
        const states = this.#pendingStates.get(name);
        this.#pendingStates.delete(name);
        if (states) {
          e.restored = agents.restore(states);
          e.restored.catch(() => {}); // awaited by the restart; a failure there is reported by it
        }
      });
    opening.catch(() => {}); // awaited by launch (the gate) and below; never an unhandled rejection
    try {
      const epoch = await this.epochOf(name);
      e.proc = await launch({
        definition: e.definition, cid, root: this.#layout.root(name), agentPath: socketPath, ...(epoch !== undefined && { epoch }),
        consoleLog: this.#layout.consoleLog(name), statusFile: this.#layout.statusFile(name), isolation: this.#isolation, cgroupParent: this.#layout.cgroupParent,
        privateDir: this.#layout.home, tmpDir: this.#layout.tmpDir(name),
        gate: opening,
      });
    } catch (err) {
      await opening.catch(() => {});
      await e.agents?.close();
      e.agents = null;
      e.cid = null;
      await rm(this.#layout.agentDir(cid), { recursive: true, force: true }).catch(() => {});
      throw err;
    }
    e.startedAt = Date.now();
    this.#running(e, cid, e.proc, 'runtime.started');
  }

  /** Records a started or adopted WPAR's processes, and deactivates it when they end. */
  #running(e: Entry, cid: number, proc: WparProcess, event: string): void {
    const name = e.definition.name;
    this.#store.setRunning(name, {
      pid: proc.pid, pgid: proc.pgid, cgroupPath: proc.cgroupPath, startedAt: e.startedAt ?? Date.now(), cid, startTime: proc.startTime,
    });
    this.#event(event, name, { cid, pid: proc.pid, isolation: proc.isolation.summary, unenforcedLimits: proc.unenforcedLimits });
    proc.exited.then(
      (exit) => this.#onExit(e, proc, exit),
      (err: unknown) => this.#onExit(e, proc, { code: null, signal: null, oomKilled: false }, err),
    );
  }

  /**
   * Subsystem start of an adoption (R7): the agent endpoint again in the same directory (bind-mounted
   * into the WPAR, so the new socket is what its programs reach), then the processes taken over.
   */
  async #adoptProcesses(cid: number, e: Entry, record: RunningRecord): Promise<void> {
    const name = e.definition.name;
    const agentDir = this.#layout.agentDir(cid);
    // A new directory would not be the one mounted inside: the WPAR could no longer reach its agent.
    if (!existsSync(agentDir)) throw new WparError('ENOENT', `${name}: its agent directory ${agentDir} is gone`);
    e.cid = cid;
    e.lastRun = null;
    const opening = this.#agents({ socketPath: this.#layout.agentSocket(cid), wparName: name, cid: () => e.cid ?? undefined, openOwner: (n) => this.#kernel.extension(n) })
      .then((agents) => { e.agents = agents; });
    opening.catch(() => {});
    try {
      e.proc = await adopt({ ...this.#adoptOptions(e, record), gate: opening });
    } catch (err) {
      await opening.catch(() => {});
      await e.agents?.close();
      e.agents = null;
      e.cid = null;
      await rm(agentDir, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
    e.startedAt = record.startedAt;
    this.#running(e, cid, e.proc, 'runtime.adopted');
  }

  /** Subsystem stop: every process gone (TERM, then KILL), then the agent endpoint closed. */
  async #stopProcesses(corral: KernelCorral): Promise<void> {
    const e = this.#entries.get(corral.name);
    if (!e) return;
    try {
      if (e.proc) e.lastRun = await e.proc.stop(e.stopWith?.options ?? {});
    } finally {
      e.proc = null;
      await e.agents?.close();
      e.agents = null;
      if (e.cid !== null) await rm(this.#layout.agentDir(e.cid), { recursive: true, force: true }).catch(() => {});
    }
  }

  /** The main process ended. If nobody asked for it, deactivate: WPARSTOP callouts run, then D (or B). */
  #onExit(e: Entry, proc: WparProcess, exit: WparExit, err?: unknown): void {
    if (e.proc !== proc || e.stopping) return; // a stop is under way and records the exit itself
    e.lastRun = exit;
    const reason = this.endedBy(e.definition.name) ?? (err ? `lost: ${(err as Error).message}`
      : exit.oomKilled ? `killed by the memory limit (${exit.signal ?? 'exit ' + exit.code})`
      : exit.signal ? `killed by ${exit.signal}`
      : `exited with status ${exit.code}`);
    // An exit is the program's business (D); a kill nobody here asked for lost its processes (B).
    const broken = err !== undefined || exit.signal !== null || exit.oomKilled;
    e.stopWith = { options: { force: true }, reason };
    e.stopping = this.#deactivate(e, reason, broken);
    e.stopping.catch(() => {});
  }

  async #deactivate(e: Entry, reason: string, broken: boolean): Promise<WparInfo> {
    const name = e.definition.name;
    e.busy = 'stopping';
    try {
      await this.#kernel.deactivate(e.cid!);
    } finally {
      const run = e.lastRun;
      const exit: ExitInfo = { code: run?.code ?? null, signal: run?.signal ?? null, at: Date.now(), reason };
      e.cid = null;
      e.proc = null;
      e.busy = null;
      e.frozen = false;
      e.stopWith = null;
      e.stopping = null;
      e.startedAt = null;
      e.lastExit = exit;
      e.broken = broken;
      this.#store.setExit(name, exit, broken);
      this.#event('runtime.exited', name, { code: exit.code, signal: exit.signal, reason, broken });
      for (const w of e.waiters.splice(0)) w(exit);
      if (e.transient && this.#entries.get(name) === e) {
        this.#ended.set(name, exit);
        setTimeout(() => this.#ended.get(name) === exit && this.#ended.delete(name), 10 * 60_000).unref();
        this.remove(name).catch(() => {});
      }
    }
    return this.#info(e);
  }

  #get(name: string): Entry {
    const e = this.#entries.get(name);
    if (!e) throw new WparError('ENOENT', `${name}: no such WPAR`);
    return e;
  }

  #letter(e: Entry): WparLetter {
    if (e.busy === 'moving') return 'M';
    if (e.frozen) return 'F';
    if (e.busy) return 'T';
    if (e.cid !== null) return 'A';
    return e.broken ? 'B' : 'D';
  }

  #info(e: Entry): WparInfo {
    const st = e.cid !== null ? this.#kernel.status(e.cid) : undefined;
    return {
      name: e.definition.name,
      state: this.#letter(e),
      cid: e.cid,
      phase: st?.phase ?? null,
      checkpointable: e.definition.checkpointable,
      denials: st?.denials ?? [],
      autostart: e.definition.autostart,
      definition: e.definition,
      root: this.#layout.root(e.definition.name),
      isolation: e.proc?.isolation.summary ?? null,
      isolationMissing: this.#isolation.notes,
      unenforcedLimits: e.proc?.unenforcedLimits ?? [],
      pid: e.proc?.pid ?? null,
      startedAt: e.startedAt,
      lastExit: e.lastExit,
      transient: e.transient,
      ...(e.movingTo !== null && { movingTo: e.movingTo }),
    };
  }

  #event(type: string, name: string, fields: Record<string, unknown>): void {
    this.#journal.record({ type, time: Date.now(), name, ...fields });
  }
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
