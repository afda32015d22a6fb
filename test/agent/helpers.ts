/**
 * Test support for the agent: a real kernel with an active WPAR and the real agent server on a temp
 * socket; a raw JSON-lines client (what a program in another language would do); line readers.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createKernel, type Kernel, type KernelEvent } from '../../src/index.ts';
import { startAgentServer, type AgentServer, type AgentServerOptions } from '../../src/agent/server.ts';
import { within } from '../support/bounded.ts';

/** One system: a kernel, an active (or restarting) WPAR and its agent server. */
export interface System extends AsyncDisposable {
  readonly kernel: Kernel;
  readonly cid: number;
  readonly dir: string;
  readonly socketPath: string;
  readonly server: AgentServer;
  /** Every line the server logged. */
  readonly logs: string[];
  /** Resolves the first logged line (already logged or still to come) that matches. */
  waitLog(match: (line: string) => boolean): Promise<string>;
}

/** Boots a kernel, activates WPAR `name` and starts its agent server in a fresh temp directory. */
export async function system(options: {
  name?: string; restart?: boolean; server?: Partial<AgentServerOptions>;
} = {}): Promise<System> {
  const name = options.name ?? 'web';
  const kernel = createKernel();
  const cid = await kernel.activate({ name }, { restart: options.restart === true });
  const dir = mkdtempSync(join(tmpdir(), 'corral-agent-'));
  const socketPath = join(dir, 'agent.sock');
  const logs: string[] = [];
  const logged = new EventEmitter();
  const server = await startAgentServer({
    socketPath, wparName: name,
    openOwner: (owner) => kernel.extension(owner),
    cid: () => (kernel.status(cid) !== undefined ? cid : undefined),
    log: (line) => { logs.push(line); logged.emit('line', line); },
    ...options.server,
  });
  return {
    kernel, cid, dir, socketPath, server, logs,
    waitLog: (match) => within(new Promise((resolve) => {
      const seen = logs.find(match);
      if (seen !== undefined) return resolve(seen);
      const on = (line: string): void => {
        if (!match(line)) return;
        logged.off('line', on);
        resolve(line);
      };
      logged.on('line', on);
    }), 'a matching agent server log line'),
    async [Symbol.asyncDispose]() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves the next kernel event that matches. */
export function nextEvent(kernel: Kernel, match: (e: KernelEvent) => boolean): Promise<KernelEvent> {
  return within(new Promise((resolve) => {
    const sub = kernel.subscribe((e) => {
      if (match(e)) {
        sub.unsubscribe();
        resolve(e);
      }
    });
  }), 'a matching kernel event');
}

/** A raw protocol client: writes lines, reads JSON messages in order. */
export class RawClient implements Disposable {
  readonly socket: Socket;
  readonly #queue: Record<string, unknown>[] = [];
  readonly #waiters: ((m: Record<string, unknown>) => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    createInterface({ input: socket }).on('line', (line) => {
      const m = JSON.parse(line) as Record<string, unknown>;
      const w = this.#waiters.shift();
      if (w) w(m);
      else this.#queue.push(m);
    });
    socket.on('error', () => {});
  }

  /** Connects to `path`. */
  static async open(path: string): Promise<RawClient> {
    const socket = connect(path);
    await within(new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }), `a connection to ${path}`);
    return new RawClient(socket);
  }

  /** Writes raw text (no newline added). */
  write(text: string): void {
    this.socket.write(text);
  }

  /** Writes one message as a line. */
  send(message: Record<string, unknown>): void {
    this.socket.write(`${JSON.stringify(message)}\n`);
  }

  /** The next message received. */
  next(): Promise<Record<string, unknown>> {
    const m = this.#queue.shift();
    if (m) return Promise.resolve(m);
    return within(new Promise((resolve) => this.#waiters.push(resolve)), 'the next agent message');
  }

  /** Sends a request and returns the next message (the answer, when the daemon sends nothing else). */
  async request(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.send(message);
    return this.next();
  }

  [Symbol.dispose](): void {
    this.socket.destroy();
  }
}

/** Collects a stream's lines; `waitFor` resolves when a matching line arrives (or has arrived). */
export class Lines {
  readonly all: string[] = [];
  readonly #waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];

  constructor(stream: Readable) {
    createInterface({ input: stream }).on('line', (line) => {
      this.all.push(line);
      for (const w of [...this.#waiters]) {
        if (w.match(line)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
  }

  /** The first line (already seen or still to come) that matches. */
  waitFor(match: (line: string) => boolean): Promise<string> {
    const seen = this.all.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return within(new Promise((resolve) => this.#waiters.push({ match, resolve })), 'a matching line');
  }
}
