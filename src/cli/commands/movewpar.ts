/**
 * `movewpar [-w SEC] [--force] [--json] NAME PEER` (also `wpar move`): moves an active, checkpointable WPAR to
 * a trusted peer while it runs (M3; `POST /v1/wpars/:name/move`, streaming progress, then the result).
 * @module
 */
import { createInterface } from 'node:readline';
import type { WriteStream } from 'node:tty';
import type { MoveProgress, MoveRequest, MoveResult } from '../../peer/move.ts';
import { apiError } from '../client.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, parseOptions, parseSeconds, checkWparName, type Help } from '../args.ts';
import { print, printJson, type Command } from '../command.ts';
import { CliError, UsageError } from '../errors.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { wparPath } from '../paths.ts';
import { HOME_HELP } from './help.ts';

/** What `movewpar` was asked to do. */
export interface MovewparOptions {
  readonly home: string;
  readonly json: boolean;
  readonly name: string;
  readonly request: MoveRequest;
}

const OPTIONS = { ...COMMON_OPTIONS, ...JSON_OPTION, wait: { type: 'string', short: 'w' }, force: { type: 'boolean' } } as const;

/** Parses `movewpar`'s arguments. */
export function parseMovewpar(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): MovewparOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  if (positionals.length !== 2) throw new UsageError('expected WparName and PeerName');
  const name = checkWparName(positionals[0]!);
  const waitSec = values.wait === undefined ? undefined : parseSeconds(values.wait, '-w', name);
  if (waitSec !== undefined && !Number.isInteger(waitSec)) throw new UsageError(`bad -w value ${JSON.stringify(values.wait)}: expected whole seconds`, { code: 'EINVAL', subject: name });
  return {
    home: resolveHome(values.home, io.env, io.cwd),
    json: values.json === true,
    name,
    request: { peer: positionals[1]!, ...(waitSec !== undefined && { waitSec }), ...(values.force === true && { force: true }) },
  };
}

/** `1.5 MiB`, `201.3 MiB`. */
function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The one-line summary of M3.7. */
export function moveSummary(r: MoveResult): string {
  return `Workload partition ${r.name} moved to ${r.to}: ${r.rounds.length} round${r.rounds.length === 1 ? '' : 's'}, ${mib(r.bytes)}, frozen ${r.frozenMs} ms, down ${r.downtimeMs} ms, total ${(r.totalMs / 1000).toFixed(1)} s.`;
}

/** `movewpar`. */
export const movewpar: Command<MovewparOptions> = {
  name: 'movewpar',
  verbs: ['move', 'movewpar'],
  summary: 'move a running workload partition to another system',
  usage: (p) => `Usage: ${p} [-w Seconds] [--force] [--home Directory] [--json] WparName PeerName

Moves the active, checkpointable workload partition WparName to the trusted system PeerName
(wpar peer) while it runs: its root is copied in rounds, then it is frozen for the last changes
only, started on PeerName with its agents' state, and removed here once PeerName reports it
running. Any failure before that leaves it running here, as before. What would make PeerName
fail to run it (its command is not found there, weaker isolation than its limits need) is refused
before anything freezes, unless --force.

Flags:
  -w Seconds      How long to wait for checkpoint denials to be lifted (default 30).
  --force         Moves it anyway; what PeerName accepted is printed on stderr.
${HOME_HELP}  --json          Prints { name, from, to, rounds, bytes, frozenMs, downtimeMs, totalMs }.
  -?, --help      Prints this text.
`,
  parse: parseMovewpar,
  async run(o, ctx) {
    const tty = !o.json && (ctx.io.stderr as Partial<WriteStream>).isTTY === true;
    const res = await ctx.connect(o.home).open('POST', wparPath(o.name, 'move'), { body: o.request, subject: o.name, accept: 'application/x-ndjson' });
    let result: MoveResult | undefined;
    const streamed = (res.headers['content-type'] ?? '').includes('application/x-ndjson');
    const bar = (text: string): void => { if (tty) ctx.io.stderr.write(`\r\x1b[K${text}`); };
    try {
      for await (const text of createInterface({ input: res, crlfDelay: Infinity })) {
        if (text === '') continue;
        const line = JSON.parse(text) as { type: string; result?: MoveResult; error?: unknown } & Partial<MoveProgress>;
        // A move forwarded to the WPAR's host in a cluster answers with the result alone (JSON).
        if (!streamed) { result = line as unknown as MoveResult; continue; }
        if (line.type === 'progress') bar(`movewpar ${o.name} → ${o.request.peer}: ${line.step} round ${line.round}, ${mib(line.bytes ?? 0)}`);
        else if (line.type === 'result' && line.result) result = line.result;
        else if (line.type === 'error') throw apiError(500, JSON.stringify({ error: line.error }), o.name);
      }
    } finally {
      bar('');
    }
    if (!result) throw new CliError('wpard ended the move answer without a result', { code: 'EIO', subject: o.name });
    for (const w of result.warnings ?? []) ctx.io.stderr.write(`movewpar: ${o.name}: accepted with --force: ${w}\n`);
    if (o.json) printJson(ctx.io, result);
    else print(ctx.io, moveSummary(result));
    return 0;
  },
};
