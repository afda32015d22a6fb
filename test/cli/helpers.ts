// Test helpers for the commands: an in-memory Io and a tiny fake wpard on a temporary Unix socket.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Interruption, Io } from '../../src/cli/io.ts';
import type { WparInfo } from '../../src/daemon/protocol.ts';
import { within } from '../support/bounded.ts';

/** An Io whose output is kept in memory and whose interruptions the test sends. */
export interface TestIo {
  readonly io: Io;
  /** Everything written to stdout. */
  stdout(): string;
  /** Everything written to stderr. */
  stderr(): string;
  /** Delivers an interruption to the subscribed handlers. */
  interrupt(why?: Interruption): void;
  /** How many handlers are subscribed. */
  subscribers(): number;
  /** Resolves when a handler subscribes (at once if one is). */
  subscribed(): Promise<void>;
  /** Resolves once stdout holds `text`. */
  waitForStdout(text: string): Promise<void>;
}

function sink(onWrite: () => void): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      onWrite();
      cb();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

export function testIo(env: NodeJS.ProcessEnv = {}, cwd = '/work/dir'): TestIo {
  const handlers = new Set<(why: Interruption) => void>();
  const waiters: (() => void)[] = [];
  const outWaiters: { text: string; resolve: () => void }[] = [];
  const check = (): void => {
    for (const w of [...outWaiters]) {
      if (out.text().includes(w.text)) {
        outWaiters.splice(outWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const out = sink(check);
  const err = sink(() => {});
  const io: Io = {
    stdout: out.stream,
    stderr: err.stream,
    cwd,
    env,
    onInterrupt(handler) {
      handlers.add(handler);
      for (const w of waiters.splice(0)) w();
      return () => { handlers.delete(handler); };
    },
  };
  return {
    io,
    stdout: out.text,
    stderr: err.text,
    interrupt: (why = 'SIGINT') => { for (const h of [...handlers]) h(why); },
    subscribers: () => handlers.size,
    subscribed: () => within(new Promise<void>((resolve) => { if (handlers.size > 0) resolve(); else waiters.push(resolve); }), 'an interrupt subscriber'),
    waitForStdout: (text) => within(new Promise<void>((resolve) => { outWaiters.push({ text, resolve }); check(); }), `${JSON.stringify(text)} on stdout`),
  };
}

/** A request the fake daemon received. */
export interface Received {
  readonly method: string;
  readonly url: string;
  readonly body: unknown;
}

/** Answers one request; may keep `res` open to stream. */
export type Handler = (req: Received, res: ServerResponse, raw: IncomingMessage) => void;

/** A fake wpard on `HOME/run/wpard.sock`. */
export interface FakeDaemon {
  readonly home: string;
  readonly received: Received[];
  /** Resolves when the `nth` (default first) request matching `method` and the url prefix has arrived. */
  arrived(method: string, urlPrefix: string, nth?: number): Promise<Received>;
  close(): Promise<void>;
}

/** Sends a JSON answer. */
export function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Sends the daemon's error answer. */
export function apiError(res: ServerResponse, status: number, code: string, message: string): void {
  json(res, status, { error: { code, message } });
}

/** A temporary home with no daemon. */
export function tempHome(): { home: string; remove(): void } {
  const home = mkdtempSync(join(tmpdir(), 'corral-cli-'));
  return { home, remove: () => rmSync(home, { recursive: true, force: true }) };
}

/** Starts a fake daemon whose `handler` answers every request. */
export async function fakeDaemon(handler: Handler): Promise<FakeDaemon> {
  const { home, remove } = tempHome();
  mkdirSync(join(home, 'run'));
  const received: Received[] = [];
  const watchers: { method: string; prefix: string; nth: number; resolve: (r: Received) => void }[] = [];
  const matching = (method: string, prefix: string): Received[] => received.filter((r) => r.method === method && r.url.startsWith(prefix));
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const r: Received = { method: req.method ?? '', url: req.url ?? '', body: text === '' ? undefined : JSON.parse(text) };
      received.push(r);
      for (const w of [...watchers]) {
        const found = matching(w.method, w.prefix)[w.nth - 1];
        if (found) {
          watchers.splice(watchers.indexOf(w), 1);
          w.resolve(found);
        }
      }
      handler(r, res, req);
    });
  });
  await new Promise<void>((resolve) => server.listen(join(home, 'run', 'wpard.sock'), resolve));
  return {
    home,
    received,
    arrived: (method, prefix, nth = 1) => within(new Promise((resolve) => {
      const done = matching(method, prefix)[nth - 1];
      if (done) resolve(done);
      else watchers.push({ method, prefix, nth, resolve });
    }), `request ${nth} of ${method} ${prefix}`),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      remove();
    },
  };
}

/** A WparInfo as the daemon answers it, with `overrides`. */
export function wparInfo(overrides: Partial<WparInfo> & { name?: string } = {}): WparInfo {
  const name = overrides.name ?? 'web';
  return {
    name,
    state: 'D',
    cid: null,
    phase: null,
    checkpointable: false,
    denials: [],
    autostart: false,
    definition: { name, argv: ['node', 'server.js'], env: {}, hostname: null, checkpointable: false, limits: {}, autostart: false },
    root: `/home/u/.local/state/corral/wpars/${name}/root`,
    isolation: null,
    isolationMissing: [],
    unenforcedLimits: [],
    pid: null,
    startedAt: null,
    lastExit: null,
    transient: false,
    ...overrides,
  };
}
