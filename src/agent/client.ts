/**
 * The program's side of the agent (R6): {@link Agent}, which `corral/agent` exports as `agent`.
 * One lazily opened connection per agent, reused by every call; it never keeps the program alive on
 * its own (see {@link Agent}).
 * @module
 */
import { createConnection, type Socket } from 'node:net';
import { basename } from 'node:path';
import { WparError, type ErrnoCode } from '../kernel/errno.ts';
import {
  AGENT_PROTOCOL, encodeLine, isAgentName, isWireId, MAX_LINE_BYTES, toStateEnvelope,
  type StateEnvelope, type WireId, type WireMessage,
} from './protocol.ts';
import { JsonLinesChannel } from './rpc.ts';
import { decodeState, encodeState } from './state.ts';

/** The longest denial reason (the kernel's rule). */
const MAX_REASON = 1024;
/** Lines from the daemon are trusted; the cap only guards against a runaway peer. */
const MAX_INBOUND_LINE = 256 * 1024 * 1024;
/** A connection that drops after living at least this long is reopened at once if participants were registered. */
const RECONNECT_AFTER_MS = 1000;
const ERRNO_CODES: ReadonlySet<string> = new Set<ErrnoCode>([
  'EPERM', 'ENOENT', 'EINTR', 'EIO', 'EAGAIN', 'EBUSY', 'EEXIST', 'EINVAL', 'ENOSPC', 'EMSGSIZE', 'ETIMEDOUT', 'ECANCELED',
]);

/** Options of {@link createAgent}. */
export interface AgentOptions {
  /** The agent socket; default `process.env.WPAR_AGENT`. Unset or empty: the agent is inert. */
  readonly socketPath?: string | undefined;
  /** The PID sent in `hello` (default `process.pid`); the owner becomes `agent:WPARNAME/PID`. */
  readonly pid?: number;
  /** The program name sent in `hello`, for the daemon's log (default: the main script's file name). */
  readonly name?: string;
}

/** What `afterCheckpoint` is told. */
export interface CheckpointInfo {
  /** True when the image was written; false when the checkpoint failed after this participant saved. */
  readonly completed: boolean;
}

/**
 * A named piece of program state that takes part in checkpoint and restart. Names are unique within
 * a WPAR (across all its processes).
 */
export interface Participant<S = unknown> {
  /** 1 to 256 characters, no control characters. */
  readonly name: string;
  /**
   * Called when a checkpoint has begun (no denial is outstanding) and before the WPAR is frozen.
   * Returns (or resolves) the state to save: any structured-clone-able value. Code that changes that
   * state should hold a denial (see {@link Agent.deny}), so the saved state and the files in the
   * WPAR's root agree. Throwing fails the checkpoint, naming this participant.
   */
  beforeCheckpoint(): S | Promise<S>;
  /** Called once the checkpoint is over and the WPAR runs again (also when it failed after saving). */
  afterCheckpoint?(info: CheckpointInfo): void | Promise<void>;
  /** Called on the arrival system with the saved state, before `register()` resolves there. */
  afterRestore(state: S): void | Promise<void>;
}

/**
 * One checkpoint denial (a kernel DENY owned by `agent:WPARNAME/PID`) until {@link AgentDenial.allow}.
 * `using d = await agent.deny(...)` allows it at scope exit without waiting for the daemon's answer;
 * `await using` waits for it.
 */
export class AgentDenial implements Disposable, AsyncDisposable {
  /** Why checkpoints are denied. */
  readonly reason: string;
  /** The kernel owner, `agent:WPARNAME/PID`; `undefined` when inert. */
  readonly owner: string | undefined;
  /** When the kernel recorded it (ms since the epoch); `undefined` when inert. */
  readonly since: number | undefined;
  /** True outside a WPAR: the denial does nothing. */
  readonly inert: boolean;
  readonly #allow: (() => Promise<boolean>) | undefined;
  readonly #connected: () => boolean;
  #allowed: Promise<boolean> | undefined;

