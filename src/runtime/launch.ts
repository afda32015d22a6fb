/**
 * Starting a WPAR's command and owning its processes until the last one is gone (R2).
 *
 * The life of a WPAR is its main process's: when it exits, whatever it left behind is killed (with
 * namespaces the kernel does this when PID 1 exits; otherwise the runtime does), and only then does
 * {@link WparProcess.exited} resolve.
 * @module
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, isAbsolute, join, resolve as resolvePath } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { WparError } from '../kernel/errno.ts';
import { Cgroup, signalProcess, type LimitKey } from './cgroup.ts';
import { planCommand } from './command.ts';
import { ConsoleLog, type ConsoleLogOptions } from './console-log.ts';
import type { WparDefinition } from './definition.ts';
import { wparEnvironment } from './environment.ts';
import { errorCode, systemError } from './errors.ts';
import { isExecutableFile, type Isolation } from './isolation.ts';
import { waitFor } from './poll.ts';
import { childrenOf, groupMembers, isLive, namespaceMembers, readStat } from './proc.ts';

/** What {@link launch} needs to start one WPAR. */
export interface LaunchOptions {
  /** The WPAR's definition (command, environment, hostname, limits). */
  readonly definition: WparDefinition;
  /** Its cid (`WPAR_CID`). */
  readonly cid: number;
  /** Its root directory, absolute: the processes' working directory; created if missing. */
  readonly root: string;
  /** The agent endpoint (`WPAR_AGENT`). */
  readonly agentPath: string;
  /** In a cluster: the ownership epoch (`WPAR_EPOCH`, C4). */
  readonly epoch?: number;
  /** The console log file (`.../console.log`); its directory is created if missing. */
  readonly consoleLog: string;
  /** Console log bounds (default 1 MiB × 3 files). */
  readonly consoleLogOptions?: ConsoleLogOptions;
  /** The isolation to use (from {@link detectIsolation}). */
  readonly isolation: Isolation;
  /**
   * The cgroup parent, relative to each hierarchy's root, e.g. `corral/<instanceId>`: the WPAR's
   * cgroup is `<cgroupParent>/<name>`. Give each daemon home its own so two daemons never collide.
   */
  readonly cgroupParent: string;
  /**
   * The command never runs before this settles (and does not run if it rejects): awaited before the
   * go-ahead of a held chain, so it overlaps the spawn, or before the spawn otherwise. The daemon
   * passes its agent endpoint being opened.
   */
  readonly gate?: Promise<unknown>;
}

/**
 * How a WPAR's main process ended. With namespaces `tini` reports a command killed by signal N as
 * exit status 128+N; the runtime turns that back into the signal (so a command that itself exits
 * with 130 shows as SIGINT there).
 */
export interface WparExit {
  /** Its exit code, or `null` if a signal ended it. */
  readonly code: number | null;
  /** The signal that ended it, or `null`. */
  readonly signal: NodeJS.Signals | null;
  /** Whether the memory limit killed any process of the WPAR during this run. */
  readonly oomKilled: boolean;
}

/** Options of {@link WparProcess.stop}. */
export interface StopOptions {
  /** How long processes get between SIGTERM and SIGKILL; default 10 000 ms (`stopwpar -t`). */
  readonly graceMs?: number;
  /** SIGKILL at once (`stopwpar -F`). */
  readonly force?: boolean;
}

/** A running WPAR's processes. */
export interface WparProcess {
  /** Host pid of the WPAR's first process (with namespaces, `unshare`, parent of PID 1 inside). */
  readonly pid: number;
  /** Its process group (equal to {@link pid}): record it to find leftovers after a crash. */
  readonly pgid: number;
  /** The WPAR's cgroup path (relative to the hierarchy roots), or `null` without cgroups. */
  readonly cgroupPath: string | null;
  /** The isolation in force. */
  readonly isolation: Isolation;
  /** Limits of the definition that nothing in force can enforce (e.g. `cpuPercent` without a cgroup). */
  readonly unenforcedLimits: readonly LimitKey[];
  /**
   * Resolves once the main process has exited and every other process of the WPAR is gone and the
   * console log is flushed. Rejects (WparError) only if the runtime could not get rid of them.
   */
  readonly exited: Promise<WparExit>;
  /** SIGTERM to every process, SIGKILL after `graceMs` (or at once with `force`); resolves when all are gone. */
  stop(options?: StopOptions): Promise<WparExit>;
  /** Stops every process from running (cgroup freezer; else SIGSTOP); resolves once they are stopped. */
  freeze(): Promise<void>;
  /** Lets frozen processes run again. */
  thaw(): Promise<void>;
  /** Host pids of every process of the WPAR now (runtime helpers such as `tini` included). */
  pids(): number[];
}

