/**
 * Commands forwarded between members (C3) over the peer endpoint (TLS 1.3, mutual authentication,
 * the framing of `src/peer/wire.ts`). A call is one connection: the caller sends
 * `{type: "cluster.call", protocol, method, path, body}`, the callee runs it against its own control
 * API as a local request and answers `{type: "cluster.answer", status, contentType, body}`.
 *
 * The peer endpoint serves moves too; {@link dispatch} reads a connection's first frame and hands
 * a replica (`cluster.replica`, C5) to its receiver and anything else, untouched, to the next
 * handler (the move arrival).
 * @module
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { WparError } from '../kernel/errno.ts';
import { connectPeer } from '../peer/endpoint.ts';
import type { Identity } from '../peer/identity.ts';
import type { Peer } from '../peer/peers.ts';
import { MAX_FRAME, Wire, type Message } from '../peer/wire.ts';

/** The version of the call protocol. */
export const CALL_PROTOCOL = 1;
/** How long a call may wait for its answer (a forwarded stop waits for the WPAR's end). */
export const CALL_IDLE_MS = 60_000;
/** How long a caller may take to send its first frame. */
const FIRST_FRAME_MS = 10_000;
/** The header a forwarded request carries to its callee: the calling member's name. */
export const FORWARDED = 'x-corral-forwarded-by';

/** A forwarded request. */
export interface Call {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** The control API path with its query (`/v1/wpars/web/start`). */
  readonly path: string;
  readonly body?: unknown;
}

/** A forwarded request's answer, as the callee's control API gave it. */
export interface Answer {
  readonly status: number;
  readonly contentType: string;
  /** The body: parsed JSON for JSON answers, else text. */
  readonly body: unknown;
}

/** Checks a call received from a member: only the control API's WPAR, system and drain routes, never a stream. */
export function checkCall(m: Record<string, unknown>): Call {
  if (m.protocol !== CALL_PROTOCOL) throw new WparError('EPROTO', `call protocol ${String(m.protocol)} is not supported (this host speaks ${CALL_PROTOCOL})`);
  const method = m.method;
  if (method !== 'GET' && method !== 'POST' && method !== 'DELETE') throw new WparError('EPROTO', `bad call method ${JSON.stringify(method)}`);
  const path = m.path;
  if (typeof path !== 'string' || !/^\/v1\/(wpars|system|hosts\/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\/(drain|undrain))(\/|\?|$)/.test(path) || path.length > 4096 || /follow=/.test(path)) {
    throw new WparError('EPROTO', `bad call path ${JSON.stringify(path)}`);
  }
  return { method, path, ...(m.body !== undefined && { body: m.body }) };
}

/** How often a call refused before any answer is tried again, and the pause before each try. */
const REFUSED_TRIES = 3;
const REFUSED_PAUSE_MS = 250;

/**
 * Sends `call` to `peer` and resolves its answer (bounded by the handshake and {@link CALL_IDLE_MS}).
 * A connection closed right after the handshake, before any answer, is what a member that has not
 * yet seen this host's record does (its endpoint refuses an unknown fingerprint before reading
 * anything): that is tried again, up to {@link REFUSED_TRIES} times.
 */
export async function callPeer(identity: Identity, peer: Peer, call: Call): Promise<Answer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await callOnce(identity, peer, call);
    } catch (err) {
      if (!(err instanceof RefusedError) || attempt >= REFUSED_TRIES) throw err instanceof RefusedError ? err.cause : err;
      await delay(REFUSED_PAUSE_MS);
    }
  }
}

/** A connection closed before any answer and within {@link REFUSED_WITHIN_MS} of the handshake. */
class RefusedError extends Error {}
const REFUSED_WITHIN_MS = 1000;

async function callOnce(identity: Identity, peer: Peer, call: Call): Promise<Answer> {
  const socket = await connectPeer(identity, peer);
  const connected = Date.now();
  const wire = new Wire(socket, `host ${peer.name}`, CALL_IDLE_MS);
  try {
    await wire.send({ type: 'cluster.call', protocol: CALL_PROTOCOL, method: call.method, path: call.path, ...(call.body !== undefined && { body: call.body }) });
    await wire.flush();
    let a;
    try {
      a = await wire.message('cluster.answer');
    } catch (err) {
      if (err instanceof WparError && err.code === 'ECONNRESET' && Date.now() - connected < REFUSED_WITHIN_MS) throw new RefusedError('refused', { cause: err });
      throw err;
    }
    if (typeof a.status !== 'number' || typeof a.contentType !== 'string') throw new WparError('EPROTO', `host ${peer.name}: protocol error: a bad answer`);
    return { status: a.status, contentType: a.contentType, body: a.body };
  } finally {
    wire.destroy();
  }
}

