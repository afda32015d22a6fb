/**
 * Streams relayed between members (C3: every command acts where the WPAR is): `wpar logs -f` of a
 * WPAR on another host, and `chkptwpar` of one (its progress lines, then its result). A forwarded
 * call ({@link callPeer}) answers with one frame; these answers are streams, so they have their own
 * exchange on the same peer endpoint and dispatch (the first frame says which):
 *
 * ```
 * caller                                              callee (the WPAR's host)
 *   {type: "cluster.stream", protocol, method, path, accept, body}  ──►  its own control socket, as a
 *                                                                       local request (FORWARDED header)
 *   ◄── {type: "cluster.head", status, contentType}
 *   ◄── data frames (the answer's bytes, as they come)
 *   ◄── {type: "cluster.tick"} every RELAY_TICK_MS ──►   (both ways: each side knows the other lives)
 *   ◄── {type: "cluster.end"}                           the answer ended
 * ```
 *
 * Bounded: only `GET /v1/wpars/NAME/logs?…follow=…` and `POST /v1/wpars/NAME/checkpoint`; at most
 * {@link MAX_RELAYS} served at once by a host; a side that hears nothing (no tick) for
 * {@link RELAY_IDLE_MS} gives up; the caller's client going away closes the connection, which ends
 * the callee's local request (a follow stops, a checkpoint is abandoned, as on one host).
 * @module
 */
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { WparError } from '../kernel/errno.ts';
import { connectPeer } from '../peer/endpoint.ts';
import type { Identity } from '../peer/identity.ts';
import type { Peer } from '../peer/peers.ts';
import { peerError, Wire, type Message } from '../peer/wire.ts';
import { FORWARDED, type Answer } from './calls.ts';

/** The version of the relay exchange. */
export const RELAY_PROTOCOL = 1;
/** How often each side says it is still there. */
export const RELAY_TICK_MS = 5_000;
/** How long a side waits without hearing anything before it ends the relay (three ticks). */
export const RELAY_IDLE_MS = 3 * RELAY_TICK_MS;
/** How many relayed streams a host serves at once; more are refused (EAGAIN). */
export const MAX_RELAYS = 64;

/** A request whose answer is relayed as a stream. */
export interface StreamCall {
  readonly method: 'GET' | 'POST';
  /** The control API path with its query. */
  readonly path: string;
  /** The `accept` header to send (`application/x-ndjson` for a checkpoint's progress). */
  readonly accept?: string;
  readonly body?: unknown;
}

const NAME = '[A-Za-z0-9][A-Za-z0-9_.-]{0,63}';
const FOLLOW_LOGS = new RegExp(`^/v1/wpars/${NAME}/logs\\?([A-Za-z]+=[A-Za-z0-9]*&)*follow=[A-Za-z0-9]*(&[A-Za-z]+=[A-Za-z0-9]*)*$`);
const CHECKPOINT = new RegExp(`^/v1/wpars/${NAME}/checkpoint$`);

/** Checks a relay request received from a member: a followed log or a checkpoint, nothing else. */
export function checkStreamCall(m: Record<string, unknown>): StreamCall {
  if (m.protocol !== RELAY_PROTOCOL) throw new WparError('EPROTO', `relay protocol ${String(m.protocol)} is not supported (this host speaks ${RELAY_PROTOCOL})`);
  const { method, path, accept } = m;
  const ok = typeof path === 'string' && path.length <= 1024 && ((method === 'GET' && FOLLOW_LOGS.test(path)) || (method === 'POST' && CHECKPOINT.test(path)));
  if (!ok) throw new WparError('EPROTO', `bad relay request ${JSON.stringify(method)} ${JSON.stringify(path)}: only a followed log or a checkpoint is relayed`);
  if (accept !== undefined && (typeof accept !== 'string' || accept.length > 256)) throw new WparError('EPROTO', 'bad relay accept header');
  return { method, path, ...(accept !== undefined && { accept }), ...(m.body !== undefined && { body: m.body }) };
}

/**
 * Sends `call` to `peer` and resolves its answer once the head came: `body` is a stream of the
 * answer's bytes, which ends when the callee's answer does; destroying it closes the connection.
 */
