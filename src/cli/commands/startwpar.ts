/**
 * `startwpar NAME...`: activates defined WPARs and starts their processes (`POST /v1/wpars/:name/start`
 * each, all from one process: one command's start-up for any number of WPARs).
 * @module
 */
import type { WparInfo } from '../../daemon/protocol.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, parseOptions, someNames, type Help } from '../args.ts';
import { forEachName, print, type Command } from '../command.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { wparPath } from '../paths.ts';
import { HOME_HELP } from './help.ts';

/** What `startwpar` was asked to do. */
export interface StartwparOptions {
  readonly home: string;
  readonly json: boolean;
  /** The WPARs to start, in the order given. */
  readonly names: readonly string[];
}

const OPTIONS = { ...COMMON_OPTIONS, ...JSON_OPTION } as const;

/** Parses `startwpar`'s arguments. */
export function parseStartwpar(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): StartwparOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  return { home: resolveHome(values.home, io.env, io.cwd), json: values.json === true, names: someNames(positionals, 'WparName') };
}

/** `startwpar`. */
export const startwpar: Command<StartwparOptions> = {
  name: 'startwpar',
  verbs: ['start', 'startwpar'],
  summary: 'start workload partitions',
  usage: (p) => `Usage: ${p} [--home Directory] [--json] WparName...

Activates each workload partition WparName and starts its command, all at once. Returns once
their processes run; one that cannot start is reported on its own line and the others start.

Flags:
${HOME_HELP}  --json          Prints the workload partition as JSON (as lswpar --json); an array for
                  more than one.
  -?, --help      Prints this text.
`,
  parse: parseStartwpar,
  async run(o, ctx) {
    const client = ctx.connect(o.home);
    return forEachName(ctx, o.names, o.json, (name) => client.request<WparInfo>('POST', wparPath(name, 'start'), { subject: name }),
      (info) => print(ctx.io, `Workload partition ${info.name} started (CID ${info.cid ?? '-'}${info.pid === null ? '' : `, PID ${info.pid}`}).`));
  },
};
