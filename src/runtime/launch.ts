/**
 * Starting a WPAR's command and owning its processes until the last one is gone (R2).
 *
 * The life of a WPAR is its main process's: when it exits, whatever it left behind is killed (with
 * namespaces the kernel does this when PID 1 exits; otherwise the runtime does), and only then does
 * {@link WparProcess.exited} resolve.
 * @module
 */

import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { chownSync, lchownSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve as resolvePath, sep } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { WparError } from '../kernel/errno.ts';
import { Cgroup, signalProcess, type LimitKey } from './cgroup.ts';
import { planCommand, SEAL_FDS, type CommandPlan, type SealLayout, type StartMode } from './command.ts';
import { closeConsoleFile, ConsoleLogKeeper, openConsoleFile, type ConsoleLogOptions } from './console-log.ts';
import type { WparDefinition } from './definition.ts';
import { wparEnvironment } from './environment.ts';
import { errorCode, systemError } from './errors.ts';
import { hostId, idMapLine, insideId, type IdRange } from './idmap.ts';
import { isExecutableFile, type Isolation } from './isolation.ts';
import { ownNetworkNamespace } from '../definition/network.ts';
import { attachBridge, hostInterfaceName, openLowPorts } from './network.ts';
import { waitFor } from './poll.ts';
import { childrenOf, environValue, groupMembers, isLive, namespaceMembers, readStat } from './proc.ts';

/** What {@link launch} needs to start one WPAR. */
export interface LaunchOptions {
  /** The WPAR's definition (command, environment, hostname, limits). */
  readonly definition: WparDefinition;
  /** Its cid (`WPAR_CID`). */
  readonly cid: number;
  /** Its root directory, absolute: the processes' working directory; created if missing. */
  readonly root: string;
  /**
   * The agent endpoint (`WPAR_AGENT`). Sealed, its directory must hold nothing else: it is made here
   * and is all a WPAR sees of where the socket lives.
   */
  readonly agentPath: string;
  /** In a cluster: the ownership epoch (`WPAR_EPOCH`, C4). */
  readonly epoch?: number;
  /**
   * Sealed: the directory a WPAR must not see (the daemon's home), hidden inside but for its root,
   * its agent directory and its temporary directory. Default: the root's grandparent.
   */
  readonly privateDir?: string;
  /** Sealed: its private temporary directory (`TMPDIR`), a tmpfs; default `<root>/../tmp`. */
  readonly tmpDir?: string;
  /**
   * The console log file (`.../console.log`); its directory is created if missing. The WPAR's stdout
   * and stderr are this file itself (`O_APPEND`), so its output never goes through the daemon.
   */
  readonly consoleLog: string;
  /**
   * Sealed: where the outer bwrap writes its status (`--json-status-fd`: the sandbox's pid, then
   * `{"exit-code": N}` when it ends), so a daemon that is not its parent learns how it ended (R7).
   * Default `status.json` beside the console log.
   */
  readonly statusFile?: string;
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
 * How a WPAR's main process ended. Sealed, bwrap reports a command killed by signal N as
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
  /**
   * When {@link pid} started (`/proc/PID/stat` field 22, clock ticks since boot), or `null` if it
   * could not be read: with the pid, what a later daemon checks before adopting it (R7).
   */
  readonly startTime: number | null;
  /** Whether this runtime adopted the processes from an earlier daemon (it is not their parent). */
  readonly adopted: boolean;
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
  /** Host pids of every process of the WPAR now (the runtime's own bwraps included). */
  pids(): number[];
}

const DEFAULT_GRACE_MS = 10_000;

/**
 * Starts a WPAR's command. Resolves once its first process is running and confined (in its cgroup,
 * with its limits, sealed); the command itself starts a moment later. Fails with WparError: EINVAL for
 * a bad command, root or hostname, ENOENT for a command that is not found, EPERM for one the sealed
 * WPAR cannot reach, EBUSY if its cgroup still holds processes, and the nearest code when the system
 * refuses. A failed start leaves no process and no cgroup behind.
 */
