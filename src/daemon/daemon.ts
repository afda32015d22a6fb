/**
 * `wpard`: one per system (R1, R7). Owns one kernel, the WPAR runtime (a kernel subsystem), the state
 * store, the control API and the loaded extensions.
 * @module
 */
import { mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { makePrivateIfExists, PRIVATE_DIR, privateDirSync } from '../runtime/private-files.ts';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { HttpAddress } from '../console/address.ts';
import type { ConsoleServer } from '../console/server.ts';
import { createKernel, type Kernel } from '../api/kernel.ts';
import { WparError } from '../kernel/errno.ts';
import { detectIsolation, type Isolation } from '../runtime/isolation.ts';
import { Cgroup } from '../runtime/cgroup.ts';
import { killLeftovers } from '../runtime/leftovers.ts';
import { loadExtension, unloadExtension, type LoadedExtension } from './extensions.ts';
import { HomeLayout, MAX_SOCKET_PATH } from './home.ts';
import { Journal, type JournalOptions } from './journal.ts';
import { checkpoint, restart } from './checkpoint.ts';
import type { SystemInfo } from './protocol.ts';
import { startServer } from './server.ts';
import { Store } from './store.ts';
import { WparManager, type AgentFactory, type Recovery } from './wpars.ts';
import { startPeerService, type PeerService } from '../peer/service.ts';
import { Mover } from '../peer/move.ts';
import { ClusterService } from '../cluster/service.ts';
import { parseFenceAfter, type ClusterOptions } from '../cluster/etcd.ts';
import { Fence } from '../cluster/fence.ts';
import { trustingAlso } from '../cluster/failover.ts';
import { Scheduler } from '../cluster/schedule.ts';

/** Options of {@link startDaemon}. */
export interface DaemonOptions {
  /** The home directory (resolved by the caller: `--home`, `$WPAR_HOME`, or the default). */
  readonly home: string;
  /** Extension modules to load, in order. */
  readonly extensions?: readonly string[];
  /** Force the fallback isolation (process group and rlimits) even where more is possible. */
  readonly fallbackIsolation?: boolean;
  /** Opens each WPAR's agent endpoint. */
  readonly agents: AgentFactory;
  /** The system's name (`--name`; default the hostname). */
  readonly name?: string;
  /** Open the peer endpoint on `ADDR:PORT` (`--listen`); nothing listens without it. */
  readonly listen?: string;
  /** Join the cluster kept in this etcd (`--cluster`, docs/cluster.md); needs `listen`. */
  readonly cluster?: ClusterOptions;
  /** Where the daemon reports what it does (default: stderr lines). */
  readonly log?: (line: string) => void;
  /** Serve the web console and `/metrics` here (`wpard --http`); off when absent. */
  readonly http?: HttpAddress;
  /** Size bounds of `HOME/events.log` (default 16 MiB per file, 4 files). */
  readonly journal?: JournalOptions;
}

/** A running daemon. */
export interface Daemon {
  readonly layout: HomeLayout;
  readonly kernel: Kernel;
  readonly manager: WparManager;
  readonly journal: Journal;
  readonly isolation: Isolation;
  readonly extensions: readonly LoadedExtension[];
  /** The web console, when started with {@link DaemonOptions.http}. */
  readonly console: ConsoleServer | null;
  /** Identity, trusted peers, the peer endpoint and moves. */
  readonly peer: PeerService;
  /** The cluster service, when the daemon joined one (`--cluster`). */
  readonly cluster: ClusterService | null;
  /** Stops every WPAR cleanly (TERM, then KILL; WPARSTOP callouts run), unloads extensions, closes. */
  stop(): Promise<void>;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Starts a daemon on `options.home`. Refuses if another daemon serves that home. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const log = options.log ?? ((l: string) => process.stderr.write(`wpard: ${l}\n`));
  const layout = new HomeLayout(options.home);
  if (Buffer.byteLength(layout.agentSocket(2 ** 31 - 1)) > MAX_SOCKET_PATH) {
    throw new WparError('EINVAL', `home ${layout.home} is too deep: its socket paths would exceed ${MAX_SOCKET_PATH} bytes`);
  }
  // A new home is 0700; an existing one keeps its owner's mode, but everything the daemon keeps in it
  // is private (0600 files, 0700 directories) whatever that mode and the umask.
  mkdirSync(layout.home, { recursive: true, mode: PRIVATE_DIR });
  privateDirSync(layout.runDir);
  privateDirSync(layout.wparsDir);
  await claimSocket(layout.socket);

  // A write that records a completed action is never lost silently: the store keeps and retries it,
  // and the daemon says what was not recorded (and, at its stop, what still is not).
  const store = new Store(layout.database, { onWriteFailure: (message) => log(message), onRecovered: (message) => log(message) });
  const journal = new Journal(layout.eventsLog, store, (err) => log(`event log: ${(err as Error).message}`), options.journal);
  const kernel = createKernel({ onListenerError: (err) => log(`event listener: ${(err as Error).message}`) });
  kernel.subscribe((e) => journal.record(e as unknown as { type: string; time: number }));
  const isolation = detectIsolation({ fallback: options.fallbackIsolation === true, ids: layout.ids });
  // What the machine has, whatever WPARs are given: leftovers and cgroups are found with it.
  const machine = options.fallbackIsolation === true ? detectIsolation() : isolation;
  const manager = new WparManager({ kernel, store, layout, isolation, journal, agents: options.agents });
  const stored = store.all();
  for (const name of stored.keys()) makePrivateIfExists(layout.wparDir(name), PRIVATE_DIR); // an older version's 0755
  manager.load(stored);
  journal.record({ type: 'daemon.starting', time: Date.now(), home: layout.home, pid: process.pid, isolation: isolation.summary });

  let peer: PeerService;
  try {
    peer = await startPeerService({
      home: layout.home, database: layout.database, journal,
      ...(options.name !== undefined && { name: options.name }),
      ...(options.listen !== undefined && { listen: options.listen }),
    });
  } catch (err) {
    await journal.close();
    store.close();
    throw err;
  }

  // C1: join before serving anything; a taken name (EEXIST) or an unreachable etcd stops the start.
  let cluster: ClusterService | null = null;
  let fence: Fence | null = null;
  if (options.cluster) {
    try {
      cluster = await ClusterService.start(options.cluster, { home: layout.home, manager, peer, journal, log });
    } catch (err) {
      await peer.close().catch(() => {});
      await journal.close();
      store.close();
      throw err;
    }
    peer.trustAlso(cluster);
    const joined = cluster;
    // C4: the fencing watchdog guards this host's failover WPARs from now on (adopted ones included).
    fence = new Fence({
      runDir: layout.runDir, cgroupParent: layout.cgroupParent, isolation, manager, journal, host: joined.name, log,
      fenceAfterMs: options.cluster.fenceAfterMs ?? parseFenceAfter(undefined, options.cluster.leaseTtl), lost: () => joined.membership.lost,
    });
    const guard = fence;
    guard.start(joined.membership.renewedSent);
    joined.membership.onRenewed = (sent) => guard.renewed(sent);
    manager.endedBy = (name) => guard.endedBy(name);
    manager.epochOf = async (name) => {
      const epoch = await joined.epochOf(name);
      guard.admit(name);
      return epoch;
    };
  }

  const extensions: LoadedExtension[] = [];
  for (const spec of options.extensions ?? []) {
    try {
      const ext = await loadExtension(kernel, spec, { home: layout.home, log: (message) => journal.record({ type: 'extension.log', time: Date.now(), message }) });
      extensions.push(ext);
      journal.record({ type: 'extension.loaded', time: Date.now(), extension: ext.name, module: spec });
      log(`loaded extension ${ext.name} (${spec})`);
    } catch (err) {
      journal.record({ type: 'extension.failed', time: Date.now(), module: spec, reason: (err as Error).message });
      log(`${(err as Error).message}; not loaded`);
    }
  }

  // R7: what the previous daemon left running is adopted where it can be (after the extensions,
  // whose WPARSTART callouts see each adoption as an activation); what cannot be adopted is
  // stopped, never left unsupervised, and reported.
  const active = [...stored].filter(([, s]) => s.running !== null);
  const outcomes = new Map<string, Recovery>();
  // Moves in flight when it stopped (M4) are never adopted: the arrival may run them already.
  const handedOver = Mover.inFlight(layout.home);
  for (const [name, s] of active) outcomes.set(name, await manager.recover(name, s.running!, { handedOver: handedOver.has(name) }));
  const adopted = [...outcomes].filter(([, r]) => r.outcome === 'adopted');
  // This daemon's watchdog guards what was adopted: an earlier one's goes; what it fenced is said.
  fence?.retireOld();
  fence?.reportEarlier();
  const report = await killLeftovers({
    isolation: machine,
    cgroupParent: layout.cgroupParent,
    groups: active.filter(([name]) => outcomes.get(name)!.outcome === 'stopped').map(([name, s]) => ({ pgid: s.running!.pgid, name })),
    keep: adopted.map(([, r]) => r.cgroupPath).filter((p): p is string => typeof p === 'string'),
  });
  if (active.length > 0 || report.killed.length > 0) {
    const count = (o: Recovery['outcome']): string[] => [...outcomes].filter(([, r]) => r.outcome === o).map(([n]) => n);
    log(`recovered after an unexpected stop: ${active.length} WPAR(s) were active (${active.map(([n]) => n).join(', ')}): `
      + `adopted ${count('adopted').length}, ended meanwhile ${count('exited').length}, could not adopt ${count('stopped').length}`
      + `${count('stopped').map((n) => ` (${n}: ${outcomes.get(n)!.reason})`).join('')}; stopped ${report.killed.length} leftover process(es)`);
  }

  const serving: { server?: FastifyInstance; console?: ConsoleServer } = {};
  let stopping: Promise<void> | undefined;
  const daemon: Daemon = {
    layout, kernel, manager, journal, isolation, extensions, peer, cluster,
    get console() { return serving.console ?? null; },
    stop: () => (stopping ??= (async () => {
      journal.record({ type: 'daemon.stopping', time: Date.now() });
      await scheduler.close();
      await Promise.allSettled(manager.active().map((n) => manager.stop(n, { reason: 'stopped with the daemon' })));
      // The home's cgroup parent goes with the daemon once its WPARs' cgroups are gone.
      if (machine.cgroup) {
        const parent = Cgroup.open(machine.cgroup, layout.cgroupParent);
        if (parent.descendants().length === 0) await parent.remove().catch((err: Error) => log(`cgroup ${layout.cgroupParent}: ${err.message}`));
      }
      for (const ext of extensions.reverse()) await unloadExtension(ext).catch((err: Error) => log(`unloading ${ext.name}: ${err.message}`));
      await serving.console?.close();
      await serving.server?.close();
      await fence?.stop();
      await cluster?.close().catch((err: Error) => log(`cluster: ${err.message}`));
      await peer.close().catch((err: Error) => log(`peer endpoint: ${err.message}`));
      journal.record({ type: 'daemon.stopped', time: Date.now() });
      await journal.close();
      const unrecorded = store.close();
      if (unrecorded.length > 0) {
        log(`store ${layout.database}: could not record ${unrecorded.join('; ')} — the next start sees those WPARs as they were before`);
      }
    })()),
  };
  const deps = { kernel, manager, layout, journal, peer, isolation };
  // C5: scheduled checkpoints (copied to other hosts in a cluster; local images only without one).
  const scheduler = new Scheduler({
    manager, journal, home: layout.home, log,
    checkpoint: (name, request, waitMs) => checkpoint(deps, name, request, { waitMs }),
    epochOf: (name) => (cluster ? cluster.checkpointEpoch(name) : Promise.resolve(1)),
    ...(cluster && { replicate: (image, count) => cluster.replicate(image, count) }),
  });
  const mover = new Mover(deps);
  cluster?.useMover(mover);
  // Before anything auto-starts: half-received WPARs go, committed moves never run here again.
  const movedAway = mover.recover();
  peer.onConnection((socket, from) => (cluster ? cluster.dispatch(socket, from, (s, f) => mover.accept(s, f)) : mover.accept(socket, from)));
  const system = (): SystemInfo => ({
    home: layout.home, pid: process.pid, version: VERSION, isolation: isolation.summary, isolationMissing: isolation.notes, hiwater: kernel.hiwater,
    extensions: extensions.map((e) => e.name),
  });
  serving.server = await startServer({
    layout, manager, journal, system,
    checkpoint: (name, request, run) => checkpoint(deps, name, request, run),
    restart: (request) => restart(cluster ? { ...deps, claim: (definition, epoch) => cluster.claimHere(definition, epoch) } : deps, request),
    ...(cluster && { forward: (req) => cluster.forward(req) }),
    listed: (w) => scheduler.describe(w),
    routes: (app) => {
      peer.routes(app);
      mover.routes(app);
      if (cluster) cluster.routes(app);
      else app.get('/v1/hosts', async () => { throw new WparError('EINVAL', 'this system is not in a cluster (wpard --cluster URL --listen ADDR:PORT)'); });
    },
  });
  if (options.http) {
    // Loaded only when asked for: without --http the console costs the start-up nothing (W6).
    const { startConsole } = await import('../console/server.ts');
    try {
      serving.console = await startConsole({ address: options.http, layout, control: serving.server, manager, journal, cgroup: isolation.cgroup, log, cluster: cluster ? { host: cluster.name } : undefined });
    } catch (err) {
      await daemon.stop();
      throw err;
    }
    log(`console on ${serving.console.origin}: open ${serving.console.loginUrl}`);
  }
  journal.record({ type: 'daemon.started', time: Date.now(), socket: layout.socket });
  // C6: copies of failover WPARs another host owns now go before anything starts; then failover runs.
  await cluster?.startFailover((name, dir, signer) => restart({ ...deps, peer: trustingAlso(peer, signer) }, { name, dir }));
  // C4: a fenced WPAR is not started again by this host by itself (C6 may run it elsewhere).
  await manager.autostart(fence ? new Set([...movedAway, ...fence.fencedNames()]) : movedAway);
  scheduler.start();
  return daemon;
}

/** Refuses a home another live daemon serves; removes a stale socket left by a dead one. */
async function claimSocket(path: string): Promise<void> {
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  if (live) throw new WparError('EEXIST', `another wpard is already serving this home (socket ${path})`);
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
