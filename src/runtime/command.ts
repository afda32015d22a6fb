/**
 * The exact argv the runtime spawns for a WPAR: its command wrapped in the tools that give it its
 * isolation. Every element is passed to execve as is; the user's argv only ever comes last.
 * @module
 */

import { existsSync } from 'node:fs';
import { dirname, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WparError } from '../kernel/errno.ts';
import type { Limits } from './definition.ts';
import type { LimitKey } from './cgroup.ts';
import type { Isolation } from './isolation.ts';
import { ownNetworkNamespace, type NetworkSpec } from '../definition/network.ts';

/** The constant trampoline (see the comment at its top for why it exists and what it may do). */
export const WPAR_INIT = fileURLToPath(new URL('./wpar-init.sh', import.meta.url));

/**
 * The capabilities a sealed WPAR's root keeps inside its user namespace: Docker's default set less
 * `CAP_MKNOD` and `CAP_NET_RAW`. Never `CAP_SYS_ADMIN` (mounts), `CAP_NET_ADMIN` or `CAP_SYS_PTRACE`.
 */
export const WPAR_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_SETFCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_AUDIT_WRITE',
];

/**
 * The file descriptors of the sealed start's hand-shake (see {@link planCommand}); the daemon's ends
 * are the spawned child's stdio entries of the same numbers.
 */
export const SEAL_FDS = {
  /** The outer `bwrap` writes `{"child-pid": N}` here once it has made the namespaces. */
  outerInfo: 3,
  /** The outer sandbox waits for a byte here before going on (the daemon has put it in its cgroup). */
  outerGo: 4,
  /** The inner `bwrap`'s sandbox waits here until the daemon has written its uid and gid maps. */
  innerGo: 5,
  /** The inner `bwrap` writes `{"child-pid": N}` here once it has made the user namespace. */
  innerInfo: 6,
  /**
   * The outer `bwrap`'s `--json-status-fd`: a file in the WPAR's directory (not a pipe), where it
   * writes `{"child-pid": N, ...}` and, when its child ends, `{"exit-code": N}` — how a daemon that is
   * not its parent (one that adopted it, R7) learns the exit status. bwrap does not pass it on.
   */
  status: 7,
} as const;

/** How the daemon lets the command go. */
export type StartMode =
  /** Sealed: the bwrap hand-shake on {@link SEAL_FDS}. */
  | 'sealed'
  /** `wpar-init.sh --wait`: "go" on fd 3 once the first process is in its cgroup. */
  | 'held'
  /** Nothing to wait for: the command runs as soon as it is spawned. */
  | 'direct';

/** What to spawn for one WPAR. */
export interface CommandPlan {
  /** The executable. */
  readonly file: string;
  /** Its arguments (argv[1...]). */
  readonly args: readonly string[];
  /** How the command is let go. */
  readonly mode: StartMode;
  /** Limits no mechanism in force can enforce (e.g. `cpuPercent` without a cgroup). */
  readonly unenforced: readonly LimitKey[];
}

/** Where a sealed WPAR's own things are, on the host and (at the same paths) inside. */
export interface SealLayout {
  /** Its root: writable, its working directory. */
  readonly root: string;
  /** The directory holding its agent socket (and nothing else). */
  readonly agentDir: string;
  /** Its private temporary directory (`TMPDIR`): a tmpfs nobody else sees, gone when it stops. */
  readonly tmpDir: string;
  /**
   * The directory hidden by an empty tmpfs (the daemon's home, or the highest ancestor of it that
   * others cannot search): only `root`, `agentDir` and `tmpDir` are put back inside it.
   */
  readonly hide: string;
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
  /** The network definition (own network namespace unless host). */
  readonly network?: NetworkSpec | undefined;
  /** Where its things are; required when the isolation is sealed. */
  readonly layout?: SealLayout;
}

/**
 * Builds the chain. Sealed (root, bubblewrap, a user namespace):
 *
 * `bwrap [outer] -- setpriv --reuid=B --regid=B --clear-groups -- bwrap [inner] -- ARGV`
 *
 * The **outer** `bwrap` runs as host root: it makes the PID, IPC, UTS (and network) namespaces and
 * the mount layout — the host read-only, the home hidden by a tmpfs, the root, the agent directory and
 * a private tmpfs put back at their own paths, a fresh `/proc` and a minimal `/dev` — and bounds the
 * capabilities. It must be root for that: it resolves the root and the socket through the home, which
 * no unprivileged id can search. It reports its sandbox's pid and waits for a byte (the daemon puts the
 * sandbox in its cgroup and wires its network meanwhile). `setpriv` then drops to the home's base uid
 * B, and the **inner** `bwrap`, unprivileged, makes the user and cgroup namespaces (so the cgroup
 * namespace is rooted at the WPAR's own cgroup) and waits until the daemon has written the uid and gid
 * maps (inside 0..65535 → host B..B+65535) before it becomes uid 0 inside and execs the command; the
 * inner bwrap stays as PID 1 (the outer one runs `--as-pid-1`): it reaps every orphan and exits with
 * the command's status (128+N for signal N), and its exit ends the namespace. Since the
 * mount namespace belongs to the host's user namespace, root inside can never unmount the layout.
 *
 * Without a user namespace the outer layer forks the command under its own PID 1. Without bubblewrap, a cgroup gives
 * `sh wpar-init.sh --wait -- ARGV`; without a cgroup either, `prlimit` sets rlimits in front.
 */