const DEFAULT_GRACE_MS = 10_000;
/** After every process is gone, how long to wait for the output pipes to drain into the log. */
const DRAIN_MS = 2_000;

/**
 * Starts a WPAR's command. Resolves once its first process is running and confined (in its cgroup,
 * with its limits); the command itself starts a moment later. Fails with WparError: EINVAL for a bad
 * command, root or hostname, ENOENT for a command that is not found, EBUSY if its cgroup still holds
 * processes, and the nearest code when the system refuses.
 */
export async function launch(options: LaunchOptions): Promise<WparProcess> {
  const { definition, isolation } = options;
  const name = definition.name;
  checkArgv(name, definition.argv);
  if (!isAbsolute(options.root)) throw new WparError('EINVAL', `WPAR ${name}: root ${JSON.stringify(options.root)} is not an absolute path`);
  const hostname = checkHostname(name, definition.hostname ?? name);
  const env = wparEnvironment(definition, { cid: options.cid, root: options.root, agent: options.agentPath, ...(options.epoch !== undefined && { epoch: options.epoch }) });
  try {
    mkdirSync(options.root, { recursive: true });
  } catch (err) {
    throw systemError(`WPAR ${name}: cannot create root ${options.root}`, err);
  }
  const command = definition.argv[0]!;
  if (!findExecutable(command, env['PATH'] ?? '', options.root)) {
    throw new WparError('ENOENT', `WPAR ${name}: command not found: ${command}`);
  }
  const plan = planCommand({ argv: definition.argv, hostname, limits: definition.limits, isolation });
  // The log opens while the process starts (three file-system round trips off the start path);
  // writes wait for it. A held chain gets its go-ahead only once it is open.
  const log = ConsoleLog.create(options.consoleLog, options.consoleLogOptions);
  let child: ChildProcess | null = null;
  let cgroup: Cgroup | null = null;
  const unenforced = [...plan.unenforced];
  try {
    if (!plan.hold) await options.gate; // nothing holds the command once spawned
    child = await spawnHeld(plan.file, plan.args, plan.hold, options.root, env, name);
    // Listen and pipe before anything else can happen: Node drains (and drops) the output of a
    // child that exits while nobody reads it, and an exit event nobody listens to is gone.
    const watched = watchChild(child, log);
    if (isolation.cgroup) {
      // The chain is held, so the cgroup is made now, while `unshare` builds the namespaces.
      cgroup = Cgroup.create(isolation.cgroup, `${options.cgroupParent}/${name}`);
      unenforced.push(...cgroup.applyLimits(definition.limits));
      // A child forked before the move is listed afterwards; one forked after inherits the cgroup.
      cgroup.addProcess(child.pid!);
      for (const pid of childrenOf(child.pid!)) cgroup.addProcess(pid);
    }
    await log.ready;
    await options.gate;
    // The go-ahead: from here on the command runs, and everything it forks is in the cgroup.
    if (plan.hold) (child.stdio[3] as Writable).on('error', () => undefined).end('go\n');
    return new RunningWpar(child, options, cgroup, log, unenforced, watched);
  } catch (err) {
    if (child) {
      const gone = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    }
    await cgroup?.remove().catch(() => undefined);
    log.destroy();
    throw systemError(`WPAR ${name}: cannot start`, err);
  }
}

/** What is known of a child from the moment it was spawned. */
interface Watched {
  /** Its exit status. */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its stdio closed (everything it wrote has been read). */
  readonly closed: Promise<void>;
  readonly streams: readonly Readable[];
}

/** Subscribes to a child's exit and close and pipes its output into the log, synchronously. */
function watchChild(child: ChildProcess, log: ConsoleLog): Watched {
  child.on('error', () => undefined); // kill() on a gone process; the exit event tells the story
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const streams = [child.stdout!, child.stderr!];
  for (const stream of streams) stream.pipe(log, { end: false });
  // A log that cannot be written (disk full) must not block the WPAR on a full pipe: drop output.
  log.on('error', () => {
    for (const stream of streams) stream.unpipe(log).resume();
  });
  return { exit, closed, streams };
}

/** Spawns in a new session (so a new process group); with `hold`, fd 3 is the go-ahead pipe. */
async function spawnHeld(file: string, args: readonly string[], hold: boolean, cwd: string, env: Record<string, string>, name: string): Promise<ChildProcess> {
  let child: ChildProcess;
  try {
    child = spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe', hold ? 'pipe' : 'ignore'] });
  } catch (err) {
    throw systemError(`WPAR ${name}: cannot spawn ${file}`, err);
  }
  if (child.pid === undefined) {
    const err = await new Promise((resolve) => child.once('error', resolve));
    throw systemError(`WPAR ${name}: cannot spawn ${file}`, err);
  }
  return child;
}