  /** @internal Made by {@link Agent.deny}. */
  constructor(reason: string, live?: {
    owner: string; since: number; allow: () => Promise<boolean>; connected: () => boolean;
  }) {
    this.reason = reason;
    this.owner = live?.owner;
    this.since = live?.since;
    this.inert = live === undefined;
    this.#allow = live?.allow;
    this.#connected = live?.connected ?? (() => false);
  }

  /** True until allowed or until its connection dropped (which released it). Always false when inert. */
  get active(): boolean {
    return this.#allowed === undefined && this.#connected();
  }

  /**
   * Withdraws the denial. Resolves true when the kernel removed it, false when it was already gone
   * (allowed before, or released with its connection) or inert. Idempotent.
   */
  allow(): Promise<boolean> {
    this.#allowed ??= this.#allow === undefined ? Promise.resolve(false) : this.#allow();
    return this.#allowed;
  }

  /** Allows without waiting for the daemon's answer (a failure is ignored: the denial ends with its connection anyway). */
  [Symbol.dispose](): void {
    this.allow().catch(() => {});
  }

  /** Allows and waits for the daemon's answer. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.allow();
  }
}

/**
 * What {@link Agent.deny} returns: the promise of the {@link AgentDenial} (await it to know the
 * denial is in force, or to see why it could not be made), and already a handle itself (R6:
 * "`agent.deny(reason)` → a handle"): `allow()` and disposal work on it before it has settled — they
 * wait for the denial, then withdraw it. Its `then` gives plain promises.
 */
export class PendingDenial extends Promise<AgentDenial> implements Disposable, AsyncDisposable {
  static override get [Symbol.species](): PromiseConstructor { return Promise; }

  /** @internal */
  static of(made: Promise<AgentDenial>): PendingDenial {
    let settle!: { ok: (d: AgentDenial) => void; fail: (e: unknown) => void };
    const p = new PendingDenial((ok, fail) => { settle = { ok, fail }; });
    made.then(settle.ok, settle.fail);
    return p;
  }

  /** Withdraws the denial once it is made: true when the kernel removed it; false if it was already gone, inert or never made. */
  allow(): Promise<boolean> {
    return this.then((d) => d.allow(), () => false);
  }

  /** Withdraws it without waiting (a failure to make it is ignored here: await the promise to see it). */
  [Symbol.dispose](): void {
    void this.allow();
  }

  /** Withdraws it and waits for the daemon's answer. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.allow();
  }
}

/** A registered participant. Unregistering stops it from being saved or restored. */
export class AgentRegistration implements Disposable, AsyncDisposable {
  /** The participant's name. */
  readonly name: string;
  /** True outside a WPAR: nothing was registered. */
  readonly inert: boolean;
  readonly #unregister: () => Promise<void>;
  readonly #registered: () => boolean;

  /** @internal Made by {@link Agent.register}. */
  constructor(name: string, live?: { unregister: () => Promise<void>; registered: () => boolean }) {
    this.name = name;
    this.inert = live === undefined;
    this.#unregister = live?.unregister ?? (() => Promise.resolve());
    this.#registered = live?.registered ?? (() => false);
  }

  /** True while registered with the daemon (false when inert, unregistered, or its connection is down). */
  get registered(): boolean {
    return this.#registered();
  }

  /** Unregisters; resolves once the daemon confirmed (or at once if the connection is gone). Idempotent. */
  unregister(): Promise<void> {
    return this.#unregister();
  }

  /** Unregisters without waiting for the daemon. */
  [Symbol.dispose](): void {
    this.#unregister().catch(() => {});
  }