export function planCommand(options: PlanOptions): CommandPlan {
  const { isolation, limits } = options;
  const seal = isolation.seal;
  if (!seal && ownNetworkNamespace(options.network)) {
    throw new WparError('EINVAL', 'a network of its own (mkwpar -N) needs a sealed runtime (root, bubblewrap)');
  }
  let chain = [...options.argv];
  let mode: StartMode = 'direct';
  if (seal) {
    if (!options.layout) throw new WparError('EINVAL', 'a sealed start needs the WPAR\'s layout');
    if (options.network?.mode === 'bridge' && !seal.network) {
      throw new WparError('ENOENT', 'mkwpar -N address=... needs iproute2 and nsenter (apt-get install iproute2 util-linux)');
    }
    chain = sealedChain(options, options.layout, chain);
    mode = 'sealed';
  } else if (isolation.cgroup) {
    if (!existsSync(WPAR_INIT)) {
      // A build that compiles the .ts files must also copy this one next to them.
      throw new WparError('ENOENT', `runtime file ${WPAR_INIT} is missing (copy src/runtime/wpar-init.sh next to the built runtime)`);
    }
    chain = [isolation.shell, WPAR_INIT, '--wait', '--', ...chain];
    mode = 'held';
  }
  let unenforced: LimitKey[] = [];
  if (!isolation.cgroup) {
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
  return { file, args, mode, unenforced };
}

function sealedChain(options: PlanOptions, layout: SealLayout, argv: readonly string[]): string[] {
  const seal = options.isolation.seal!;
  const caps = ['--cap-drop', 'ALL', ...WPAR_CAPABILITIES.flatMap((c) => ['--cap-add', c])];
  const net = ownNetworkNamespace(options.network) ? ['--unshare-net'] : [];
  const tmpSize = options.limits.memoryBytes !== undefined ? ['--size', String(options.limits.memoryBytes)] : [];
  const outer = [
    // With the inner layer, it is PID 1 (and the outer bwrap's own reaper is not needed).
    seal.bwrap, ...(seal.ids ? ['--as-pid-1'] : []), '--new-session',
    '--info-fd', String(SEAL_FDS.outerInfo), '--block-fd', String(SEAL_FDS.outerGo), '--json-status-fd', String(SEAL_FDS.status),
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', ...net, '--hostname', options.hostname,
    '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--tmpfs', '/dev/shm',
    '--perms', '0755', '--tmpfs', layout.hide,
    ...mountPoints(layout.hide, [layout.root, layout.agentDir, layout.tmpDir]),
    '--bind', layout.root, layout.root,
    '--bind', layout.agentDir, layout.agentDir,
    ...tmpSize, '--perms', '1777', '--tmpfs', layout.tmpDir,
    ...caps,
  ];
  if (!seal.ids) return [...outer, '--chdir', layout.root, '--', ...argv];
  const id = String(seal.ids.base);
  return [
    ...outer, '--',
    seal.setpriv, `--reuid=${id}`, `--regid=${id}`, '--clear-groups', '--',
    seal.bwrap, '--unshare-user', '--uid', '0', '--gid', '0', '--unshare-cgroup',
    '--userns-block-fd', String(SEAL_FDS.innerGo), '--info-fd', String(SEAL_FDS.innerInfo),
    // --dev-bind: bwrap's --bind would add nodev, and the outer layer's minimal /dev must work.
    '--dev-bind', '/', '/', '--chdir', layout.root, ...caps, '--',
    // The inner bwrap leaves its --userns-block-fd open in the command: a constant trampoline
    // closes it (the command's words are only positional parameters, never interpreted).
    options.isolation.shell, '-c', CLOSE_INNER_GO, 'wpar', ...argv,
  ];
}

/** `sh -c` text that closes {@link SEAL_FDS.innerGo} and execs its arguments. */
const CLOSE_INNER_GO = `exec ${SEAL_FDS.innerGo}<&- && exec "$@"`;

/**
 * `--dir` for every directory between `hide` and each target (not the targets themselves), parents
 * first, mode 0755: bwrap would make them 0700 and owned by host root, which the WPAR cannot search.
 */
function mountPoints(hide: string, targets: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const target of targets) {
    const rel = relative(hide, dirname(target));
    if (rel === '' || rel.startsWith('..')) continue;
    let path = hide;
    for (const part of rel.split(sep)) {
      path = `${path}${sep}${part}`;
      dirs.add(path);
    }
  }
  return [...dirs].flatMap((dir) => ['--perms', '0755', '--dir', dir]);
}