export async function launch(options: LaunchOptions): Promise<WparProcess> {
  const { definition, isolation } = options;
  const name = definition.name;
  checkArgv(name, definition.argv);
  if (!isAbsolute(options.root)) throw new WparError('EINVAL', `WPAR ${name}: root ${JSON.stringify(options.root)} is not an absolute path`);
  const hostname = checkHostname(name, definition.hostname ?? name);
  const ids = isolation.seal?.ids ?? null;
  const layout = isolation.seal ? sealLayout(options) : undefined;
  const env = wparEnvironment(definition, { cid: options.cid, root: options.root, agent: options.agentPath, ...(options.epoch !== undefined && { epoch: options.epoch }) });
  if (layout) env['TMPDIR'] = layout.tmpDir;
  try {
    prepareRoot(options.root, ids);
    if (layout) prepareAgentDir(layout.agentDir, ids);
  } catch (err) {
    throw systemError(`WPAR ${name}: cannot prepare root ${options.root}`, err);
  }
  const command = definition.argv[0]!;
  const found = findExecutable(command, env['PATH'] ?? '', options.root, layout && ids ? { ids, layout } : null);
  if (found.file === null) throw new WparError(found.blocked ? 'EPERM' : 'ENOENT', `WPAR ${name}: ${found.blocked ?? `command not found: ${command}`}`);
  const plan = planCommand({ argv: definition.argv, hostname, limits: definition.limits, isolation, network: definition.network, ...(layout ? { layout } : {}) });
  // The WPAR writes its output into the log file itself (O_APPEND): nothing of it goes through the
  // daemon, so it keeps running, and logging, when the daemon dies (R7). The keeper bounds the file.
  const files = openOutputFiles(options, plan.mode === 'sealed');
  let child: ChildProcess | null = null;
  let cgroup: Cgroup | null = null;
  let keeper: ConsoleLogKeeper | null = null;
  const unenforced = [...plan.unenforced];
  try {
    if (plan.mode === 'direct') await options.gate; // nothing holds the command once spawned
    try {
      child = await spawnChain(plan, options.root, env, name, files);
    } finally {
      files.close(); // the child has its own copies
    }
    // Listen before anything else can happen: an exit event nobody listens to is gone.
    const watched = watchChild(child);
    keeper = new ConsoleLogKeeper(options.consoleLog, options.consoleLogOptions);
    const confine = (pids: readonly number[]): void => {
      if (!isolation.cgroup) return;
      if (!cgroup) {
        cgroup = Cgroup.create(isolation.cgroup, `${options.cgroupParent}/${name}`);
        unenforced.push(...cgroup.applyLimits(definition.limits));
      }
      for (const pid of pids) cgroup.addProcess(pid);
    };
    let helpers: number[] = [child.pid!];
    if (plan.mode === 'sealed') {
      helpers = await sealedHandshake(child, watched, { options, ids, confine });
    } else if (plan.mode === 'held') {
      // The chain is held, so the cgroup is made now; a child forked before the move is listed afterwards.
      confine([child.pid!, ...childrenOf(child.pid!)]);
      await options.gate;
      // The go-ahead: from here on the command runs, and everything it forks is in the cgroup.
      (child.stdio[3] as Writable).on('error', () => undefined).end('go\n');
    }
    return new RunningWpar({
      pid: child.pid!, name, isolation, cgroup, keeper, unenforced, helpers, exit: watched.exit,
      startTime: readStat(child.pid!)?.startTime ?? null, adopted: false,
    });
  } catch (err) {
    if (child) {
      const gone = new Promise((resolve) => child!.once('exit', resolve));
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await gone;
    }
    await (cgroup as Cgroup | null)?.killAll().catch(() => undefined);
    await (cgroup as Cgroup | null)?.remove().catch(() => undefined);
    await (keeper as ConsoleLogKeeper | null)?.close().catch(() => undefined);
    files.close();
    throw systemError(`WPAR ${name}: cannot start`, err);
  }
}

/** The descriptors a WPAR starts with besides the hand-shake: its console log, and sealed, bwrap's status file. */
interface OutputFiles {
  readonly console: number;
  readonly status: number | null;
  close(): void;
}

