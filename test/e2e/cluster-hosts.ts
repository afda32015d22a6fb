/**
 * Test hosts for the cluster tests: network namespaces made by the tests themselves, as in
 * `move-hosts.ts` but with their own names and addresses so both can run at once. A bridge
 * namespace holds a bridge; each host is a namespace with one end of a veth pair (the other in the
 * bridge) and an address in 10.215.0.0/24; etcd runs in a namespace of its own (10.215.0.100+).
 * Every name starts with `ccl` plus a per-run tag; `destroy()` removes everything, also after a failure.
 * Tests that may run beside those (another worktree's) pass their own `prefix` and `subnet`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { canMakeHosts } from './move-hosts.ts';
import { ROOT, runCommand, subscribe, type Ran, type System } from './harness.ts';
import { haveEtcd, startEtcd, type Etcd } from '../support/etcd.ts';
import type { WparInfo } from '../../src/daemon/protocol.ts';

const DIST = join(ROOT, 'dist');
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Why the cluster tests cannot run here (root, iproute2, etcd), or false. */
export const CLUSTER_SKIP: string | false = !canMakeHosts() ? 'needs root and iproute2 for network namespaces'
  : !haveEtcd() ? 'needs etcd (scripts/install-system-deps.sh --tests)' : false;

/** Polls `check` every 100 ms until it returns a value; bounded by `ms` (then fails naming `what`). */
export async function until<T>(what: string, ms: number, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await delay(100);
  }
}

/** `WPAR_EPOCH=N` from a process's environment (undefined if it has gone meanwhile). */
export function epochOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').find((v) => v.startsWith('WPAR_EPOCH='));
  } catch {
    return undefined;
  }
}

/** One line of `wpar hosts --json`. */
export interface HostLine { name: string; address: string; state: string; wpars: number; ttl: number }

/** A bridge, its hosts and an etcd, all in namespaces. */
export class ClusterNet {
  readonly tag = Math.random().toString(36).slice(2, 7);
  /** The first letters of every namespace and link name (3 letters: names stay within 15 characters). */
  readonly prefix: string;
  /** The first three octets of the hosts' /24. */
  readonly subnet: string;
  readonly bridge: string;
  readonly namespaces: string[] = [];
  readonly hosts: ClusterHost[] = [];
  etcd: Etcd | null = null;
  #next = 1;

  constructor(options: { prefix?: string; subnet?: string } = {}) {
    this.prefix = options.prefix ?? 'ccl';
    this.subnet = options.subnet ?? '10.215.0';
    this.bridge = `${this.prefix}${this.tag}br`;
  }

