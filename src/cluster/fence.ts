/**
 * Fencing (C4): a host that has not renewed its lease for `--fence-after` kills its `--failover`
 * WPARs — also when its daemon is stopped, hung or dead — so that once etcd expires the lease the
 * cluster may run them elsewhere without two copies ever running.
 *
 * The killing is done by a watchdog that does not depend on the daemon's event loop: one small bash
 * process per host (`fence-watchdog.sh`, builtins only), in a session of its own, fed over a pipe.
 * Each keep-alive etcd acknowledges moves its deadline to `sent + fence-after`, on the clock of
 * `/proc/uptime` (monotonic). Each failover WPAR that starts (or is adopted) is added with how to
 * kill it (its cgroup, its PID namespace's init, its process group); one that stops is removed.
 * Past the deadline the watchdog writes a marker per WPAR (`HOME/run/fenced/NAME`), kills them all,
 * reports on stdout and exits. The daemon turns a marker into the WPAR's exit reason (`fenced:
 * lease not renewed for N s`) and a `cluster.fenced` event, and never starts a fenced WPAR by
 * itself. See docs/cluster.md, "Fencing".
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { WparError } from '../kernel/errno.ts';
import type { Journal } from '../daemon/journal.ts';
import type { WparManager } from '../daemon/wpars.ts';
import type { Isolation } from '../runtime/isolation.ts';
import { childrenOf, readStat } from '../runtime/proc.ts';
import { WPAR_NAME_PATTERN } from '../runtime/definition.ts';

/** The watchdog program (copied next to the built module, like `wpar-init.sh`). */
export const FENCE_WATCHDOG = fileURLToPath(new URL('./fence-watchdog.sh', import.meta.url));
/** The shell that runs it (builtins only: `read -t`, `printf -v`, associative arrays need bash). */
export const BASH = '/bin/bash';

/** Milliseconds of the clock the watchdog keeps its deadline on (`/proc/uptime`: CLOCK_BOOTTIME, monotonic). */
export function bootMs(): number {
  const [up = '0'] = readFileSync('/proc/uptime', 'latin1').split(' ');
  return Math.round(Number(up) * 1000);
}

/**
 * The watchdog's deadline (centiseconds of {@link bootMs}'s clock) for a keep-alive *sent* at
 * `sentWallMs` and acknowledged by now: `sent + fenceAfter`, translated from the wall clock to the
 * monotonic one. Read `bootNowMs` before `wallNowMs`: a pause between the two readings then makes
 * the deadline earlier, never later. Rounded down (earlier) to the watchdog's 10 ms resolution.
 */
export function fenceDeadlineCs(sentWallMs: number, wallNowMs: number, bootNowMs: number, fenceAfterMs: number): number {
  const elapsed = Math.max(0, wallNowMs - sentWallMs);
  return Math.floor((bootNowMs - elapsed + fenceAfterMs) / 10);
}

/** How the watchdog kills one WPAR (see `fence-watchdog.sh`), from what the runtime knows of it. */
export function killSpecs(isolation: Isolation, cgroupPath: string, pid: number | null): string[] {
  const specs: string[] = [];
  const cg = isolation.cgroup;
  if (cg) {
    if (cg.version === 2) {
      const dir = join(cg.mounts[cg.controllers[0]!]!, cgroupPath);
      specs.push(existsSync(join(dir, 'cgroup.kill')) ? `cgkill:${join(dir, 'cgroup.kill')}` : `procs:${join(dir, 'cgroup.procs')}`);
    } else {
      if (cg.mounts.freezer) specs.push(`freezer:${join(cg.mounts.freezer, cgroupPath)}`);
      const first = cg.controllers.find((c) => c !== 'freezer');
      if (first) specs.push(`procs:${join(cg.mounts[first]!, cgroupPath, 'cgroup.procs')}`);
    }
  }
  if (pid !== null) {
    // PID 1 of a sealed WPAR's namespace: its death takes every process inside with it.
    for (const init of isolation.seal ? childrenOf(pid).slice(0, 1) : []) {
      const st = readStat(init);
      if (st) specs.push(`pid:${init}:${st.startTime}`);
    }
    const st = readStat(pid);
    if (st && st.pgid === pid) specs.push(`pgrp:${pid}:${st.startTime}`);
  }
  // Spaces end a spec in the watchdog's protocol: a path with one is not sent (none of the daemon's has).
  return specs.filter((s) => !/\s/.test(s));
}

