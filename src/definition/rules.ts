/**
 * The one source of every rule a WPAR definition follows — name, hostname, command, environment,
 * limits — and of the other numbers commands send (`-w` seconds, `-t` seconds, sizes). The commands
 * (`src/cli`), the daemon (`src/daemon`), the runtime and the image reader all check with these
 * functions, so a definition `mkwpar` accepts is one the daemon stores, the runtime starts and an
 * image carries (they used to disagree: a 63- vs 64-character hostname, 1 byte vs 1 MiB of memory,
 * an argv[0] starting with `-` accepted by `mkwpar` and refused at start, `-w 2.5`).
 *
 * Each check either returns the reason a value is invalid (`...Problem`, `undefined` when valid), so
 * each caller wraps it in its own error (a usage error, an API error, a damaged image), or throws a
 * {@link WparError} `EINVAL` saying what is wrong (`check...`). No I/O; loads nothing but the kernel's
 * errno and name rule.
 * @module
 */
import { WparError } from '../kernel/errno.ts';
import { NAME_PATTERN } from '../kernel/corral.ts';
import type { Limits, WparDefinition } from '../runtime/definition.ts';
import { checkNetwork } from './network.ts';

/** The kernel's WPAR name rule (K14): 1 to 64 letters, digits, `_`, `.` or `-`, starting with a letter or digit. */
export const WPAR_NAME_PATTERN: RegExp = NAME_PATTERN;
/** The longest WPAR name. */
export const NAME_MAX = 64;
/** What a WPAR name is, for error messages and help texts. */
export const NAME_RULE = `1 to ${NAME_MAX} letters, digits, '_', '.' or '-', starting with a letter or digit`;

/** The longest hostname: Linux's limit for a UTS hostname (`HOST_NAME_MAX`). */
export const HOSTNAME_MAX = 64;
const HOSTNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;
/** What a hostname is, for error messages and help texts. */
export const HOSTNAME_RULE = `1 to ${HOSTNAME_MAX} letters, digits, '.' or '-', starting with a letter or digit`;

/** Variables the runtime sets itself; a definition may not set them. */
export const RESERVED_ENV: ReadonlySet<string> = new Set(['WPAR_NAME', 'WPAR_CID', 'WPAR_ROOT', 'WPAR_AGENT', 'WPAR_EPOCH']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The smallest memory limit: below 1 MiB no program starts, and cgroup v2 rounds to pages anyway. */
export const MIN_MEMORY_BYTES = 1024 * 1024;
/** The longest a checkpoint may wait for denials (`chkptwpar -w`), in whole seconds: the largest timer Node keeps. */
export const MAX_WAIT_SECONDS = 2_147_483;

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
const SIZE = /^([0-9]+)([KMGT]?)$/i;
const INTEGER = /^[0-9]+$/;

/** Why `name` is not a WPAR name, or `undefined`. */
export function nameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return `a WPAR name must be a string (${NAME_RULE})`;
  if (!WPAR_NAME_PATTERN.test(name)) {
    const length = name.length > NAME_MAX ? ` (${name.length} characters)` : '';
    return `bad WPAR name ${JSON.stringify(name)}${length}: ${NAME_RULE}`;
  }
  return undefined;
}

/** Why `hostname` is not a hostname a definition may give (`mkwpar -h`), or `undefined`. */
export function hostnameProblem(hostname: unknown): string | undefined {
  if (typeof hostname !== 'string' || !HOSTNAME_PATTERN.test(hostname) || hostname.length > HOSTNAME_MAX) {
    return `bad hostname ${JSON.stringify(hostname)}: ${HOSTNAME_RULE}`;
  }
  return undefined;
}

/** Why `argv` is not a command a WPAR can run, or `undefined`. Executed directly, never by a shell. */
export function argvProblem(argv: unknown): string | undefined {
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
    return 'the command must be a non-empty list of strings (mkwpar ... -- Command [Argument...])';
  }
  const command = argv[0] as string;
  if (command === '') return 'the command name is empty';
  // A leading "-" would be read as an option by the runtime's wrappers; no real command is named so.
  if (command.startsWith('-')) return `bad command ${JSON.stringify(command)}: it must not start with "-"`;
  const nul = (argv as string[]).findIndex((a) => a.includes('\0'));
  if (nul >= 0) return `command argument ${nul} contains a NUL character`;
  return undefined;
}

