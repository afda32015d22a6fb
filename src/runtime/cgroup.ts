/**
 * One WPAR's cgroup, on cgroup v1 (a directory in each controller's hierarchy) or v2 (one directory
 * in the unified hierarchy): limits, membership, freezing, killing and the memory-limit verdict.
 *
 * Paths are relative to the root of each hierarchy (`corral/<instance>/<wpar>`), like Docker's
 * cgroupfs driver, so a daemon restarted from anywhere finds the cgroups a crashed one left behind.
 * @module
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WparError } from '../kernel/errno.ts';
import type { Limits } from './definition.ts';
import { errorCode, systemError } from './errors.ts';
import type { CgroupController, CgroupSupport } from './isolation.ts';
import { waitFor } from './poll.ts';
import { isLive } from './proc.ts';

/** The CFS period the CPU limit is expressed in (100 ms, the kernel's default). */
const CPU_PERIOD_US = 100_000;
/** How long freezing, thawing or emptying may take before the runtime gives up. */
const SETTLE_MS = 10_000;
const SEGMENT = /^[A-Za-z0-9_.-]+$/;

/** A limit the cgroup could not enforce because its controller is missing. */
export type LimitKey = keyof Limits;

/** One cgroup; create it with {@link Cgroup.create} or find a leftover one with {@link Cgroup.open}. */
export class Cgroup {
  /** The hierarchy it lives in. */
  readonly support: CgroupSupport;
  /** Its path relative to each hierarchy's root, e.g. `corral/0f3a/web`. */
  readonly path: string;
  readonly #dirs: ReadonlyMap<CgroupController, string>;

  private constructor(support: CgroupSupport, path: string) {
    this.support = support;
    this.path = checkPath(path);
    this.#dirs = new Map(support.controllers.map((c) => [c, join(support.mounts[c]!, this.path)]));
  }