/** A marker the watchdog wrote: one fenced WPAR. */
export interface FenceMarker {
  readonly name: string;
  /** When it was fenced (ms since the epoch). */
  readonly at: number;
  /** How long the lease had gone unrenewed then. */
  readonly renewedAgoMs: number;
  /** Whether the daemon has said so already (`cluster.fenced`). */
  readonly reported?: boolean;
}

/** The reason a fenced WPAR shows (`lswpar -L`, its last exit). */
export function fencedReason(m: Pick<FenceMarker, 'renewedAgoMs'>): string {
  return `fenced: lease not renewed for ${(m.renewedAgoMs / 1000).toFixed(1)} s (killed by the fencing watchdog, C4)`;
}

/** What {@link Fence} works with. */
export interface FenceOptions {
  /** The daemon's run directory: `fence.pid` and `fenced/` go there. */
  readonly runDir: string;
  /** The home's cgroup parent: each WPAR's cgroup is `PARENT/NAME`. */
  readonly cgroupParent: string;
  readonly isolation: Isolation;
  readonly manager: WparManager;
  readonly journal: Journal;
  readonly host: string;
  readonly fenceAfterMs: number;
  /** Whether the host counts its lease as lost (then no failover WPAR starts). */
  readonly lost: () => boolean;
  readonly log: (line: string) => void;
}

/** One running watchdog process. */
interface Watchdog {
  readonly child: ChildProcess;
  readonly pid: number;
  exited: boolean;
  /** It said `done` (it fenced): its exit is expected. */
  fenced: boolean;
  readonly gone: Promise<void>;
}

/** The daemon's side of fencing: it runs the watchdog, feeds it and tells it which WPARs to kill. */
export class Fence {
  readonly #o: FenceOptions;
  readonly #markers: string;
  readonly #pidFile: string;
  /** Failover WPARs running here: name → the specs last sent. */
  readonly #guarded = new Map<string, string>();
  #dog: Watchdog | null = null;
  /** The watchdog an earlier daemon of this home left (pid, start time), until {@link retireOld}. */
  #old: { pid: number; start: number } | null = null;
  #stopped = false;
  #unfollow: (() => void) | null = null;

  constructor(o: FenceOptions) {
    this.#o = o;
    this.#markers = join(o.runDir, 'fenced');
    this.#pidFile = join(o.runDir, 'fence.pid');
  }

