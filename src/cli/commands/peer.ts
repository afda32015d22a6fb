/**
 * `wpar peer add NAME FINGERPRINT [ADDR:PORT] | ls [--json] | rm NAME`: the systems this one trusts
 * (M2), for moves (with an address) and for images they signed (M8).
 * @module
 */
import type { Peer } from '../../peer/peers.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, parseOptions, type Help } from '../args.ts';
import { print, printJson, type Command } from '../command.ts';
import { UsageError } from '../errors.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { HOME_HELP } from './help.ts';

/** What `wpar peer` was asked to do. */
export type PeerOptions =
  | { readonly home: string; readonly json: boolean; readonly action: 'ls' }
  | { readonly home: string; readonly json: boolean; readonly action: 'add'; readonly name: string; readonly fingerprint: string; readonly address?: string }
  | { readonly home: string; readonly json: boolean; readonly action: 'rm'; readonly name: string };

const OPTIONS = { ...COMMON_OPTIONS, ...JSON_OPTION } as const;

/** Parses `wpar peer`'s arguments (the daemon checks names, fingerprints and addresses). */
export function parsePeer(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): PeerOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  const home = resolveHome(values.home, io.env, io.cwd);
  const json = values.json === true;
  const [action, ...rest] = positionals;
  switch (action) {
    case undefined: case 'ls': case 'list':
      if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
      return { home, json, action: 'ls' };
    case 'add':
      if (rest.length < 2 || rest.length > 3) throw new UsageError('usage: wpar peer add NAME FINGERPRINT [ADDR:PORT]');
      return { home, json, action: 'add', name: rest[0]!, fingerprint: rest[1]!, ...(rest[2] !== undefined && { address: rest[2] }) };
    case 'rm': case 'remove':
      if (rest.length !== 1) throw new UsageError('usage: wpar peer rm NAME');
      return { home, json, action: 'rm', name: rest[0]! };
    default:
      throw new UsageError(`unknown peer action ${JSON.stringify(action)}: add, ls or rm`);
  }
}

/** `wpar peer`. */
export const peer: Command<PeerOptions> = {
  name: 'peer',
  verbs: ['peer'],
  summary: 'trust, list or forget another system',
  usage: (p) => `Usage: ${p} add Name Fingerprint [Address:Port]
       ${p} ls [--json]
       ${p} rm Name

Manages the systems this one trusts. Trust is mutual: a move from A to B needs B in A's list
and A in B's. A peer without an address is trusted for the images it signed only.

  add   Trusts the system Name whose certificate has Fingerprint (as its wpar identity prints it);
        Address:Port is its peer endpoint (wpard --listen), needed to move WPARs to it.
  ls    Lists the trusted peers.
  rm    Forgets the peer Name.

Flags:
${HOME_HELP}  --json          Prints the result as JSON.
  -?, --help      Prints this text.
`,
  parse: parsePeer,
  async run(o, ctx) {
    const client = ctx.connect(o.home);
    if (o.action === 'ls') {
      const peers = await client.request<Peer[]>('GET', '/v1/peers');
      if (o.json) printJson(ctx.io, peers);
      else print(ctx.io, ['Name  Fingerprint  Address', ...peers.map((x) => `${x.name}  ${x.fingerprint}  ${x.address ?? '-'}`)].join('\n'));
    } else if (o.action === 'add') {
      const added = await client.request<Peer>('POST', '/v1/peers', { body: { name: o.name, fingerprint: o.fingerprint, address: o.address ?? null }, subject: o.name });
      if (o.json) printJson(ctx.io, added);
      else print(ctx.io, `Peer ${added.name} trusted (${added.fingerprint}${added.address ? `, ${added.address}` : ''}).`);
    } else {
      await client.request<void>('DELETE', `/v1/peers/${encodeURIComponent(o.name)}`, { subject: o.name });
      print(ctx.io, `Peer ${o.name} removed.`);
    }
    return 0;
  },
};
