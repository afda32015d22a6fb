/**
 * `mkwpar -n NAME [-c] [-h HOST] [-e K=V]... [-R LIMITS] [-A] [-s] [--host NAME] -- CMD [ARG...]`: defines a WPAR
 * (`POST /v1/wpars`), and with `-s` starts it.
 * @module
 */
import type { CreateRequest, WparInfo } from '../../daemon/protocol.ts';
import { checkWparName, HELP, JSON_OPTION, parseOptions, splitAtCommand, type Help } from '../args.ts';
import { print, printJson, type Command } from '../command.ts';
import { buildDefinition, defineFlagsHelp, DEFINE_OPTIONS } from '../define.ts';
import { UsageError } from '../errors.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { HOME_HELP } from './help.ts';

/** What `mkwpar` was asked to do. */
export interface MkwparOptions {
  readonly home: string;
  readonly json: boolean;
  /** The request sent to the daemon. */
  readonly request: CreateRequest;
}

const OPTIONS = {
  ...DEFINE_OPTIONS,
  ...JSON_OPTION,
  autostart: { type: 'boolean', short: 'A' },
  start: { type: 'boolean', short: 's' },
  keep: { type: 'boolean' },
  host: { type: 'string' },
} as const;

/** Parses `mkwpar`'s arguments. */
export function parseMkwpar(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): MkwparOptions | Help {
  const split = splitAtCommand(argv, OPTIONS);
  const { values, positionals } = parseOptions(split.options, OPTIONS);
  if (values.help) return HELP;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const definition = buildDefinition(values, split.command, { usageName: 'mkwpar', autostart: values.autostart === true });
  if (values.keep && !values.start) throw new UsageError('--keep goes with -s (it keeps a WPAR whose start fails)');
  return {
    home: resolveHome(values.home, io.env, io.cwd),
    json: values.json === true,
    request: { definition, ...(values.start && { start: true }), ...(values.keep && { keep: true }), ...(values.host !== undefined && { host: checkWparName(values.host, 'host name') }) },
  };
}

/** `mkwpar`. */
export const mkwpar: Command<MkwparOptions> = {
  name: 'mkwpar',
  verbs: ['mk', 'mkwpar'],
  summary: 'define a workload partition',
  usage: (p) => `Usage: ${p} -n WparName [-c] [-h Hostname] [-e Name=Value]... [-R Attribute=Value[,...]]
       ${' '.repeat(p.length)} [-N Network] [-A] [-s [--keep]] [--host HostName] [--home Directory] [--json]
       ${' '.repeat(p.length)} -- Command [Argument...]

Defines a workload partition that runs Command with its Arguments. The command is executed
directly, never through a shell: its arguments are passed exactly as given. Everything after
"--" (or from the first argument that is not a flag) is the command.

Flags:
${defineFlagsHelp()}  -A              Starts it whenever the daemon starts.
  -s              Starts it now. If it cannot start (a command that is not installed), it is
                  not defined either.
  --keep          With -s: keeps it defined even if it cannot start (state B, with the
                  reason in lswpar -L).
  --host HostName In a cluster: defines it on that host (default: the least-loaded up host).
${HOME_HELP}  --json          Prints the new workload partition as JSON (as lswpar --json).
  -?, --help      Prints this text.
`,
  parse: parseMkwpar,
  async run(o, ctx) {
    const info = await ctx.connect(o.home).request<WparInfo>('POST', '/v1/wpars', { body: o.request, subject: o.request.definition.name });
    if (o.json) printJson(ctx.io, info);
    else if (info.cid !== null) print(ctx.io, `Workload partition ${info.name} created and started${on(info)} (CID ${info.cid}${info.pid === null ? '' : `, PID ${info.pid}`}).`);
    else print(ctx.io, `Workload partition ${info.name} created${on(info)}.`);
    return 0;
  },
};

/** ` on HOST` in a cluster. */
function on(info: WparInfo): string {
  return info.host === undefined ? '' : ` on ${info.host}`;
}