function openOutputFiles(options: LaunchOptions, sealed: boolean): OutputFiles {
  const name = options.definition.name;
  const consoleFd = openConsoleFile(options.consoleLog);
  let status: number | null = null;
  if (sealed) {
    try {
      // Truncated: what it holds is this run's, never a previous run's exit.
      status = openSync(statusFileOf(options), 'w', 0o600);
    } catch (err) {
      closeConsoleFile(consoleFd);
      throw systemError(`WPAR ${name}: cannot open its status file ${statusFileOf(options)}`, err);
    }
  }
  let open = true;
  return {
    console: consoleFd, status,
    // Once only: a descriptor number closed twice may by then be someone else's.
    close: () => {
      if (!open) return;
      open = false;
      closeConsoleFile(consoleFd);
      if (status !== null) closeConsoleFile(status);
    },
  };
}

function statusFileOf(options: { consoleLog: string; statusFile?: string }): string {
  return options.statusFile ?? join(dirname(options.consoleLog), 'status.json');
}

/** What a daemon recorded of a running WPAR, to find it again after its own restart (R7). */
export interface AdoptRecord {
  /** {@link WparProcess.pid}: the outer bwrap. */
  readonly pid: number;
  /** {@link WparProcess.startTime}; `null` (a record from before adoption existed) is never adopted. */
  readonly startTime: number | null;
  /** {@link WparProcess.cgroupPath}. */
  readonly cgroupPath: string | null;
}

/** What {@link examineRecorded} and {@link adopt} need. */
export interface AdoptOptions {
  /** The WPAR's definition (its name is checked against the processes' `WPAR_NAME`). */
  readonly definition: WparDefinition;
  /** Where it was started (as given to {@link launch}). */
  readonly consoleLog: string;
  readonly consoleLogOptions?: ConsoleLogOptions;
  readonly statusFile?: string;
  readonly agentPath: string;
  readonly isolation: Isolation;
  readonly cgroupParent: string;
  /** What the earlier daemon recorded. */
  readonly record: AdoptRecord;
  /** Settles once the agent endpoint is open again (the socket is then handed to the WPAR's uid 0). */
  readonly gate?: Promise<unknown>;
}

/** What became of a WPAR an earlier daemon recorded as running. */
export type Examined =
  /** Its processes are there and are it: {@link adopt} them. */
  | { readonly kind: 'running' }
  /** It ended while no daemon watched: how, from bwrap's status file (`code` and `signal` `null` if unknown). */
  | { readonly kind: 'exited'; readonly exit: WparExit }
  /** Something is there that cannot be adopted: stop it and say why. */
  | { readonly kind: 'refused'; readonly reason: string };

/** How often an adopted WPAR's outer bwrap is looked for in /proc (Node has no pidfd to wait on). */
export const ADOPTED_POLL_MS = 200;

/**
 * Looks at what an earlier daemon recorded as running (R7): the outer bwrap's pid alive with the
 * recorded start time (else it ended, and its status file says how), in the WPAR's cgroup, with the
 * WPAR's name in its environment. Only sealed WPARs can be adopted: without bwrap's status file
 * nobody but the dead parent could have known how they end.
 */
export function examineRecorded(options: AdoptOptions): Examined {
  const { record, isolation } = options;
  const name = options.definition.name;
  if (!isolation.seal) return { kind: 'refused', reason: 'not sealed (no bubblewrap): its exit status could not be known by a daemon that is not its parent' };
  if (record.startTime === null || !Number.isSafeInteger(record.pid) || record.pid <= 1) {
    return { kind: 'refused', reason: 'recorded without a start time (by an older daemon)' };
  }
  const stat = readStat(record.pid);
  if (stat === null || stat.state === 'Z' || stat.startTime !== record.startTime) {
    return { kind: 'exited', exit: { ...translateExit(true, readStatusExit(statusFileOf(options))), oomKilled: false } };
  }
  if (environValue(record.pid, 'WPAR_NAME') !== name) return { kind: 'refused', reason: `pid ${record.pid} does not carry WPAR_NAME=${name}` };
  if (isolation.cgroup) {
    const path = `${options.cgroupParent}/${name}`;
    if (record.cgroupPath !== path) return { kind: 'refused', reason: `recorded in cgroup ${String(record.cgroupPath)}, not ${path}` };
    if (!Cgroup.open(isolation.cgroup, path).pids().includes(record.pid)) return { kind: 'refused', reason: `pid ${record.pid} is not in its cgroup ${path}` };
  }
  return { kind: 'running' };
}

