/**
 * Test hosts for moves: network namespaces made by the tests themselves. A bridge namespace holds a
 * bridge; each host is a namespace with one end of a veth pair (the other end in the bridge) and an
 * address in 10.213.0.0/24, and runs its own `wpard` in it (`nsenter --net`). Every name starts with
 * `cmv` (plus a per-run tag), so nothing collides with other tests; `destroy()` removes everything,
 * also after a failure.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { mustRun, ROOT, runCommand, type Ran } from './harness.ts';
import type { WparInfo } from '../../src/daemon/protocol.ts';

const DIST = join(ROOT, 'dist');
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Whether this machine lets the tests make network namespaces (root with iproute2). */
export function canMakeHosts(): boolean {
  try {
    ip('netns', 'list');
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

/** A set of test hosts joined by one bridge. */
export class TestNet {
  readonly tag: string;
  readonly bridge: string;
  readonly hosts: Host[] = [];
  #next = 1;

  private constructor(tag: string) {
    this.tag = tag;
    this.bridge = `cmv${tag}br`;
  }

  /** Makes the bridge namespace. */
  static create(): TestNet {
    const tag = Math.random().toString(36).slice(2, 7);
    const net = new TestNet(tag);
    ip('netns', 'add', net.bridge);
    ip('-n', net.bridge, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', net.bridge, 'link', 'set', 'br0', 'up');
    ip('-n', net.bridge, 'link', 'set', 'lo', 'up');
    return net;
  }

  /** Makes a host namespace wired into the bridge, with address 10.213.0.N. */
  host(label: string): Host {
    const n = this.#next++;
    const ns = `cmv${this.tag}${label}`;
    const inner = `cmv${this.tag}${n}`;
    const outer = `cmv${this.tag}${n}b`;
    ip('netns', 'add', ns);
    const h = new Host(this, ns, `10.213.0.${n}`, outer);
    this.hosts.push(h);
    ip('link', 'add', inner, 'netns', ns, 'type', 'veth', 'peer', 'name', outer, 'netns', this.bridge);
    ip('-n', ns, 'addr', 'add', `${h.address}/24`, 'dev', inner);
    ip('-n', ns, 'link', 'set', inner, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', this.bridge, 'link', 'set', outer, 'master', 'br0');
    ip('-n', this.bridge, 'link', 'set', outer, 'up');
    return h;
  }

  /** Stops every daemon, removes every namespace (veths go with them) and every home. */
  async destroy(): Promise<void> {
    for (const h of this.hosts) await h.destroy();
    for (const ns of [...this.hosts.map((h) => h.ns), this.bridge]) {
      try { ip('netns', 'del', ns); } catch { /* already gone */ }
    }
  }
}

/** One test host: a namespace, an address, a home and (when started) its daemon. */
export class Host {
  readonly net: TestNet;
  readonly ns: string;
  readonly address: string;
  /** The veth end in the bridge namespace (set it down to cut this host's link). */
  readonly cable: string;
  readonly home: string;
  #daemon: ChildProcess | null = null;
  #exited: Promise<number | null> = Promise.resolve(null);
  log = '';

  constructor(net: TestNet, ns: string, address: string, cable: string) {
    this.net = net;
    this.ns = ns;
    this.address = address;
    this.cable = cable;
    this.home = mkdtempSync(join(tmpdir(), 'corral-cmv-'));
  }

  /** The peer endpoint's `ADDR:PORT`. */
  get endpoint(): string {
    return `${this.address}:7070`;
  }

  /** Starts `wpard --name NAME --listen ADDR:7070` in the namespace; resolves once it serves. */
  async start(name: string, extra: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<void> {
    // nsenter enters the network namespace only: `ip netns exec` would also remount /sys, hiding
    // the cgroup hierarchies, and the WPARs would run with the fallback isolation (no freezer).
    const args = [`--net=/run/netns/${this.ns}`, '--', process.execPath, join(DIST, 'daemon/wpard.js'), '--home', this.home, '--name', name, '--listen', this.endpoint, ...extra];
    const daemon = spawn('nsenter', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
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

  /** The daemon's pid (`nsenter` execs, so it is the node process). */
  get pid(): number {
    return this.#daemon!.pid!;
  }

  /** SIGKILL the daemon (a crash); resolves once it is gone. */
  async crash(): Promise<void> {
    this.#daemon?.kill('SIGKILL');
    await this.#exited;
    this.#daemon = null;
  }

  /** SIGTERM the daemon; resolves once it is gone. */
  async stop(): Promise<void> {
    if (this.#daemon && this.#daemon.exitCode === null && this.#daemon.signalCode === null) {
      this.#daemon.kill('SIGTERM');
      const t = setTimeout(() => this.#daemon?.kill('SIGKILL'), 20_000);
      await this.#exited;
      clearTimeout(t);
    }
    this.#daemon = null;
  }

  /** Runs a command against this host's daemon (over its Unix socket, from outside the namespace). */
  run(command: string, args: readonly string[]): Promise<Ran> {
    return runCommand(this.home, command, args);
  }

  /** Runs a command that must succeed; returns its stdout. */
  ok(command: string, args: readonly string[]): Promise<string> {
    return mustRun(this.home, command, args);
  }

  /** `wpar identity --json`. */
  async identity(): Promise<{ name: string; fingerprint: string; listen: string | null }> {
    return JSON.parse(await this.ok('wpar', ['identity', '--json'])) as { name: string; fingerprint: string; listen: string | null };
  }

  /** `lswpar --json`. */
  async list(): Promise<WparInfo[]> {
    return JSON.parse(await this.ok('lswpar', ['--json'])) as WparInfo[];
  }

  /** Runs a program inside this host's namespace (argv, no shell). */
  exec(argv: readonly string[]): Ran {
    try {
      const stdout = execFileSync('ip', ['netns', 'exec', this.ns, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return { code: 0, stdout, stderr: '' };
    } catch (err) {
      const e = err as { status: number | null; stdout?: string; stderr?: string };
      return { code: e.status, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  /** Cuts (or restores) this host's link to the bridge. */
  link(up: boolean): void {
    ip('-n', this.net.bridge, 'link', 'set', this.cable, up ? 'up' : 'down');
  }

  /** Stops the daemon and removes the home. */
  async destroy(): Promise<void> {
    await this.stop().catch(() => {});
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** Makes `a` and `b` trust each other (each adds the other with its endpoint). */
export async function pair(a: Host, b: Host): Promise<void> {
  const [ia, ib] = [await a.identity(), await b.identity()];
  await a.ok('wpar', ['peer', 'add', ib.name, ib.fingerprint, b.endpoint]);
  await b.ok('wpar', ['peer', 'add', ia.name, ia.fingerprint, a.endpoint]);
}
