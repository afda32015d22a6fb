/**
 * `restartwpar -d DIR [-n NEWNAME] NAME`: recreates a WPAR from a checkpoint image on this system
 * (`POST /v1/restart`).
 * @module
 */
import { resolve } from 'node:path';
import type { RestartRequest, WparInfo } from '../../daemon/protocol.ts';
import { checkWparName, COMMON_OPTIONS, HELP, JSON_OPTION, oneName, parseOptions, required, type Help } from '../args.ts';
import { print, printJson, type Command } from '../command.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { HOME_HELP } from './help.ts';

/** What `restartwpar` was asked to do. */
export interface RestartwparOptions {
  readonly home: string;
  readonly json: boolean;
  /** The request; `dir` is absolute. */
  readonly request: RestartRequest;
}

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...JSON_OPTION,
  directory: { type: 'string', short: 'd' },
  name: { type: 'string', short: 'n' },
  insecure: { type: 'boolean' },
} as const;

/** Parses `restartwpar`'s arguments; `-d` is made absolute against the working directory. */
export function parseRestartwpar(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): RestartwparOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  const dir = required(values.directory, '-d Directory');
  const name = oneName(positionals, 'WparName');
  const newName = values.name === undefined ? undefined : checkWparName(values.name, 'new WPAR name');
  return {
    home: resolveHome(values.home, io.env, io.cwd),
    json: values.json === true,
    request: { dir: resolve(io.cwd, dir), name, ...(newName !== undefined && { newName }), ...(values.insecure && { insecure: true }) },
  };
}

/** `restartwpar`. */
export const restartwpar: Command<RestartwparOptions> = {
  name: 'restartwpar',
  verbs: ['restart', 'restartwpar'],
  summary: 'restart a workload partition from a checkpoint image',
  usage: (p) => `Usage: ${p} -d Directory [-n NewWparName] [--insecure] [--home Directory] [--json] WparName

Recreates the workload partition WparName from the checkpoint image in Directory and starts it
on this system. The whole image is verified first; nothing is created from a damaged one, nor
from one that this system or a trusted peer (wpar peer) did not sign.

Flags:
  -d Directory    The image directory (written by chkptwpar).
  -n NewWparName  Restarts it under this name instead.
  --insecure      Accepts an unsigned image or one signed by an unknown identity (with a warning).
${HOME_HELP}  --json          Prints the restarted workload partition as JSON (as lswpar --json).
  -?, --help      Prints this text.
`,
  parse: parseRestartwpar,
  async run(o, ctx) {
    const subject = o.request.newName ?? o.request.name;
    if (o.request.insecure) ctx.io.stderr.write(`${ctx.prefix}: warning: --insecure: the image's signer is not checked; its command will run on this system\n`);
    const info = await ctx.connect(o.home).request<WparInfo>('POST', '/v1/restart', { body: o.request, subject });
    if (o.json) printJson(ctx.io, info);
    else print(ctx.io, `Workload partition ${info.name} restarted from ${o.request.dir} (CID ${info.cid ?? '-'}${info.pid === null ? '' : `, PID ${info.pid}`}).`);
    return 0;
  },
};
