/**
 * Replicated checkpoints (C5): where a host keeps the images of a WPAR, how an owner streams one to
 * another member over the peer endpoint, how that member verifies it before acknowledging, and the
 * etcd record of the newest complete replica.
 *
 * Images live in `HOME/checkpoints/NAME/EPOCH-SEQ/image.tar` on the owner (its own scheduled
 * checkpoints) and on each receiver (its copies), the two newest kept on each host. The transfer is
 * one connection per image, framed as in `docs/mobility.md` §3:
 *
 * | dir | message | fields |
 * |---|---|---|
 * | owner → receiver | `cluster.replica` | `protocol: 1`, `name`, `epoch`, `seq`, `time`, `size` |
 * | owner → receiver | data frames | the bytes of `image.tar`, `size` in all |
 * | owner → receiver | `cluster.replica.end` | |
 * | receiver → owner | `cluster.replica.ack` (or `error` with `code`, `message`) | `bytes` |
 *
 * The receiver writes into a hidden directory, then verifies every byte (the image reader's
 * verification: format, every SHA-256, the trailer) and the signature (the sending member's own
 * identity), and only then renames it into place and acknowledges. Anything wrong: the hidden
 * directory goes, nothing is left, and the owner gets the reason.
 * @module
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Etcd3 } from 'etcd3';
import { WparError } from '../kernel/errno.ts';
import { checkName } from '../daemon/definition-check.ts';
import type { Journal } from '../daemon/journal.ts';
import { imagePath, readImageFrom, type ImageData, type ImageManifest } from '../image/index.ts';
import { connectPeer } from '../peer/endpoint.ts';
import type { Identity } from '../peer/identity.ts';
import type { Peer } from '../peer/peers.ts';
import { Wire } from '../peer/wire.ts';
import { etcdError } from './etcd.ts';
import { parseReplica, REPLICAS, WPARS, type HostRecord, type ReplicaRecord, type WparRecord } from './records.ts';

/** The version of the replica protocol. */
export const REPLICA_PROTOCOL = 1;
/** How many images of a WPAR each host keeps (C5: the two newest). */
export const KEEP_IMAGES = 2;
/** The largest image a member accepts (64 GiB): a bound on what a peer can make it write. */
export const MAX_REPLICA_BYTES = 64 * 2 ** 30;
/** Nothing read or written for this long ends a transfer (ETIMEDOUT). */
const IDLE_MS = 15_000;
/** The size of each read of the image file while sending. */
const CHUNK = 1 << 20;

/** One image of a WPAR on this host: `HOME/checkpoints/NAME/EPOCH-SEQ/`. */
export interface LocalImage {
  readonly epoch: number;
  readonly seq: number;
  readonly dir: string;
}

/** The directory of a WPAR's images on a host. */
export function imagesDir(home: string, name: string): string {
  return join(home, 'checkpoints', name);
}

/** The directory of one image. */
export function imageDir(home: string, name: string, epoch: number, seq: number): string {
  return join(imagesDir(home, name), `${epoch}-${seq}`);
}