/**
 * Takes over a running sealed WPAR an earlier daemon started (R7): checks it is still it
 * ({@link examineRecorded}), thaws it (a checkpoint in flight may have frozen it), hands the
 * re-opened agent socket to its uid 0, keeps its console log bounded and watches its outer bwrap
 * every {@link ADOPTED_POLL_MS} ms; its exit status comes from bwrap's status file. Fails
 * (WparError) if it cannot be adopted; the caller then stops what is there.
 */
export async function adopt(options: AdoptOptions): Promise<WparProcess> {
  const name = options.definition.name;
  const seen = examineRecorded(options);
  if (seen.kind !== 'running') {
    throw new WparError(seen.kind === 'exited' ? 'ENOENT' : 'EINVAL', `WPAR ${name}: cannot adopt: ${seen.kind === 'exited' ? 'it has exited' : seen.reason}`);
  }
  const { record, isolation } = options;
  const pid = record.pid;
  const cgroup = isolation.cgroup ? Cgroup.open(isolation.cgroup, record.cgroupPath!) : null;
  const sandbox = childrenOf(pid)[0];
  const ids = isolation.seal?.ids ?? null;
  // The runtime's own processes: the outer bwrap and PID 1 inside (the command runs under it).
  const helpers = [pid, sandbox].filter((p): p is number => p !== undefined);
  // Frozen by a checkpoint the earlier daemon did not finish: let it run.
  if (cgroup?.canFreeze) await cgroup.thaw();
  else for (const p of [pid, ...(sandbox === undefined ? [] : namespaceMembers(sandbox))]) signalProcess(p, 'SIGCONT');
  await options.gate;
  if (ids) handOverAgentSocket(name, options.agentPath, ids);
  const unenforced = cgroup ? cgroup.applyLimits(options.definition.limits) : [];
  const keeper = new ConsoleLogKeeper(options.consoleLog, options.consoleLogOptions);
  return new RunningWpar({
    pid, name, isolation, cgroup, keeper, unenforced, helpers, startTime: record.startTime, adopted: true,
    exit: watchAdopted(pid, record.startTime!, statusFileOf(options)),
  });
}

/** Resolves once `pid` (started at `startTime`) is gone, with the status its bwrap wrote. */
async function watchAdopted(pid: number, startTime: number, statusFile: string): Promise<RawExit> {
  for (;;) {
    const stat = readStat(pid);
    if (stat === null || stat.state === 'Z' || stat.startTime !== startTime) return readStatusExit(statusFile);
    await sleep(ADOPTED_POLL_MS, undefined, { ref: false });
  }
}

/**
 * The exit status bwrap wrote to its `--json-status-fd` file (JSON documents one after another; the
 * last `exit-code` counts), or `code` and `signal` `null` when there is none (bwrap was killed).
 */
export function readStatusExit(statusFile: string): RawExit {
  let text: string;
  try {
    text = readFileSync(statusFile, 'utf8').slice(0, 65_536);
  } catch {
    return { code: null, signal: null };
  }
  const codes = [...text.matchAll(/"exit-code"\s*:\s*(\d{1,3})\b/g)].map((m) => Number(m[1])).filter((n) => n <= 255);
  const code = codes.at(-1);
  return code === undefined ? { code: null, signal: null } : { code, signal: null };
}

/** What {@link sealedHandshake} needs from {@link launch}. */
interface HandshakeContext {
  readonly options: LaunchOptions;
  readonly ids: IdRange | null;
  /** Puts these host pids into the WPAR's cgroup (creating it and applying the limits first). */
  readonly confine: (pids: readonly number[]) => void;
}

/** How long each step of the sealed hand-shake may take before the start fails. */
const HANDSHAKE_MS = 10_000;

/**
 * The sealed start's two steps (see `command.ts`): (1) the outer sandbox exists — into the cgroup with
 * it and its bwrap, its network wired, let it go; (2) the inner one has made its user namespace —
 * write the uid and gid maps, wait for the agent endpoint, let the command go. Returns the helper
 * processes' host pids (outer bwrap, the sandbox's PID 1), which a stop does not signal.
 */
