/**
 * `lswpar [-L] [--json] [NAME...]`: lists WPARs (`GET /v1/wpars`): a table, the long form (`-L`), or
 * one JSON array of the API's `WparInfo` objects (`--json`).
 * @module
 */
import type { WparInfo } from '../../daemon/protocol.ts';
import { checkWparName, COMMON_OPTIONS, HELP, JSON_OPTION, parseOptions, type Help } from '../args.ts';
import { printJson, type Command } from '../command.ts';
import { lswparLong, lswparTable } from '../format.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { HOME_HELP } from './help.ts';

/** What `lswpar` was asked to do. */
export interface LswparOptions {
  readonly home: string;
  /** `table`, `long` (`-L`) or `json`. */
  readonly format: 'table' | 'long' | 'json';
  /** Only these WPARs (all when empty). */
  readonly names: readonly string[];
}

const OPTIONS = { ...COMMON_OPTIONS, ...JSON_OPTION, long: { type: 'boolean', short: 'L' } } as const;

/** Parses `lswpar`'s arguments. */
export function parseLswpar(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): LswparOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  return {
    home: resolveHome(values.home, io.env, io.cwd),
    format: values.json ? 'json' : values.long ? 'long' : 'table',
    names: positionals.map((n) => checkWparName(n)),
  };
}

/** The API path for `names` (all WPARs when empty). */
export function listPath(names: readonly string[]): string {
  const q = new URLSearchParams(names.map((n): [string, string] => ['name', n])).toString();
  return q === '' ? '/v1/wpars' : `/v1/wpars?${q}`;
}

/** `lswpar`. */
export const lswpar: Command<LswparOptions> = {
  name: 'lswpar',
  verbs: ['ls', 'lswpar'],
  summary: 'list workload partitions',
  usage: (p) => `Usage: ${p} [-L] [--json] [--home Directory] [WparName...]

Lists workload partitions: name, state (D defined, T transitional, A active, F frozen,
B broken), CID, checkpoint phase, number of checkpoint denials and command.

Flags:
  -L              Long form: every detail of each workload partition, with every denial
                  (owner, reason, since when).
  --json          Prints one JSON array with an object per workload partition.
${HOME_HELP}  -?, --help      Prints this text.
`,
  parse: parseLswpar,
  async run(o, ctx) {
    const subject = o.names.length === 1 ? o.names[0] : undefined;
    const wpars = await ctx.connect(o.home).request<WparInfo[]>('GET', listPath(o.names), subject === undefined ? {} : { subject });
    if (o.format === 'json') printJson(ctx.io, wpars);
    else ctx.io.stdout.write(o.format === 'long' ? lswparLong(wpars) : lswparTable(wpars));
    return 0;
  },
};