  /** Unregisters and waits for the daemon. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#unregister();
  }
}

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

interface Entry {
  readonly participant: Participant<unknown>;
  /** The connection it is registered on; `undefined` while its first registration is in flight. */
  link: Link | undefined;
  /** Settles when a `restore` for it has been handled. */
  readonly restored: Deferred;
}

interface Link {
  readonly socket: Socket;
  /** Its JSON-lines framing and this end's outstanding requests (`rpc.ts`, shared with the daemon). */
  readonly channel: JsonLinesChannel;
  readonly openedAt: number;
  owner: string | undefined;
  /** The longest line the daemon accepts (from `hello`). */
  maxLine: number;
  closed: boolean;
}

/** An error answered to a daemon request. */
class ParticipantError extends Error {
  readonly code: string;
  readonly participant: string | undefined;
  constructor(code: string, message: string, participant?: string) {
    super(message);
    this.code = code;
    this.participant = participant;
  }
}

/**
 * The agent of one program. Use the `agent` that `corral/agent` exports; {@link createAgent} makes
 * others (tests, a second socket).
 *
 * Connection: opened by the first `deny` or `register`, reused by every later call, and referenced
 * (keeping the program alive) only while a call is waiting for the daemon or a daemon request is
 * being handled. A program that registered participants and finished its work exits normally.
 *
 * Reconnection: when the connection drops, its denials are gone (the daemon released them; their
 * handles turn inactive) and calls waiting on it reject with ECANCELED. The next call opens a new
 * connection and registers the surviving participants again. If participants were registered and the
 * dropped connection had lived at least a second, one new connection is attempted at once; if that
 * fails a warning is emitted and the next call tries again. There is no retry loop.
 */
export class Agent {
  /** True iff the program runs in a WPAR (the socket path is set); otherwise every call is inert. */
  readonly inWpar: boolean;
  /** The agent socket, or `undefined` outside a WPAR. */
  readonly socketPath: string | undefined;
  readonly #pid: number;
  readonly #name: string | undefined;
  readonly #entries = new Map<string, Entry>();
  readonly #sockets = new Set<Socket>();
  #link: Link | undefined;
  #linking: Promise<Link> | undefined;
  #busy = 0;

  /** @internal Use {@link createAgent}. */
  constructor(options: AgentOptions = {}) {
    const path = Object.hasOwn(options, 'socketPath') ? options.socketPath : process.env['WPAR_AGENT'];
    this.socketPath = path ? path : undefined;
    this.inWpar = this.socketPath !== undefined;
    this.#pid = options.pid ?? process.pid;
    const script = process.argv[1];
    this.#name = options.name ?? (script ? basename(script) : undefined);
  }

  /** The kernel owner this program's denials belong to (`agent:WPARNAME/PID`) once connected, else `undefined`. */
  get owner(): string | undefined {
    return this.#link?.closed === false ? this.#link.owner : undefined;
  }

  /**
   * Denies checkpoints of this WPAR for `reason` (1 to 1024 characters) until the handle is allowed,
   * the program exits or its connection drops. Outside a WPAR it resolves an inert handle. The
   * result is a handle at once ({@link PendingDenial}: `using d = agent.deny(...)` works) and the
   * promise of the denial (`await` it to know it is in force).
   * Rejects with WparError EBUSY while a checkpoint of this WPAR is in progress (retry once it completes);
   * EINVAL for a bad reason; ENOENT when the daemon cannot be reached or the WPAR is not active.
   */
  deny(reason: string): PendingDenial {
    return PendingDenial.of(this.#deny(reason));
  }

  async #deny(reason: string): Promise<AgentDenial> {
    if (typeof reason !== 'string' || reason.length < 1 || reason.length > MAX_REASON) {
      throw new WparError('EINVAL', `a denial reason must be a string of 1 to ${MAX_REASON} characters`);
    }
    if (!this.inWpar) return new AgentDenial(reason);
    this.#hold();
    try {
      const link = await this.#connect();
      let answer: WireMessage;
      try {
        answer = await this.#call(link, 'deny', { reason });
      } catch (err) {
        if (err instanceof WparError && err.code === 'EBUSY') {
          throw new WparError('EBUSY',
            `cannot deny a checkpoint (${JSON.stringify(reason)}): a checkpoint of this WPAR is in progress; ` +
            'deny() can be retried after it completes', { cause: err });
        }
        throw err;
      }
      const denial = answer['denial'];
      return new AgentDenial(reason, {
        owner: String(answer['owner'] ?? link.owner),
        since: typeof answer['since'] === 'number' ? answer['since'] : Date.now(),
        connected: () => !link.closed,
        allow: () => this.#allowDenial(link, denial),
      });
    } finally {
      this.#release();
    }
  }

