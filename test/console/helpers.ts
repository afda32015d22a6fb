/** Console test helpers: a real daemon with `--http :0`, and plain HTTP requests to its console. */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { processesOf, System } from '../e2e/harness.ts';

/** A system whose daemon serves the console; `origin` and `login` as it printed them. */
export interface ConsoleSystem { sys: System; origin: string; login: string; token: string }

/** Starts `wpard --home TEMP --http :0` and reads the console's address from what it printed. */
export async function startConsoleSystem(): Promise<ConsoleSystem & AsyncDisposable> {
  const sys = await System.start({ args: ['--http', ':0'] });
  const m = /console on (http:\/\/\S+): open (\S+)/.exec(sys.log);
  if (!m) { await sys[Symbol.asyncDispose](); throw new Error(`wpard printed no console address:\n${sys.log}`); }
  const login = m[2]!;
  return { sys, origin: m[1]!, login, token: new URL(login).searchParams.get('token')!, [Symbol.asyncDispose]: () => sys[Symbol.asyncDispose]() };
}

/** What an HTTP request got. */
export interface Got { readonly status: number; readonly headers: Record<string, string | string[] | undefined>; readonly body: string }

/** One HTTP request (no redirects followed); the body is read to the end, or for `stream`, the first chunk. */
export function http(url: string, options: { method?: string; headers?: Record<string, string>; body?: string; firstChunk?: boolean } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (options.firstChunk) { res.destroy(); resolve({ status: res.statusCode!, headers: res.headers, body }); }
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', () => {});
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer from ${url} in 20 s`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The host pid of the WPAR's process running `script` (its node process). */
export function pidRunning(sys: System, name: string, script: string): number {
  const pid = processesOf(name, sys.home).find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[1] === script);
  if (pid === undefined) throw new Error(`${name}: no process runs ${script}`);
  return pid;
}
