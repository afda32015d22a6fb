/**
 * What isolation this machine allows a WPAR (R2): namespaces and a cgroup where the daemon can
 * (Linux, root), else a process group and rlimits. `lswpar -L` shows {@link Isolation.summary}.
 * @module
 */

import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';

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

/** The tools that give a WPAR its namespaces. */
export interface NamespaceSupport {
  /** util-linux `unshare`: creates the PID, mount, UTS and IPC namespaces and mounts `/proc`. */
  readonly unshare: string;
  /** `tini` (`tini-static` if present): PID 1 inside, forwarding signals and reaping zombies. */
  readonly tini: string;
}

/** The isolation in force for WPARs started with it. */
export interface Isolation {
  /** Namespaces, or `null` when WPARs only get their own process group. */
  readonly namespaces: NamespaceSupport | null;
  /** The cgroup hierarchy, or `null` when limits fall back to rlimits. */
  readonly cgroup: CgroupSupport | null;
  /** `prlimit`, used for limits only when there is no cgroup; `null` when absent. */
  readonly prlimit: string | null;
  /** The POSIX shell that runs the runtime's constant trampoline (`wpar-init.sh`). */
  readonly shell: string;
  /** One line for `lswpar -L`, e.g. `namespaces pid,mount,uts,ipc; cgroup v1 memory,pids,cpu,freezer`. */
  readonly summary: string;
  /** Why stronger isolation is not in force (empty when it is), e.g. `namespaces: not root`. */
  readonly notes: readonly string[];
}

/** Options of {@link detectIsolation}. */
export interface DetectIsolationOptions {
  /** Use the fallback (process group and rlimits) even where more is possible. */
  readonly fallback?: boolean;
}

const CGROUP_ROOT = '/sys/fs/cgroup';
const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Detects what this machine allows; synchronous and cheap (one short probe of `unshare`), run once at start-up. */
export function detectIsolation(options: DetectIsolationOptions = {}): Isolation {
  const notes: string[] = [];
  const linux = process.platform === 'linux';
  const root = process.getuid?.() === 0;
  const prlimit = linux ? findTool('prlimit') : null;
  const shell = existsSync('/bin/sh') ? '/bin/sh' : (findTool('sh') ?? '/bin/sh');
  let namespaces: NamespaceSupport | null = null;
  let cgroup: CgroupSupport | null = null;
  if (options.fallback) {
    notes.push('fallback forced');
  } else if (!linux) {
    notes.push(`namespaces and cgroups: not Linux (${process.platform})`);
  } else if (!root) {
    notes.push('namespaces and cgroups: not root');
  } else {
    namespaces = detectNamespaces(notes);
    cgroup = detectCgroup(notes);
  }
  return { namespaces, cgroup, prlimit, shell, summary: summarize(namespaces, cgroup, prlimit), notes };
}

function summarize(ns: NamespaceSupport | null, cg: CgroupSupport | null, prlimit: string | null): string {
  const parts = [ns ? 'namespaces pid,mount,uts,ipc' : 'process group'];
  if (cg) parts.push(`cgroup v${cg.version} ${cg.controllers.join(',')}`);
  else if (prlimit) parts.push('rlimits');
  else parts.push('no limits');
  return parts.join('; ');
}

function detectNamespaces(notes: string[]): NamespaceSupport | null {
  const unshare = findTool('unshare');
  // Debian's tini package also ships tini-static: no dynamic loading, a millisecond less per start.
  const tini = findTool('tini-static') ?? findTool('tini');
  if (!unshare || !tini) {
    notes.push(`namespaces: ${[unshare ? '' : 'unshare', tini ? '' : 'tini'].filter(Boolean).join(' and ')} not found`);
    return null;
  }
  // Kernels and containers may forbid new namespaces even to root: try the exact set once.
  const probe = spawnSync(unshare, [...UNSHARE_FLAGS, '--', tini, '--version'], { stdio: 'pipe', timeout: 5000 });
  if (probe.status !== 0) {
    const why = probe.error?.message ?? probe.stderr.toString().trim().split('\n')[0] ?? `exit ${probe.status}`;
    notes.push(`namespaces: unshare failed: ${why}`);
    return null;
  }
  return { unshare, tini };
}

/** The `unshare` options of a WPAR: PID (PID 1 is forked), mount with its own /proc, UTS, IPC. */
export const UNSHARE_FLAGS: readonly string[] = [
  '--pid', '--fork', '--kill-child', '--mount-proc', '--propagation', 'private', '--uts', '--ipc',
];

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