async function sealedHandshake(child: ChildProcess, watched: Watched, ctx: HandshakeContext): Promise<number[]> {
  const { options, ids } = ctx;
  const name = options.definition.name;
  const died = watched.exit.then((status) => {
    throw new WparError('EINVAL', `WPAR ${name}: the sandbox exited (${status.signal ?? `status ${status.code}`}) before the command ran; see its console log`);
  });
  died.catch(() => undefined);
  // The first move into a v1 cgroup waits for an RCU grace period (~10 ms here): start it now, while
  // bwrap execs and builds the mounts. A sandbox forked before the move is moved after (cheap then).
  ctx.confine([child.pid!]);
  const sandbox = await step(readChildPid((child.stdio as unknown as Readable[])[SEAL_FDS.outerInfo]!), died, name, 'the sandbox to report');
  const network = options.definition.network;
  const tools = options.isolation.seal!.network;
  const wiring = Promise.all([
    network?.mode === 'bridge' ? attachBridge(tools!, network, sandbox, hostInterfaceName(options.cgroupParent, options.cid)) : undefined,
    ownNetworkNamespace(network) && tools ? openLowPorts(tools, sandbox) : undefined,
  ]);
  wiring.catch(() => undefined);
  ctx.confine([sandbox]);
  await step(wiring, died, name, 'its network');
  if (!ids) {
    await step(Promise.resolve(options.gate), died, name, 'its agent endpoint');
    release(child, SEAL_FDS.outerGo);
    return [child.pid!, sandbox];
  }
  release(child, SEAL_FDS.outerGo);
  await step(readChildPid((child.stdio as unknown as Readable[])[SEAL_FDS.innerInfo]!), died, name, 'its user namespace');
  // The inner bwrap is the sandbox's PID 1 (setpriv exec'd it); the process it forked is the one
  // waiting in the new user namespace, and becomes the command.
  const inner = childrenOf(sandbox)[0];
  if (inner === undefined) throw new WparError('EINVAL', `WPAR ${name}: the sandbox's user namespace has no process`);
  const map = idMapLine(ids);
  try {
    writeFileSync(`/proc/${inner}/uid_map`, map);
    writeFileSync(`/proc/${inner}/gid_map`, map);
  } catch (err) {
    throw systemError(`WPAR ${name}: cannot map its ids to ${ids.base}-${ids.base + ids.size - 1}`, err);
  }
  await step(Promise.resolve(options.gate), died, name, 'its agent endpoint');
  handOverAgentSocket(name, options.agentPath, ids);
  release(child, SEAL_FDS.innerGo);
  return [child.pid!, sandbox];
}

/** Gives the agent socket to the WPAR's uid 0 (host uid B); no socket at all (no daemon) is no error. */
function handOverAgentSocket(name: string, agentPath: string, ids: IdRange): void {
  try {
    chownSync(agentPath, ids.base, ids.base);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw systemError(`WPAR ${name}: cannot hand its agent socket ${agentPath} to uid ${ids.base}`, err);
  }
}

/** Awaits one hand-shake step, failing if the sandbox dies first or the step takes too long. */
async function step<T>(work: Promise<T>, died: Promise<never>, name: string, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WparError('ETIMEDOUT', `WPAR ${name}: gave up waiting for ${what} after ${HANDSHAKE_MS} ms`)), HANDSHAKE_MS);
  });
  try {
    return await Promise.race([work, died, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Lets a waiting bwrap go on: a byte on its block fd, then the daemon's end is closed (the sandbox
 * keeps its end open, so whatever it writes there later goes nowhere).
 */
function release(child: ChildProcess, fd: number): void {
  const stream = (child.stdio as unknown as Writable[])[fd]!;
  stream.on('error', () => undefined).end('g', () => stream.destroy());
}

/** Reads bwrap's `--info-fd` JSON (`{ "child-pid": N, ... }`) and resolves N. */
function readChildPid(stream: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      if (text.length > 65_536) return done(new WparError('EINVAL', 'bwrap wrote more than 64 KiB of information'));
      const end = text.indexOf('}');
      if (end < 0) return;
      try {
        const pid = (JSON.parse(text.slice(0, end + 1)) as Record<string, unknown>)['child-pid'];
        if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) throw new Error(`no child-pid in ${text.slice(0, end + 1)}`);
        done(null, pid);
      } catch (err) {
        done(new WparError('EINVAL', `bwrap's information is not understood: ${(err as Error).message}`));
      }
    };
    const done = (err: Error | null, pid?: number): void => {
      stream.off('data', onData);
      stream.destroy();
      if (err) reject(err);
      else resolve(pid!);
    };
    stream.on('data', onData);
    stream.on('error', () => undefined);
  });
}

