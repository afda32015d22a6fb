/**
 * What a command touches of its process: output streams, working directory, environment and the
 * signals that interrupt it. Commands get an {@link Io} so tests can run them in-process.
 * @module
 */
import type { Writable } from 'node:stream';

/** Why a running command was interrupted: a signal, or `EPIPE` when the reader of stdout went away. */
export type Interruption = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'EPIPE';

/** A command's process, as far as the command needs it. */
export interface Io {
  /** Data and success messages. */
  readonly stdout: Writable;
  /** The one error line of a failure. */
  readonly stderr: Writable;
  /** The directory relative paths are resolved against. */
  readonly cwd: string;
  /** The environment (`WPAR_HOME`, `XDG_STATE_HOME`). */
  readonly env: NodeJS.ProcessEnv;
  /**
   * Calls `handler` on each interruption (Ctrl-C, SIGTERM, SIGHUP, a closed stdout pipe) until the
   * returned function is called. While a handler is subscribed, interruptions do not kill the process.
   */
  onInterrupt(handler: (why: Interruption) => void): () => void;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The real process's {@link Io}. A closed stdout pipe (`EPIPE`) never crashes the command. */
export function processIo(): Io {
  const handlers = new Set<(why: Interruption) => void>();
  const deliver = (why: Interruption): void => {
    for (const h of [...handlers]) h(why);
  };
  const onSignal = (signal: NodeJS.Signals): void => deliver(signal as Interruption);
  // Writes after the reader left fail again; one report is enough.
  let piped = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (!piped) {
      piped = true;
      if (handlers.size === 0) process.exit(process.exitCode ?? 0);
      deliver('EPIPE');
    }
  });
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    env: process.env,
    onInterrupt(handler) {
      if (handlers.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
      handlers.add(handler);
      return () => {
        if (!handlers.delete(handler) || handlers.size > 0) return;
        for (const s of SIGNALS) process.off(s, onSignal);
      };
    },
  };
}