  /**
   * Registers a participant. Resolves once the daemon registered it — and, on the arrival system of a
   * restart, once its `afterRestore` has run with the saved state, so work can begin from that state.
   * Outside a WPAR it resolves an inert handle and the callbacks are never called.
   * @throws WparError EEXIST when the name is already registered in this WPAR; EINVAL for a bad
   * participant; ENOENT when the daemon cannot be reached; the error `afterRestore` threw.
   */
  async register<S>(participant: Participant<S>): Promise<AgentRegistration> {
    checkParticipant(participant);
    const name = participant.name;
    if (!this.inWpar) return new AgentRegistration(name);
    if (this.#entries.has(name)) {
      throw new WparError('EEXIST', `participant "${name}" is already registered by this program`);
    }
    const entry: Entry = { participant: participant as Participant<unknown>, link: undefined, restored: deferred() };
    this.#entries.set(name, entry);
    this.#hold();
    try {
      const link = await this.#connect();
      const answer = await this.#call(link, 'register', { name });
      entry.link = link;
      if (answer['restoring'] === true) await entry.restored.promise;
      return new AgentRegistration(name, {
        registered: () => this.#entries.get(name) === entry && entry.link?.closed === false,
        unregister: () => this.#unregister(entry),
      });
    } catch (err) {
      if (this.#entries.get(name) === entry) this.#entries.delete(name);
      throw err;
    } finally {
      this.#release();
    }
  }

  /**
   * Ends the connection: the daemon releases every denial of this program and forgets its
   * participants. The agent stays usable: a later call connects again.
   */
  close(): void {
    this.#entries.clear();
    for (const socket of this.#sockets) socket.destroy();
  }

  // --- connection ---------------------------------------------------------------------------------

  #connect(): Promise<Link> {
    if (this.#link !== undefined && !this.#link.closed) return Promise.resolve(this.#link);
    this.#linking ??= this.#open().finally(() => { this.#linking = undefined; });
    return this.#linking;
  }

  async #open(): Promise<Link> {
    const path = this.socketPath!;
    const socket = createConnection(path);
    this.#sockets.add(socket);
    this.#refresh();
    const link: Link = {
      socket, openedAt: Date.now(), owner: undefined, maxLine: MAX_LINE_BYTES, closed: false,
      channel: new JsonLinesChannel(socket, {
        maxLine: MAX_INBOUND_LINE,
        onMessage: (m, line) => this.#onMessage(link, m, line),
        onMalformed: (_kind, message) => process.emitWarning(`corral agent: ignored a malformed line from the daemon: ${message}`),
        onOversize: () => process.emitWarning(`corral agent: the daemon sent a line longer than ${MAX_INBOUND_LINE} bytes; it was ignored`),
      }),
    };
    socket.on('close', () => this.#lost(link));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
    } catch (err) {
      throw new WparError('ENOENT',
        `cannot reach the WPAR agent at ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    socket.on('error', () => {}); // 'close' follows and does the work
    try {
      const hello = await this.#call(link, 'hello', {
        protocol: AGENT_PROTOCOL, pid: this.#pid, ...(this.#name !== undefined ? { name: this.#name.slice(0, 256) } : {}),
      });
      link.owner = typeof hello['owner'] === 'string' ? hello['owner'] : undefined;
      const max = hello['maxLineBytes'];
      if (typeof max === 'number' && Number.isInteger(max) && max > 0) link.maxLine = max;
    } catch (err) {
      socket.destroy();
      throw err;
    }
    this.#link = link;
    // Participants of a dropped connection register again on this one.
    for (const [name, entry] of this.#entries) {
      if (entry.link === undefined || entry.link === link || !entry.link.closed) continue;
      try {
        await this.#call(link, 'register', { name });
        entry.link = link;
      } catch (err) {
        if (this.#entries.get(name) === entry) this.#entries.delete(name);
        process.emitWarning(`corral agent: participant "${name}" could not be registered again after a reconnection: ${(err as Error).message}`);
      }
    }
    return link;
  }

  #lost(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    const lost = (): WparError => new WparError('ECANCELED', `the connection to the WPAR agent at ${this.socketPath} closed`);
    link.channel.close(lost);
    this.#sockets.delete(link.socket);
    if (this.#link === link) this.#link = undefined;
    let orphans = false;
    for (const entry of this.#entries.values()) {
      if (entry.link !== link) continue;
      entry.restored.reject(lost());
      orphans = true;
    }
    if (orphans && Date.now() - link.openedAt >= RECONNECT_AFTER_MS) {
      this.#connect().catch((err: Error) => {
        process.emitWarning(`corral agent: could not reconnect to ${this.socketPath}: ${err.message}`);
      });
    }
  }

  /** Sends a request and resolves its successful answer; rejects with the daemon's error as a WparError. */
  #call(link: Link, type: string, fields: WireMessage): Promise<WireMessage> {
    if (link.closed) {
      return Promise.reject(new WparError('ECANCELED', `the connection to the WPAR agent at ${this.socketPath} closed`));
    }
    this.#hold();
    return link.channel.request(type, fields).then((answer) => {
      if (answer['ok'] === true) return answer;
      throw toWparError(answer['error']);
    }).finally(() => this.#release());
  }

  /** A message that answers none of ours: a request from the daemon, or a stray answer (warned about). */
  #onMessage(link: Link, m: WireMessage, line: string): void {
    if (!Object.hasOwn(m, 'type')) {
      // id null: the daemon could not read one of our lines; nothing waits for that answer.
      const e = m['error'] as { message?: unknown } | undefined;
      process.emitWarning(`corral agent: the daemon answered no outstanding request: ${String(e?.message ?? line)}`);
      return;
    }
    const id = m['id'];
    if (isWireId(id)) void this.#serve(link, id, m);
  }

  // --- requests from the daemon --------------------------------------------------------------------

  async #serve(link: Link, id: WireId, m: WireMessage): Promise<void> {
    this.#hold();
    try {
      const fields = await this.#handle(m);
      const line = encodeLine({ id, ok: true, ...fields });
      const size = Buffer.byteLength(line) - 1;
      if (size > link.maxLine) {
        const states = Object.entries((fields['states'] ?? {}) as Record<string, unknown>)
          .map(([name, state]) => [name, JSON.stringify(state).length] as const).sort((x, y) => y[1] - x[1]);
        const biggest = states[0]?.[0];
        throw new ParticipantError('EINVAL', `the answer to ${String(m['type'])} is ${size} bytes, over the daemon's limit of ` +
          `${link.maxLine} bytes per line${biggest !== undefined ? `; the largest state is participant "${biggest}"'s` : ''}` +
          ' (keep large data in files in the WPAR\'s root: they are part of the image)', biggest);
      }
      if (!link.closed) link.channel.sendLine(line);
    } catch (err) {
      const e = err instanceof ParticipantError ? err : new ParticipantError('EINVAL', (err as Error).message);
      const error = { code: e.code, message: e.message, ...(e.participant !== undefined ? { participant: e.participant } : {}) };
      if (!link.closed) link.channel.send({ id, ok: false, error });
    } finally {
      this.#release();
    }
  }