/** Where a sealed WPAR's things are (see {@link SealLayout}). */
function sealLayout(options: LaunchOptions): SealLayout {
  const privateDir = options.privateDir ?? dirname(dirname(options.root));
  return {
    root: options.root,
    agentDir: dirname(options.agentPath),
    tmpDir: options.tmpDir ?? join(dirname(options.root), 'tmp'),
    hide: hidingPoint(privateDir),
  };
}

/**
 * The directory to hide the private directory with: the highest of it and its ancestors that others
 * cannot search (so the paths put back are reachable through the tmpfs), else the directory itself.
 */
function hidingPoint(privateDir: string): string {
  let path = '/';
  for (const part of privateDir.split(sep).filter(Boolean)) {
    path = join(path, part);
    if ((statSync(path).mode & 0o001) === 0) return path;
  }
  return privateDir;
}

/** Creates the root if missing; sealed, it belongs to uid 0 inside (a root from before is shifted). */
function prepareRoot(root: string, ids: IdRange | null): void {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  if (ids && statSync(root).uid !== ids.base) shiftOwnership(root, ids);
}

/**
 * Gives a tree the ownership a sealed WPAR sees as its own: each entry's owner and group become the
 * host ids of what they were inside (ids outside the range — a root made before sealing, or restored
 * by the daemon — become uid 0 inside). Symlinks are changed themselves, never followed.
 */
export function shiftOwnership(root: string, ids: IdRange): void {
  const shift = (path: string): void => {
    const st = lstatSync(path);
    lchownSync(path, hostId(ids, insideId(ids, st.uid)), hostId(ids, insideId(ids, st.gid)));
    if (st.isDirectory()) for (const entry of readdirSync(path)) shift(join(path, entry));
  };
  shift(root);
}

/** The agent socket's own directory, made for this run (mode 0700, owned by uid 0 inside). */
function prepareAgentDir(dir: string, ids: IdRange | null): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (ids) chownSync(dir, ids.base, ids.base);
}

/** How a process ended, as its parent or its status file tells. */
type RawExit = { code: number | null; signal: NodeJS.Signals | null };

/** What is known of a child from the moment it was spawned. */
interface Watched {
  /** Its exit status. */
  readonly exit: Promise<RawExit>;
}

/** Subscribes to a child's exit, synchronously. */
function watchChild(child: ChildProcess): Watched {
  child.on('error', () => undefined); // kill() on a gone process; the exit event tells the story
  const exit = new Promise<RawExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { exit };
}

/**
 * The stdio of each start mode: output straight into the log file; the hand-shake's pipes on fds 3
 * to 6 and bwrap's status file on 7 (sealed), or the go-ahead pipe on 3 (held).
 */
function stdioFor(mode: StartMode, files: OutputFiles): StdioOptions {
  const out = files.console;
  if (mode === 'sealed') return ['ignore', out, out, 'pipe', 'pipe', 'pipe', 'pipe', files.status ?? 'ignore'];
  return ['ignore', out, out, mode === 'held' ? 'pipe' : 'ignore'];
}

/** Spawns the chain in a new session (so a new process group). */
async function spawnChain(plan: CommandPlan, cwd: string, env: Record<string, string>, name: string, files: OutputFiles): Promise<ChildProcess> {
  let child: ChildProcess;
  // A sealed chain starts outside the root (host root may not search it); it changes into it inside.
  const dir = plan.mode === 'sealed' ? '/' : cwd;
  try {
    child = spawn(plan.file, plan.args, { cwd: dir, env, detached: true, stdio: stdioFor(plan.mode, files) });
  } catch (err) {
    throw systemError(`WPAR ${name}: cannot spawn ${plan.file}`, err);
  }
  if (child.pid === undefined) {
    const err = await new Promise((resolve) => child.once('error', resolve));
    throw systemError(`WPAR ${name}: cannot spawn ${plan.file}`, err);
  }
  return child;
}

