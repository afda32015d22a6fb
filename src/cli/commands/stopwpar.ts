/**
 * `stopwpar [-F] [-t SEC] NAME...`: SIGTERM to every process of each WPAR, SIGKILL after `-t` seconds
 * (at once with `-F`), then deactivation (`POST /v1/wpars/:name/stop` each, all at once).
 * @module
 */
import type { StopRequest, WparInfo } from '../../daemon/protocol.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, parseOptions, parseSeconds, someNames, type Help } from '../args.ts';
import { forEachName, print, type Command } from '../command.ts';
import { exitLine } from '../format.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { wparPath } from '../paths.ts';
import { HOME_HELP } from './help.ts';

/** What `stopwpar` was asked to do. */
export interface StopwparOptions {
  readonly home: string;
  readonly json: boolean;
  /** The WPARs to stop, in the order given. */
  readonly names: readonly string[];
  readonly request: StopRequest;
}

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...JSON_OPTION,
  force: { type: 'boolean', short: 'F' },
  timeout: { type: 'string', short: 't' },
} as const;

/** Parses `stopwpar`'s arguments. */
export function parseStopwpar(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): StopwparOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  const names = someNames(positionals, 'WparName');
  const timeoutSec = values.timeout === undefined ? undefined : parseSeconds(values.timeout, '-t', names.length === 1 ? names[0] : undefined);
  return {
    home: resolveHome(values.home, io.env, io.cwd),
    json: values.json === true,
    names,
    request: { ...(values.force && { force: true }), ...(timeoutSec !== undefined && { timeoutSec }) },
  };
}

/** `stopwpar`. */
export const stopwpar: Command<StopwparOptions> = {
  name: 'stopwpar',
  verbs: ['stop', 'stopwpar'],
  summary: 'stop workload partitions',
  usage: (p) => `Usage: ${p} [-F] [-t Seconds] [--home Directory] [--json] WparName...

Stops each workload partition WparName, all at once: sends SIGTERM to each of its processes,
SIGKILL to those left after the timeout, then deactivates it. Returns once they are defined
again; one that cannot be stopped is reported on its own line.

Flags:
  -F              Forces the stop: SIGKILL at once.
  -t Seconds      Seconds between SIGTERM and SIGKILL (default 10).
${HOME_HELP}  --json          Prints the workload partition as JSON (as lswpar --json); an array for
                  more than one.
  -?, --help      Prints this text.
`,
  parse: parseStopwpar,
  async run(o, ctx) {
    const client = ctx.connect(o.home);
    return forEachName(ctx, o.names, o.json, (name) => client.request<WparInfo>('POST', wparPath(name, 'stop'), { body: o.request, subject: name }),
      (info) => print(ctx.io, `Workload partition ${info.name} stopped${info.lastExit === null ? '' : `: ${exitLine(info.lastExit)}`}.`));
  },
};
