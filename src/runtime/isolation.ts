/**
 * What isolation this machine allows a WPAR (R2, S1–S7): sealed (user, mount, PID, UTS, IPC, cgroup
 * and network namespaces) with a cgroup where the daemon can (Linux, root, the tools installed), else
 * a process group and rlimits. `lswpar -L` and the daemon's start-up show {@link Isolation.summary}
 * and every line of {@link Isolation.notes}: what is missing is said, never silent (S7).
 * @module
 */

import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { ID_RANGE_START, IDS_PER_HOME, type IdRange } from './idmap.ts';
import type { NetworkTools } from './network.ts';
import type { WparDefinition } from './definition.ts';

/** The cgroup controllers the runtime uses. */
export type CgroupController = 'memory' | 'pids' | 'cpu' | 'freezer';

/** The controllers in the order the runtime lists them. */
export const CGROUP_CONTROLLERS: readonly CgroupController[] = ['memory', 'pids', 'cpu', 'freezer'];

/** The cgroup hierarchy the runtime can use. */
export interface CgroupSupport {
  /** 2 when `/sys/fs/cgroup` is the unified hierarchy, else 1. */
  readonly version: 1 | 2;
  /** The usable controllers, in {@link CGROUP_CONTROLLERS} order. */
  readonly controllers: readonly CgroupController[];
  /** Where each usable controller's hierarchy is mounted (v2: the same directory for all). */
  readonly mounts: Readonly<Partial<Record<CgroupController, string>>>;
}

/** The tools that seal a WPAR (S1–S5), all from Debian packages. */
export interface SealSupport {
  /** bubblewrap's `bwrap`: the namespaces and the mount layout (run twice, see `command.ts`). */
  readonly bwrap: string;
  /** util-linux `setpriv`: drops from host root to the home's unprivileged base uid between the two. */
  readonly setpriv: string;
  /** The host ids the WPAR's ids map to, or `null` when user namespaces are unavailable (S1 missing). */
  readonly ids: IdRange | null;
  /** iproute2 and util-linux `nsenter` for `-N address=...`, or `null` when missing. */
  readonly network: NetworkTools | null;
}

/** The isolation in force for WPARs started with it. */
export interface Isolation {
  /** The sealed runtime's tools, or `null` when WPARs only get their own process group. */
  readonly seal: SealSupport | null;
  /** The cgroup hierarchy, or `null` when limits fall back to rlimits. */
  readonly cgroup: CgroupSupport | null;
  /** `prlimit`, used for limits only when there is no cgroup; `null` when absent. */
  readonly prlimit: string | null;
  /** The POSIX shell that runs the runtime's constant trampoline (`wpar-init.sh`). */
  readonly shell: string;
  /** One line for `lswpar -L` and the daemon's start-up, e.g. `sealed: user (uid 0 = host 134283264), ...`. */
  readonly summary: string;
  /**
   * What is missing, one line per piece, each saying what to install or enable (S7), e.g.
   * `user namespace: unavailable (...): processes are host root; enable with sysctl ...`. Empty when all holds.
   */
  readonly notes: readonly string[];
}

/** Options of {@link detectIsolation}. */
export interface DetectIsolationOptions {
  /** Use the fallback (process group and rlimits) even where more is possible. */
  readonly fallback?: boolean;
  /** The host ids to map the WPAR's ids to (the daemon passes its home's, see `idmap.ts`). */
  readonly ids?: IdRange;
}

const CGROUP_ROOT = '/sys/fs/cgroup';
const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const PROBE_MS = 5000;

/**
 * Detects what this machine allows; synchronous, run once at start-up: two short probes of `bwrap`
 * (the namespaces, and a user namespace as the unprivileged base uid).
 */
