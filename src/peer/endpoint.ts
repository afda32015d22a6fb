/**
 * The peer endpoint (M1, M2): TLS 1.3 only, mutually authenticated, trust by certificate fingerprint.
 * Nothing listens without `wpard --listen`. A connection is accepted only once the handshake has
 * proved that the client holds the key of a certificate whose fingerprint is a trusted peer's; any
 * other is destroyed before a byte of it is read, and reported as a `peer.refused` event.
 * @module
 */
import { constants as cryptoConstants, X509Certificate } from 'node:crypto';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { WparError } from '../kernel/errno.ts';
import { fingerprintOf } from './fingerprint.ts';
import type { Identity } from './identity.ts';
import type { Peer, PeerStore } from './peers.ts';

/** Where the endpoint looks trust up: the trusted peers (M2), and in a cluster also its live members (C1). */
export type PeerLookup = Pick<PeerStore, 'byFingerprint' | 'get'>;

/** How long a TLS handshake may take before the connection is dropped. */
const HANDSHAKE_MS = 10_000;

/** Why a connection was refused, as `peer.refused` reports it. */
export interface Refusal {
  readonly address: string;
  readonly fingerprint: string | null;
  readonly reason: string;
}

function tlsOptions(identity: Identity) {
  return {
    key: identity.key,
    cert: identity.certificate,
    minVersion: 'TLSv1.3' as const,
    maxVersion: 'TLSv1.3' as const,
    // Trust is by fingerprint, not by a CA: the chain is not checked, the fingerprint is (below).
    rejectUnauthorized: false,
    // No session tickets or resumption: every connection proves its key anew.
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
  };
}

/** The certificate the other side presented: its fingerprint and the name in its CN, or null. */
function presented(socket: TLSSocket): { fingerprint: string; name: string | null } | null {
  const raw = socket.getPeerX509Certificate?.();
  if (!raw) return null;
  const cn = /(?:^|\n)CN=corral:([^\n]+)/.exec(raw.subject)?.[1] ?? null;
  return { fingerprint: fingerprintOf(raw.raw), name: cn };
}

/** Decides whether a presented certificate is a trusted peer's: the peer, or a refusal reason. */
export function judge(peers: PeerLookup, seen: { fingerprint: string; name: string | null } | null): Peer | string {
  if (!seen) return 'no client certificate';
  const peer = peers.byFingerprint(seen.fingerprint);
  if (peer) return peer;
  const claimed = seen.name === null ? undefined : peers.get(seen.name);
  if (claimed) return `peer ${claimed.name} presented another certificate (${seen.fingerprint}; trusted: ${claimed.fingerprint}): refused, as SSH refuses a changed host key`;
  return `untrusted certificate${seen.name ? ` (claims to be ${seen.name})` : ''}`;
}

/**
 * Opens the peer endpoint on `host:port`. `onPeer` receives each trusted connection (paused, nothing
 * read yet); `onRefused` each refusal.
 */
export async function listenPeers(options: {
  host: string; port: number; identity: Identity; peers: PeerLookup;
  onPeer: (socket: TLSSocket, peer: Peer) => void;
  onRefused: (r: Refusal) => void;
}): Promise<Server> {
  const server = createServer({ ...tlsOptions(options.identity), requestCert: true, handshakeTimeout: HANDSHAKE_MS, pauseOnConnect: true });
  server.on('secureConnection', (socket) => {
    socket.pause();
    const address = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const seen = presented(socket);
    const verdict = judge(options.peers, seen);
    if (typeof verdict === 'string') {
      socket.destroy();
      options.onRefused({ address, fingerprint: seen?.fingerprint ?? null, reason: verdict });
      return;
    }
    socket.on('error', () => {});
    options.onPeer(socket, verdict);
  });
  server.on('tlsClientError', (err, socket) => {
    socket.destroy();
    options.onRefused({ address: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, fingerprint: null, reason: `TLS handshake failed: ${err.message}` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new WparError(err.code === 'EADDRINUSE' ? 'EEXIST' : err.code === 'EACCES' ? 'EACCES' : 'EINVAL', `cannot listen on ${options.host}:${options.port}: ${err.message}`, { cause: err })));
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}

/**
 * Connects to a peer's endpoint and checks that it presents the trusted fingerprint (EACCES if not,
 * the connection dropped before anything is sent). Bounded by `timeoutMs`.
 */
export function connectPeer(identity: Identity, peer: Peer, timeoutMs = HANDSHAKE_MS): Promise<TLSSocket> {
  if (peer.address === null) return Promise.reject(new WparError('EINVAL', `peer ${peer.name} has no address (wpar peer add ${peer.name} FINGERPRINT ADDR:PORT)`));
  const m = /^(?:\[(.+)\]|(.+)):(\d+)$/.exec(peer.address)!;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  return new Promise((resolve, reject) => {
    const socket = connect({ ...tlsOptions(identity), host, port, servername: undefined, checkServerIdentity: () => undefined });
    const timer = setTimeout(() => { socket.destroy(); reject(new WparError('ETIMEDOUT', `peer ${peer.name} (${peer.address}): no TLS handshake within ${timeoutMs / 1000} s`)); }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const seen = socket.getPeerX509Certificate?.();
      const fp = seen ? fingerprintOf(seen.raw) : null;
      if (fp !== peer.fingerprint) {
        socket.destroy();
        reject(Object.assign(new WparError('EACCES', `peer ${peer.name} (${peer.address}) presented ${fp ?? 'no certificate'}, not its trusted fingerprint ${peer.fingerprint}`), { seen: fp }));
        return;
      }
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = err.code === 'ECONNREFUSED' ? 'ECONNREFUSED' : err.code === 'ECONNRESET' ? 'ECONNRESET' : err.code === 'ETIMEDOUT' ? 'ETIMEDOUT' : 'EIO';
      reject(new WparError(code, `peer ${peer.name} (${peer.address}): ${err.message} (${err.code ?? 'TLS'})`, { cause: err }));
    });
  });
}

/** The subject of a PEM certificate (for messages). */
export function subjectOf(pem: string): string {
  return new X509Certificate(pem).subject;
}
