/**
 * The definition flags `mkwpar` and `wparexec` share (`-n -c -h -e -R -N` and the command after them),
 * turned into the {@link WparDefinition} the daemon receives.
 * @module
 */
import { basename } from 'node:path';
import { WparError } from '../kernel/errno.ts';
import { argvProblem, checkpointEveryProblem, DEFAULT_REPLICAS, parseWhole, replicasProblem, WPAR_NAME_PATTERN } from '../definition/rules.ts';
import type { WparDefinition } from '../runtime/definition.ts';
import { parseLimits } from '../runtime/limits.ts';
import { HOST_NETWORK, parseNetwork } from '../definition/network.ts';
import { checkHostname, checkWparName, COMMON_OPTIONS, parseEnv } from './args.ts';
import { UsageError } from './errors.ts';

/** The definition flags, with the options every command takes. */
export const DEFINE_OPTIONS = {
  ...COMMON_OPTIONS,
  name: { type: 'string', short: 'n' },
  checkpointable: { type: 'boolean', short: 'c' },
  hostname: { type: 'string', short: 'h' },
  env: { type: 'string', short: 'e', multiple: true },
  resources: { type: 'string', short: 'R', multiple: true },
  network: { type: 'string', short: 'N' },
  'checkpoint-every': { type: 'string' },
  replicas: { type: 'string' },
  failover: { type: 'boolean' },
} as const;

/** The parsed definition flags. */
export interface DefineValues {
  readonly name?: string | undefined;
  readonly checkpointable?: boolean | undefined;
  readonly hostname?: string | undefined;
  readonly env?: readonly string[] | undefined;
  readonly resources?: readonly string[] | undefined;
  readonly network?: string | undefined;
  readonly 'checkpoint-every'?: string | undefined;
  readonly replicas?: string | undefined;
  readonly failover?: boolean | undefined;
}

/** Options of {@link buildDefinition}. */
export interface BuildOptions {
  /** The command to show in the "no command" error (`mkwpar`). */
  readonly usageName: string;
  /** Without `-n`, name the WPAR after the command's basename (`wparexec`); else `-n` is required. */
  readonly defaultName?: boolean;
  /** `-A`. */
  readonly autostart?: boolean;
}

/**
 * Checks the flags and the command and builds the definition; throws a {@link UsageError} (with
 * `EINVAL` for a bad value) naming what is wrong. The argv is kept literally: `$(...)`, `;` and
 * quotes are the program's arguments, never shell syntax.
 */
export function buildDefinition(values: DefineValues, command: readonly string[] | undefined, options: BuildOptions): WparDefinition {
  let name: string;
  if (values.name !== undefined) {
    name = checkWparName(values.name);
  } else if (options.defaultName && command !== undefined && command.length > 0 && WPAR_NAME_PATTERN.test(basename(command[0]!))) {
    name = basename(command[0]!);
  } else if (options.defaultName && command !== undefined && command.length > 0) {
    throw new UsageError(`cannot name the WPAR after ${JSON.stringify(command[0])}: give -n NAME`);
  } else if (options.defaultName) {
    name = '';
  } else {
    throw new UsageError('missing -n NAME');
  }
  if (command === undefined || command.length === 0) {
    throw new UsageError(`no command given; put it after "--", e.g. ${options.usageName} -n ${name || 'NAME'} -- sleep 60`, name === '' ? {} : { subject: name });
  }
  const argvWrong = argvProblem(command);
  if (argvWrong !== undefined) throw new UsageError(argvWrong, { code: 'EINVAL', subject: name });
  const hostname = values.hostname === undefined ? null : checkHostname(values.hostname, name);
  const env = parseEnv(values.env ?? [], name);
  let limits;
  let network;
  try {
    limits = parseLimits((values.resources ?? []).join(','));
    network = values.network === undefined ? HOST_NETWORK : parseNetwork(values.network);
  } catch (err) {
    if (err instanceof WparError) throw new UsageError(err.message, { code: err.code, subject: name });
    throw err;
  }
  const schedule = scheduleOf(values, name);
  return {
    name,
    argv: [...command],
    env,
    hostname,
    checkpointable: values.checkpointable === true,
    limits,
    autostart: options.autostart === true,
    ...(values.failover === true && { failover: true }),
    ...(network.mode === 'host' ? {} : { network }),
    ...schedule,
  };
}

/** `--checkpoint-every SEC [--replicas N]` (C5), checked by the definition module's rules. */
function scheduleOf(values: DefineValues, name: string): { checkpointEvery?: number; replicas?: number } {
  const every = values['checkpoint-every'];
  const replicas = values.replicas;
  if (every === undefined) {
    if (replicas !== undefined) throw new UsageError('--replicas goes with --checkpoint-every', { code: 'EINVAL', subject: name });
    return {};
  }
  const seconds = parseWhole(every);
  const wrong = checkpointEveryProblem(seconds) ?? (replicas === undefined ? undefined : replicasProblem(parseWhole(replicas)))
    ?? (values.checkpointable === true ? undefined : '--checkpoint-every needs -c (only a checkpointable WPAR can be checkpointed)');
  if (wrong !== undefined) throw new UsageError(wrong, { code: 'EINVAL', subject: name });
  return { checkpointEvery: seconds, replicas: replicas === undefined ? DEFAULT_REPLICAS : parseWhole(replicas) };
}

/** The usage lines of the definition flags, for the commands' help texts; `defaultName` for wparexec's `-n`. */
export function defineFlagsHelp(defaultName = false): string {
  const name = defaultName
    ? `  -n WparName     Name of the workload partition (default: the basename of Command): 1 to 64
                  letters, digits, '_', '.' or '-', starting with a letter or digit.
`
    : `  -n WparName     Name of the workload partition: 1 to 64 letters, digits, '_', '.' or '-',
                  starting with a letter or digit.
`;
  return name + OTHER_FLAGS_HELP;
}

const OTHER_FLAGS_HELP = `  -c              Checkpointable: chkptwpar may checkpoint it.
  -h Hostname     Hostname inside the workload partition (default: its name): 1 to 64
                  letters, digits, '.' or '-', starting with a letter or digit.
  -e Name=Value   Sets an environment variable of its processes; may be repeated.
  -R Attribute=Value[,Attribute=Value...]
                  Resource limits: memory=Size (bytes, or with K, M, G, T), cpu=Percent of one
                  CPU, procs=Count; may be repeated.
  -N Network      Its network: host (the default: the host's network), none (its own network
                  namespace with loopback only), or address=A.B.C.D/LEN[,gateway=G][,bridge=NAME]
                  (its own network namespace with that address on a host bridge the daemon sets
                  up, default corral0 with the gateway, default the subnet's first address).
  --checkpoint-every Seconds
                  With -c: its owner checkpoints it every Seconds (1 to 86400) while it runs,
                  without stopping it; a checkpoint its agents deny is skipped until the next.
  --replicas Count
                  With --checkpoint-every, in a cluster: copies each image to Count other up
                  hosts (0 to 16, default 1).
  --failover      In a cluster: killed when this host cannot renew its lease (fenced, even if
                  the daemon is stopped), so that another host restarts it from its newest
                  replica (--checkpoint-every); outside a cluster it changes nothing.
`;