/** The runtime's side of one running WPAR. */
class RunningWpar implements WparProcess {
  readonly pid: number;
  readonly pgid: number;
  readonly cgroupPath: string | null;
  readonly isolation: Isolation;
  readonly unenforcedLimits: readonly LimitKey[];
  readonly exited: Promise<WparExit>;
  readonly #cgroup: Cgroup | null;
  readonly #name: string;
  #mainExited = false;
  #frozen = false;
  #killing: Promise<void> | null = null;
  /** PID 1 inside (host pid) as last seen, for waiting on it after `unshare` is gone. */
  #init: number | null = null;

  constructor(child: ChildProcess, options: LaunchOptions, cgroup: Cgroup | null, log: ConsoleLog, unenforced: readonly LimitKey[], watched: Watched) {
    this.#cgroup = cgroup;
    this.#name = options.definition.name;
    this.pid = child.pid!;
    this.pgid = this.pid;
    this.cgroupPath = cgroup?.path ?? null;
    this.isolation = options.isolation;
    this.unenforcedLimits = unenforced;
    const { closed, streams } = watched;
    this.exited = watched.exit.then(async (status) => {
      this.#mainExited = true;
      try {
        await this.#killRest();
        const oomKilled = (cgroup?.oomKills() ?? 0) > 0;
        await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, DRAIN_MS).unref())]);
        for (const stream of streams) stream.destroy();
        await new Promise<void>((resolve) => log.end(() => resolve()));
        await cgroup?.remove();
        return { ...this.#translate(status), oomKilled };
      } catch (err) {
        log.destroy();
        throw systemError(`WPAR ${this.#name}: processes left behind could not be removed`, err);
      }
    });
    // Whoever awaits it sees a failure; nobody awaiting it must not crash the daemon.
    this.exited.catch(() => undefined);
  }

  async stop(options: StopOptions = {}): Promise<WparExit> {
    if (!this.#mainExited) {
      // A forced stop of a frozen cgroup kills it still frozen (killAll freezes, kills, thaws): the
      // processes never run again — a WPAR moved away must not run on after its arrival started.
      if (this.#frozen && !(options.force && this.#cgroup?.canFreeze)) await this.thaw();
      if (options.force) {
        await this.#killAll();
        this.#frozen = false;
      } else {
        this.#terminate();
        const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
        let timer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
        const tooSlow = await Promise.race([this.exited.then(() => false, () => false), graceOver]);
        clearTimeout(timer);
        if (tooSlow) await this.#killAll();
      }
    }
    return this.exited;
  }

  async freeze(): Promise<void> {
    if (this.#cgroup?.canFreeze) {
      await this.#cgroup.freeze();
    } else {
      this.#signalAll('SIGSTOP');
      // Signals are asynchronous: done when every process is stopped, or in an uninterruptible
      // wait (a vfork parent whose child stopped before exec, or I/O) that it leaves only to stop.
      await waitFor(() => this.pids().every((pid) => 'TtD'.includes(readStat(pid)?.state ?? 'T')), {
        timeoutMs: 10_000, what: `the processes of WPAR ${this.#name} to stop`,
      });
    }
    this.#frozen = true;
  }

  async thaw(): Promise<void> {
    if (this.#cgroup?.canFreeze) await this.#cgroup.thaw();
    else this.#signalAll('SIGCONT');
    this.#frozen = false;
  }

  pids(): number[] {
    if (this.#cgroup) return this.#cgroup.pids();
    if (this.isolation.namespaces) {
      const init = this.#initPid();
      return [this.pid, ...(init === null ? [] : namespaceMembers(init))].filter((pid, i, all) => all.indexOf(pid) === i);
    }
    return groupMembers(this.pgid);
  }

  /** PID 1 inside (host pid), the child of `unshare`; `null` before it is forked or after it exits. */
  #initPid(): number | null {
    if (!this.isolation.namespaces || this.#mainExited) return null;
    const init = childrenOf(this.pid)[0] ?? null;
    if (init !== null) this.#init = init;
    return init;
  }

  /**
   * SIGTERM once to every process of the WPAR. With namespaces `unshare` and `tini` are left out:
   * `unshare` would exit at once and take the namespace with it, and `tini` would forward a second
   * SIGTERM to the command. Only if the command has not been forked yet does `tini` get it (to forward).
   */
  #terminate(): void {
    if (!this.isolation.namespaces) {
      this.#signalAll('SIGTERM');
      return;
    }
    const init = this.#initPid();
    const helpers = new Set([this.pid, ...(init === null ? [] : [init])]);
    const targets = this.pids().filter((pid) => !helpers.has(pid));
    if (targets.length === 0 && init !== null) signalProcess(init, 'SIGTERM');
    for (const pid of targets) signalProcess(pid, 'SIGTERM');
  }

  #signalAll(signal: NodeJS.Signals): void {
    if (this.#cgroup) {
      this.#cgroup.signalAll(signal);
    } else if (this.isolation.namespaces) {
      for (const pid of this.pids()) signalProcess(pid, signal);
    } else {
      try {
        process.kill(-this.pgid, signal);
      } catch (err) {
        if (errorCode(err) !== 'ESRCH') throw systemError(`WPAR ${this.#name}: cannot send ${signal}`, err);
      }
    }
  }

  /**
   * SIGKILL everything, with no window for a fork to escape: the cgroup is frozen, killed and thawed;
   * without one, PID 1 inside takes its namespace with it (the kernel refuses new forks there), or
   * the process group is killed. (Killing PID 1 alone would leave the cgroup tidier, but `unshare`
   * then exits 1 with a complaint in the console log instead of reporting SIGKILL.)
   */
  #killAll(): Promise<void> {
    this.#killing ??= (async () => {
      if (this.#cgroup) {
        await this.#cgroup.killAll();
      } else if (this.isolation.namespaces) {
        const init = this.#initPid();
        if (init !== null) signalProcess(init, 'SIGKILL');
        signalProcess(this.pid, 'SIGKILL');
      } else {
        this.#signalAll('SIGKILL');
      }
    })();
    return this.#killing;
  }

  /** After the main process: kill what it left behind and wait until nothing is left. */
  async #killRest(): Promise<void> {
    if (this.#cgroup) {
      await this.#cgroup.killAll();
    } else if (!this.isolation.namespaces) {
      // A process group has no "empty" event: signal and look again until no member is left.
      await waitFor(() => {
        const members = groupMembers(this.pgid);
        for (const pid of members) signalProcess(pid, 'SIGKILL');
        return members.length === 0;
      }, { timeoutMs: 10_000, what: `process group ${this.pgid} of WPAR ${this.#name} to die` });
    } else {
      // unshare normally exits after PID 1, whose exit empties the namespace; but if it was killed
      // first, PID 1 may still be tearing the namespace down.
      const init = this.#init;
      if (init !== null) await waitFor(() => !isLive(init), { timeoutMs: 10_000, what: `PID 1 of WPAR ${this.#name} to die` });
    }
  }

  /** `tini` reports a command killed by signal N as exit 128+N: give the signal back its name. */
  #translate(status: { code: number | null; signal: NodeJS.Signals | null }): { code: number | null; signal: NodeJS.Signals | null } {
    if (this.isolation.namespaces && status.code !== null && status.code > 128) {
      const signal = signalName(status.code - 128);
      if (signal) return { code: null, signal };
    }
    return status;
  }
}

