/**
 * The daemon's peer service: the home's identity, its trusted peers, the peer endpoint (`--listen`),
 * image signing, and live moves (`movewpar`). Its control routes join the daemon's control API.
 * @module
 */
import type { Server, TLSSocket } from 'node:tls';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { WparError } from '../kernel/errno.ts';
import type { ImageManifest, ImageSigner } from '../image/format/manifest.ts';
import type { Journal } from '../daemon/journal.ts';
import { connectPeer, listenPeers } from './endpoint.ts';
import { loadIdentity, type Identity } from './identity.ts';
import { checkSystemName, parseAddress, PeerStore, type Peer } from './peers.ts';
import { checkImageSignature, imageSigner, type Signer } from './signing.ts';

/** What `GET /v1/identity` (and `wpar identity --json`) answers. */
export interface IdentityInfo {
  readonly name: string;
  readonly fingerprint: string;
  /** `ADDR:PORT` of the peer endpoint, or null without `--listen`. */
  readonly listen: string | null;
}

/** Options of {@link startPeerService}. */
export interface PeerServiceOptions {
  readonly home: string;
  readonly database: string;
  readonly journal: Journal;
  /** `wpard --name` (default: the hostname, when it follows the name rule, else `corral`). */
  readonly name?: string;
  /** `wpard --listen ADDR:PORT`. */
  readonly listen?: string;
}

/** The running peer service. */
export interface PeerService {
  readonly identity: Identity;
  readonly peers: PeerStore;
  /** Signs the images this home writes. */
  readonly signer: ImageSigner;
  /** Checks an image's signer (EPERM when not this home or a trusted peer). */
  checkSignature(manifest: ImageManifest, label: string): Signer;
  info(): IdentityInfo;
  /** Adds the control routes (`/v1/identity`, `/v1/peers`). */
  routes(app: FastifyInstance): void;
  /**
   * Cluster (C1, docs/cluster.md): also trust the identities `members` knows (the live members of
   * the cluster), after the trusted peers of M2.
   */
  trustAlso(members: MemberLookup): void;
  /** A trusted peer by name (M2), else a live cluster member of that name (C7 drains move to members). */
  peerNamed(name: string): Peer | undefined;
  /**
   * Connects to `peer`'s endpoint (TLS 1.3, its trusted fingerprint checked); a peer presenting
   * another certificate is refused (EACCES) and reported as a `peer.refused` event (M2).
   */
  connect(peer: Peer, timeoutMs?: number): Promise<TLSSocket>;
  /** Hands each trusted peer connection to `handler` (the move arrival). */
  onConnection(handler: (socket: TLSSocket, peer: Peer) => void): void;
  close(): Promise<void>;
}

/** The live members of a cluster, as the peer service consults them (`src/cluster`). */
export interface MemberLookup {
  byFingerprint(fp: string): Peer | undefined;
  byName(name: string): Peer | undefined;
}

/** The default system name: the hostname if it follows the name rule. */
export function defaultSystemName(): string {
  const h = hostname().split('.')[0] ?? '';
  try { return checkSystemName(h); } catch { return 'corral'; }
}

/** Loads (or makes) the identity, opens the peers table and, with `listen`, the peer endpoint. */
export async function startPeerService(options: PeerServiceOptions): Promise<PeerService> {
  const name = checkSystemName(options.name ?? defaultSystemName());
  const listen = options.listen === undefined ? null : parseAddress(options.listen);
  const identity = await loadIdentity(options.home, name);
  const peers = new PeerStore(options.database);
  const { journal } = options;
  let handler: ((socket: TLSSocket, peer: Peer) => void) | null = null;
  /** Open peer connections: the daemon's stop ends them rather than waiting for their idle bound. */
  const open = new Set<TLSSocket>();
  let server: Server | null = null;
  // Cluster members (trustAlso): consulted after the trusted peers.
  let members: MemberLookup | null = null;
  const lookup = { byFingerprint: (fp: string) => peers.byFingerprint(fp) ?? members?.byFingerprint(fp), get: (n: string) => peers.get(n) };
  if (listen) {
    try {
      server = await listenPeers({
        host: listen.host, port: listen.port, identity, peers: lookup,
        onPeer: (socket, peer) => {
          if (!handler) { socket.destroy(); return; }
          open.add(socket);
          socket.once('close', () => open.delete(socket));
          handler(socket, peer);
        },
        onRefused: (r) => journal.record({ type: 'peer.refused', time: Date.now(), address: r.address, fingerprint: r.fingerprint, reason: r.reason }),
      });
    } catch (err) {
      peers.close();
      throw err;
    }
    journal.record({ type: 'peer.listening', time: Date.now(), address: listen.text, fingerprint: identity.fingerprint });
  }
  const info = (): IdentityInfo => ({ name, fingerprint: identity.fingerprint, listen: listen?.text ?? null });
  return {
    identity, peers,
    signer: imageSigner(identity),
    // M8 with C1: this home, its trusted peers, and in a cluster its live members sign what it trusts.
    checkSignature: (manifest, label) => checkImageSignature(manifest, identity, lookup, label),
    info,
    routes(app) {
      app.get('/v1/identity', async () => info());
      app.get('/v1/peers', async () => peers.list());
      app.post<{ Body: { name?: unknown; fingerprint?: unknown; address?: unknown } }>('/v1/peers', async (req, reply) => {
        const body = req.body ?? {};
        if (parseMaybeSelf(body.fingerprint, identity)) throw new WparError('EINVAL', 'that fingerprint is this home\'s own identity');
        const peer = peers.add({ name: body.name, fingerprint: body.fingerprint, address: body.address });
        journal.record({ type: 'peer.added', time: Date.now(), peer: peer.name, fingerprint: peer.fingerprint, address: peer.address });
        return reply.status(201).send(peer);
      });
      app.delete<{ Params: { name: string } }>('/v1/peers/:name', async (req, reply) => {
        peers.remove(req.params.name);
        journal.record({ type: 'peer.removed', time: Date.now(), peer: req.params.name });
        return reply.status(204).send();
      });
    },
    trustAlso(m) { members = m; },
    peerNamed: (n) => peers.get(n) ?? members?.byName(n),
    async connect(peer, timeoutMs) {
      try {
        return await connectPeer(identity, peer, timeoutMs);
      } catch (err) {
        if (err instanceof WparError && err.code === 'EACCES') {
          const fingerprint = (err as WparError & { seen?: string | null }).seen ?? null;
          journal.record({ type: 'peer.refused', time: Date.now(), address: peer.address, fingerprint, peer: peer.name, reason: err.message });
        }
        throw err;
      }
    },
    onConnection(h) { handler = h; },
    async close() {
      if (server) {
        const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
        for (const socket of open) socket.destroy();
        await closed;
      }
      peers.close();
    },
  };
}

function parseMaybeSelf(fp: unknown, identity: Identity): boolean {
  return typeof fp === 'string' && fp.replace(/^sha256:/i, '').replaceAll(':', '').toLowerCase() === identity.fingerprint.slice(7);
}
