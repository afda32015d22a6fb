/**
 * Running a daemon in the foreground until SIGTERM or SIGINT: what `wpard` and `npm start` do.
 * @module
 */
import { startAgentServer } from '../agent/server.ts';
import { WparError } from '../kernel/errno.ts';
import { parseClusterFlags, type ClusterFlags } from '../cluster/etcd.ts';
import { startDaemon, type Daemon } from './daemon.ts';
import { resolveHome } from './home.ts';

/** Options of {@link runDaemon}. */
export interface RunOptions {
  readonly home?: string;
  readonly extensions?: readonly string[];
  readonly fallbackIsolation?: boolean;
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
      ...(options.name !== undefined && { name: options.name }),
      ...(options.listen !== undefined && { listen: options.listen }),
      ...(options.cluster !== undefined && { cluster: parseClusterFlags(options.cluster) }),
      agents: startAgentServer,
      log,
    });
  } catch (err) {
    log(`cannot start: ${(err as Error).message}${err instanceof WparError ? ` (${err.code})` : ''}`);
    process.exit(1);
  }
  const id = daemon.peer.info();
  if (daemon.cluster) log(`cluster: joined as ${daemon.cluster.name}`);
  if (id.listen !== null) log(`peer endpoint ${id.listen} (TLS 1.3, mutual; system ${id.name}, ${id.fingerprint})`);
  log(`serving ${daemon.layout.home} on ${daemon.layout.socket} (isolation: ${daemon.isolation.summary}; pid ${process.pid})`);
  if (options.banner) process.stdout.write(options.banner(daemon) + '\n');
  let signals = 0;
  const shutdown = (signal: string): void => {
    if (++signals > 1) { log(`${signal} again: still stopping WPARs; send SIGKILL to abandon them`); return; }
    log(`${signal}: stopping every WPAR`);
    daemon.stop().then(() => { log('stopped'); process.exit(0); }, (err: Error) => { log(`stop failed: ${err.message}`); process.exit(1); });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
