/**
 * Running a daemon in the foreground until SIGTERM or SIGINT: what `wpard` and `npm start` do.
 * @module
 */
import { startAgentServer } from '../agent/server.ts';
import type { HttpAddress } from '../console/address.ts';
import { parseClusterFlags, type ClusterFlags } from '../cluster/etcd.ts';
import { startDaemon, type Daemon } from './daemon.ts';
import { resolveHome } from './home.ts';
import type { JournalOptions } from './journal.ts';
import { DEFAULT_STOP_SECONDS } from './wpars.ts';

/** Options of {@link runDaemon}. */
export interface RunOptions {
  readonly home?: string;
  readonly extensions?: readonly string[];
  readonly fallbackIsolation?: boolean;
  /** `--http ADDR:PORT`: serve the web console and `/metrics`. */
  readonly http?: HttpAddress;
  /** Size bounds of `HOME/events.log`. */
  readonly journal?: JournalOptions;
  /** `wpard --name`. */
  readonly name?: string;
  /** `wpard --listen ADDR:PORT`. */
  readonly listen?: string;
  /** `wpard --cluster URL[,URL...] [--lease-ttl SEC] [--etcd-ca F --etcd-cert F --etcd-key F]`. */
  readonly cluster?: ClusterFlags;
  /** Printed once the daemon is ready (e.g. how to use the commands against it). */
  readonly banner?: (daemon: Daemon) => string;
}

/** Starts the daemon and runs it until a signal; exits the process (0 after a clean stop). */
export async function runDaemon(options: RunOptions): Promise<void> {
  const log = (line: string): void => { process.stderr.write(`wpard: ${line}\n`); };
  let daemon: Daemon;
  try {
    daemon = await startDaemon({
      home: resolveHome(options.home),
      extensions: options.extensions ?? [],
      fallbackIsolation: options.fallbackIsolation === true,
      ...(options.journal !== undefined && { journal: options.journal }),
      ...(options.name !== undefined && { name: options.name }),
      ...(options.listen !== undefined && { listen: options.listen }),
      ...(options.cluster !== undefined && { cluster: parseClusterFlags(options.cluster) }),
      agents: startAgentServer,
      log,
      ...(options.http && { http: options.http }),
    });
  } catch (err) {
    // The root cause's errno: the innermost one in the cause chain (a system error's, e.g. EADDRINUSE).
    let code: string | undefined;
    for (let e: unknown = err; e instanceof Error; e = e.cause) {
      const c = (e as { code?: unknown }).code;
      if (typeof c === 'string' && /^E[A-Z]+$/.test(c)) code = c;
    }
    log(`cannot start: ${(err as Error).message}${code === undefined ? '' : ` (${code})`}`);
    process.exit(1);
  }
  const id = daemon.peer.info();
  if (daemon.cluster) log(`cluster: joined as ${daemon.cluster.name}`);
  if (id.listen !== null) log(`peer endpoint ${id.listen} (TLS 1.3, mutual; system ${id.name}, ${id.fingerprint})`);
  // S7: what WPARs do not get here is said, one line each with what to install or enable.
  for (const note of daemon.isolation.notes) log(`isolation: not in force: ${note}`);
  log(`serving ${daemon.layout.home} on ${daemon.layout.socket} (isolation: ${daemon.isolation.summary}; pid ${process.pid})`);
  if (options.banner) process.stdout.write(options.banner(daemon) + '\n');
  let signals = 0;
  let since = 0;
  // What a stop is waiting for, in words: the WPARs still active and when their SIGKILL comes.
  const waitingFor = (): string => {
    const left = daemon.manager.active();
    const kill = Math.max(0, Math.ceil(DEFAULT_STOP_SECONDS - (Date.now() - since) / 1000));
    return `waiting for ${left.length} WPAR(s) to exit after SIGTERM: ${left.join(', ')} (SIGKILL in ${kill} s)`;
  };
  const shutdown = (signal: string): void => {
    if (++signals > 1) {
      log(`${signal} again: ${daemon.manager.active().length > 0 ? waitingFor() : 'finishing the stop'}; send SIGKILL to abandon them`);
      return;
    }
    since = Date.now();
    const active = daemon.manager.active();
    log(`${signal}: stopping every WPAR${active.length > 0 ? ` (${active.join(', ')}): SIGTERM now, SIGKILL after ${DEFAULT_STOP_SECONDS} s` : ''}`);
    // A WPAR that ignores SIGTERM holds the stop for up to DEFAULT_STOP_SECONDS: say so, once.
    const slow = setTimeout(() => { if (daemon.manager.active().length > 0) log(waitingFor()); }, 1000);
    slow.unref();
    daemon.stop().then(() => { clearTimeout(slow); log('stopped'); process.exit(0); }, (err: Error) => { log(`stop failed: ${err.message}`); process.exit(1); });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