export function detectIsolation(options: DetectIsolationOptions = {}): Isolation {
  const notes: string[] = [];
  const linux = process.platform === 'linux';
  const root = process.getuid?.() === 0;
  const prlimit = linux ? findTool('prlimit') : null;
  const shell = existsSync('/bin/sh') ? '/bin/sh' : (findTool('sh') ?? '/bin/sh');
  let seal: SealSupport | null = null;
  let cgroup: CgroupSupport | null = null;
  if (options.fallback) {
    notes.push('sealing: off (wpard --fallback-isolation): processes share the host and run as the daemon\'s user');
  } else if (!linux) {
    notes.push(`sealing and cgroups: not Linux (${process.platform}): processes share the host, limits are rlimits`);
  } else if (!root) {
    notes.push('sealing and cgroups: the daemon is not root: processes share the host and run as its user; run wpard as root');
  } else {
    seal = detectSeal(notes, options.ids ?? { base: ID_RANGE_START, size: IDS_PER_HOME });
    cgroup = detectCgroup(notes);
  }
  if (!cgroup && !prlimit && linux) notes.push('limits: neither cgroups nor prlimit: limits are not enforced; install util-linux');
  return { seal, cgroup, prlimit, shell, summary: summarize(seal, cgroup, prlimit), notes };
}

function summarize(seal: SealSupport | null, cg: CgroupSupport | null, prlimit: string | null): string {
  const parts: string[] = [];
  if (seal) {
    const user = seal.ids ? `user (uid 0 = host ${seal.ids.base})` : 'no user namespace';
    parts.push(`sealed: ${user}, mount (host read-only), pid, uts, ipc, cgroup, net${seal.network ? '' : ' (no bridge)'}`);
  } else {
    parts.push('process group');
  }
  if (cg) parts.push(`cgroup v${cg.version} ${cg.controllers.join(',')}`);
  else if (prlimit) parts.push('rlimits');
  else parts.push('no limits');
  return parts.join('; ');
}

function detectSeal(notes: string[], ids: IdRange): SealSupport | null {
  const bwrap = findTool('bwrap');
  const setpriv = findTool('setpriv');
  const missing = [
    bwrap ? '' : 'bwrap (apt-get install bubblewrap)',
    setpriv ? '' : 'setpriv (apt-get install util-linux)',
  ].filter(Boolean);
  if (!bwrap || !setpriv) {
    notes.push(`sealing: ${missing.join(', ')} not found: processes share the host and run as root`);
    return null;
  }
  // Kernels and containers may forbid new namespaces even to root: try the outer layer once.
  const outer = probe(bwrap, ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--', '/bin/true']);
  if (outer !== null) {
    notes.push(`sealing: bwrap cannot make namespaces here (${outer}): processes share the host and run as root`);
    return null;
  }
  // The inner layer: a user namespace made by the unprivileged base uid (as at run time).
  const inner = probe(bwrap, ['--unshare-user', '--uid', '0', '--gid', '0', '--bind', '/', '/', '--', '/bin/true'], { uid: ids.base, gid: ids.base });
  let mapped: IdRange | null = ids;
  if (inner !== null) {
    notes.push(`user namespace: unavailable (${inner}): processes are host root with bounded capabilities; enable user namespaces (sysctl user.max_user_namespaces=15000)`);
    mapped = null;
  }
  const ip = findTool('ip');
  const nsenter = findTool('nsenter');
  const sysctl = findTool('sysctl');
  const absent = [ip ? '' : 'ip (apt-get install iproute2)', nsenter ? '' : 'nsenter (apt-get install util-linux)', sysctl ? '' : 'sysctl (apt-get install procps)'].filter(Boolean);
  if (absent.length > 0) notes.push(`networks: ${absent.join(', ')} not found: mkwpar -N address=... cannot start`);
  return { bwrap, setpriv, ids: mapped, network: ip && nsenter && sysctl ? { ip, nsenter, sysctl } : null };
}

/** Runs a probe; `null` when it succeeded, else why it failed (its first line of stderr). */
function probe(file: string, args: readonly string[], ids?: { uid: number; gid: number }): string | null {
  const run = spawnSync(file, args, { stdio: 'pipe', timeout: PROBE_MS, ...ids });
  if (run.status === 0) return null;
  return run.error?.message ?? (run.stderr.toString().trim().split('\n')[0] || `exit ${run.status}`);
}

function detectCgroup(notes: string[]): CgroupSupport | null {
  const found = existsSync(join(CGROUP_ROOT, 'cgroup.controllers')) ? detectV2() : detectV1();
  if (!found || found.controllers.length === 0) {
    notes.push('cgroups: no usable controller mounted');
    return null;
  }
  const missing = CGROUP_CONTROLLERS.filter((c) => !found.controllers.includes(c));
  if (missing.length > 0) notes.push(`cgroups: no ${missing.join(', ')} controller`);
  return found;
}

function detectV2(): CgroupSupport | null {
  if (!writable(CGROUP_ROOT)) return null;
  const available = readFileSync(join(CGROUP_ROOT, 'cgroup.controllers'), 'utf8').split(/\s+/);
  // The v2 freezer is built into the core (cgroup.freeze) since Linux 5.2.
  const [major = 0, minor = 0] = release().split('.').map((n) => parseInt(n, 10));
  const freezer = major > 5 || (major === 5 && minor >= 2);
  const controllers = CGROUP_CONTROLLERS.filter((c) => (c === 'freezer' ? freezer : available.includes(c)));
  const mounts = Object.fromEntries(controllers.map((c) => [c, CGROUP_ROOT]));
  return { version: 2, controllers, mounts };
}

function detectV1(): CgroupSupport | null {
  const mounts: Partial<Record<CgroupController, string>> = {};
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // id parent dev root mountpoint options [optional...] - fstype source superoptions
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [fstype, , superOptions = ''] = right.split(' ');
    if (fstype !== 'cgroup') continue;
    const mountPoint = unescapeMountPath(left.split(' ')[4] ?? '');
    for (const option of superOptions.split(',')) {
      const c = option as CgroupController;
      if (CGROUP_CONTROLLERS.includes(c) && mounts[c] === undefined && writable(mountPoint)) mounts[c] = mountPoint;
    }
  }
  const controllers = CGROUP_CONTROLLERS.filter((c) => mounts[c] !== undefined);
  return { version: 1, controllers, mounts };
}