  /**
   * Starts guarding: remembers an earlier daemon's watchdog (retired by {@link retireOld} once this
   * one guards the adopted WPARs), starts a watchdog with the deadline of the lease renewal sent at
   * `sentWallMs`, and from now on adds each failover WPAR that starts or is adopted.
   */
  start(sentWallMs: number): void {
    if (!existsSync(BASH)) throw new WparError('ENOENT', `fencing needs ${BASH} (Debian package bash) for its watchdog`);
    if (!existsSync(FENCE_WATCHDOG)) throw new WparError('ENOENT', `runtime file ${FENCE_WATCHDOG} is missing (copy src/cluster/fence-watchdog.sh next to the built module)`);
    mkdirSync(this.#markers, { recursive: true, mode: 0o700 });
    this.#old = this.#readPidFile();
    this.#unfollow = this.#o.journal.follow((e) => {
      const name = (e as { name?: unknown }).name;
      if (typeof name !== 'string') return;
      if (e.type === 'runtime.started' || e.type === 'runtime.adopted') this.#onStarted(name, e.type === 'runtime.started');
      else if (e.type === 'runtime.exited') this.#onStopped(name);
      else if (e.type === 'runtime.removed') this.#clearMarker(name);
    });
    this.#spawn(sentWallMs);
  }

  /** A keep-alive etcd acknowledged was sent at `sentWallMs` (or a new lease granted): move the deadline on. */
  renewed(sentWallMs: number): void {
    if (this.#stopped) return;
    if (!this.#dog || this.#dog.exited) { this.#spawn(sentWallMs); return; }
    const boot = bootMs(); // before the wall clock: see fenceDeadlineCs
    this.#send(`feed ${fenceDeadlineCs(sentWallMs, Date.now(), boot, this.#o.fenceAfterMs)}`);
    // A sealed WPAR's PID 1 may have been forked after it was added: keep its specs current.
    for (const name of this.#guarded.keys()) this.#add(name);
  }

  /** Whether a watchdog guards this host now (a failover WPAR may only start then). */
  get guarding(): boolean {
    return this.#dog !== null && !this.#dog.exited;
  }

  /**
   * Refuses (EAGAIN) to start a failover WPAR while no watchdog guards this host: after a fencing,
   * until the lease is renewed (or a new one granted).
   */
  admit(name: string): void {
    if (!this.#o.manager.has(name) || this.#o.manager.info(name).definition.failover !== true) return;
    if (!this.guarding || this.#o.lost()) throw new WparError('EAGAIN', `${name}: a --failover WPAR starts only while this host holds its lease and its fencing watchdog runs; not now (try again once the host has re-joined)`);
  }

  /** The fenced WPARs' names (they are not auto-started). */
  fencedNames(): string[] {
    return this.#readMarkers().map((m) => m.name);
  }

  /** Why `name`'s processes ended, if the watchdog fenced it (the exit reason), else undefined. */
  endedBy(name: string): string | undefined {
    const m = this.#readMarker(name);
    return m ? fencedReason(m) : undefined;
  }

  /** Reports (`cluster.fenced`) what an earlier run's watchdog fenced and nobody reported yet. */
  reportEarlier(): void {
    for (const m of this.#readMarkers()) if (!m.reported) this.#report(m);
  }

  /** Kills the watchdog an earlier daemon of this home left running (once this one guards what was adopted). */
  retireOld(): void {
    const old = this.#old;
    this.#old = null;
    if (!old || old.pid === this.#dog?.pid) return;
    const st = readStat(old.pid);
    let cmd = '';
    try { cmd = readFileSync(`/proc/${old.pid}/cmdline`, 'latin1'); } catch { /* gone */ }
    if (st?.startTime !== old.start || !cmd.includes('fence-watchdog.sh')) return;
    try { process.kill(old.pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
    this.#o.log(`fencing: retired the watchdog (pid ${old.pid}) of the daemon before this one`);
  }

  /** A clean stop: the watchdog exits without fencing (bounded: 2 s, then SIGKILL). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unfollow?.();
    const dog = this.#dog;
    if (!dog || dog.exited) return;
    this.#send('stop');
    dog.child.stdin?.end();
    const timer = setTimeout(() => { try { dog.child.kill('SIGKILL'); } catch { /* gone */ } }, 2000);
    await dog.gone;
    clearTimeout(timer);
    rmSync(this.#pidFile, { force: true });
  }

  #spawn(sentWallMs: number): void {
    const boot = bootMs(); // before the wall clock: see fenceDeadlineCs
    const deadline = fenceDeadlineCs(sentWallMs, Date.now(), boot, this.#o.fenceAfterMs);
    const child = spawn(BASH, [FENCE_WATCHDOG, this.#markers, String(Math.floor(this.#o.fenceAfterMs / 10)), String(deadline)], {
      detached: true, stdio: ['pipe', 'pipe', 'ignore'],
    });
    const pid = child.pid;
    if (pid === undefined) throw new WparError('EIO', `fencing: cannot start the watchdog ${FENCE_WATCHDOG}`);
    let done!: () => void;
    const dog: Watchdog = { child, pid, exited: false, fenced: false, gone: new Promise<void>((r) => { done = r; }) };
    child.on('error', () => { /* reported by the exit */ });
    child.stdin!.on('error', () => { /* it exited: the next renewal starts another */ });
    // 'close' comes after its stdout was read to the end, so a 'done' line is never missed.
    child.once('close', (code, signal) => {
      dog.exited = true;
      done();
      if (!this.#stopped && !dog.fenced) this.#o.log(`fencing: the watchdog (pid ${pid}) ended unexpectedly (${signal ?? `status ${code}`}); another starts at the next lease renewal`);
    });
    createInterface({ input: child.stdout! }).on('line', (line) => { if (line === 'done') dog.fenced = true; else this.#onLine(line); });
    this.#dog = dog;
    const st = readStat(pid);
    writeFileSync(this.#pidFile, `${pid} ${st?.startTime ?? 0}\n`, { mode: 0o600 });
    for (const name of this.#guarded.keys()) this.#add(name);
  }

  #onLine(line: string): void {
    const m = /^fenced (\S+) (\d+)$/.exec(line);
    if (!m) return;
    const marker = this.#readMarker(m[1]!) ?? { name: m[1]!, at: Date.now(), renewedAgoMs: Number(m[2]) };
    if (!marker.reported) this.#report(marker);
  }

  #report(m: FenceMarker): void {
    this.#guarded.delete(m.name);
    this.#o.journal.record({ type: 'cluster.fenced', time: Date.now(), host: this.#o.host, name: m.name, at: m.at, renewedAgoMs: m.renewedAgoMs });
    this.#o.log(`fencing: ${m.name} killed: ${fencedReason(m)}`);
    try {
      writeFileSync(join(this.#markers, m.name), JSON.stringify({ ...m, reported: true }) + '\n', { mode: 0o600 });
    } catch { /* the marker stays unreported: said again at the next start */ }
  }

  #onStarted(name: string, fresh: boolean): void {
    if (!this.#o.manager.has(name) || this.#o.manager.info(name).definition.failover !== true) return;
    // A start (not an adoption) is a new run: whatever fenced an earlier one is over.
    if (fresh) this.#clearMarker(name);
    this.#guarded.set(name, '');
    this.#add(name);
  }

  #onStopped(name: string): void {
    if (!this.#guarded.delete(name)) return;
    this.#send(`del ${name}`);
  }

  #add(name: string): void {
    const pid = this.#o.manager.has(name) ? this.#o.manager.info(name).pid : null;
    const specs = killSpecs(this.#o.isolation, `${this.#o.cgroupParent}/${name}`, pid).join(' ');
    if (specs === this.#guarded.get(name)) return;
    this.#guarded.set(name, specs);
    this.#send(`add ${name} ${specs}`);
  }

  #send(line: string): void {
    const dog = this.#dog;
    if (!dog || dog.exited || !dog.child.stdin?.writable) return;
    dog.child.stdin.write(line + '\n');
  }

  #readPidFile(): { pid: number; start: number } | null {
    try {
      const [pid, start] = readFileSync(this.#pidFile, 'latin1').trim().split(' ').map(Number);
      return Number.isSafeInteger(pid) && pid! > 1 ? { pid: pid!, start: start ?? 0 } : null;
    } catch {
      return null;
    }
  }

  #readMarker(name: string): FenceMarker | null {
    let text: string;
    try { text = readFileSync(join(this.#markers, name), 'utf8'); } catch { return null; }
    try {
      const v = JSON.parse(text) as Partial<FenceMarker>;
      return { name, at: Number.isFinite(v.at) ? v.at! : 0, renewedAgoMs: Number.isFinite(v.renewedAgoMs) ? v.renewedAgoMs! : 0, ...(v.reported === true && { reported: true }) };
    } catch {
      // Written by the watchdog in one small write; a torn one still means fenced.
      return { name, at: 0, renewedAgoMs: 0 };
    }
  }

  #readMarkers(): FenceMarker[] {
    let names: string[];
    try { names = readdirSync(this.#markers); } catch { return []; }
    return names.filter((n) => WPAR_NAME_PATTERN.test(n)).map((n) => this.#readMarker(n)).filter((m): m is FenceMarker => m !== null);
  }

  #clearMarker(name: string): void {
    rmSync(join(this.#markers, name), { force: true });
  }
}
