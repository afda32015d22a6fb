/**
 * End-to-end harness: a real `wpard` in a temp home (a child process, as a user would run it) and the
 * real commands (`dist/cli/bin/*.js`), each run as its own process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import type { WparInfo } from '../../src/daemon/protocol.ts';
import { within } from '../support/bounded.ts';

/** The repository root (tests run against the built `dist/`). */
export const ROOT = resolve(import.meta.dirname, '../..');
const DIST = join(ROOT, 'dist');

/** What a command printed and how it exited. */
export interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `node FILE ARGS` to completion; a command still running after `timeoutMs` is killed and the
 * wait rejects (a hung command fails its test instead of hanging it).
 */
export function runNode(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [file, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} still running after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolvePromise({ code, stdout, stderr }); });
  });
}

/** Runs a command (`dist/cli/bin/COMMAND.js --home HOME ARGS...`) to completion. */
export function runCommand(home: string, command: string, args: readonly string[]): Promise<Ran> {
  return runNode(join(DIST, 'cli/bin', `${command}.js`), ['--home', home, ...args]);
}

/** Runs a command that must succeed; returns its stdout (throws with its stderr otherwise). */
export async function mustRun(home: string, command: string, args: readonly string[]): Promise<string> {
  const r = await runCommand(home, command, args);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** One system: a daemon in its own temp home. */
export class System implements AsyncDisposable {
  readonly home: string;
  readonly #daemon: ChildProcess;
  readonly #exited: Promise<number | null>;
  #log = '';
  readonly #logWaiters = new Set<() => void>();

  private constructor(home: string, daemon: ChildProcess) {
    this.home = home;
    this.#daemon = daemon;
    this.#exited = new Promise((r) => daemon.once('exit', (code) => r(code)));
  }

  /**
   * Starts `wpard --home TEMP [--extension M]...`; resolves once it serves its socket. `netns` runs it
   * on a test host (`nsenter --net`, which unlike `ip netns exec` keeps /sys and so the cgroups);
   * `user` runs it as that uid (and gid) instead of root.
   */
  static async start(options: { home?: string; extensions?: readonly string[]; args?: readonly string[]; netns?: string; user?: number } = {}): Promise<System> {
    const home = options.home ?? mkdtempSync(join(tmpdir(), 'corral-e2e-'));
    const args = ['--home', home, ...(options.extensions ?? []).flatMap((e) => ['--extension', e]), ...(options.args ?? [])];
    const argv = [process.execPath, join(DIST, 'daemon/wpard.js'), ...args];
    const wrapped = options.netns === undefined ? argv : ['nsenter', `--net=/run/netns/${options.netns}`, '--', ...argv];
    const ids = options.user === undefined ? {} : { uid: options.user, gid: options.user };
    const daemon = spawn(wrapped[0]!, wrapped.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], ...ids });
    const sys = new System(home, daemon);
    const lines = createInterface({ input: daemon.stderr! });
    try {
      await within(new Promise<void>((ready, fail) => {
        lines.on('line', (l) => {
          sys.#log += l + '\n';
          for (const w of sys.#logWaiters) w();
          if (l.includes(' serving ')) ready();
        });
        daemon.once('exit', (code) => fail(new Error(`wpard exited (${code}) before serving:\n${sys.#log}`)));
      }), `wpard to serve ${home}`);
    } catch (err) {
      daemon.kill('SIGKILL'); // never leave a daemon behind a failed start
      throw err;
    }
    return sys;
  }

  /** What the daemon wrote to stderr so far. */
  get log(): string {
    return this.#log;
  }

  /** Resolves the daemon's log so far once it matches `pattern` (bounded: rejects after `ms`). */
  waitForLog(pattern: RegExp, ms = 20_000): Promise<string> {
    let check = (): void => {};
    return within(new Promise<string>((resolve) => {
      check = () => { if (pattern.test(this.#log)) resolve(this.#log); };
      this.#logWaiters.add(check);
      check();
    }), `wpard to log ${pattern}`, ms).finally(() => this.#logWaiters.delete(check));
  }

  /** Sends `signal` to the daemon. */
  signal(signal: NodeJS.Signals): void {
    this.#daemon.kill(signal);
  }

  /** The daemon's pid. */
  get pid(): number {
    return this.#daemon.pid!;
  }

  /** Runs a command (`mkwpar`, `lswpar`, `wpar`, ...) against this system. */
  run(command: string, args: readonly string[]): Promise<Ran> {
    return runCommand(this.home, command, args);
  }

  /** Runs a command that must succeed; returns its stdout. */
  ok(command: string, args: readonly string[]): Promise<string> {
    return mustRun(this.home, command, args);
  }

  /** `lswpar --json [NAME...]`. */
  async list(...names: string[]): Promise<WparInfo[]> {
    return JSON.parse(await this.ok('lswpar', ['--json', ...names])) as WparInfo[];
  }

  /** One WPAR from `lswpar --json`. */
  async wpar(name: string): Promise<WparInfo> {
    return (await this.list(name))[0]!;
  }

  /** SIGTERM (clean stop); resolves the daemon's exit code. */
  async stop(): Promise<number | null> {
    this.#daemon.kill('SIGTERM');
    return within(this.#exited, `wpard (pid ${this.pid}) to exit after SIGTERM`, 60_000);
  }

  /** SIGKILL (a crash); resolves once it is gone. */
  async crash(): Promise<void> {
    this.#daemon.kill('SIGKILL');
    await within(this.#exited, `wpard (pid ${this.pid}) to exit after SIGKILL`);
  }

  /** Resolves when the daemon exits. */
  get exited(): Promise<number | null> {
    return this.#exited;
  }

  /** Stops the daemon (if running) and removes the home. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#daemon.exitCode === null && this.#daemon.signalCode === null) await this.stop();
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** Host pids of processes whose environment has `WPAR_NAME=name` and whose cwd is under `home`. */
export function processesOf(name: string, home: string): number[] {
  const found: number[] = [];
  for (const entry of readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readText(`/proc/${entry}/environ`).split('\0');
      if (env.includes(`WPAR_NAME=${name}`) && env.some((v) => v.startsWith('WPAR_ROOT=') && v.slice(10).startsWith(home))) found.push(Number(entry));
    } catch { /* gone, or not ours to read */ }
  }
  return found;
}

function readdir(p: string): string[] { return readdirSync(p); }
function readText(p: string): string { return readFileSync(p, 'latin1'); }

/**
 * Subscribes to the daemon's event stream and resolves (once subscribed) to `{ event }`, a promise of
 * the first event matching `predicate`: subscribe, then act, then await — no sleeping, no missed event.
 * (Wrapped in an object because a promise resolved with a promise would wait for it.)
 */
export function subscribe(sys: System, predicate: (e: Record<string, unknown>) => boolean): Promise<{ event: Promise<Record<string, unknown>> }> {
  return new Promise((subscribed, reject) => {
    const req = request({ socketPath: join(sys.home, 'run/wpard.sock'), path: '/v1/events?follow=1&tail=0' }, (res) => {
      res.on('error', () => {}); // we end the stream ourselves once the event is seen
      const lines = createInterface({ input: res });
      lines.on('error', () => {}); // readline re-emits the stream's 'aborted' when the daemon goes first
      subscribed({
        event: within(new Promise<Record<string, unknown>>((match) => {
          lines.on('line', (l) => {
            const e = JSON.parse(l) as Record<string, unknown>;
            if (predicate(e)) { match(e); lines.close(); res.destroy(); }
          });
        }), 'a matching event').finally(() => res.destroy()),
      });
    });
    req.on('error', (err) => { if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err); });
    req.end();
  });
}

/**
 * Resolves with the console output of WPAR `name` once it matches `pattern` (following its log as
 * it is written); rejects if the run ends without a match or none comes within `timeoutMs`.
 */
export function waitForOutput(sys: System, name: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  let destroy = (): void => {};
  return within(new Promise<string>((resolvePromise, reject) => {
    const req = request({ socketPath: join(sys.home, 'run/wpard.sock'), path: `/v1/wpars/${name}/logs?follow=1` }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('error', () => {});
      destroy = () => res.destroy();
      res.on('data', (d: string) => {
        text += d;
        if (pattern.test(text)) { resolvePromise(text); res.destroy(); }
      });
      res.on('end', () => reject(new Error(`${name}: output ended without ${pattern}:\n${text}`)));
    });
    req.on('error', reject);
    req.end();
  }), `output of ${name} matching ${pattern}`, timeoutMs).finally(() => destroy());
}

/** Makes `on` trust the images `signer` writes (M8: images are signed, restarts check the signer). */
export async function trust(on: System, signer: System): Promise<void> {
  const id = JSON.parse(await signer.ok('wpar', ['identity', '--json'])) as { fingerprint: string };
  await on.ok('wpar', ['peer', 'add', `signer-${id.fingerprint.slice(7, 15)}`, id.fingerprint]);
}