/** mountinfo escapes space, tab, newline and backslash as octal (`\040`). */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds an executable file on the daemon's PATH or in the usual system directories; `null` if absent.
 * Relative PATH entries are ignored: a root daemon must not run a tool from whatever its cwd is.
 */
export function findTool(name: string): string | null {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => isAbsolute(d)), ...SYSTEM_PATH];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

/** Whether `path` is a regular file this process may execute. */
export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * What this system's isolation would not give a WPAR with `definition` (M6, checked before a move
 * freezes anything): each limit without its cgroup controller, and a network of its own without the
 * sealed runtime (or a bridge without iproute2). Empty when it would run as defined.
 */
export function isolationShortfalls(isolation: Isolation, definition: Pick<WparDefinition, 'limits' | 'network'>): string[] {
  const out: string[] = [];
  const need: readonly [keyof WparDefinition['limits'], CgroupController, string][] = [
    ['memoryBytes', 'memory', 'a memory limit'], ['procs', 'pids', 'a process limit'], ['cpuPercent', 'cpu', 'a CPU limit'],
  ];
  for (const [key, controller, what] of need) {
    if (definition.limits[key] === undefined) continue;
    if (!isolation.cgroup?.controllers.includes(controller)) out.push(`${what} needs the cgroup ${controller} controller, which this system does not have`);
  }
  const network = definition.network;
  if (network !== undefined && network.mode !== 'host') {
    if (!isolation.seal) out.push(`a network of its own (-N ${network.mode === 'none' ? 'none' : 'address='}) needs the sealed runtime, which this system does not have`);
    else if (network.mode === 'bridge' && !isolation.seal.network) out.push('-N address= needs iproute2 and nsenter, which this system does not have');
  }
  return out;
}
