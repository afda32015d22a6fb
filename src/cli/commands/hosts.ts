/**
 * `wpar hosts [--json]`: the hosts of the cluster this system belongs to (C2, `GET /v1/hosts`):
 * name, peer address, state (`up`, `draining`, `lost`), WPARs defined there and seconds left on
 * its lease.
 * @module
 */
import type { HostInfo } from '../../cluster/membership.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, parseOptions, type Help } from '../args.ts';
import { printJson, type Command } from '../command.ts';
import { UsageError } from '../errors.ts';
import { formatTable } from '../format.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { HOME_HELP } from './help.ts';

/** What `wpar hosts` was asked to do. */
export interface HostsOptions {
  readonly home: string;
  readonly json: boolean;
}

const OPTIONS = { ...COMMON_OPTIONS, ...JSON_OPTION } as const;

/** Parses `wpar hosts`'s arguments. */
export function parseHosts(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): HostsOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  return { home: resolveHome(values.home, io.env, io.cwd), json: values.json === true };
}

/** `wpar hosts`. */
export const hosts: Command<HostsOptions> = {
  name: 'hosts',
  verbs: ['hosts'],
  summary: 'list the hosts of the cluster',
  usage: (p) => `Usage: ${p} [--home Directory] [--json]

Lists the hosts of the cluster this system has joined (wpard --cluster): name, peer address,
state (up, draining, or lost: its lease expired), the workload partitions defined there, the
seconds left on its lease, and the CPUs and memory it publishes (live hosts only).

Flags:
${HOME_HELP}  --json          Prints [{ name, address, state, wpars, ttl, fingerprint, capacity }] as JSON.
  -?, --help      Prints this text.
`,
  parse: parseHosts,
  async run(o, ctx) {
    const list = await ctx.connect(o.home).request<HostInfo[]>('GET', '/v1/hosts');
    if (o.json) printJson(ctx.io, list);
    else {
      ctx.io.stdout.write(formatTable(['Name', 'Address', 'State', 'WPARs', 'TTL', 'CPUs', 'Memory'], list.map((h) => [
        h.name, h.address, h.state, String(h.wpars), h.state === 'lost' ? '-' : `${h.ttl} s`,
        h.capacity ? String(h.capacity.cpus) : '-', h.capacity ? `${(h.capacity.memoryBytes / 2 ** 30).toFixed(1)} GiB` : '-',
      ])));
    }
    return 0;
  },
};
