/**
 * `rmwpar [-F] NAME`: removes a WPAR's definition and root (`DELETE /v1/wpars/:name`); an active
 * WPAR needs `-F`, which stops it first.
 * @module
 */
import { COMMON_OPTIONS, HELP, oneName, parseOptions, type Help } from '../args.ts';
import { print, type Command } from '../command.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { wparPath } from '../paths.ts';
import { HOME_HELP } from './help.ts';

/** What `rmwpar` was asked to do. */
export interface RmwparOptions {
  readonly home: string;
  readonly name: string;
  readonly force: boolean;
}

const OPTIONS = { ...COMMON_OPTIONS, force: { type: 'boolean', short: 'F' } } as const;

/** Parses `rmwpar`'s arguments. */
export function parseRmwpar(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): RmwparOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  return { home: resolveHome(values.home, io.env, io.cwd), name: oneName(positionals, 'WparName'), force: values.force === true };
}

/** `rmwpar`. */
export const rmwpar: Command<RmwparOptions> = {
  name: 'rmwpar',
  verbs: ['rm', 'rmwpar'],
  summary: 'remove a workload partition',
  usage: (p) => `Usage: ${p} [-F] [--home Directory] WparName

Removes the workload partition WparName: its definition and its root directory.

Flags:
  -F              Forces the removal of an active workload partition (stops it first).
${HOME_HELP}  -?, --help      Prints this text.
`,
  parse: parseRmwpar,
  async run(o, ctx) {
    await ctx.connect(o.home).request<void>('DELETE', wparPath(o.name, undefined, o.force ? { force: '1' } : undefined), { subject: o.name });
    print(ctx.io, `Workload partition ${o.name} removed.`);
    return 0;
  },
};