  /** Makes the bridge namespace (call {@link destroy} in `after`, even if this throws). */
  create(): this {
    this.namespaces.push(this.bridge);
    ip('netns', 'add', this.bridge);
    ip('-n', this.bridge, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', this.bridge, 'link', 'set', 'br0', 'up');
    return this;
  }

  /** A namespace wired into the bridge with address SUBNET.N; returns its name and address. */
  wire(label: string, n = this.#next++): { ns: string; address: string; cable: string } {
    const ns = `${this.prefix}${this.tag}${label}`;
    const inner = `${this.prefix}${this.tag}${n}`;
    const cable = `${this.prefix}${this.tag}${n}b`;
    this.namespaces.push(ns);
    ip('netns', 'add', ns);
    ip('link', 'add', inner, 'netns', ns, 'type', 'veth', 'peer', 'name', cable, 'netns', this.bridge);
    const address = `${this.subnet}.${n}`;
    ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', inner);
    ip('-n', ns, 'link', 'set', inner, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', this.bridge, 'link', 'set', cable, 'master', 'br0');
    ip('-n', this.bridge, 'link', 'set', cable, 'up');
    return { ns, address, cable };
  }

  /** Starts an etcd of `members` members, each in its own namespace (SUBNET.100, .101, ...). */
  async startEtcd(members = 1): Promise<Etcd> {
    const places = Array.from({ length: members }, (_, i) => {
      const w = this.wire(`e${i}`, 100 + i);
      return { netns: w.ns, address: w.address };
    });
    this.etcd = await startEtcd(places);
    return this.etcd;
  }

  /**
   * The usual set-up in one step: the bridge, one host a name (labelled by its first letter), an
   * etcd of `etcdMembers`, and every daemon started with `extra`; resolves the hosts in order. Call
   * {@link destroy} in `after`, even if this throws.
   */
  async up<const N extends readonly string[]>(names: N, options: { etcdMembers?: number; extra?: readonly string[] } = {}): Promise<{ -readonly [K in keyof N]: ClusterHost }> {
    this.create();
    const hosts = names.map((n) => this.host(n[0]!));
    await this.startEtcd(options.etcdMembers ?? 1);
    await Promise.all(hosts.map((h, i) => h.start(names[i]!, options.extra)));
    return hosts as { -readonly [K in keyof N]: ClusterHost };
  }

  /** Makes a host namespace (its daemon not started yet). */
  host(label: string): ClusterHost {
    const h = new ClusterHost(this, this.wire(label));
    this.hosts.push(h);
    return h;
  }

  /** Stops every daemon and etcd member; removes every namespace (veths go with them) and home. */
  async destroy(): Promise<void> {
    await Promise.allSettled(this.hosts.map((h) => h.destroy()));
    await this.etcd?.stop();
    for (const ns of this.namespaces.reverse()) {
      try { ip('netns', 'del', ns); } catch { /* already gone */ }
    }
  }
}

/** One test host: a namespace, an address, a home and (when started) its daemon. */
export class ClusterHost {
  readonly net: ClusterNet;
  readonly ns: string;
  readonly address: string;
  readonly cable: string;
  readonly home = mkdtempSync(join(tmpdir(), 'corral-ccl-'));
  log = '';
  #daemon: ChildProcess | null = null;
  #exited: Promise<number | null> = Promise.resolve(null);

  constructor(net: ClusterNet, w: { ns: string; address: string; cable: string }) {
    this.net = net;
    this.ns = w.ns;
    this.address = w.address;
    this.cable = w.cable;
  }

  /** `ADDR:7070`. */
  get endpoint(): string {
    return `${this.address}:7070`;
  }

  /**
   * `nsenter`'s argv for `wpard` in this host's network namespace (for a start that must fail, see
   * {@link tryStart}); not `ip netns exec`, which also remounts /sys and so hides the cgroups.
   */
  argv(name: string, extra: readonly string[]): string[] {
    return [`--net=/run/netns/${this.ns}`, '--', process.execPath, join(DIST, 'daemon/wpard.js'), '--home', this.home, '--name', name,
      '--listen', this.endpoint, '--cluster', this.net.etcd!.urls, ...extra];
  }

  /** Starts `wpard --cluster ETCD --name NAME --listen ADDR:7070`; resolves once it serves. */
  async start(name: string, extra: readonly string[] = ['--lease-ttl', '3']): Promise<void> {
    const daemon = spawn('nsenter', this.argv(name, extra), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#daemon = daemon;
    this.#exited = new Promise((r) => daemon.once('exit', (code) => r(code)));
    const lines = createInterface({ input: daemon.stderr! });
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`wpard on ${this.ns} did not start in 30 s:\n${this.log}`)), 30_000);
      lines.on('line', (l) => {
        this.log += l + '\n';
        if (l.includes(' serving ')) { clearTimeout(timer); ready(); }
      });
      daemon.once('exit', (code) => { clearTimeout(timer); fail(new Error(`wpard on ${this.ns} exited (${code}):\n${this.log}`)); });
    });
  }

  /** Runs `wpard` for a start that is expected to fail; resolves its exit code and stderr (bounded: 30 s). */
  tryStart(name: string, extra: readonly string[] = []): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('nsenter', this.argv(name, extra), { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`wpard kept running:\n${stderr}`)); }, 30_000);
      child.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
    });
  }

  /** Runs a command against this host's daemon (over its Unix socket, from outside the namespace). */
  run(command: string, args: readonly string[]): Promise<Ran> {
    return runCommand(this.home, command, args);
  }

  /** Runs a command that must succeed; returns its stdout. */
  async ok(command: string, args: readonly string[]): Promise<string> {
    const r = await this.run(command, args);
    if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} on ${this.ns} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** `lswpar --json`. */
  async list(): Promise<WparInfo[]> {
    return JSON.parse(await this.ok('lswpar', ['--json'])) as WparInfo[];
  }

  /** The events of `type` in this host's event log. */
  events(type: string): Record<string, unknown>[] {
    return readFileSync(join(this.home, 'events.log'), 'utf8').split('\n').filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.type === type);
  }

  /** Subscribes to this host's events; `.event` resolves with the first that `ok` accepts (the harness bounds it). */
  next(ok: (e: Record<string, unknown>) => boolean): Promise<{ event: Promise<Record<string, unknown>> }> {
    return subscribe({ home: this.home } as unknown as System, ok);
  }

  /** `wpar hosts --json`. */
  async hosts(): Promise<HostLine[]> {
    return JSON.parse(await this.ok('wpar', ['hosts', '--json'])) as HostLine[];
  }

  /** Cuts (or restores) this host's link to the bridge. */
  link(up: boolean): void {
    ip('-n', this.net.bridge, 'link', 'set', this.cable, up ? 'up' : 'down');
  }

  /** Kills the daemon with SIGKILL (a crash: nothing of it runs its stop); resolves once it is gone. */
  async kill(): Promise<void> {
    const d = this.#daemon;
    if (d && d.exitCode === null && d.signalCode === null) {
      d.kill('SIGKILL');
      await this.#exited;
    }
    this.#daemon = null;
  }

  /** Sends `signal` to the daemon (SIGSTOP, SIGCONT, SIGKILL...); `nsenter` execs it, so it is the daemon itself. */
  signal(signal: NodeJS.Signals): void {
    this.#daemon?.kill(signal);
  }

  /** Resolves once the daemon has exited (at once when none runs). */
  exited(): Promise<number | null> {
    return this.#exited;
  }

  /** Stops the daemon (SIGTERM; SIGKILL after 20 s); resolves its exit code (null if killed or not running). */
  async stop(): Promise<number | null> {
    const d = this.#daemon;
    let code: number | null = null;
    if (d && d.exitCode === null && d.signalCode === null) {
      d.kill('SIGTERM');
      const t = setTimeout(() => d.kill('SIGKILL'), 20_000);
      code = await this.#exited;
      clearTimeout(t);
    }
    this.#daemon = null;
    return code;
  }

  /** Stops the daemon and removes the home. */
  async destroy(): Promise<void> {
    await this.stop().catch(() => {});
    rmSync(this.home, { recursive: true, force: true });
  }
}
