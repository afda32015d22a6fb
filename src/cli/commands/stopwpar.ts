/**
 * `stopwpar [-F] [-t SEC] NAME`: SIGTERM to every process of the WPAR, SIGKILL after `-t` seconds (at
 * once with `-F`), then deactivation (`POST /v1/wpars/:name/stop`).
 * @module
 */
import type { StopRequest, WparInfo } from '../../daemon/protocol.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, oneName, parseOptions, parseSeconds, type Help } from '../args.ts';
import { print, printJson, type Command } from '../command.ts';
import { exitLine } from '../format.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { wparPath } from '../paths.ts';
import { HOME_HELP } from './help.ts';

/** What `stopwpar` was asked to do. */
export interface StopwparOptions {
  readonly home: string;
  readonly json: boolean;
  readonly name: string;
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
  const name = oneName(positionals, 'WparName');
  const timeoutSec = values.timeout === undefined ? undefined : parseSeconds(values.timeout, '-t', name);
  return {
    home: resolveHome(values.home, io.env, io.cwd),
    json: values.json === true,
    name,
    request: { ...(values.force && { force: true }), ...(timeoutSec !== undefined && { timeoutSec }) },
  };
}

/** `stopwpar`. */
export const stopwpar: Command<StopwparOptions> = {
  name: 'stopwpar',
  verbs: ['stop', 'stopwpar'],
  summary: 'stop a workload partition',
  usage: (p) => `Usage: ${p} [-F] [-t Seconds] [--home Directory] [--json] WparName

Stops the workload partition WparName: sends SIGTERM to each of its processes, SIGKILL to those
left after the timeout, then deactivates it. Returns once it is defined again.

Flags:
  -F              Forces the stop: SIGKILL at once.
  -t Seconds      Seconds between SIGTERM and SIGKILL (default 10).
${HOME_HELP}  --json          Prints the workload partition as JSON (as lswpar --json).
  -?, --help      Prints this text.
`,
  parse: parseStopwpar,
  async run(o, ctx) {
    const info = await ctx.connect(o.home).request<WparInfo>('POST', wparPath(o.name, 'stop'), { body: o.request, subject: o.name });
    if (o.json) printJson(ctx.io, info);
    else print(ctx.io, `Workload partition ${info.name} stopped${info.lastExit === null ? '' : `: ${exitLine(info.lastExit)}`}.`);
    return 0;
  },
};
