/**
 * `startwpar NAME`: activates a defined WPAR and starts its processes (`POST /v1/wpars/:name/start`).
 * @module
 */
import type { WparInfo } from '../../daemon/protocol.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, oneName, parseOptions, type Help } from '../args.ts';
import { print, printJson, type Command } from '../command.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { wparPath } from '../paths.ts';
import { HOME_HELP } from './help.ts';

/** What `startwpar` was asked to do. */
export interface StartwparOptions {
  readonly home: string;
  readonly json: boolean;
  readonly name: string;
}

const OPTIONS = { ...COMMON_OPTIONS, ...JSON_OPTION } as const;

/** Parses `startwpar`'s arguments. */
export function parseStartwpar(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): StartwparOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  return { home: resolveHome(values.home, io.env, io.cwd), json: values.json === true, name: oneName(positionals, 'WparName') };
}

/** `startwpar`. */
export const startwpar: Command<StartwparOptions> = {
  name: 'startwpar',
  verbs: ['start', 'startwpar'],
  summary: 'start a workload partition',
  usage: (p) => `Usage: ${p} [--home Directory] [--json] WparName

Activates the workload partition WparName and starts its command. Returns once its processes run.

Flags:
${HOME_HELP}  --json          Prints the workload partition as JSON (as lswpar --json).
  -?, --help      Prints this text.
`,
  parse: parseStartwpar,
  async run(o, ctx) {
    const info = await ctx.connect(o.home).request<WparInfo>('POST', wparPath(o.name, 'start'), { subject: o.name });
    if (o.json) printJson(ctx.io, info);
    else print(ctx.io, `Workload partition ${info.name} started (CID ${info.cid ?? '-'}${info.pid === null ? '' : `, PID ${info.pid}`}).`);
    return 0;
  },
};