  async #handle(m: WireMessage): Promise<WireMessage> {
    const type = m['type'];
    switch (type) {
      case 'save': {
        const states: Record<string, StateEnvelope> = {};
        for (const name of names(m['participants'])) {
          const entry = this.#entries.get(name);
          if (entry === undefined) continue; // unregistered meanwhile: nothing to save
          let value: unknown;
          try {
            value = await entry.participant.beforeCheckpoint();
          } catch (err) {
            throw new ParticipantError('ECANCELED', `beforeCheckpoint of participant "${name}" failed: ${message(err)}`, name);
          }
          try {
            states[name] = encodeState(value);
          } catch (err) {
            throw new ParticipantError('EINVAL', `the state of participant "${name}" cannot be saved: ${message(err)}`, name);
          }
        }
        return { states };
      }
      case 'saved': {
        const info: CheckpointInfo = { completed: m['completed'] !== false };
        let first: ParticipantError | undefined;
        for (const name of names(m['participants'])) {
          try {
            await this.#entries.get(name)?.participant.afterCheckpoint?.(info);
          } catch (err) {
            first ??= new ParticipantError('ECANCELED', `afterCheckpoint of participant "${name}" failed: ${message(err)}`, name);
          }
        }
        if (first) throw first;
        return {};
      }
      case 'restore': {
        const raw = m['states'];
        const states = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw as Record<string, unknown> : {};
        let first: ParticipantError | undefined;
        for (const [name, value] of Object.entries(states)) {
          const entry = this.#entries.get(name);
          if (entry === undefined) {
            first ??= new ParticipantError('ENOENT', `participant "${name}" is not registered in this program`, name);
            continue;
          }
          try {
            const envelope = toStateEnvelope(value);
            if (envelope === undefined) throw new Error('the daemon sent a state that is not a state envelope');
            await entry.participant.afterRestore(decodeState(envelope));
            entry.restored.resolve();
          } catch (err) {
            entry.restored.reject(err);
            first ??= new ParticipantError('ECANCELED', `afterRestore of participant "${name}" failed: ${message(err)}`, name);
          }
        }
        if (first) throw first;
        return {};
      }
      default:
        throw new ParticipantError('EINVAL', `unknown request type ${JSON.stringify(type)}`);
    }
  }

