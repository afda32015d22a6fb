/**
 * `wpar drain HOST [--json]` and `wpar undrain HOST` (C7): a host stops taking new WPARs and hands
 * each of its active checkpointable WPARs to another host by a live move; those it cannot move are
 * listed and left running. `undrain` takes new WPARs again.
 * @module
 */
import type { DrainResult } from '../../cluster/service.ts';
import { checkWparName, COMMON_OPTIONS, HELP, JSON_OPTION, parseOptions, type Help } from '../args.ts';
import { UsageError } from '../errors.ts';
import { print, printJson, type Command } from '../command.ts';
import { formatDuration } from '../format.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { HOME_HELP } from './help.ts';

/** What `wpar drain` / `wpar undrain` was asked to do. */
export interface DrainOptions {
  readonly home: string;
  readonly json: boolean;
  readonly host: string;
}

const OPTIONS = { ...COMMON_OPTIONS, ...JSON_OPTION } as const;

function oneHost(positionals: readonly string[]): string {
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing the host name (HOST)' : `too many arguments: ${positionals.slice(1).map((p) => JSON.stringify(p)).join(' ')}`);
  return positionals[0]!;
}

function parse(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): DrainOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  return { home: resolveHome(values.home, io.env, io.cwd), json: values.json === true, host: checkWparName(oneHost(positionals), 'host name') };
}

/** `wpar drain`. */
export const drain: Command<DrainOptions> = {
  name: 'drain',
  verbs: ['drain'],
  summary: 'move every WPAR off a host and place nothing new there',
  usage: (p) => `Usage: ${p} [--home Directory] [--json] HostName

In a cluster: nothing new is placed on HostName from now on, and each of its active,
checkpointable workload partitions is moved live to the least-loaded other host (its
ownership epoch rises). Those that cannot move are listed with the reason and left running.

Flags:
${HOME_HELP}  --json          Prints { host, state, moved, notMoved } as JSON: moved holds
                  { name, to, epoch, downtimeMs }, notMoved { name, reason }.
  -?, --help      Prints this text.
`,
  parse,
  async run(o, ctx) {
    const r = await ctx.connect(o.home).request<DrainResult>('POST', `/v1/hosts/${o.host}/drain`, { subject: o.host });
    if (o.json) { printJson(ctx.io, r); return 0; }
    print(ctx.io, `Host ${r.host} is draining: nothing new is placed there.`);
    for (const m of r.moved) print(ctx.io, `  moved ${m.name} to ${m.to} (epoch ${m.epoch}, down ${formatDuration(m.downtimeMs)})`);
    for (const m of r.notMoved) print(ctx.io, `  not moved: ${m.name}: ${m.reason}`);
    return 0;
  },
};

/** `wpar undrain`. */
export const undrain: Command<DrainOptions> = {
  name: 'undrain',
  verbs: ['undrain'],
  summary: 'let a drained host take new WPARs again',
  usage: (p) => `Usage: ${p} [--home Directory] [--json] HostName

In a cluster: HostName is up again, and new workload partitions may be placed there.

Flags:
${HOME_HELP}  --json          Prints { host, state }.
  -?, --help      Prints this text.
`,
  parse,
  async run(o, ctx) {
    const r = await ctx.connect(o.home).request<{ host: string; state: string }>('POST', `/v1/hosts/${o.host}/undrain`, { subject: o.host });
    if (o.json) printJson(ctx.io, r);
    else print(ctx.io, `Host ${r.host} is up: new workload partitions may be placed there.`);
    return 0;
  },
};
