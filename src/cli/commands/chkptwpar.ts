/**
 * `chkptwpar -d DIR [-k] [-w SEC] NAME`: checkpoints a WPAR into an image directory
 * (`POST /v1/wpars/:name/checkpoint`) and prints a one-line summary.
 * @module
 */
import { resolve } from 'node:path';
import type { CheckpointRequest, CheckpointResult } from '../../daemon/protocol.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, oneName, parseOptions, parseSeconds, required, type Help } from '../args.ts';
import { print, printJson, type Command } from '../command.ts';
import { checkpointSummary } from '../format.ts';
import { resolveHome } from '../home.ts';
import type { Io } from '../io.ts';
import { wparPath } from '../paths.ts';
import { HOME_HELP } from './help.ts';

/** What `chkptwpar` was asked to do. */
export interface ChkptwparOptions {
  readonly home: string;
  readonly json: boolean;
  readonly name: string;
  /** The request; `dir` is absolute. */
  readonly request: CheckpointRequest;
}

/**
 * Shows a checkpoint's progress while it runs. The hook for the progress display: today the
 * daemon's answer is one JSON object at the end, so {@link checkpointProgress} returns a display
 * that shows nothing; a later step feeds it the daemon's progress and draws on a terminal.
 */
export interface CheckpointProgress {
  /** The checkpoint was asked for. */
  begin(name: string, dir: string): void;
  /** How far it got: `phase` (e.g. `freezing`, `writing`) and, when known, bytes done of total. */
  update(phase: string, done?: number, total?: number): void;
  /** It ended (either way): remove whatever was drawn, before the summary or the error line. */
  end(): void;
}

/** A progress display that shows nothing. */
export const NO_PROGRESS: CheckpointProgress = { begin() {}, update() {}, end() {} };

/**
 * The progress display for a checkpoint on `io`: nothing for `--json` or when stdout is not a
 * terminal. (No progress is reported by the daemon yet, so nothing at all for now.)
 */
export function checkpointProgress(_io: Io, _json: boolean): CheckpointProgress {
  return NO_PROGRESS;
}

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...JSON_OPTION,
  directory: { type: 'string', short: 'd' },
  kill: { type: 'boolean', short: 'k' },
  wait: { type: 'string', short: 'w' },
} as const;

/** Parses `chkptwpar`'s arguments; `-d` is made absolute against the working directory. */
export function parseChkptwpar(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): ChkptwparOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  const dir = required(values.directory, '-d Directory');
  const name = oneName(positionals, 'WparName');
  const waitSec = values.wait === undefined ? undefined : parseSeconds(values.wait, '-w', name);
  return {
    home: resolveHome(values.home, io.env, io.cwd),
    json: values.json === true,
    name,
    request: { dir: resolve(io.cwd, dir), ...(values.kill && { kill: true }), ...(waitSec !== undefined && { waitSec }) },
  };
}

/** `chkptwpar`. */
export const chkptwpar: Command<ChkptwparOptions> = {
  name: 'chkptwpar',
  verbs: ['chkpt', 'chkptwpar'],
  summary: 'checkpoint a workload partition',
  usage: (p) => `Usage: ${p} -d Directory [-k] [-w Seconds] [--home Directory] [--json] WparName

Checkpoints the active, checkpointable workload partition WparName into the image directory
Directory, which restartwpar accepts on this or another system. The workload partition keeps
running unless -k is given.

Flags:
  -d Directory    The image directory to write (made absolute against the current directory).
  -k              Stops the workload partition after the checkpoint.
  -w Seconds      How long to wait for checkpoint denials to be lifted (default 30).
${HOME_HELP}  --json          Prints the checkpoint's result as JSON.
  -?, --help      Prints this text.
`,
  parse: parseChkptwpar,
  async run(o, ctx) {
    const progress = checkpointProgress(ctx.io, o.json);
    progress.begin(o.name, o.request.dir);
    let result: CheckpointResult;
    try {
      result = await ctx.connect(o.home).request<CheckpointResult>('POST', wparPath(o.name, 'checkpoint'), { body: o.request, subject: o.name });
    } finally {
      progress.end();
    }
    if (o.json) printJson(ctx.io, result);
    else print(ctx.io, checkpointSummary(result));
    return 0;
  },
};