/** Why `name` cannot be an environment variable of a definition (`-e NAME=VALUE`), or `undefined`. */
export function envNameProblem(name: string): string | undefined {
  if (!ENV_NAME.test(name)) return `bad environment variable name ${JSON.stringify(name)}: letters, digits and '_', not starting with a digit`;
  if (RESERVED_ENV.has(name)) return `${name} is set by the runtime and cannot be defined`;
  return undefined;
}

/** Why `env` is not a definition's environment, or `undefined`. */
export function envProblem(env: unknown): string | undefined {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) return 'env must be an object of strings';
  for (const [k, v] of Object.entries(env)) {
    const problem = envNameProblem(k);
    if (problem !== undefined) return problem;
    if (typeof v !== 'string' || v.includes('\0')) return `environment variable ${k} must be a string without NUL`;
  }
  return undefined;
}

/** The largest CPU limit on a system with `cpus` CPUs: all of them. */
export function maxCpuPercent(cpus: number): number {
  return 100 * cpus;
}

/**
 * Why `limits` are not valid limits on a system with `cpus` CPUs (`undefined` for `cpus`: any
 * positive percentage, as an image reader on another system must accept), or `undefined`.
 */
export function limitsProblem(limits: unknown, cpus?: number): string | undefined {
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) return 'limits must be an object';
  const l = limits as Record<string, unknown>;
  for (const key of Object.keys(l)) {
    if (key !== 'memoryBytes' && key !== 'cpuPercent' && key !== 'procs') return `unknown limit "${key}" (known: memory, cpu, procs)`;
  }
  const int = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);
  if (l.memoryBytes !== undefined && !(int(l.memoryBytes) && l.memoryBytes >= MIN_MEMORY_BYTES)) {
    return 'memory limit must be a whole number of bytes, at least 1M';
  }
  if (l.cpuPercent !== undefined) {
    const max = cpus === undefined ? Number.MAX_SAFE_INTEGER : maxCpuPercent(cpus);
    if (!(int(l.cpuPercent) && l.cpuPercent >= 1 && l.cpuPercent <= max)) {
      return cpus === undefined ? 'cpu limit must be a positive integer percentage' : `cpu limit must be an integer percentage from 1 to ${max}`;
    }
  }
  if (l.procs !== undefined && !(int(l.procs) && l.procs >= 1)) return 'procs limit must be a positive integer';
  return undefined;
}

/** Options of {@link checkDefinition} and {@link definitionProblem}. */
export interface DefinitionRules {
  /** CPUs of this system, bounding `cpu`; leave out to accept any positive percentage (an image from another system). */
  readonly cpus?: number;
}

/**
 * Why `value` is not a WPAR definition, or `undefined`. Every field is checked, with its type: the
 * daemon takes definitions from clients and images, and trusts neither.
 */
export function definitionProblem(value: unknown, rules: DefinitionRules = {}): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'a definition must be an object';
  const d = value as Record<string, unknown>;
  const problem =
    nameProblem(d.name) ??
    argvProblem(d.argv) ??
    envProblem(d.env ?? {}) ??
    (d.hostname === undefined || d.hostname === null ? undefined : hostnameProblem(d.hostname)) ??
    booleanProblem(d.checkpointable, 'checkpointable') ??
    booleanProblem(d.autostart, 'autostart') ??
    booleanProblem(d.failover, 'failover') ??
    limitsProblem(d.limits ?? {}, rules.cpus) ??
    networkProblem(d.network) ??
    scheduleProblem(d);
  return problem;
}

