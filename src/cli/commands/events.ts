/**
 * `wpar events [-f] [-n COUNT] [--json]`: the daemon's event stream (`GET /v1/events`), every kernel
 * and runtime event: one human line each, or JSON lines with `--json`.
 * @module
 */
import type { DaemonEvent } from '../../daemon/protocol.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, parseCount, parseOptions, type Help } from '../args.ts';
import { UsageError } from '../errors.ts';
import type { Command } from '../command.ts';
import { eventLine } from '../format.ts';
import { resolveHome } from '../home.ts';
import { LineSplitter, untilInterrupted } from '../interrupt.ts';
import type { Io } from '../io.ts';
import { HOME_HELP } from './help.ts';

/** What `wpar events` was asked to do. */
export interface EventsOptions {
  readonly home: string;
  readonly json: boolean;
  readonly follow: boolean;
  /** The last this many past events first (the daemon's default when undefined). */
  readonly count: number | undefined;
}

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...JSON_OPTION,
  follow: { type: 'boolean', short: 'f' },
  count: { type: 'string', short: 'n' },
} as const;

/** Parses `wpar events`'s arguments. */
export function parseEvents(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): EventsOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  return {
    home: resolveHome(values.home, io.env, io.cwd),
    json: values.json === true,
    follow: values.follow === true,
    count: values.count === undefined ? undefined : parseCount(values.count, '-n'),
  };
}

/** The API path for `o`. */
export function eventsPath(o: Pick<EventsOptions, 'follow' | 'count'>): string {
  const q = new URLSearchParams({ ...(o.follow && { follow: '1' }), ...(o.count !== undefined && { tail: String(o.count) }) }).toString();
  return q === '' ? '/v1/events' : `/v1/events?${q}`;
}

/** The line printed for one received JSON line: itself with `--json`, else {@link eventLine} (a line that is not an event as it came). */
export function renderEvent(line: string, json: boolean): string | undefined {
  if (line.trim() === '') return undefined;
  if (json) return line;
  try {
    const event = JSON.parse(line) as DaemonEvent;
    if (typeof event === 'object' && event !== null && typeof event.type === 'string') return eventLine(event);
  } catch {
    // shown as it came
  }
  return line;
}

/** `wpar events`. */
export const events: Command<EventsOptions> = {
  name: 'events',
  verbs: ['events'],
  summary: 'show the event stream',
  usage: (p) => `Usage: ${p} [-f] [-n Count] [--json] [--home Directory]

Prints the daemon's recent events (every kernel and runtime event), one line each: time, type,
workload partition and the event's fields.

Flags:
  -f              Follows the stream (Ctrl-C ends it).
  -n Count        Starts with the last Count events (default: 100, or none with -f).
  --json          Prints each event as one JSON object per line.
${HOME_HELP}  -?, --help      Prints this text.
`,
  parse: parseEvents,
  async run(o, ctx) {
    const client = ctx.connect(o.home);
    const splitter = new LineSplitter();
    const emit = (lines: string[]): void => {
      for (const line of lines) {
        const out = renderEvent(line, o.json);
        if (out !== undefined) ctx.io.stdout.write(out + '\n');
      }
    };
    await untilInterrupted(ctx.io, (signal) => client.stream(eventsPath(o), (chunk) => emit(splitter.push(chunk)), { signal }));
    emit(splitter.end());
    return 0;
  },
};
