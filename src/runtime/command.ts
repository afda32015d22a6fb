/**
 * The exact argv the runtime spawns for a WPAR: its command wrapped in the tools that give it its
 * isolation. Every element is passed to execve as is; the user's argv only ever comes last.
 * @module
 */

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WparError } from '../kernel/errno.ts';
import type { Limits } from './definition.ts';
import type { LimitKey } from './cgroup.ts';
import { UNSHARE_FLAGS, type Isolation } from './isolation.ts';

/** The constant trampoline (see the comment at its top for why it exists and what it may do). */
export const WPAR_INIT = fileURLToPath(new URL('./wpar-init.sh', import.meta.url));

/** What to spawn for one WPAR. */
export interface CommandPlan {
  /** The executable. */
  readonly file: string;
  /** Its arguments (argv[1...]). */
  readonly args: readonly string[];
  /**
   * Whether the chain waits on fd 3 for "go", to be sent once the first process and its children
   * (PID 1 inside) are in the WPAR's cgroup, so nothing the command runs is ever outside it.
   */
  readonly hold: boolean;
  /** Limits no mechanism in force can enforce (e.g. `cpuPercent` without a cgroup). */
  readonly unenforced: readonly LimitKey[];
}

/** Options of {@link planCommand}. */
export interface PlanOptions {
  /** The WPAR's command and arguments. */
  readonly argv: readonly string[];
  /** The hostname inside (used only with namespaces). */
  readonly hostname: string;
  /** The limits (applied here only as rlimits, when there is no cgroup). */
  readonly limits: Limits;
  /** The isolation in force. */
  readonly isolation: Isolation;
}

/**
 * Builds the chain. With namespaces and a cgroup:
 * `unshare FLAGS -- sh wpar-init.sh --wait --hostname HOST -- tini -- ARGV...`: `unshare` makes the
 * namespaces and forks PID 1, which waits until the daemon has put it (and `unshare`) into the
 * cgroup, sets the hostname and becomes `tini`, which runs ARGV. The daemon creates the cgroup while
 * `unshare` is busy, so confinement costs little time. Without namespaces the chain is
 * `sh wpar-init.sh --wait -- ARGV...`; without a cgroup, `prlimit` sets rlimits in front instead.
 */
export function planCommand(options: PlanOptions): CommandPlan {
  const { isolation, limits } = options;
  const hold = isolation.cgroup !== null;
  const wait = hold ? ['--wait'] : [];
  if ((hold || isolation.namespaces) && !existsSync(WPAR_INIT)) {
    // A build that compiles the .ts files must also copy this one next to them.
    throw new WparError('ENOENT', `runtime file ${WPAR_INIT} is missing (copy src/runtime/wpar-init.sh next to the built runtime)`);
  }
  let chain = [...options.argv];
  if (isolation.namespaces) {
    const { unshare, tini } = isolation.namespaces;
    chain = [unshare, ...UNSHARE_FLAGS, '--', isolation.shell, WPAR_INIT, ...wait, '--hostname', options.hostname, '--', tini, '--', ...chain];
  } else if (hold) {
    chain = [isolation.shell, WPAR_INIT, ...wait, '--', ...chain];
  }
  let unenforced: LimitKey[] = [];
  if (!hold) {
    const rlimits: string[] = [];
    // RLIMIT_DATA bounds each process's private writable memory (not the WPAR's total, and not
    // address space, which runtimes such as V8 reserve far beyond what they use).
    if (limits.memoryBytes !== undefined) rlimits.push(`--data=${limits.memoryBytes}`);
    // RLIMIT_NPROC counts every process of the user, and root is exempt from it.
    if (limits.procs !== undefined) rlimits.push(`--nproc=${limits.procs}`);
    if (limits.cpuPercent !== undefined) unenforced.push('cpuPercent');
    if (rlimits.length > 0 && isolation.prlimit) chain = [isolation.prlimit, ...rlimits, '--', ...chain];
    else if (rlimits.length > 0) unenforced = [...unenforced, ...(['memoryBytes', 'procs'] as const).filter((k) => limits[k] !== undefined)];
  }
  const [file, ...args] = chain;
  if (file === undefined) throw new WparError('EINVAL', 'empty command');
  return { file, args, hold, unenforced };
}