/** Why `network` is not a network definition (`mkwpar -N`, S5), or `undefined`; absent is the host's. */
export function networkProblem(network: unknown): string | undefined {
  try {
    checkNetwork(network);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function booleanProblem(value: unknown, field: string): string | undefined {
  return value === undefined || typeof value === 'boolean' ? undefined : `${field} must be true or false`;
}

/**
 * A validated, normalised copy of `value` (absent `env`, `hostname`, `limits` and flags filled in);
 * throws {@link WparError} `EINVAL` naming the WPAR (when its name is valid) and the first bad field.
 */
export function checkDefinition(value: unknown, rules: DefinitionRules = {}): WparDefinition {
  const problem = definitionProblem(value, rules);
  if (problem !== undefined) {
    const name = (value as { name?: unknown } | null)?.name;
    throw new WparError('EINVAL', nameProblem(name) === undefined ? `${name as string}: ${problem}` : problem);
  }
  const d = value as Record<string, unknown>;
  const limits = (d.limits ?? {}) as Record<string, number | undefined>;
  const network = checkNetwork(d.network);
  return {
    name: d.name as string,
    argv: [...(d.argv as string[])],
    env: { ...(d.env ?? {}) as Record<string, string> },
    hostname: (d.hostname ?? null) as string | null,
    checkpointable: d.checkpointable === true,
    limits: {
      ...(limits.memoryBytes !== undefined && { memoryBytes: limits.memoryBytes }),
      ...(limits.cpuPercent !== undefined && { cpuPercent: limits.cpuPercent }),
      ...(limits.procs !== undefined && { procs: limits.procs }),
    } satisfies Limits,
    autostart: d.autostart === true,
    // Stored only when set, so definitions (and images) from before --failover read the same.
    ...(d.failover === true && { failover: true }),
    // The host network is the default and is not stored, so definitions from before -N read the same.
    ...(network.mode !== 'host' && { network }),
    ...(d.checkpointEvery !== undefined && { checkpointEvery: d.checkpointEvery as number, replicas: (d.replicas ?? DEFAULT_REPLICAS) as number }),
  };
}

/** The longest interval of scheduled checkpoints (`--checkpoint-every`), in seconds: one day. */
export const MAX_CHECKPOINT_EVERY = 86_400;
/** The most hosts one image is copied to (`--replicas`). */
export const MAX_REPLICAS = 16;
/** Replicas of a WPAR with `--checkpoint-every` and no `--replicas` (C5). */
export const DEFAULT_REPLICAS = 1;

/** Why `seconds` cannot be the interval of scheduled checkpoints (`--checkpoint-every`), or `undefined`. */
export function checkpointEveryProblem(seconds: unknown): string | undefined {
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1 || seconds > MAX_CHECKPOINT_EVERY) {
    return `--checkpoint-every must be whole seconds from 1 to ${MAX_CHECKPOINT_EVERY}`;
  }
  return undefined;
}

/** Why `count` cannot be the number of replicas (`--replicas`), or `undefined`. */
export function replicasProblem(count: unknown): string | undefined {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > MAX_REPLICAS) {
    return `--replicas must be a whole number from 0 to ${MAX_REPLICAS}`;
  }
  return undefined;
}

/** The scheduled checkpoint fields together: an interval needs `checkpointable`, replicas need an interval. */
function scheduleProblem(d: Record<string, unknown>): string | undefined {
  if (d.checkpointEvery === undefined) return d.replicas === undefined ? undefined : '--replicas goes with --checkpoint-every (replicas are copies of its scheduled checkpoints)';
  return checkpointEveryProblem(d.checkpointEvery)
    ?? (d.replicas === undefined ? undefined : replicasProblem(d.replicas))
    ?? (d.checkpointable === true ? undefined : '--checkpoint-every needs -c (only a checkpointable WPAR can be checkpointed)');
}

/** Checks a WPAR name; throws {@link WparError} `EINVAL` saying why it is not one. */
export function checkName(name: unknown): string {
  const problem = nameProblem(name);
  if (problem !== undefined) throw new WparError('EINVAL', problem);
  return name as string;
}

/**
 * Parses a size: bytes with an optional binary unit, `256M`, `1G`, `4096` (`-R memory=`,
 * `wpard --journal-size`). Returns `NaN` for anything else (so each caller says which flag was bad).
 */
export function parseSize(text: string): number {
  const m = SIZE.exec(text);
  const bytes = m ? Number(m[1]) * (SIZE_UNITS[m[2]!.toUpperCase()] ?? 1) : NaN;
  return Number.isSafeInteger(bytes) ? bytes : NaN;
}

/** Bytes in the largest binary unit that divides them exactly (`268435456` → `256M`); {@link parseSize} gives them back. */
export function formatSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const size = SIZE_UNITS[unit]!;
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/** A whole, positive number in decimal (`procs=64`, `cpu=50`, `--journal-files 4`), else `NaN`. */
export function parseWhole(text: string): number {
  return INTEGER.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : NaN;
}

/** Why `seconds` cannot be a checkpoint's willing-to-wait time (`chkptwpar -w`), or `undefined`. */
export function waitSecondsProblem(seconds: unknown): string | undefined {
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0 || seconds > MAX_WAIT_SECONDS) {
    return `-w must be whole seconds from 0 to ${MAX_WAIT_SECONDS}`;
  }
  return undefined;
}

/** Why `seconds` cannot be a stop's grace time before SIGKILL (`stopwpar -t`), or `undefined`. */
export function stopSecondsProblem(seconds: unknown): string | undefined {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_WAIT_SECONDS) {
    return `-t must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}`;
  }
  return undefined;
}