/** What {@link RunningWpar} is made of, launched or adopted. */
interface RunningParts {
  readonly pid: number;
  readonly name: string;
  readonly isolation: Isolation;
  readonly cgroup: Cgroup | null;
  readonly keeper: ConsoleLogKeeper | null;
  readonly unenforced: readonly LimitKey[];
  readonly helpers: readonly number[];
  /** How the first process ended (as its parent saw it, or as its status file says). */
  readonly exit: Promise<RawExit>;
  readonly startTime: number | null;
  readonly adopted: boolean;
}

/** The runtime's side of one running WPAR. */
class RunningWpar implements WparProcess {
  readonly pid: number;
  readonly pgid: number;
  readonly startTime: number | null;
  readonly adopted: boolean;
  readonly cgroupPath: string | null;
  readonly isolation: Isolation;
  readonly unenforcedLimits: readonly LimitKey[];
  readonly exited: Promise<WparExit>;
  readonly #cgroup: Cgroup | null;
  readonly #name: string;
  #mainExited = false;
  #frozen = false;
  #killing: Promise<void> | null = null;
  /** PID 1 inside (host pid) as last seen, for waiting on it after the outer bwrap is gone. */
  #init: number | null = null;
  /** The runtime's own processes at the head of the chain (the outer bwrap, PID 1 inside): never sent SIGTERM. */
  readonly #helpers: ReadonlySet<number>;