  // --- denials and participants ----------------------------------------------------------------------

  async #allowDenial(link: Link, denial: unknown): Promise<boolean> {
    if (link.closed) return false;
    try {
      const answer = await this.#call(link, 'allow', { denial });
      return answer['allowed'] === true;
    } catch (err) {
      if (link.closed) return false; // the connection dropped: the daemon released the denial
      throw err;
    }
  }

  async #unregister(entry: Entry): Promise<void> {
    const name = entry.participant.name;
    if (this.#entries.get(name) !== entry) return;
    this.#entries.delete(name);
    const link = entry.link;
    if (link === undefined || link.closed) return;
    try {
      await this.#call(link, 'unregister', { name });
    } catch (err) {
      if (!link.closed) throw err;
    }
  }

  // --- keeping the program alive only while needed ----------------------------------------------------

  #hold(): void {
    if (this.#busy++ === 0) this.#refresh();
  }

  #release(): void {
    if (--this.#busy === 0) this.#refresh();
  }

  #refresh(): void {
    for (const socket of this.#sockets) {
      if (this.#busy > 0) socket.ref();
      else socket.unref();
    }
  }
}

/**
 * Makes an agent. `createAgent()` is what the exported `agent` is: it reads `WPAR_AGENT` once, now.
 */
export function createAgent(options: AgentOptions = {}): Agent {
  return new Agent(options);
}

function checkParticipant(p: unknown): asserts p is Participant<unknown> {
  const o = (typeof p === 'object' && p !== null ? p : {}) as Record<string, unknown>;
  if (!isAgentName(o['name'])) {
    throw new WparError('EINVAL', 'a participant needs "name": a string of 1 to 256 characters without control characters');
  }
  if (typeof o['beforeCheckpoint'] !== 'function' || typeof o['afterRestore'] !== 'function'
    || (o['afterCheckpoint'] !== undefined && typeof o['afterCheckpoint'] !== 'function')) {
    throw new WparError('EINVAL',
      `participant "${String(o['name'])}" needs beforeCheckpoint() and afterRestore(state) functions (afterCheckpoint() is optional)`);
  }
}

function names(x: unknown): string[] {
  return Array.isArray(x) ? x.filter((n): n is string => typeof n === 'string') : [];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toWparError(error: unknown): WparError {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown };
  const text = typeof e.message === 'string' ? e.message : 'the daemon gave no reason';
  if (typeof e.code === 'string' && ERRNO_CODES.has(e.code)) return new WparError(e.code as ErrnoCode, text);
  return new WparError('EINVAL', `${typeof e.code === 'string' ? `${e.code}: ` : ''}${text}`);
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => {}); // nobody may be waiting (a participant registered before any restore)
  return { promise, resolve, reject };
}
