/**
 * `wpar logs [-f] [-n LINES] [--json] NAME`: a WPAR's console log (`GET /v1/wpars/:name/logs`); `-f`
 * follows it until the WPAR stops or Ctrl-C; `--json` prints one `{ name, line }` object a line (R3).
 * @module
 */
import { Writable } from 'node:stream';
import { COMMON_OPTIONS, HELP, JSON_OPTION, oneName, parseCount, parseOptions, type Help } from '../args.ts';
import type { Command } from '../command.ts';
import { resolveHome } from '../home.ts';
import { LineSplitter, untilInterrupted } from '../interrupt.ts';
import type { Io } from '../io.ts';
import { wparPath } from '../paths.ts';
import { HOME_HELP } from './help.ts';

/** What `wpar logs` was asked to do. */
export interface LogsOptions {
  readonly home: string;
  readonly name: string;
  readonly follow: boolean;
  /** One JSON object a line, `{ name, line }`, instead of the log as it is. */
  readonly json: boolean;
  /** Only the last this many lines (then what follows). */
  readonly lines: number | undefined;
}

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...JSON_OPTION,
  follow: { type: 'boolean', short: 'f' },
  lines: { type: 'string', short: 'n' },
} as const;

/** Parses `wpar logs`'s arguments. */
export function parseLogs(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): LogsOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  return {
    home: resolveHome(values.home, io.env, io.cwd),
    name: oneName(positionals, 'WparName'),
    follow: values.follow === true,
    json: values.json === true,
    lines: values.lines === undefined ? undefined : parseCount(values.lines, '-n'),
  };
}

/** The API path for `o`. */
export function logsPath(o: Pick<LogsOptions, 'name' | 'follow' | 'lines'>): string {
  return wparPath(o.name, 'logs', { ...(o.follow && { follow: '1' }), ...(o.lines !== undefined && { tail: String(o.lines) }) });
}

/** `wpar logs`. */
export const logs: Command<LogsOptions> = {
  name: 'logs',
  verbs: ['logs'],
  summary: "show a workload partition's console log",
  usage: (p) => `Usage: ${p} [-f] [-n Lines] [--home Directory] [--json] WparName

Prints the console log (the output of every process) of the workload partition WparName.

Flags:
  -f              Follows the log until the workload partition stops (Ctrl-C ends it).
  -n Lines        Only the last Lines lines (then, with -f, what follows).
${HOME_HELP}  --json          Prints one JSON object a line: { "name": WparName, "line": "..." }.
  -?, --help      Prints this text.
`,
  parse: parseLogs,
  async run(o, ctx) {
    const client = ctx.connect(o.home);
    const sink = o.json ? jsonLines(o.name, ctx.io.stdout) : null;
    await untilInterrupted(ctx.io, (signal) => client.stream(logsPath(o), sink?.writable ?? ctx.io.stdout, { subject: o.name, signal }));
    sink?.end();
    return 0;
  },
};

/**
 * `--json`: each line of the log as `{ name, line }` on `out` (UTF-8 safe across chunks, with
 * back-pressure); `end()` prints an unterminated last line.
 */
export function jsonLines(name: string, out: NodeJS.WritableStream): { writable: Writable; end: () => void } {
  const splitter = new LineSplitter();
  const text = (lines: string[]): string => lines.map((line) => `${JSON.stringify({ name, line })}\n`).join('');
  const writable = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const t = text(splitter.push(chunk));
      if (t === '' || out.write(t)) done();
      else out.once('drain', () => done());
    },
  });
  return { writable, end: () => { const t = text(splitter.end()); if (t !== '') out.write(t); } };
}
