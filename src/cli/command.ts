/**
 * The shape of a command and how one runs: parse (usage errors exit 2), `--help`, run, and every
 * failure reduced to one line on stderr.
 * @module
 */
import { HELP, type Help } from './args.ts';
import { DaemonClient } from './client.ts';
import { CliError, errorLine, exitStatusOf } from './errors.ts';
import type { Io } from './io.ts';

/** What a command runs with. */
export interface Context {
  /** The command's process. */
  readonly io: Io;
  /** How the command was invoked (`startwpar`, `wpar start`): the error lines' prefix. */
  readonly prefix: string;
  /** A client of the daemon whose home is `home`. */
  connect(home: string): DaemonClient;
}

/** A command: `mkwpar`, `startwpar`, ... and the `wpar` verbs. */
export interface Command<T> {
  /** Its own executable's name (`mkwpar`); `wpar logs` and `wpar events` have only a verb. */
  readonly name: string;
  /** The `wpar` verbs it answers to (`mk`, `mkwpar`). */
  readonly verbs: readonly string[];
  /** One line: what it does. */
  readonly summary: string;
  /** Its usage text, man-page style, for `prefix` (`mkwpar` or `wpar mk`). */
  usage(prefix: string): string;
  /** Parses its arguments (without the command name); {@link HELP} for `--help`. Throws UsageError. */
  parse(argv: readonly string[], io: Io): T | Help;
  /** Runs it; resolves to the exit status. Throws CliError for an expected failure. */
  run(options: T, ctx: Context): Promise<number>;
}

/** Writes `text` to stdout. */
export function print(io: Io, text: string): void {
  io.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/**
 * Runs `act` for every name at once (one command, one connection each, no further start-up), then
 * reports in the order given: `done(result)` for each success (or, with `json`, the result — an
 * array for more than one name) and one error line for each failure. Resolves to 0 if all
 * succeeded, else the exit status of the first failure.
 */
export async function forEachName<T>(ctx: Context, names: readonly string[], json: boolean, act: (name: string) => Promise<T>, done: (result: T) => void): Promise<number> {
  const outcomes = await Promise.allSettled(names.map(act));
  const results: T[] = [];
  let status = 0;
  for (const o of outcomes) {
    if (o.status === 'fulfilled') {
      results.push(o.value);
      if (!json) done(o.value);
    } else {
      ctx.io.stderr.write(errorLine(ctx.prefix, o.reason) + '\n');
      if (status === 0) status = exitStatusOf(o.reason);
    }
  }
  if (json && (results.length > 0 || names.length > 1)) printJson(ctx.io, names.length === 1 ? results[0] : results);
  return status;
}

/** Writes `value` to stdout as JSON. */
export function printJson(io: Io, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/**
 * Runs `command` with `argv` and returns its exit status: 0 on success, 2 for a usage error, 1 (or
 * what the command says) for a failure, which prints exactly one line on stderr and no stack trace
 * (a stack is added for an unexpected error only when `WPAR_DEBUG` is set).
 */
export async function runCommand(command: Command<unknown>, argv: readonly string[], io: Io, prefix: string = command.name, connect: (home: string) => DaemonClient = (home) => new DaemonClient(home)): Promise<number> {
  try {
    const options = command.parse(argv, io);
    if (options === HELP) {
      io.stdout.write(command.usage(prefix));
      return 0;
    }
    return await command.run(options, { io, prefix, connect });
  } catch (err) {
    io.stderr.write(errorLine(prefix, err) + '\n');
    if (io.env['WPAR_DEBUG'] && !(err instanceof CliError)) {
      io.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    }
    return exitStatusOf(err);
  }
}