/** Runs a received call against the local control API (`app.inject`: the same routes and checks). */
export async function answerCall(app: FastifyInstance, from: Peer, call: Call): Promise<Answer> {
  const res = await app.inject({
    method: call.method, url: call.path,
    headers: { [FORWARDED]: from.name, ...(call.body !== undefined && { 'content-type': 'application/json' }) },
    ...(call.body !== undefined && { payload: JSON.stringify(call.body) }),
  });
  const contentType = String(res.headers['content-type'] ?? 'text/plain');
  let body: unknown = res.body;
  if (contentType.startsWith('application/json') && res.body !== '') {
    try { body = JSON.parse(res.body); } catch { /* kept as text */ }
  }
  return { status: res.statusCode, contentType, body };
}

/** What {@link dispatch} hands a connection to. */
export interface DispatchOptions {
  /** Whether `peer` is a live member (only members are served). */
  member: (peer: Peer) => boolean;
  /** Answers a forwarded call. */
  serve: (call: Call, from: Peer) => Promise<Answer>;
  /** Serves a relay request (`cluster.stream`, `relay.ts`), its first frame read; never throws. */
  stream?: (wire: Wire, first: Message, from: Peer) => Promise<void>;
  /** A replica (`cluster.replica`, `replicas.ts`): pushed back unread and handed over. */
  replica?: (socket: TLSSocket, from: Peer) => void;
  /** Anything else (a move). */
  other: (socket: TLSSocket, from: Peer) => void;
}

/**
/**
 * Reads the first frame of a trusted connection. A cluster call from a live member (`member` says
 * whether `from` is one) is answered by `serve`; a relay request (`cluster.stream`) is served by
 * `stream`; a replica is pushed back unread and handed to `replica`; anything else is pushed back
 * unread and handed to `other`. Never throws.
 */
export function dispatch(socket: TLSSocket, from: Peer, options: DispatchOptions): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  const timer = setTimeout(() => socket.destroy(), FIRST_FRAME_MS);
  const handOver = (): void => {
    clearTimeout(timer);
    socket.pause();
    socket.off('data', onData);
    socket.unshift(Buffer.concat(chunks));
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    bytes += chunk.length;
    if (bytes < 5) return;
    const all = Buffer.concat(chunks);
    chunks.splice(0, chunks.length, all);
    const length = all.readUInt32BE(0);
    const message = all[4] === 1 && length >= 1 && length <= MAX_FRAME;
    if (message && bytes < 4 + length) return; // the first frame is not complete yet
    handOver();
    const type = message ? frameType(all.subarray(5, 4 + length)) : undefined;
    if (type === 'cluster.call' || type === 'cluster.stream') void serveOne(socket, from, options);
    else if (type === 'cluster.replica' && options.replica) options.replica(socket, from);
    else options.other(socket, from);
  };
  socket.on('data', onData);
  socket.on('error', () => {});
  socket.resume();
}

function frameType(payload: Buffer): unknown {
  try {
    return (JSON.parse(payload.toString('utf8')) as { type?: unknown }).type;
  } catch {
    return undefined;
  }
}

async function serveOne(socket: TLSSocket, from: Peer, options: DispatchOptions): Promise<void> {
  const wire = new Wire(socket, `host ${from.name}`, CALL_IDLE_MS);
  try {
    const m = await wire.message();
    if (m.type === 'cluster.stream' && options.stream) { await options.stream(wire, m, from); return; }
    if (m.type !== 'cluster.call') throw new WparError('EPROTO', `host ${from.name}: unexpected ${m.type}`);
    let answer: Answer;
    try {
      if (!options.member(from)) throw new WparError('EACCES', `${from.name} is not a live member of this cluster`);
      answer = await options.serve(checkCall(m), from);
    } catch (err) {
      const code = err instanceof WparError ? err.code : 'EIO';
      answer = { status: code === 'EACCES' ? 403 : code === 'EPROTO' ? 502 : 500, contentType: 'application/json', body: { error: { code, message: (err as Error).message } } };
    }
    await wire.send({ type: 'cluster.answer', status: answer.status, contentType: answer.contentType, body: answer.body });
    await wire.flush();
    wire.end();
  } catch {
    wire.destroy();
  }
}
