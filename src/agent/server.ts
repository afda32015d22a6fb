/**
 * The daemon's side of the agent (R6): one Unix socket per WPAR, speaking the JSON-lines protocol of
 * `docs/agent-protocol.md`. Each connection is one kernel owner `agent:WPARNAME/PID`; its denials are
 * kernel denials, released when the connection ends. Participants registered over any connection are
 * saved and restored together for checkpoint (R4) and restart (R5).
 *
 * ```ts
 * const agents = await startAgentServer({
 *   socketPath: home.agentSocket(cid), wparName: 'web',
 *   openOwner: (name) => kernel.extension(name), cid: () => cidOf('web'),
 * });
 * const states = await agents.save();   // after TRY succeeded, before freezing
 * await agents.saved();                 // after CLEAR and thaw
 * ```
 * @module
 */
import { chmodSync, lstatSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { DenialHandle } from '../api/handles.ts';
import type { Owner } from '../api/owner.ts';
import { WparError, type ErrnoCode } from '../kernel/errno.ts';
import {
  AGENT_PROTOCOL, ByteBudget, encodeLine, isAgentName, isWireId, MAX_LINE_BYTES, toStateEnvelope,
  type OversizeReason,
  type StateEnvelope, type WireError, type WireId, type WireMessage,
} from './protocol.ts';
import { JsonLinesChannel } from './rpc.ts';

/** The kernel owner a connection acts as: what the server needs of {@link Owner}. */
export type AgentOwner = Pick<Owner, 'deny' | 'close'>;

/** Options of {@link startAgentServer}. */
export interface AgentServerOptions {
  /**
   * Where the socket is bound (absolute; at most 107 bytes on Linux). Its directory must exist; a
   * private temporary directory is made beside it while binding. A stale socket there is replaced;
   * anything else there, or a socket something still listens on, fails with EEXIST.
   */
  readonly socketPath: string;
  /** The WPAR's name: owners are `agent:WPARNAME/PID`. */
  readonly wparName: string;
  /** Opens the kernel owner for a connection (the daemon passes `(name) => kernel.extension(name)`). */
  readonly openOwner: (ownerName: string) => AgentOwner;
  /** The WPAR's cid while it holds one, else `undefined` (a `deny` then fails with ENOENT). */
  readonly cid: () => number | undefined;
  /** Receives one line per notable event (connections, registrations, protocol errors, late answers). */
  readonly log?: (message: string) => void;
  /** How long a program may take to answer `save` or `saved` (default 10000 ms). */
  readonly saveTimeoutMs?: number;
  /** How long `restore()` waits for every participant to register and restore (default 30000 ms). */
  readonly restoreTimeoutMs?: number;
  /** The longest line accepted from a program, in bytes (default {@link MAX_LINE_BYTES}). */
  readonly maxLineBytes?: number;
  /** The most programs connected at once (default {@link MAX_AGENT_CONNECTIONS}); one more is told EAGAIN and closed. */
  readonly maxConnections?: number;
  /**
   * What every connection's partial line may hold at once, shared across servers (default: one budget
   * of {@link AGENT_BUFFER_BYTES} for the whole process, i.e. all WPARs of a daemon). A line that does
   * not fit is discarded and answered EMSGSIZE, as one longer than `maxLineBytes` is.
   */
  readonly budget?: ByteBudget;
}

/** Default {@link AgentServerOptions.maxConnections}: programs connected to one WPAR's agent socket at once. */
export const MAX_AGENT_CONNECTIONS = 64;
/** Bytes all agent connections of a process may buffer in partial lines at once: 64 MiB. */
export const AGENT_BUFFER_BYTES = 64 * 1024 * 1024;
/** The process-wide budget every agent server uses unless given its own. */
const processBudget = new ByteBudget(AGENT_BUFFER_BYTES);

/** One connected program, as {@link AgentServer.connections} reports it. */
export interface AgentConnectionInfo {
  /** Its kernel owner, `agent:WPARNAME/PID`, or `undefined` before `hello`. */
  readonly owner: string | undefined;
  /** The PID it said it has (its own view: inside a PID namespace, the namespace's PID). */
  readonly pid: number | undefined;
  /** The program name it gave in `hello`, if any. */
  readonly name: string | undefined;
  /** Participants it registered, in registration order. */
  readonly participants: readonly string[];
  /** How many of its denials are outstanding. */
  readonly denials: number;
}

/** The agent endpoint of one WPAR. */
export interface AgentServer {
  /** The socket's path. */
  readonly socketPath: string;
  /**
   * Asks every program with participants to save (`save`), in parallel, and resolves participant
   * name → state envelope (JSON-safe: write it into the image as JSON, hand it back to `restore`).
   * Rejects with a WparError naming every participant that failed: ETIMEDOUT when one did not answer
   * within `saveTimeoutMs`, ECANCELED when one refused, answered badly or disconnected.
   */
  save(): Promise<Record<string, StateEnvelope>>;
  /**
   * Tells every program with participants that the checkpoint is over (`saved`; each participant's
   * `afterCheckpoint`). `completed: false` says the checkpoint failed after `save` (R4.6). Resolves
   * when all answered or timed out; failures are logged, never thrown (the checkpoint is already decided).
   */
  saved(options?: { readonly completed?: boolean }): Promise<void>;
  /**
   * Hands each participant its state (`restore`) and resolves once every participant named in
   * `states` has restored. Participants that register later (the restarted processes start after this
   * call, or before) are handed theirs as they register. Rejects with a WparError naming each
   * participant that did not register or restore within `restoreTimeoutMs` (ETIMEDOUT), or that
   * failed (ECANCELED); EINVAL for a state that is not an envelope; EBUSY if a restore is already running.
   */
  restore(states: Readonly<Record<string, unknown>>): Promise<void>;
  /** Names of the participants registered now, across connections, in registration order. */
  participants(): string[];
  /** The connected programs. */
  connections(): AgentConnectionInfo[];
  /** Bytes its connections hold in partial lines now (0 once they are closed). */
  bufferedBytes(): number;
  /**
   * Stops listening, ends every connection (closing its owner, which releases its denials), rejects a
   * restore in progress and removes the socket. Idempotent.
   */
  close(): Promise<void>;
}

interface Conn {
  readonly socket: Socket;
  /** Its JSON-lines framing and the daemon's outstanding requests on it (`rpc.ts`, shared with the SDK). */
  readonly channel: JsonLinesChannel;
  pid: number | undefined;
  name: string | undefined;
  owner: AgentOwner | undefined;
  ownerName: string | undefined;
  readonly denials: Map<number, DenialHandle>;
  nextDenial: number;
  readonly participants: Set<string>;
  closed: boolean;
}

interface RestoreJob {
  readonly states: ReadonlyMap<string, StateEnvelope>;
  /** Participants not restored yet. */
  readonly remaining: Set<string>;
  /** Participants a `restore` was sent to, with the owner it went to. */
  readonly sent: Map<string, string>;
  readonly deadline: number;
  readonly finish: (err?: WparError) => void;
}

const DEFAULT_SAVE_TIMEOUT_MS = 10_000;
const DEFAULT_RESTORE_TIMEOUT_MS = 30_000;
const ERRNO_CODES: ReadonlySet<string> = new Set<ErrnoCode>([
  'EPERM', 'ENOENT', 'EINTR', 'EIO', 'EAGAIN', 'EBUSY', 'EEXIST', 'EINVAL', 'ENOSPC', 'EMSGSIZE', 'ETIMEDOUT', 'ECANCELED',
]);

/**
 * Binds the agent socket of one WPAR (mode 0600, never reachable with a wider mode) and serves it.
 * @throws WparError EEXIST when something else is at `socketPath`; the bind's own error otherwise.
 */
export async function startAgentServer(options: AgentServerOptions): Promise<AgentServer> {
  const server = new AgentServerImpl(options);
  await server.listen();
  return server;
}

class AgentServerImpl implements AgentServer {
  readonly socketPath: string;
  readonly #o: AgentServerOptions;
  readonly #saveTimeoutMs: number;
  readonly #restoreTimeoutMs: number;
  readonly #maxLine: number;
  readonly #maxConnections: number;
  readonly #budget: ByteBudget;
  readonly #server: Server;
  readonly #conns = new Set<Conn>();
  /** Participant name → the connection that registered it. */
  readonly #participants = new Map<string, Conn>();
  #restore: RestoreJob | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: AgentServerOptions) {
    this.#o = options;
    this.socketPath = options.socketPath;
    this.#saveTimeoutMs = positive(options.saveTimeoutMs, DEFAULT_SAVE_TIMEOUT_MS, 'saveTimeoutMs');
    this.#restoreTimeoutMs = positive(options.restoreTimeoutMs, DEFAULT_RESTORE_TIMEOUT_MS, 'restoreTimeoutMs');
    this.#maxLine = positive(options.maxLineBytes, MAX_LINE_BYTES, 'maxLineBytes');
    this.#maxConnections = positive(options.maxConnections, MAX_AGENT_CONNECTIONS, 'maxConnections');
    this.#budget = options.budget ?? processBudget;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  async listen(): Promise<void> {
    const path = this.socketPath;
    // Bind inside a fresh 0700 directory, chmod 0600, then rename into place: the socket is never
    // reachable by others, not even for the moment between bind and chmod.
    // The metadata calls are synchronous: each is microseconds, where an async call costs a
    // thread-pool round trip, and this runs on every WPAR start (1.5 ms of it before).
    const tmp = mkdtempSync(join(dirname(path), '.a'));
    const tmpSocket = join(tmp, 's');
    try {
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen(tmpSocket, () => {
          this.#server.off('error', reject);
          resolve();
        });
      });
      this.#server.on('error', (err) => this.#log(`agent socket error: ${err.message}`));
      chmodSync(tmpSocket, 0o600);
      await clearStaleSocket(path);
      renameSync(tmpSocket, path);
    } catch (err) {
      this.#server.close();
      throw err;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  participants(): string[] {
    return [...this.#participants.keys()];
  }

  bufferedBytes(): number {
    let n = 0;
    for (const c of this.#conns) n += c.channel.buffered;
    return n;
  }

  connections(): AgentConnectionInfo[] {
    return [...this.#conns].map((c) => ({
      owner: c.ownerName, pid: c.pid, name: c.name, participants: [...c.participants], denials: c.denials.size,
    }));
  }

  async save(): Promise<Record<string, StateEnvelope>> {
    if (this.#closed) throw new WparError('EPERM', `the agent server of WPAR "${this.#o.wparName}" is closed`);
    const groups = this.#byConnection();
    const outcomes = await Promise.all(groups.map(async ([conn, names]) => {
      try {
        return { conn, names, answer: await this.#request(conn, 'save', { participants: names }, this.#saveTimeoutMs, names) };
      } catch (err) {
        return { conn, names, error: err as WparError };
      }
    }));
    const states: Record<string, StateEnvelope> = {};
    const problems: string[] = [];
    let timedOut = false;
    for (const o of outcomes) {
      if (o.error !== undefined) {
        timedOut ||= o.error.code === 'ETIMEDOUT';
        problems.push(o.error.message);
        continue;
      }
      const answer = o.answer;
      if (answer['ok'] !== true) {
        problems.push(failure(o.conn, o.names, 'save', answer['error']));
        continue;
      }
      const got = answer['states'];
      const map = typeof got === 'object' && got !== null && !Array.isArray(got) ? got as Record<string, unknown> : {};
      for (const name of o.names) {
        const envelope = Object.hasOwn(map, name) ? toStateEnvelope(map[name]) : undefined;
        if (envelope !== undefined) states[name] = envelope;
        else if (o.conn.participants.has(name)) {
          problems.push(`participant "${name}" (${o.conn.ownerName}) answered save without a valid state for it`);
        } // else: it unregistered while saving — it has nothing to save
      }
    }
    if (problems.length > 0) {
      throw new WparError(timedOut ? 'ETIMEDOUT' : 'ECANCELED',
        `agents of WPAR "${this.#o.wparName}" could not save: ${problems.join('; ')}`);
    }
    return states;
  }

  async saved(options: { readonly completed?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    const completed = options.completed !== false;
    await Promise.all(this.#byConnection().map(async ([conn, names]) => {
      try {
        const answer = await this.#request(conn, 'saved', { participants: names, completed }, this.#saveTimeoutMs, names);
        if (answer['ok'] !== true) this.#log(failure(conn, names, 'saved', answer['error']));
      } catch (err) {
        this.#log((err as Error).message);
      }
    }));
  }

  restore(input: Readonly<Record<string, unknown>>): Promise<void> {
    const wpar = this.#o.wparName;
    if (this.#closed) return Promise.reject(new WparError('EPERM', `the agent server of WPAR "${wpar}" is closed`));
    if (this.#restore !== undefined) {
      return Promise.reject(new WparError('EBUSY', `a restore of the agents of WPAR "${wpar}" is already in progress`));
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      return Promise.reject(new WparError('EINVAL', 'restore() takes an object: participant name → saved state'));
    }
    const states = new Map<string, StateEnvelope>();
    for (const [name, value] of Object.entries(input)) {
      const envelope = toStateEnvelope(value);
      if (!isAgentName(name) || envelope === undefined) {
        return Promise.reject(new WparError('EINVAL',
          `cannot restore participant ${JSON.stringify(name)} of WPAR "${wpar}": its saved state is not a state envelope`));
      }
      states.set(name, envelope);
    }
    if (states.size === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const late = [...job.remaining].map((name) => {
          const owner = job.sent.get(name);
          return owner === undefined
            ? `participant "${name}" did not register`
            : `participant "${name}" (${owner}) did not finish restoring`;
        });
        finish(new WparError('ETIMEDOUT',
          `agents of WPAR "${wpar}" not restored after ${this.#restoreTimeoutMs / 1000} s: ${late.join('; ')}`));
      }, this.#restoreTimeoutMs);
      const finish = (err?: WparError): void => {
        if (this.#restore !== job) return;
        this.#restore = undefined;
        clearTimeout(timer);
        if (err === undefined) resolve();
        else reject(err);
      };
      const job: RestoreJob = {
        states, remaining: new Set(states.keys()), sent: new Map(), deadline: Date.now() + this.#restoreTimeoutMs, finish,
      };
      this.#restore = job;
      for (const [conn, names] of this.#byConnection()) {
        const mine = names.filter((n) => states.has(n));
        if (mine.length > 0) this.#deliverRestore(conn, mine);
      }
    });
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#restore?.finish(new WparError('ECANCELED', `the agent server of WPAR "${this.#o.wparName}" closed during the restore`));
    const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const conn of this.#conns) {
      this.#drop(conn, 'the agent server closed');
      conn.socket.destroy();
    }
    this.#closing = (async () => {
      await stopped;
      await unlink(this.socketPath).catch(() => {});
    })();
    return this.#closing;
  }

  // --- connections ---------------------------------------------------------------------------

  #accept(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.#conns.size >= this.#maxConnections) {
      const message = `too many agent connections to WPAR "${this.#o.wparName}" (at most ${this.#maxConnections})`;
      this.#log(message);
      socket.on('error', () => {});
      socket.end(encodeLine({ id: null, ok: false, error: { code: 'EAGAIN', message } }));
      socket.destroySoon();
      return;
    }
    const conn: Conn = {
      socket,
      channel: new JsonLinesChannel(socket, {
        maxLine: this.#maxLine,
        budget: this.#budget,
        onMessage: (m) => this.#onMessage(conn, m),
        onMalformed: (kind, message) => this.#fail(conn, null, 'EINVAL', kind === 'json' ? `malformed line (not JSON): ${message}` : 'malformed line: a message is a JSON object'),
        onOversize: (why) => this.#onOversize(conn, why),
        // A program's answer has `ok` and no `type`; anything else is a request (and checked as one).
        isAnswer: (m) => !Object.hasOwn(m, 'type') && Object.hasOwn(m, 'ok'),
      }),
      pid: undefined, name: undefined, owner: undefined, ownerName: undefined,
      denials: new Map(), nextDenial: 1, participants: new Set(), closed: false,
    };
    this.#conns.add(conn);
    socket.on('error', (err) => this.#log(`${label(conn)}: connection error: ${err.message}`));
    socket.on('close', () => this.#drop(conn, 'its connection closed'));
  }

  /** The connection ended: its owner closes (releasing its denials), its participants leave. */
  #drop(conn: Conn, why: string): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.channel.close((type) => new WparError('ECANCELED', `${label(conn)} disconnected before answering ${type}`));
    this.#conns.delete(conn);
    for (const name of conn.participants) this.#participants.delete(name);
    if (conn.owner !== undefined) {
      try {
        conn.owner.close();
      } catch (err) {
        this.#log(`${label(conn)}: closing its owner failed: ${(err as Error).message}`);
      }
    }
    if (conn.ownerName !== undefined) {
      const released = conn.denials.size > 0 ? `, ${conn.denials.size} denial(s) released` : '';
      this.#log(`${label(conn)} left (${why})${released}`);
    }
    conn.denials.clear();
  }

  #send(conn: Conn, message: WireMessage): void {
    if (!conn.closed) conn.channel.send(message);
  }

  #answer(conn: Conn, id: WireId | null, fields: WireMessage = {}): void {
    this.#send(conn, { id, ok: true, ...fields });
  }

  #fail(conn: Conn, id: WireId | null, code: ErrnoCode, message: string): void {
    this.#send(conn, { id, ok: false, error: { code, message } });
  }

  #onOversize(conn: Conn, why: OversizeReason): void {
    const message = why === 'line'
      ? `line longer than ${this.#maxLine} bytes: discarded up to its end`
      : `line discarded up to its end: the daemon's agent connections already hold ${this.#budget.limit} bytes of partial lines`;
    this.#log(`${label(conn)}: ${message}`);
    this.#fail(conn, null, 'EMSGSIZE', message);
    // Only an answer to save can legitimately be that big: fail what waits for it now rather than at its timeout.
    conn.channel.failOutstanding((type) => new WparError('ECANCELED', why === 'line'
      ? `${label(conn)} answered ${type} with a line longer than ${this.#maxLine} bytes (state too large?)`
      : `${label(conn)} answered ${type} with a line that did not fit the agent buffer budget (${this.#budget.limit} bytes)`));
  }

  #onMessage(conn: Conn, m: WireMessage): void {
    if (!Object.hasOwn(m, 'type') && Object.hasOwn(m, 'ok')) {
      // The channel matched every answer to an outstanding request: this one answers nothing.
      this.#log(`${label(conn)}: ignored an answer to no outstanding request (id ${JSON.stringify(m['id'] ?? null)})`);
      return;
    }
    const id = m['id'];
    if (!isWireId(id)) {
      this.#fail(conn, null, 'EINVAL', 'malformed request: "id" must be a number or a string of 1 to 256 characters');
      return;
    }
    const type = m['type'];
    if (typeof type !== 'string') {
      this.#fail(conn, id, 'EINVAL', 'malformed request: "type" must be a string');
      return;
    }
    if (type !== 'hello' && type !== 'ping' && conn.ownerName === undefined) {
      this.#fail(conn, id, 'EPERM', `send hello first (got "${type}")`);
      return;
    }
    try {
      switch (type) {
        case 'hello': return this.#hello(conn, id, m);
        case 'ping': return this.#answer(conn, id);
        case 'deny': return this.#deny(conn, id, m);
        case 'allow': return this.#allow(conn, id, m);
        case 'register': return this.#register(conn, id, m);
        case 'unregister': return this.#unregister(conn, id, m);
        default: return this.#fail(conn, id, 'EINVAL', `unknown message type ${JSON.stringify(type)}`);
      }
    } catch (err) {
      const e = err as Error & { code?: unknown };
      const code = typeof e.code === 'string' && ERRNO_CODES.has(e.code) ? e.code as ErrnoCode : 'EINVAL';
      this.#fail(conn, id, code, e.message);
    }
  }

  // --- requests from the program ----------------------------------------------------------------

  #hello(conn: Conn, id: WireId, m: WireMessage): void {
    if (conn.ownerName !== undefined) return this.#fail(conn, id, 'EINVAL', 'hello was already sent on this connection');
    const protocol = m['protocol'];
    if (protocol !== AGENT_PROTOCOL) {
      return this.#fail(conn, id, 'EINVAL', `unsupported agent protocol ${JSON.stringify(protocol ?? null)}: this daemon speaks protocol ${AGENT_PROTOCOL}`);
    }
    const pid = m['pid'];
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1 || pid > 2 ** 31 - 1) {
      return this.#fail(conn, id, 'EINVAL', 'hello needs "pid": the program\'s process id (a positive integer)');
    }
    const name = m['name'];
    if (name !== undefined && name !== null && !isAgentName(name)) {
      return this.#fail(conn, id, 'EINVAL', 'hello "name" must be a string of 1 to 256 characters without control characters');
    }
    const base = `agent:${this.#o.wparName}/${pid}`;
    // A second connection from the same process gets its own owner: `agent:web/4711#2`, ...
    for (let n = 1; ; n++) {
      const ownerName = n === 1 ? base : `${base}#${n}`;
      try {
        conn.owner = this.#o.openOwner(ownerName);
        conn.ownerName = ownerName;
        break;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'EEXIST' || n >= 1000) throw err;
      }
    }
    conn.pid = pid;
    conn.name = typeof name === 'string' ? name : undefined;
    this.#log(`${label(conn)} connected${conn.name ? ` (${conn.name})` : ''}`);
    const cid = this.#o.cid();
    this.#answer(conn, id, {
      protocol: AGENT_PROTOCOL, wpar: this.#o.wparName, cid: cid ?? null, owner: conn.ownerName, maxLineBytes: this.#maxLine,
    });
  }

  #deny(conn: Conn, id: WireId, m: WireMessage): void {
    const reason = m['reason'];
    const wpar = this.#o.wparName;
    if (typeof reason !== 'string') return this.#fail(conn, id, 'EINVAL', 'deny needs "reason": a string of 1 to 1024 characters');
    const cid = this.#o.cid();
    if (cid === undefined) return this.#fail(conn, id, 'ENOENT', `cannot deny a checkpoint: WPAR "${wpar}" is not active`);
    let handle: DenialHandle;
    try {
      handle = conn.owner!.deny(cid, reason);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'EBUSY') {
        return this.#fail(conn, id, 'EBUSY',
          `cannot deny a checkpoint of WPAR "${wpar}": a checkpoint of this WPAR is in progress; deny() can be retried after it completes`);
      }
      throw err;
    }
    const denial = conn.nextDenial++;
    conn.denials.set(denial, handle);
    this.#answer(conn, id, { denial, owner: handle.owner, since: handle.since });
  }

  #allow(conn: Conn, id: WireId, m: WireMessage): void {
    const denial = m['denial'];
    const handle = typeof denial === 'number' ? conn.denials.get(denial) : undefined;
    if (handle === undefined) {
      return this.#fail(conn, id, 'EINVAL', `no denial ${JSON.stringify(denial ?? null)} outstanding on this connection`);
    }
    conn.denials.delete(denial as number);
    this.#answer(conn, id, { allowed: handle.allow() });
  }

  #register(conn: Conn, id: WireId, m: WireMessage): void {
    const name = m['name'];
    if (!isAgentName(name)) {
      return this.#fail(conn, id, 'EINVAL', 'register needs "name": a string of 1 to 256 characters without control characters');
    }
    const holder = this.#participants.get(name);
    if (holder !== undefined) {
      return this.#fail(conn, id, 'EEXIST',
        `participant "${name}" is already registered in WPAR "${this.#o.wparName}" (by ${holder.ownerName})`);
    }
    this.#participants.set(name, conn);
    conn.participants.add(name);
    const job = this.#restore;
    const restoring = job !== undefined && job.remaining.has(name) && !job.sent.has(name);
    this.#log(`${label(conn)} registered participant "${name}"${restoring ? ' (its state is being restored)' : ''}`);
    this.#answer(conn, id, { restoring });
    if (restoring) this.#deliverRestore(conn, [name]);
  }

  #unregister(conn: Conn, id: WireId, m: WireMessage): void {
    const name = m['name'];
    if (typeof name !== 'string' || !conn.participants.has(name)) {
      return this.#fail(conn, id, 'EINVAL', `no participant ${JSON.stringify(name ?? null)} registered on this connection`);
    }
    conn.participants.delete(name);
    this.#participants.delete(name);
    this.#log(`${label(conn)} unregistered participant "${name}"`);
    this.#answer(conn, id);
  }

  // --- requests to the program ------------------------------------------------------------------

  /** Sends a request; resolves the answer (ok or not); rejects on timeout or disconnection. */
  #request(conn: Conn, type: string, fields: WireMessage, timeoutMs: number, names: readonly string[]): Promise<WireMessage> {
    if (conn.closed) return Promise.reject(new WparError('ECANCELED', `${label(conn)} disconnected before ${type}`));
    return conn.channel.request(type, fields, {
      timeoutMs: Math.max(timeoutMs, 0),
      timeoutError: () => new WparError('ETIMEDOUT',
        `participant ${names.map((n) => `"${n}"`).join(', ')} (${label(conn)}) did not answer ${type} within ${Math.max(timeoutMs, 0) / 1000} s`),
    });
  }

  #deliverRestore(conn: Conn, names: readonly string[]): void {
    const job = this.#restore!;
    const subset: Record<string, StateEnvelope> = {};
    for (const name of names) {
      subset[name] = job.states.get(name)!;
      job.sent.set(name, label(conn));
    }
    this.#request(conn, 'restore', { states: subset }, job.deadline - Date.now(), names).then((answer) => {
      if (answer['ok'] !== true) {
        job.finish(new WparError('ECANCELED',
          `agents of WPAR "${this.#o.wparName}" could not restore: ${failure(conn, names, 'restore', answer['error'])}`));
        return;
      }
      for (const name of names) job.remaining.delete(name);
      if (job.remaining.size === 0) job.finish();
    }, (err: WparError) => {
      job.finish(new WparError(err.code, `agents of WPAR "${this.#o.wparName}" could not restore: ${err.message}`));
    });
  }

  /** Registered participants grouped by connection, each group in registration order. */
  #byConnection(): [Conn, string[]][] {
    const groups = new Map<Conn, string[]>();
    for (const [name, conn] of this.#participants) {
      const list = groups.get(conn);
      if (list === undefined) groups.set(conn, [name]);
      else list.push(name);
    }
    return [...groups];
  }

  #log(message: string): void {
    try {
      this.#o.log?.(message);
    } catch {
      // a failing logger never disturbs the server
    }
  }
}

function label(conn: Conn): string {
  return conn.ownerName ?? 'an agent connection (before hello)';
}

/** `participant "counter" (agent:web/4711) failed to save: <message>`. */
function failure(conn: Conn, names: readonly string[], what: string, error: unknown): string {
  const e = (typeof error === 'object' && error !== null ? error : {}) as Partial<WireError>;
  const who = typeof e.participant === 'string' ? [e.participant] : names;
  const message = typeof e.message === 'string' ? e.message : 'no reason given';
  const code = typeof e.code === 'string' ? ` (${e.code})` : '';
  return `participant ${who.map((n) => `"${n}"`).join(', ')} (${label(conn)}) failed to ${what}: ${message}${code}`;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new WparError('EINVAL', `startAgentServer: ${name} must be a positive integer`);
  return value;
}

/** Makes room at `path` for the socket: nothing there, or a socket no one listens on any more. */
async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new WparError('EEXIST', `cannot bind the agent socket at ${path}: something other than a socket is there`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new WparError('EEXIST', `cannot bind the agent socket at ${path}: an agent server is already listening there`);
}