function signalName(n: number): NodeJS.Signals | undefined {
  return (Object.entries(osConstants.signals) as [NodeJS.Signals, number][]).find(([, v]) => v === n)?.[0];
}

function checkArgv(name: string, argv: readonly string[]): void {
  const command = argv[0];
  if (command === undefined || command === '') throw new WparError('EINVAL', `WPAR ${name}: no command to run`);
  // A leading "-" would be read as an option by a wrapper; no real command is named so.
  if (command.startsWith('-')) throw new WparError('EINVAL', `WPAR ${name}: bad command ${JSON.stringify(command)}: it must not start with "-"`);
  const bad = argv.findIndex((arg) => arg.includes('\0'));
  if (bad >= 0) throw new WparError('EINVAL', `WPAR ${name}: argument ${bad} contains a NUL byte`);
}

function checkHostname(name: string, hostname: string): string {
  // Linux takes up to 64 bytes; control characters would only confuse whoever reads it.
  const control = [...hostname].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  if (hostname === '' || Buffer.byteLength(hostname) > 64 || control || hostname.includes('/')) {
    throw new WparError('EINVAL', `WPAR ${name}: bad hostname ${JSON.stringify(hostname)}: 1 to 64 bytes, no control characters or "/"`);
  }
  return hostname;
}

/** Resolves a command as execvp would (PATH unless it holds a "/"), relative paths from `cwd`. */
function findExecutable(command: string, path: string, cwd: string): string | null {
  if (command.includes('/')) {
    const file = resolvePath(cwd, command);
    return isExecutableFile(file) ? file : null;
  }
  for (const dir of path.split(delimiter)) {
    const file = resolvePath(cwd, join(dir || '.', command));
    if (isExecutableFile(file)) return file;
  }
  return null;
}
