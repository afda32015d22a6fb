/**
 * `wpar identity [--json]`: this system's name, the fingerprint of its certificate and its peer
 * endpoint (`GET /v1/identity`), which another system's `wpar peer add` takes (M1).
 * @module
 */
import type { IdentityInfo } from '../../peer/service.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, parseOptions, type Help } from '../args.ts';
import { print, printJson, type Command } from '../command.ts';
import { UsageError } from '../errors.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { HOME_HELP } from './help.ts';

/** What `wpar identity` was asked to do. */
export interface IdentityOptions {
  readonly home: string;
  readonly json: boolean;
}

const OPTIONS = { ...COMMON_OPTIONS, ...JSON_OPTION } as const;

/** Parses `wpar identity`'s arguments. */
export function parseIdentity(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): IdentityOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  return { home: resolveHome(values.home, io.env, io.cwd), json: values.json === true };
}

/** `wpar identity`. */
export const identity: Command<IdentityOptions> = {
  name: 'identity',
  verbs: ['identity'],
  summary: "print this system's name, certificate fingerprint and peer endpoint",
  usage: (p) => `Usage: ${p} [--home Directory] [--json]

Prints this system's name, the SHA-256 fingerprint of its certificate (give it to the other
system's wpar peer add) and the address of its peer endpoint (wpard --listen), or "-".

Flags:
${HOME_HELP}  --json          Prints { name, fingerprint, listen } as JSON.
  -?, --help      Prints this text.
`,
  parse: parseIdentity,
  async run(o, ctx) {
    const info = await ctx.connect(o.home).request<IdentityInfo>('GET', '/v1/identity');
    if (o.json) printJson(ctx.io, info);
    else print(ctx.io, `${info.name} ${info.fingerprint} ${info.listen ?? '-'}`);
    return 0;
  },
};