  constructor(parts: RunningParts) {
    const { cgroup, keeper } = parts;
    this.#cgroup = cgroup;
    this.#helpers = new Set(parts.helpers);
    this.#name = parts.name;
    this.pid = parts.pid;
    this.pgid = this.pid;
    this.startTime = parts.startTime;
    this.adopted = parts.adopted;
    this.cgroupPath = cgroup?.path ?? null;
    this.isolation = parts.isolation;
    this.unenforcedLimits = parts.unenforced;
    if (parts.isolation.seal && parts.helpers.length >= 2) this.#init = parts.helpers[1]!;
    this.exited = parts.exit.then(async (status) => {
      this.#mainExited = true;
      try {
        await this.#killRest();
        const oomKilled = (cgroup?.oomKills() ?? 0) > 0;
        // The processes wrote the file themselves: once they are gone, everything is in it.
        await keeper?.close();
        await cgroup?.remove();
        return { ...this.#translate(status), oomKilled };
      } catch (err) {
        await keeper?.close().catch(() => undefined);
        throw systemError(`WPAR ${this.#name}: processes left behind could not be removed`, err);
      }
    });
    // Whoever awaits it sees a failure; nobody awaiting it must not crash the daemon.
    this.exited.catch(() => undefined);
  }

  async stop(options: StopOptions = {}): Promise<WparExit> {
    if (!this.#mainExited) {
      // A forced stop of frozen processes kills them still frozen (a cgroup's killAll freezes, kills,
      // thaws; SIGKILL ends a SIGSTOPped process): they never run again — a WPAR moved away must not
      // answer one more request after its arrival started (thawing first let Redis acknowledge
      // writes that were then lost with it).
      if (this.#frozen && !options.force) await this.thaw();
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
    if (this.isolation.seal) {
      const init = this.#initPid();
      return [this.pid, ...(init === null ? [] : namespaceMembers(init))].filter((pid, i, all) => all.indexOf(pid) === i);
    }
    return groupMembers(this.pgid);
  }

  /** PID 1 inside (host pid), the child of the outer bwrap; `null` before it is forked or after it exits. */
  #initPid(): number | null {
    if (!this.isolation.seal || this.#mainExited) return null;
    const init = childrenOf(this.pid)[0] ?? null;
    if (init !== null) this.#init = init;
    return init;
  }

  /**
   * SIGTERM once to every process of the WPAR. Sealed, the runtime's helpers (the outer bwrap and
   * PID 1 inside) are left out: they would exit at once and take the namespace with it.
   */
  #terminate(): void {
    if (!this.isolation.seal) {
      this.#signalAll('SIGTERM');
      return;
    }
    for (const pid of this.pids()) if (!this.#helpers.has(pid)) signalProcess(pid, 'SIGTERM');
  }

  #signalAll(signal: NodeJS.Signals): void {
    if (this.#cgroup) {
      this.#cgroup.signalAll(signal);
    } else if (this.isolation.seal) {
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
   * the process group is killed.
   */
  #killAll(): Promise<void> {
    this.#killing ??= (async () => {
      if (this.#cgroup) {
        await this.#cgroup.killAll();
      } else if (this.isolation.seal) {
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
    } else if (!this.isolation.seal) {
      // A process group has no "empty" event: signal and look again until no member is left.
      await waitFor(() => {
        const members = groupMembers(this.pgid);
        for (const pid of members) signalProcess(pid, 'SIGKILL');
        return members.length === 0;
      }, { timeoutMs: 10_000, what: `process group ${this.pgid} of WPAR ${this.#name} to die` });
    } else {
      // bwrap normally exits after PID 1, whose exit empties the namespace; but if it was killed
      // first, PID 1 may still be tearing the namespace down.
      const init = this.#init;
      if (init !== null) await waitFor(() => !isLive(init), { timeoutMs: 10_000, what: `PID 1 of WPAR ${this.#name} to die` });
    }
  }

  /** bwrap reports a command killed by signal N as exit 128+N: give the signal back its name. */
  #translate(status: RawExit): RawExit {
    // An adopted bwrap this runtime killed leaves no status: it died of the SIGKILL sent here.
    if (this.#killing && status.code === null && status.signal === null) return { code: null, signal: 'SIGKILL' };
    return translateExit(this.isolation.seal !== null, status);
  }
}

/** bwrap reports a command killed by signal N as exit 128+N: give the signal back its name. */
function translateExit(sealed: boolean, status: RawExit): RawExit {
  if (sealed && status.code !== null && status.code > 128) {
    const signal = signalName(status.code - 128);
    if (signal) return { code: null, signal };
  }
  return status;
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

/** A command's resolution: the file, or why none can run (`blocked` when one exists but the WPAR cannot reach it). */
interface Found {
  readonly file: string | null;
  readonly blocked?: string;
}

/**
 * Resolves a command as execvp would (PATH unless it holds a "/"), relative paths from `cwd`. Sealed
 * (`sealed` given), a file counts only if uid 0 inside can reach it — through directories others may
 * search, or inside its root — and the home's other contents are hidden; execvp inside would skip the
 * others the same way, so the first reachable one is what runs.
 */
function findExecutable(command: string, path: string, cwd: string, sealed: { ids: IdRange; layout: SealLayout } | null): Found {
  const candidates = command.includes('/')
    ? [resolvePath(cwd, command)]
    : path.split(delimiter).map((dir) => resolvePath(cwd, join(dir || '.', command)));
  let blocked: string | undefined;
  for (const file of candidates) {
    if (!isExecutableFile(file)) continue;
    const why = sealed ? unreachable(file, sealed.ids, sealed.layout) : null;
    if (why === null) return { file };
    blocked ??= `command ${file} cannot run inside the sealed WPAR: ${why}`;
  }
  return blocked === undefined ? { file: null } : { file: null, blocked };
}

/** Why uid 0 of a sealed WPAR cannot execute `file`, or `null` if it can. */
function unreachable(file: string, ids: IdRange, layout: SealLayout): string | null {
  const inside = (dir: string): boolean => file === dir || file.startsWith(dir + sep);
  if (inside(layout.root)) return null;
  if (inside(layout.hide)) return `${layout.hide} is hidden from WPARs`;
  const may = (st: { uid: number; gid: number; mode: number }, bit: number): boolean =>
    (st.mode & bit) !== 0 || (st.uid === ids.base && (st.mode & (bit << 6)) !== 0) || (st.gid === ids.base && (st.mode & (bit << 3)) !== 0);
  let dir = '/';
  for (const part of dirname(file).split(sep).filter(Boolean)) {
    dir = join(dir, part);
    const st = statSync(dir);
    if (!may(st, 0o001)) return `${dir} is mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: others may not search it (chmod o+x, or keep the program elsewhere)`;
  }
  const st = statSync(file);
  if (!may(st, 0o001)) return `it is mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: others may not execute it`;
  return null;
}