/** The complete images of `name` on this host, newest first (by epoch, then sequence). */
export async function localImages(home: string, name: string): Promise<LocalImage[]> {
  let entries: string[];
  try {
    entries = await readdir(imagesDir(home, name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const images: LocalImage[] = [];
  for (const e of entries) {
    const m = /^([1-9][0-9]{0,15})-([0-9]{1,16})$/.exec(e);
    if (m) images.push({ epoch: Number(m[1]), seq: Number(m[2]), dir: join(imagesDir(home, name), e) });
  }
  return images.sort((a, b) => b.epoch - a.epoch || b.seq - a.seq);
}

/** Removes all but the {@link KEEP_IMAGES} newest images of `name` here; resolves what was removed. */
export async function prune(home: string, name: string): Promise<string[]> {
  const old = (await localImages(home, name)).slice(KEEP_IMAGES);
  for (const i of old) await rm(i.dir, { recursive: true, force: true });
  return old.map((i) => i.dir);
}

/** What an owner sends: one complete image. */
export interface ReplicaImage {
  readonly name: string;
  readonly epoch: number;
  readonly seq: number;
  readonly time: number;
  /** The image directory (its `image.tar` is sent). */
  readonly dir: string;
}

/**
 * Streams `image` to `peer` and resolves once it acknowledged (it verified every byte and the
 * signature and keeps the image); rejects with the receiver's reason otherwise.
 */
export async function sendReplica(identity: Identity, peer: Peer, image: ReplicaImage): Promise<{ bytes: number }> {
  const file = imagePath(image.dir);
  const size = (await stat(file)).size;
  const socket = await connectPeer(identity, peer);
  const wire = new Wire(socket, `host ${peer.name}`, IDLE_MS);
  try {
    await wire.send({ type: 'cluster.replica', protocol: REPLICA_PROTOCOL, name: image.name, epoch: image.epoch, seq: image.seq, time: image.time, size });
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) await wire.sendData(chunk as Buffer);
    await wire.send({ type: 'cluster.replica.end' });
    await wire.flush();
    // The receiver verifies the whole image before it answers: allow for it.
    wire.idleMs = IDLE_MS + Math.ceil(size / (20 << 20)) * 1000;
    const ack = await wire.message('cluster.replica.ack');
    if (ack.bytes !== size) throw new WparError('EPROTO', `host ${peer.name}: protocol error: acknowledged ${String(ack.bytes)} bytes of ${size}`);
    return { bytes: size };
  } finally {
    wire.destroy();
  }
}

/** What a receiver needs. */
export interface ReceiveDeps {
  readonly home: string;
  readonly journal: Journal;
  /** Whether `peer` is a live member now. */
  readonly member: (peer: Peer) => boolean;
  /** The WPAR's record in etcd (the sender must be its owner, with that epoch). */
  readonly record: (name: string) => Promise<WparRecord | undefined>;
  /** The home's signature check (this home, trusted peers, live members). */
  readonly checkSignature: (manifest: ImageManifest, label: string) => unknown;
}

/**
 * Serves one `cluster.replica` connection (its first frame not yet read): receives the image into a
 * hidden directory, verifies all of it and its signer, keeps it and acknowledges — or refuses with
 * an `error` message, leaving nothing. Never throws.
 */
export async function receiveReplica(socket: TLSSocket, from: Peer, deps: ReceiveDeps): Promise<void> {
  const wire = new Wire(socket, `host ${from.name}`, IDLE_MS);
  let staging: string | null = null;
  let name = '?';
  try {
    const m = await wire.message('cluster.replica');
    if (m.protocol !== REPLICA_PROTOCOL) throw new WparError('EPROTO', `replica protocol ${String(m.protocol)} is not supported (this host speaks ${REPLICA_PROTOCOL})`);
    name = checkName(m.name);
    const epoch = whole(m.epoch, 'epoch');
    const seq = whole(m.seq, 'seq');
    const size = whole(m.size, 'size');
    if (epoch < 1) throw new WparError('EPROTO', `${name}: bad epoch ${epoch}`);
    if (size > MAX_REPLICA_BYTES) throw new WparError('EMSGSIZE', `${name}: an image of ${size} bytes is more than this host accepts (${MAX_REPLICA_BYTES})`);
    if (!deps.member(from)) throw new WparError('EACCES', `${from.name} is not a live member of this cluster`);
    const record = await deps.record(name);
    if (!record || record.host !== from.name || record.epoch !== epoch) {
      throw new WparError('EPERM', `${name}: ${from.name} is not its owner at epoch ${epoch} (${record ? `${record.host} is, epoch ${record.epoch}` : 'not in the cluster'}); not kept`);
    }
    const dir = imagesDir(deps.home, name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    staging = join(dir, `.receiving-${epoch}-${seq}-${randomBytes(4).toString('hex')}`);
    await mkdir(staging, { mode: 0o700 });
    // Every byte verified as it arrives (format, each SHA-256, the trailer) while it is written;
    // then who signed it: the sending member itself.
    const { bytes, image } = await receiveVerified(wire, imagePath(staging), size, name, from.name);
    if (image.definition.name !== name) throw new WparError('EINVAL', `${name}: the image holds WPAR "${image.definition.name}"`);
    deps.checkSignature(image.manifest, `from ${from.name}`);
    if (image.manifest.signature?.fingerprint !== from.fingerprint) throw new WparError('EPERM', `${name}: the image is not signed by ${from.name}, which sent it`);
    // The image records the epoch its processes ran with (C4): it must be the one announced.
    if (image.manifest.epoch !== undefined && image.manifest.epoch !== epoch) throw new WparError('EPERM', `${name}: the image was taken at epoch ${image.manifest.epoch}, not ${epoch} as announced`);
    const final = imageDir(deps.home, name, epoch, seq);
    await rm(final, { recursive: true, force: true });
    await rename(staging, final);
    staging = null;
    await wire.send({ type: 'cluster.replica.ack', bytes });
    await wire.flush();
    wire.end();
    // After the acknowledgement: the owner need not wait for old images to be deleted.
    const pruned = await prune(deps.home, name).catch(() => []);
    deps.journal.record({ type: 'cluster.replica.received', time: Date.now(), name, from: from.name, epoch, seq, bytes, pruned: pruned.length });
  } catch (err) {
    if (staging) await rm(staging, { recursive: true, force: true }).catch(() => {});
    const code = err instanceof WparError ? err.code : 'EIO';
    const message = (err as Error).message;
    deps.journal.record({ type: 'cluster.replica.refused', time: Date.now(), name, from: from.name, code, reason: message });
    try {
      await wire.send({ type: 'error', code, message });
      await wire.flush();
      wire.end();
    } catch {
      wire.destroy();
    }
  }
}

/**
 * Writes the data frames up to `cluster.replica.end` into `path` (fsynced) — exactly `size` bytes —
 * and verifies them as they pass, in the same pass (the image reader's streaming verification).
 */
async function receiveVerified(wire: Wire, path: string, size: number, name: string, from: string): Promise<{ bytes: number; image: ImageData }> {
  const fh = await open(path, 'wx', 0o600);
  let bytes = 0;
  let writing: Promise<unknown> = Promise.resolve();
  async function* frames(): AsyncGenerator<Buffer> {
    for (;;) {
      const f = await wire.next();
      if (f.kind === 'message') {
        if (f.message.type !== 'cluster.replica.end') throw new WparError('EPROTO', `${name}: protocol error: expected data or cluster.replica.end, got ${f.message.type}`);
        break;
      }
      bytes += f.data.length;
      if (bytes > size) throw new WparError('EPROTO', `${name}: protocol error: more than the ${size} bytes announced`);
      // One write in flight while the next frame is read and this one hashed.
      await writing;
      writing = fh.write(f.data);
      yield f.data;
    }
    if (bytes !== size) throw new WparError('EPROTO', `${name}: protocol error: ${bytes} bytes received of the ${size} announced`);
  }
  try {
    let image: ImageData;
    try {
      image = await readImageFrom(frames(), { label: `from ${from}`, bytesTotal: size });
    } catch (err) {
      if (!(err instanceof WparError) || err.message.startsWith(`${name}:`)) throw err;
      throw new WparError(err.code, `${name}: ${err.message}`, { cause: err });
    }
    await writing;
    await fh.sync();
    return { bytes, image };
  } finally {
    await writing.catch(() => {});
    await fh.close();
  }
}

function whole(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new WparError('EPROTO', `protocol error: bad ${what} ${JSON.stringify(v)}`);
  return v;
}

/** The replica records in etcd. */
export class ReplicaRecords {
  readonly #client: Etcd3;
  readonly #urls: readonly string[];

  constructor(client: Etcd3, urls: readonly string[]) {
    this.#client = client;
    this.#urls = urls;
  }

  /** The newest complete replica of `name`, or undefined. */
  async get(name: string): Promise<ReplicaRecord | undefined> {
    let text: string | null;
    try {
      text = await this.#client.get(REPLICAS + name).string();
    } catch (err) {
      throw etcdError(err, `${name}: reading its replica record`, this.#urls);
    }
    return text === null ? undefined : parseReplica(REPLICAS + name, text) ?? undefined;
  }

  /** Every replica record, by WPAR name. */
  async all(): Promise<Map<string, ReplicaRecord>> {
    let kvs: Record<string, string>;
    try {
      kvs = await this.#client.getAll().prefix(REPLICAS).strings();
    } catch (err) {
      throw etcdError(err, 'listing the replica records', this.#urls);
    }
    const out = new Map<string, ReplicaRecord>();
    for (const [k, v] of Object.entries(kvs)) {
      const r = parseReplica(k, v);
      if (r) out.set(r.name, r);
    }
    return out;
  }

  /**
   * Records `replica` as the newest, by a transaction conditioned on the WPAR's record being exactly
   * `owner` (the writer still owns it at that epoch): EPERM, nothing written, if it changed.
   */
  async put(owner: WparRecord, replica: ReplicaRecord): Promise<void> {
    let result;
    try {
      result = await this.#client.if(WPARS + owner.name, 'Value', '==', JSON.stringify(owner))
        .then(this.#client.put(REPLICAS + replica.name).value(JSON.stringify(replica)))
        .commit();
    } catch (err) {
      throw etcdError(err, `${replica.name}: recording its replica`, this.#urls);
    }
    if (!result.succeeded) throw new WparError('EPERM', `${replica.name}: its record changed (no longer ours at epoch ${owner.epoch}); the replica is not recorded`);
  }
}

/** What an owner needs to copy an image to other members and record it. */
export interface ReplicateDeps {
  readonly self: string;
  readonly identity: Identity;
  readonly journal: Journal;
  /** The live host records now (from etcd). */
  readonly live: () => Promise<readonly HostRecord[]>;
  /** The WPAR's record now (from etcd). */
  readonly record: (name: string) => Promise<WparRecord | undefined>;
  readonly records: ReplicaRecords;
}

/** What {@link replicate} did. */
export interface Replicated {
  readonly hosts: readonly string[];
  readonly failed: readonly { readonly host: string; readonly reason: string }[];
  readonly recorded: boolean;
}

/**
 * Copies `image` (taken at `image.epoch`, which must be the WPAR's epoch in etcd now, this host its
 * owner) to `count` other `up` members in parallel — those that held the previous replica first (so
 * each keeps the two newest), then the least loaded — and, once at least one acknowledged, records
 * the replica in etcd naming those that did. Nothing is recorded if none did or the record changed.
 */
export async function replicate(deps: ReplicateDeps, image: ReplicaImage & { readonly size: number }, count: number): Promise<Replicated> {
  const [record, previous, live] = await Promise.all([deps.record(image.name), deps.records.get(image.name), deps.live()]);
  if (!record || record.host !== deps.self || record.epoch !== image.epoch) {
    throw new WparError('EPERM', `${image.name}: this host (${deps.self}) is no longer its owner at epoch ${image.epoch}; the image is not copied`);
  }
  const before = new Set(previous?.hosts ?? []);
  const targets = live.filter((h) => h.state === 'up' && h.name !== deps.self)
    .sort((a, b) => Number(before.has(b.name)) - Number(before.has(a.name)) || a.load.wpars - b.load.wpars || (a.name < b.name ? -1 : 1))
    .slice(0, count);
  if (targets.length === 0) throw new WparError('EAGAIN', `${image.name}: no other up host to copy its image to`);
  const results = await Promise.all(targets.map(async (h) => {
    try {
      await sendReplica(deps.identity, { name: h.name, address: h.address, fingerprint: h.fingerprint }, image);
      return { host: h.name, reason: null };
    } catch (err) {
      return { host: h.name, reason: (err as Error).message };
    }
  }));
  const hosts = results.filter((r) => r.reason === null).map((r) => r.host).sort();
  const failed = results.filter((r): r is { host: string; reason: string } => r.reason !== null);
  let recorded = false;
  if (hosts.length > 0) {
    await deps.records.put(record, { name: image.name, epoch: image.epoch, seq: image.seq, time: image.time, size: image.size, owner: deps.self, hosts });
    recorded = true;
  }
  deps.journal.record({ type: 'cluster.replicated', time: Date.now(), name: image.name, epoch: image.epoch, seq: image.seq, bytes: image.size, hosts, failed, recorded });
  return { hosts, failed, recorded };
}
