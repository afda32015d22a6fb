/**
 * Validating a definition that arrives over the control API: the daemon trusts no client, so every
 * field is checked before anything is stored or created.
 * @module
 */
import { availableParallelism } from 'node:os';
import { WparError } from '../kernel/errno.ts';
import { WPAR_NAME_PATTERN, type Limits, type WparDefinition } from '../runtime/definition.ts';

/** Variables the runtime sets itself; a definition may not override them. */
const RESERVED_ENV = new Set(['WPAR_NAME', 'WPAR_CID', 'WPAR_ROOT', 'WPAR_AGENT', 'WPAR_EPOCH']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks a WPAR name (the kernel's rule); throws EINVAL saying why. */
export function checkName(name: unknown): string {
  if (typeof name !== 'string' || !WPAR_NAME_PATTERN.test(name)) {
    throw new WparError('EINVAL', `invalid WPAR name ${JSON.stringify(String(name))}: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  }
  return name;
}

/** A validated, normalised copy of `value`; throws EINVAL naming the first bad field. */
export function checkDefinition(value: unknown): WparDefinition {
  if (typeof value !== 'object' || value === null) throw new WparError('EINVAL', 'a definition must be an object');
  const v = value as Record<string, unknown>;
  const name = checkName(v.name);
  const bad = (why: string): WparError => new WparError('EINVAL', `${name}: ${why}`);

  const argv = v.argv;
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
    throw bad('the command must be a non-empty list of strings (mkwpar ... -- CMD [ARG...])');
  }
  if (argv[0] === '') throw bad('the command name is empty');
  if (argv.some((a: string) => a.includes('\0'))) throw bad('command arguments cannot contain NUL characters');

  const env: Record<string, string> = {};
  const rawEnv = v.env ?? {};
  if (typeof rawEnv !== 'object' || rawEnv === null || Array.isArray(rawEnv)) throw bad('env must be an object of strings');
  for (const [k, val] of Object.entries(rawEnv)) {
    if (!ENV_NAME.test(k)) throw bad(`bad environment variable name ${JSON.stringify(k)}`);
    if (RESERVED_ENV.has(k)) throw bad(`${k} is set by the runtime and cannot be defined`);
    if (typeof val !== 'string' || val.includes('\0')) throw bad(`environment variable ${k} must be a string without NUL`);
    env[k] = val;
  }

  const hostname = v.hostname ?? null;
  if (hostname !== null) {
    if (typeof hostname !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(hostname)) {
      throw bad(`bad hostname ${JSON.stringify(hostname)}: 1 to 64 letters, digits, '.' or '-'`);
    }
  }

  return {
    name,
    argv: [...argv] as string[],
    env,
    hostname: hostname as string | null,
    checkpointable: flag(v.checkpointable, 'checkpointable', bad),
    limits: checkLimits(v.limits ?? {}, bad),
    autostart: flag(v.autostart, 'autostart', bad),
  };
}

function flag(value: unknown, field: string, bad: (why: string) => WparError): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw bad(`${field} must be true or false`);
  return value;
}

function checkLimits(value: unknown, bad: (why: string) => WparError): Limits {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('limits must be an object');
  const l = value as Record<string, unknown>;
  const out: { memoryBytes?: number; cpuPercent?: number; procs?: number } = {};
  for (const key of Object.keys(l)) {
    if (key !== 'memoryBytes' && key !== 'cpuPercent' && key !== 'procs') throw bad(`unknown limit "${key}" (known: memory, cpu, procs)`);
  }
  const int = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);
  if (l.memoryBytes !== undefined) {
    if (!int(l.memoryBytes) || l.memoryBytes < 1024 * 1024) throw bad('memory limit must be at least 1M');
    out.memoryBytes = l.memoryBytes;
  }
  if (l.cpuPercent !== undefined) {
    const max = 100 * availableParallelism();
    if (!int(l.cpuPercent) || l.cpuPercent < 1 || l.cpuPercent > max) throw bad(`cpu limit must be an integer percentage from 1 to ${max}`);
    out.cpuPercent = l.cpuPercent;
  }
  if (l.procs !== undefined) {
    if (!int(l.procs) || l.procs < 1) throw bad('procs limit must be a positive integer');
    out.procs = l.procs;
  }
  return out;
}
