/**
 * `wparexec [-n NAME] [-c] [-h HOST] [-e K=V]... [-R LIMITS] -- CMD [ARG...]`: runs CMD in a
 * transient WPAR in the foreground: defines it (`POST /v1/wpars`, `transient`), subscribes to its next
 * run's console (`GET .../logs?follow=1&next=1`) before starting it (`POST .../start`), so no output
 * is missed however quick CMD is, copies that to stdout, waits (`GET .../wait`) and exits with
 * CMD's status (128 + the signal's number when a signal killed it). SIGINT/SIGTERM stop the WPAR
 * (a second one forces the stop); the daemon removes it when it ends.
 * @module
 */
import { constants } from 'node:os';
import type { CreateRequest, ExitInfo, WparInfo } from '../../daemon/protocol.ts';
import { HELP, parseOptions, splitAtCommand, type Help } from '../args.ts';
import type { Command } from '../command.ts';
import { buildDefinition, defineFlagsHelp, DEFINE_OPTIONS } from '../define.ts';
import { CliError, EXIT_FAILURE, formatErrorLine, UsageError } from '../errors.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { wparPath } from '../paths.ts';
import { HOME_HELP } from './help.ts';

/** What `wparexec` was asked to do. */
export interface WparexecOptions {
  readonly home: string;
  /** The request sent to the daemon (`transient` set; it is started once its log is followed). */
  readonly request: CreateRequest;
}

/** How long the console log may keep coming after the WPAR ended before wparexec stops reading it. */
export const LOG_DRAIN_MS = 2000;

/** Parses `wparexec`'s arguments; without `-n` the WPAR is named after the command's basename. */
export function parseWparexec(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): WparexecOptions | Help {
  const split = splitAtCommand(argv, DEFINE_OPTIONS);
  const { values, positionals } = parseOptions(split.options, DEFINE_OPTIONS);
  if (values.help) return HELP;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const definition = buildDefinition(values, split.command, { usageName: 'wparexec', defaultName: true });
  return { home: resolveHome(values.home, io.env, io.cwd), request: { definition, transient: true } };
}

/**
 * The exit status for how CMD ended: its exit code; 128 + the signal's number when a signal killed
 * it (SIGKILL → 137, SIGTERM → 143); 1 when neither is known (e.g. the daemon lost it).
 */
export function exitStatusFor(exit: Pick<ExitInfo, 'code' | 'signal'>): number {
  if (exit.code !== null) return exit.code & 0xff;
  if (exit.signal !== null) {
    const n = (constants.signals as Readonly<Record<string, number>>)[exit.signal];
    if (n !== undefined) return 128 + n;
  }
  return EXIT_FAILURE;
}

/** `wparexec`. */
export const wparexec: Command<WparexecOptions> = {
  name: 'wparexec',
  verbs: ['exec', 'wparexec'],
  summary: 'run a command in a transient workload partition',
  usage: (p) => `Usage: ${p} [-n WparName] [-c] [-h Hostname] [-e Name=Value]... [-R Attribute=Value[,...]]
       ${' '.repeat(p.length)} [-N Network] [--home Directory] -- Command [Argument...]

Runs Command in a new transient workload partition in the foreground: its output is copied to
standard output, and ${p} exits with Command's exit status (128 + the signal's number if a
signal killed it). The workload partition is removed when Command ends. An interrupt (Ctrl-C)
or SIGTERM stops it; a second one forces the stop. The command is executed directly, never
through a shell.

Flags:
${defineFlagsHelp(true)}${HOME_HELP}  -?, --help      Prints this text.
`,
  parse: parseWparexec,
  async run(o, ctx) {
    const client = ctx.connect(o.home);
    const name = o.request.definition.name;
    let created = false;
    let interruptions = 0;
    let gaveUp = false;
    let stopError: unknown;
    let waiting: AbortController | undefined;
    const stop = (force: boolean): void => {
      client.request<WparInfo>('POST', wparPath(name, 'stop'), { body: force ? { force: true } : {}, subject: name })
        .catch((err: unknown) => {
          // Already gone: it ended meanwhile, so ask again how (a wait in flight may have missed it).
          if (err instanceof CliError && err.code === 'ENOENT') waiting?.abort();
          else stopError ??= err;
        });
    };
    const off = ctx.io.onInterrupt(() => {
      interruptions++;
      if (interruptions >= 3) {
        gaveUp = true;
        waiting?.abort();
      } else if (created) {
        stop(interruptions > 1);
      }
    });
    const logsAbort = new AbortController();
    try {
      await client.request<WparInfo | null>('POST', '/v1/wpars', { body: o.request, subject: name });
      // Subscribed (the daemon sends the follow's headers at once) before the start: nothing is missed.
      const log = await client.open('GET', wparPath(name, 'logs', { follow: '1', next: '1' }), { subject: name, signal: logsAbort.signal });
      const logsEnded = client.pipe(log, ctx.io.stdout, logsAbort.signal).catch(() => {}); // a log that breaks off never hides CMD's status
      await client.request<WparInfo>('POST', wparPath(name, 'start'), { subject: name }); // a failed start removes the transient WPAR
      created = true;
      if (interruptions > 0) stop(interruptions > 1);
      let exit: ExitInfo | undefined;
      while (exit === undefined && !gaveUp) {
        waiting = new AbortController();
        exit = await abortable(client.request<ExitInfo>('GET', wparPath(name, 'wait'), { subject: name, signal: waiting.signal }), waiting.signal);
      }
      if (exit === undefined) {
        // Interrupted three times: give up waiting, saying why the stop did not happen if it failed.
        if (stopError !== undefined) throw stopError;
        return 128 + constants.signals.SIGINT;
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([logsEnded, new Promise<void>((resolve) => { timer = setTimeout(resolve, LOG_DRAIN_MS); })]);
      clearTimeout(timer);
      // A program that exits is its own business; one killed (by a signal nobody here sent, or the
      // memory limit) is told on stderr, after its output, since its status alone says only 128+N.
      if (/^(killed by|lost:)/.test(exit.reason)) ctx.io.stderr.write(formatErrorLine(ctx.prefix, exit.reason, { subject: name }) + '\n');
      return exitStatusFor(exit);
    } finally {
      logsAbort.abort();
      off();
    }
  },
};

/** `promise`'s value, or undefined once `signal` aborts. */
async function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  try {
    return await promise;
  } catch (err) {
    if (signal.aborted) return undefined;
    throw err;
  }
}
