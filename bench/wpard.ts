/**
 * A real `wpard` for the benches: a child process on a temp home, and JSON calls to its control API.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** The repository root (the benches run the built `dist/`). */
export const ROOT = resolve(import.meta.dirname, '..');

/** A wpard child process on a temp home. */
export interface Daemon { home: string; proc: ChildProcess }

/** Starts `wpard --home TEMP ARGS...`; resolves once it serves. */
export async function startDaemon(args: readonly string[] = []): Promise<Daemon> {
  const home = mkdtempSync(join(tmpdir(), 'corral-bench-'));
  const proc = spawn(process.execPath, [join(ROOT, 'dist/daemon/wpard.js'), '--home', home, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  for await (const line of createInterface({ input: proc.stderr! })) if (line.includes(' serving ')) break;
  return { home, proc };
}

/** SIGTERM (a clean stop), then removes the home. */
export async function stopDaemon(d: Daemon): Promise<void> {
  const exited = new Promise((r) => d.proc.once('exit', r));
  d.proc.kill('SIGTERM');
  await exited;
  rmSync(d.home, { recursive: true, force: true });
}

/** One control API call; resolves its JSON answer (null when empty), rejects on a non-2xx status. */
export function call<T = unknown>(d: Daemon, method: string, path: string, body?: unknown): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ socketPath: join(d.home, 'run/wpard.sock'), method, path, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; });
      res.on('end', () => (res.statusCode! < 300 ? resolvePromise((text ? JSON.parse(text) : null) as T) : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