  /**
   * Creates the cgroup (and its parents) in every usable controller. A leftover empty one is replaced
   * so counters (OOM kills) start at zero; one that still holds processes is refused with EBUSY.
   */
  static create(support: CgroupSupport, path: string): Cgroup {
    const cgroup = new Cgroup(support, path);
    if (cgroup.exists()) {
      if (cgroup.pids().length > 0) {
        throw new WparError('EBUSY', `cgroup ${path} already holds processes ${cgroup.pids().join(' ')} (left over from an earlier run?)`);
      }
      cgroup.#rmdirAll();
    }
    try {
      if (support.version === 2) cgroup.#createV2();
      else for (const dir of cgroup.#uniqueDirs()) mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw systemError(`cannot create cgroup ${path}`, err);
    }
    return cgroup;
  }

  /** The cgroup at `path` whether or not it exists (for finding leftovers). */
  static open(support: CgroupSupport, path: string): Cgroup {
    return new Cgroup(support, path);
  }

  /** Whether its directory exists. */
  exists(): boolean {
    return this.#uniqueDirs().some((dir) => existsSync(dir));
  }

  /**
   * Applies the limits (absent ones stay unlimited) and returns those it could not enforce because
   * their controller is not available. Memory covers swap too: `memory=256M` is 256 MiB in all.
   */
  applyLimits(limits: Limits): LimitKey[] {
    const unenforced: LimitKey[] = [];
    const v2 = this.support.version === 2;
    if (limits.memoryBytes !== undefined) {
      const bytes = String(limits.memoryBytes);
      if (!this.#write('memory', v2 ? 'memory.max' : 'memory.limit_in_bytes', bytes)) unenforced.push('memoryBytes');
      else this.#writeIfPresent('memory', v2 ? 'memory.swap.max' : 'memory.memsw.limit_in_bytes', v2 ? '0' : bytes);
    }
    if (limits.procs !== undefined && !this.#write('pids', 'pids.max', String(limits.procs))) unenforced.push('procs');
    if (limits.cpuPercent !== undefined) {
      const quota = String((limits.cpuPercent * CPU_PERIOD_US) / 100);
      const ok = v2
        ? this.#write('cpu', 'cpu.max', `${quota} ${CPU_PERIOD_US}`)
        : this.#write('cpu', 'cpu.cfs_period_us', String(CPU_PERIOD_US)) && this.#write('cpu', 'cpu.cfs_quota_us', quota);
      if (!ok) unenforced.push('cpuPercent');
    }
    return unenforced;
  }

  /** Moves a process (all its threads) into the cgroup, in every hierarchy. */
  addProcess(pid: number): void {
    for (const dir of this.#uniqueDirs()) {
      try {
        writeFileSync(join(dir, 'cgroup.procs'), String(pid));
      } catch (err) {
        throw systemError(`cannot move process ${pid} into cgroup ${this.path}`, err);
      }
    }
  }

  /** The processes in it (host pids); empty when it does not exist. */
  pids(): number[] {
    // Every process is in every hierarchy, except after a crash in the middle of moving one: union.
    const pids = new Set<number>();
    for (const dir of this.#uniqueDirs()) {
      try {
        for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (pid) pids.add(Number(pid));
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw systemError(`cannot list the processes of cgroup ${this.path}`, err);
      }
    }
    return [...pids];
  }

  /** Whether the freezer controller is available, so {@link freeze} works. */
  get canFreeze(): boolean {
    return this.#dirs.has('freezer');
  }

  /** Freezes every process; resolves once the kernel reports the cgroup frozen. */
  async freeze(): Promise<void> {
    await this.#setFrozen(true);
  }

  /** Thaws every process; resolves once the kernel reports the cgroup thawed. */
  async thaw(): Promise<void> {
    await this.#setFrozen(false);
  }

  /** Sends `signal` to every process in it now (a process that exits meanwhile is skipped). */
  signalAll(signal: NodeJS.Signals, except: ReadonlySet<number> = new Set()): void {
    for (const pid of this.pids()) if (!except.has(pid)) signalProcess(pid, signal);
  }

  /**
   * SIGKILLs every process and resolves once none is left. Uses `cgroup.kill` (v2) or freezes first,
   * so no process can fork a child that escapes the kill.
   */
  async killAll(): Promise<void> {
    if (!this.exists()) return;
    const victims = new Set(this.pids());
    const v2 = this.support.version === 2;
    if (v2 && existsSync(join(this.#unifiedDir(), 'cgroup.kill'))) {
      writeFileSync(join(this.#unifiedDir(), 'cgroup.kill'), '1');
    } else {
      const frozen = this.canFreeze && (await this.freeze().then(() => true, () => false));
      for (const pid of this.pids()) victims.add(pid);
      this.signalAll('SIGKILL');
      if (frozen) await this.thaw();
      // Without a freezer a fork may race the kill: repeat until nothing is left.
      if (!frozen) {
        await waitFor(() => {
          for (const pid of this.pids()) victims.add(pid);
          this.signalAll('SIGKILL');
          return this.pids().length === 0;
        }, this.#wait('to be killed'));
      }
    }
    await this.waitEmpty();
    // A process leaves its cgroup early in its exit; PID 1 of a namespace then still waits for the
    // namespace to empty. Done when every victim is a zombie or gone.
    await waitFor(() => [...victims].every((pid) => !isLive(pid)), this.#wait('processes to finish exiting'));
  }

  /** Resolves once no process is left in it (it does not kill anything). */
  async waitEmpty(timeoutMs = SETTLE_MS): Promise<void> {
    if (this.support.version === 2) {
      await waitForFile(join(this.#unifiedDir(), 'cgroup.events'), (text) => /^populated 0$/m.test(text), { timeoutMs, what: `cgroup ${this.path} to be empty` });
    } else {
      await waitFor(() => this.pids().length === 0, { timeoutMs, what: `cgroup ${this.path} to be empty` });
    }
  }

  /** Removes it once empty (it does not kill anything; see {@link killAll}). A missing cgroup is fine. */
  async remove(): Promise<void> {
    if (!this.exists()) return;
    await this.waitEmpty();
    // Right after the last exit the kernel may still report the directory busy for a moment.
    await waitFor(() => {
      try {
        this.#rmdirAll();
        return true;
      } catch (err) {
        if (errorCode(err) === 'EBUSY') return false;
        throw systemError(`cannot remove cgroup ${this.path}`, err);
      }
    }, this.#wait('to be removable'));
  }

  /** How many processes the memory limit has killed in this cgroup (0 without a memory controller). */
  oomKills(): number {
    const file = this.support.version === 2 ? 'memory.events' : 'memory.oom_control';
    const dir = this.#dirs.get('memory');
    if (!dir) return 0;
    try {
      const match = /^oom_kill (\d+)$/m.exec(readFileSync(join(dir, file), 'utf8'));
      return match ? Number(match[1]) : 0;
    } catch {
      return 0;
    }
  }

  /** The paths (relative, deepest first) of the cgroups below this one, for cleaning up a whole tree. */
  descendants(): string[] {
    const found = new Set<string>();
    // A crash may have left a cgroup in some hierarchies only: look in every one.
    const visit = (dir: string, rel: string): void => {
      let names: string[];
      try {
        names = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
      } catch {
        return;
      }
      for (const name of names) {
        found.add(`${rel}/${name}`);
        visit(join(dir, name), `${rel}/${name}`);
      }
    };
    for (const dir of this.#uniqueDirs()) visit(dir, this.path);
    return [...found].sort((a, b) => b.split('/').length - a.split('/').length);
  }

  async #setFrozen(frozen: boolean): Promise<void> {
    const dir = this.#dirs.get('freezer');
    if (!dir) throw new WparError('EINVAL', `cannot ${frozen ? 'freeze' : 'thaw'} cgroup ${this.path}: no freezer controller`);
    const what = `cgroup ${this.path} to be ${frozen ? 'frozen' : 'thawed'}`;
    try {
      if (this.support.version === 2) {
        writeFileSync(join(dir, 'cgroup.freeze'), frozen ? '1' : '0');
        await waitForFile(join(dir, 'cgroup.events'), (t) => new RegExp(`^frozen ${frozen ? 1 : 0}$`, 'm').test(t), { timeoutMs: SETTLE_MS, what });
      } else {
        // v1 reports FREEZING until every task is frozen; writing FROZEN again retries stragglers.
        const state = frozen ? 'FROZEN' : 'THAWED';
        const file = join(dir, 'freezer.state');
        await waitFor(() => {
          if (readFileSync(file, 'utf8').trim() === state) return true;
          writeFileSync(file, state);
          return readFileSync(file, 'utf8').trim() === state;
        }, { timeoutMs: SETTLE_MS, what });
      }
    } catch (err) {
      if (frozen) await this.#setFrozen(false).catch(() => undefined);
      throw systemError(`cannot ${frozen ? 'freeze' : 'thaw'} cgroup ${this.path}`, err);
    }
  }

  /** Writes a control file of `controller`; false when the controller is not available. */
  #write(controller: CgroupController, file: string, value: string): boolean {
    const dir = this.#dirs.get(controller);
    if (!dir) return false;
    try {
      writeFileSync(join(dir, file), value);
      return true;
    } catch (err) {
      throw systemError(`cannot set ${file}=${value} in cgroup ${this.path}`, err);
    }
  }

  #writeIfPresent(controller: CgroupController, file: string, value: string): void {
    const dir = this.#dirs.get(controller);
    if (dir && existsSync(join(dir, file))) this.#write(controller, file, value);
  }

  /** v2: every ancestor must delegate the controllers to its children before the leaf can use them. */
  #createV2(): void {
    const root = this.support.mounts[this.support.controllers[0]!]!;
    const wanted = this.support.controllers.filter((c) => c !== 'freezer');
    let dir = root;
    for (const segment of this.path.split('/')) {
      const available = readFileSync(join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/);
      const enable = wanted.filter((c) => available.includes(c)).map((c) => `+${c}`).join(' ');
      if (enable) {
        try {
          writeFileSync(join(dir, 'cgroup.subtree_control'), enable);
        } catch (err) {
          // The "no internal processes" rule: a non-root cgroup holding processes cannot delegate.
          throw systemError(`cannot enable ${enable} below ${dir}`, err);
        }
      }
      dir = join(dir, segment);
      mkdirSync(dir, { recursive: true });
    }
  }

  #rmdirAll(): void {
    for (const dir of this.#uniqueDirs()) {
      try {
        rmdirSync(dir);
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw err;
      }
    }
  }

  /** One directory per mounted hierarchy (co-mounted v1 controllers and v2 share one). */
  #uniqueDirs(): string[] {
    return [...new Set(this.#dirs.values())];
  }

  /** v2: the cgroup's one directory. */
  #unifiedDir(): string {
    return this.#dirs.values().next().value!;
  }

  #wait(what: string): { timeoutMs: number; what: string } {
    return { timeoutMs: SETTLE_MS, what: `cgroup ${this.path} ${what}` };
  }
}

/** Sends a signal, ignoring a process that is already gone. */
export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if (errorCode(err) !== 'ESRCH') throw systemError(`cannot send ${signal} to process ${pid}`, err);
  }
}

function checkPath(path: string): string {
  const segments = path.split('/');
  if (segments.some((s) => !SEGMENT.test(s) || s === '.' || s === '..')) {
    throw new WparError('EINVAL', `bad cgroup path "${path}": expected relative segments of letters, digits, "_", "." and "-"`);
  }
  return path;
}

/** v2 control files such as cgroup.events notify through inotify: re-read on every change. */
async function waitForFile(file: string, ok: (text: string) => boolean, options: { timeoutMs: number; what: string }): Promise<void> {
  const read = (): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return 'populated 0\nfrozen 0\n';
      throw err;
    }
  };
  let watcher: ReturnType<typeof watch>;
  try {
    watcher = watch(file);
  } catch {
    await waitFor(() => ok(read()), options);
    return;
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new WparError('ETIMEDOUT', `gave up waiting ${options.timeoutMs} ms for ${options.what}`)), options.timeoutMs);
      const check = (): void => {
        if (ok(read())) {
          clearTimeout(timer);
          resolve();
        }
      };
      watcher.on('change', check);
      watcher.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      check();
    });
  } finally {
    watcher.close();
  }
}