export async function openStream(identity: Identity, peer: Peer, call: StreamCall): Promise<Answer & { body: Readable }> {
  const socket = await connectPeer(identity, peer);
  const label = `host ${peer.name}`;
  const wire = new Wire(socket, label, RELAY_IDLE_MS);
  let tick: NodeJS.Timeout | undefined;
  try {
    await wire.send({ type: 'cluster.stream', protocol: RELAY_PROTOCOL, method: call.method, path: call.path, ...(call.accept !== undefined && { accept: call.accept }), ...(call.body !== undefined && { body: call.body }) });
    await wire.flush();
    const head = await wire.message('cluster.head');
    if (typeof head.status !== 'number' || typeof head.contentType !== 'string') throw new WparError('EPROTO', `${label}: protocol error: a bad relay head`);
    tick = setInterval(() => { wire.send({ type: 'cluster.tick' }).then(() => wire.flush()).catch(() => {}); }, RELAY_TICK_MS);
    let reading = false;
    const body: Readable = new Readable({
      read() {
        if (reading) return;
        reading = true;
        void (async () => {
          try {
            for (;;) {
              const f = await wire.next();
              if (f.kind === 'data') {
                if (!body.push(f.data)) return;
                continue;
              }
              if (f.message.type === 'cluster.tick') continue;
              if (f.message.type === 'cluster.end') { body.push(null); return; }
              throw f.message.type === 'error' ? peerError(f.message, label) : new WparError('EPROTO', `${label}: protocol error: ${f.message.type} in a relayed answer`);
            }
          } catch (err) {
            body.destroy(err as Error);
          } finally {
            reading = false;
          }
        })();
      },
      destroy(err, done) {
        clearInterval(tick);
        wire.destroy();
        done(err);
      },
    });
    return { status: head.status, contentType: head.contentType, body };
  } catch (err) {
    clearInterval(tick);
    wire.destroy();
    throw err;
  }
}

let serving = 0;

/**
 * Serves one relay request (its first frame `m` already read from `wire`): runs it against this
 * host's own control socket as a local request and relays the answer. Never throws.
 */
export async function serveStream(wire: Wire, m: Message, from: Peer, o: { member: boolean; socketPath: string | null }): Promise<void> {
  wire.idleMs = RELAY_IDLE_MS;
  let call: StreamCall;
  try {
    if (!o.member) throw new WparError('EACCES', `${from.name} is not a live member of this cluster`);
    call = checkStreamCall(m);
    if (o.socketPath === null) throw new WparError('EAGAIN', 'this host is still starting');
    if (serving >= MAX_RELAYS) throw new WparError('EAGAIN', `this host already relays ${MAX_RELAYS} streams; try again later`);
  } catch (err) {
    const code = err instanceof WparError ? err.code : 'EIO';
    await wire.send({ type: 'cluster.head', status: code === 'EACCES' ? 403 : code === 'EPROTO' ? 502 : code === 'EAGAIN' ? 503 : 500, contentType: 'application/json' }).catch(() => {});
    await wire.sendData(Buffer.from(JSON.stringify({ error: { code, message: (err as Error).message } }))).catch(() => {});
    await wire.send({ type: 'cluster.end' }).then(() => wire.end(), () => wire.destroy());
    return;
  }
  serving++;
  const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
  const req = httpRequest({
    socketPath: o.socketPath, method: call.method, path: call.path,
    headers: {
      [FORWARDED]: from.name,
      ...(call.accept !== undefined && { accept: call.accept }),
      ...(payload !== undefined && { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
    },
  });
  const tick = setInterval(() => { wire.send({ type: 'cluster.tick' }).then(() => wire.flush()).catch(() => {}); }, RELAY_TICK_MS);
  const done = (): void => { clearInterval(tick); req.destroy(); };
  // The caller's ticks (and its going away): a closed or silent caller ends the local request.
  void (async () => {
    try { for (;;) await wire.next(); } catch { done(); }
  })();
  try {
    await new Promise<void>((resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res) => {
        void (async () => {
          try {
            await wire.send({ type: 'cluster.head', status: res.statusCode ?? 500, contentType: String(res.headers['content-type'] ?? 'text/plain') });
            await wire.flush();
            for await (const chunk of res) {
              await wire.sendData(chunk as Buffer);
              await wire.flush();
            }
            if (!res.complete) throw new WparError('ECONNRESET', 'the local answer stopped before its end');
            await wire.send({ type: 'cluster.end' });
            wire.end();
            resolve();
          } catch (err) {
            reject(err as Error);
          }
        })();
      });
      req.end(payload);
    });
  } catch {
    wire.destroy();
  } finally {
    serving--;
    done();
  }
}
