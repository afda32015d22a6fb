/**
 * `chkptwpar -d DIR [-k] [-w SEC] NAME`: checkpoints a WPAR into an image directory
 * (`POST /v1/wpars/:name/checkpoint`) and prints a one-line summary.
 * @module
 */
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { WriteStream } from 'node:tty';
import { apiError, type DaemonClient } from '../client.ts';
import { CliError } from '../errors.ts';
import type { CheckpointRequest, CheckpointResult } from '../../daemon/protocol.ts';
import { COMMON_OPTIONS, HELP, JSON_OPTION, oneName, parseOptions, parseWaitSeconds, required, type Help } from '../args.ts';
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

/** Shows a checkpoint's progress while it runs. */
export interface CheckpointProgress {
  /** The checkpoint was asked for. */
  begin(name: string, dir: string): void;
  /** How far it got: `phase` (e.g. `writing`) and, when known, bytes done of total. */
  update(phase: string, done?: number, total?: number): void;
  /** It ended (either way): remove whatever was drawn, before the summary or the error line. */
  end(): void;
}

/** A progress display that shows nothing. */
export const NO_PROGRESS: CheckpointProgress = { begin() {}, update() {}, end() {} };

/** Images smaller than this finish too fast for a bar to help. */
const BAR_MIN_BYTES = 8 << 20;

/**
 * The progress display for a checkpoint on `io`: a bar on stderr (cli-progress) when stderr is a
 * terminal and the image is large; nothing for `--json` or when stderr is not a terminal.
 */
export async function checkpointProgress(io: Io, json: boolean): Promise<CheckpointProgress> {
  const tty = (io.stderr as Partial<WriteStream>).isTTY === true;
  if (json || !tty) return NO_PROGRESS;
  // Loaded only when a bar may be drawn: every other command starts faster without it.
  const { Presets, SingleBar } = await import('cli-progress');
  let bar: InstanceType<typeof SingleBar> | undefined;
  let label = '';
  return {
    begin(name) { label = name; },
    update(_phase, done, total) {
      if (done === undefined || total === undefined || total < BAR_MIN_BYTES) return;
      if (!bar) {
        bar = new SingleBar({
          stream: io.stderr as WriteStream,
          format: `chkptwpar ${label} [{bar}] {percentage}% | {doneMiB}/{totalMiB} MiB | ETA {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
        }, Presets.shades_classic);
        bar.start(total, 0, { doneMiB: '0', totalMiB: (total / 2 ** 20).toFixed(0) });
      }
      bar.update(done, { doneMiB: (done / 2 ** 20).toFixed(0) });
    },
    end() { bar?.stop(); },
  };
}

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...JSON_OPTION,
  directory: { type: 'string', short: 'd' },
  kill: { type: 'boolean', short: 'k' },
  force: { type: 'boolean', short: 'F' },
  wait: { type: 'string', short: 'w' },
} as const;

/** Parses `chkptwpar`'s arguments; `-d` is made absolute against the working directory. */
export function parseChkptwpar(argv: readonly string[], io: Pick<Io, 'env' | 'cwd'>): ChkptwparOptions | Help {
  const { values, positionals } = parseOptions(argv, OPTIONS);
  if (values.help) return HELP;
  const dir = required(values.directory, '-d Directory');
  const name = oneName(positionals, 'WparName');
  const waitSec = values.wait === undefined ? undefined : parseWaitSeconds(values.wait, name);
  return {
    home: resolveHome(values.home, io.env, io.cwd),
    json: values.json === true,
    name,
    request: { dir: resolve(io.cwd, dir), ...(values.kill && { kill: true }), ...(values.force && { force: true }), ...(waitSec !== undefined && { waitSec }) },
  };
}

/** `chkptwpar`. */
export const chkptwpar: Command<ChkptwparOptions> = {
  name: 'chkptwpar',
  verbs: ['chkpt', 'chkptwpar'],
  summary: 'checkpoint a workload partition',
  usage: (p) => `Usage: ${p} -d Directory [-F] [-k] [-w Seconds] [--home Directory] [--json] WparName

Checkpoints the active, checkpointable workload partition WparName into the image directory
Directory, which restartwpar accepts on this or another system. The workload partition keeps
running unless -k is given.

Flags:
  -d Directory    The image directory to write (made absolute against the current directory).
  -F              Replaces an image already in Directory (without it: EEXIST).
  -k              Stops the workload partition after the checkpoint.
  -w Seconds      How long to wait for checkpoint denials to be lifted (default 30).
${HOME_HELP}  --json          Prints the checkpoint's result as JSON.
  -?, --help      Prints this text.
`,
  parse: parseChkptwpar,
  async run(o, ctx) {
    const progress = await checkpointProgress(ctx.io, o.json);
    progress.begin(o.name, o.request.dir);
    let result: CheckpointResult;
    try {
      result = await streamCheckpoint(ctx.connect(o.home), o, progress);
    } finally {
      progress.end();
    }
    if (o.json) printJson(ctx.io, result);
    else print(ctx.io, checkpointSummary(result));
    return 0;
  },
};

/**
 * Runs the checkpoint with the daemon streaming `{progress}` lines, then `{result}` or `{error}`; a
 * daemon that answers with the result alone (plain JSON, no progress) is understood too.
 */
async function streamCheckpoint(client: DaemonClient, o: ChkptwparOptions, progress: CheckpointProgress): Promise<CheckpointResult> {
  const res = await client.open('POST', wparPath(o.name, 'checkpoint'), { body: o.request, subject: o.name, accept: 'application/x-ndjson' });
  const streamed = (res.headers['content-type'] ?? '').includes('application/x-ndjson');
  if (!streamed) {
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as CheckpointResult;
  }
  for await (const text of createInterface({ input: res, crlfDelay: Infinity })) {
    if (text === '') continue;
    const line = JSON.parse(text) as { type: string; bytesDone?: number; bytesTotal?: number; result?: CheckpointResult; error?: unknown };
    if (line.type === 'progress') progress.update('writing', line.bytesDone, line.bytesTotal);
    else if (line.type === 'result' && line.result) return line.result;
    else if (line.type === 'error') throw apiError(500, JSON.stringify({ error: line.error }), o.name);
  }
  throw new CliError('wpard ended the checkpoint answer without a result', { code: 'EIO', subject: o.name });
}
