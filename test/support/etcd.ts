/**
 * Real etcd v3 for the tests (C8): Debian's `etcd-server` (installed by
 * `scripts/install-system-deps.sh --tests`), started by the test itself with a temporary data
 * directory — on loopback with free ports, or inside a test host's network namespace on its address
 * — and stopped and removed by `stop()` (call it in `after`, it is safe after a failure and twice).
 * Readiness is etcd's own "serving client traffic" line, bounded: no polling, no sleep.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** How long a member may take to say it serves. */
const READY_MS = 30_000;

/** Whether `etcd` is installed. */
export function haveEtcd(): boolean {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A free TCP port on 127.0.0.1 (the kernel picks it; closed again before etcd binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Where a member listens: loopback with free ports, or an address inside a network namespace. */
export interface MemberPlace {
  /** Run inside this network namespace (`ip netns exec`). */
  readonly netns?: string;
  /** Its address (default 127.0.0.1). */
  readonly address?: string;
}

/** One running etcd member. */
export class EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  log = '';
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();

  constructor(name: string, clientUrl: string, peerUrl: string) {
    this.name = name;
    this.clientUrl = clientUrl;
    this.peerUrl = peerUrl;
    this.dataDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'corral-etcd-'));
  }

  /** The member's pid while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts etcd with `initialCluster` (`name=peerUrl,...`) and its cluster's `token`; resolves once it serves clients. */
  async start(place: MemberPlace, initialCluster: string, token: string): Promise<void> {
    const argv = [
      '--name', this.name, '--data-dir', this.dataDir,
      '--listen-client-urls', this.clientUrl, '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', this.peerUrl, '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      // Faster elections than the WAN defaults (loopback and veth links only).
      '--heartbeat-interval', '50', '--election-timeout', '500',
      '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'info',
    ];
    const [file, args] = place.netns ? ['ip', ['netns', 'exec', place.netns, 'etcd', ...argv]] : ['etcd', argv];
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    this.#exited = new Promise((r) => child.once('exit', () => r()));
    const lines = createInterface({ input: child.stderr! });
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`etcd ${this.name} did not serve within ${READY_MS / 1000} s:\n${this.log.slice(-4000)}`)), READY_MS);
      lines.on('line', (l) => {
        this.log += l + '\n';
        if (/ready to serve client requests|"serving client traffic/.test(l)) { clearTimeout(timer); ready(); }
      });
      child.once('error', (err) => { clearTimeout(timer); fail(err); });
      child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`etcd ${this.name} exited (${code}):\n${this.log.slice(-4000)}`)); });
    });
    lines.on('line', () => {}); // keep draining stderr
  }

  /** SIGKILLs the member (a lost member); its data directory stays until {@link stop}. */
  async kill(): Promise<void> {
    const c = this.#child;
    if (c && c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await this.#exited;
    }
    this.#child = null;
  }

  /** Stops the member and removes its data directory (SIGKILL: its data is thrown away anyway). */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A running etcd of one or more members. */
export class Etcd {
  readonly members: readonly EtcdMember[];

  constructor(members: readonly EtcdMember[]) {
    this.members = members;
  }

  /** The client URLs, comma-separated, as `wpard --cluster` takes them. */
  get urls(): string {
    return this.hosts.join(',');
  }

  /** The client URLs. */
  get hosts(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** Stops every member and removes every data directory. */
  async stop(): Promise<void> {
    await Promise.allSettled(this.members.map((m) => m.stop()));
  }
}

/**
 * Starts an etcd of `places.length` members (one: a single-member etcd; three: one that survives
 * the loss of a member). Each member on loopback gets two free ports; in a namespace, 2379 and 2380
 * on its address. On a failure, whatever started is stopped before the error is thrown.
 */
export async function startEtcd(places: readonly MemberPlace[] = [{}]): Promise<Etcd> {
  const members: EtcdMember[] = [];
  for (const [i, place] of places.entries()) {
    const address = place.address ?? '127.0.0.1';
    const [client, peer] = place.netns ? [2379, 2380] : [await freePort(), await freePort()];
    members.push(new EtcdMember(`m${i}`, `http://${address}:${client}`, `http://${address}:${peer}`));
  }
  const etcd = new Etcd(members);
  const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  try {
    // All at once: a member of a new cluster serves only once a quorum of them is up.
    const token = `corral-test-${Math.random().toString(36).slice(2, 10)}`;
    await Promise.all(members.map((m, i) => m.start(places[i]!, initial, token)));
  } catch (err) {
    await etcd.stop();
    throw err;
  }
  return etcd;
}
