/**
 * Command-line parsing shared by every command: `node:util` `parseArgs` in strict mode, the options
 * every command takes, where a WPAR's command argv begins, and the checks that make bad input fail
 * before the daemon is asked anything.
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { WPAR_NAME_PATTERN } from '../runtime/definition.ts';
import { UsageError } from './errors.ts';

/** What a command's parser returns for `--help` / `-?`. */
export const HELP: unique symbol = Symbol('help');
/** The type of {@link HELP}. */
export type Help = typeof HELP;

/** Options every command takes: `--home DIR` and `--help` (`-?`). */
export const COMMON_OPTIONS = {
  home: { type: 'string' },
  help: { type: 'boolean', short: '?' },
} as const satisfies ParseArgsOptionsConfig;

/** `--json`, for commands that print data. */
export const JSON_OPTION = { json: { type: 'boolean' } } as const satisfies ParseArgsOptionsConfig;

/** What {@link parseOptions} returns for options `O`. */
export type Parsed<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: true }>>;

/**
 * `parseArgs` in strict mode with positionals allowed; its errors become one-line {@link UsageError}s.
 */
export function parseOptions<O extends ParseArgsOptionsConfig>(args: readonly string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
  } catch (err) {
    const message = (err as Error).message;
    throw new UsageError(tidy(message));
  }
}

/** parseArgs's message on one line, in the commands' style (lower case, no final period). */
function tidy(message: string): string {
  const first = message.split('\n')[0]!.replace(/\.$/, '');
  const rest = /To specify an option argument starting with a dash use (.*)\.$/m.exec(message);
  const line = rest ? `${first}; for a value starting with a dash use ${rest[1]}` : first.replace(/\. To specify a positional.*$/, '');
  return line.charAt(0).toLowerCase() + line.slice(1);
}

/**
 * Splits `argv` where the WPAR's command begins: after `--`, or at the first argument that is not an
 * option or an option's value. Everything from there on is the command, passed on literally (an
 * option after it belongs to the command). Returns the options part and the command (`undefined`
 * when there is none, `[]` for a bare `--`).
 */
export function splitAtCommand(argv: readonly string[], options: ParseArgsOptionsConfig): { options: string[]; command: string[] | undefined } {
  const takesValue = (o: ParseArgsOptionsConfig[string] | undefined): boolean => o?.type === 'string';
  const byShort = new Map(Object.values(options).filter((o) => o.short !== undefined).map((o) => [o.short!, o]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return { options: argv.slice(0, i), command: argv.slice(i + 1) };
    if (arg.startsWith('--')) {
      if (!arg.includes('=') && takesValue(options[arg.slice(2)])) i++;
    } else if (arg.startsWith('-') && arg.length > 1) {
      // A group of short flags; a flag that takes a value ends the group (`-nNAME`) or takes the next argument.
      for (let j = 1; j < arg.length; j++) {
        if (takesValue(byShort.get(arg[j]!))) {
          if (j === arg.length - 1) i++;
          break;
        }
      }
    } else {
      return { options: argv.slice(0, i), command: argv.slice(i) };
    }
  }
  return { options: [...argv], command: undefined };
}

/** Checks a WPAR name against the kernel's rule; `what` names the argument in the error. */
export function checkWparName(name: string, what = 'WPAR name'): string {
  if (!WPAR_NAME_PATTERN.test(name)) {
    const length = name.length > 64 ? ` (${name.length} characters)` : '';
    throw new UsageError(
      `bad ${what} ${JSON.stringify(name)}${length}: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit`,
      { code: 'EINVAL' },
    );
  }
  return name;
}

/** Variables the runtime sets itself; a definition may not override them. */
export const RESERVED_ENV: ReadonlySet<string> = new Set(['WPAR_NAME', 'WPAR_CID', 'WPAR_ROOT', 'WPAR_AGENT', 'WPAR_EPOCH']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `-e NAME=VALUE` items as an environment; a later item for the same name wins. */
export function parseEnv(items: readonly string[], subject: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq < 0) throw new UsageError(`bad environment variable ${JSON.stringify(item)}: expected -e NAME=VALUE`, { code: 'EINVAL', subject });
    const key = item.slice(0, eq);
    if (!ENV_NAME.test(key)) {
      throw new UsageError(`bad environment variable name ${JSON.stringify(key)}: letters, digits and '_', not starting with a digit`, { code: 'EINVAL', subject });
    }
    if (RESERVED_ENV.has(key)) throw new UsageError(`${key} is set by the runtime and cannot be defined`, { code: 'EINVAL', subject });
    env[key] = item.slice(eq + 1);
  }
  return env;
}

const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;

/** Checks a `-h` hostname (the daemon's rule): 1 to 63 letters, digits, '.' or '-', starting with a letter or digit. */
export function checkHostname(host: string, subject: string): string {
  if (!HOSTNAME.test(host)) {
    throw new UsageError(`bad hostname ${JSON.stringify(host)}: 1 to 63 letters, digits, '.' or '-', starting with a letter or digit`, { code: 'EINVAL', subject });
  }
  return host;
}

/** A non-negative number of seconds given to `flag` (`-t 10`, `-w 2.5`). */
export function parseSeconds(value: string, flag: string, subject?: string): number {
  const n = /^[0-9]+(\.[0-9]+)?$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n)) {
    throw new UsageError(`bad ${flag} value ${JSON.stringify(value)}: expected a number of seconds`, { code: 'EINVAL', ...(subject !== undefined && { subject }) });
  }
  return n;
}

/** A non-negative integer given to `flag` (`-n 100`). */
export function parseCount(value: string, flag: string): number {
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`bad ${flag} value ${JSON.stringify(value)}: expected a whole number`, { code: 'EINVAL' });
  }
  return Number(value);
}

/** The single WPAR name a command takes as its operand. */
export function oneName(positionals: readonly string[], usage = 'NAME'): string {
  if (positionals.length === 0) throw new UsageError(`missing the WPAR name (${usage})`);
  if (positionals.length > 1) throw new UsageError(`too many arguments: ${positionals.slice(1).map((p) => JSON.stringify(p)).join(' ')}`);
  return checkWparName(positionals[0]!);
}

/** A required string option, or a usage error naming it. */
export function required(value: string | undefined, flag: string): string {
  if (value === undefined) throw new UsageError(`missing ${flag}`);
  return value;
}
