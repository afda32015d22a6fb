// C5, the receiving side of a replica: a member keeps an image only once every byte and the
// signature (the sender's own identity) verified, and the sender owns the WPAR at that epoch; a
// damaged, truncated, foreign-signed or unowned image is refused with the reason and leaves nothing.
// Real images (writeImage), real identities, the real wire over a loopback TCP connection.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { writeImage, imagePath } from '../../src/image/index.ts';
import { loadIdentity, type Identity } from '../../src/peer/identity.ts';
import { checkImageSignature, imageSigner } from '../../src/peer/signing.ts';
import { Wire } from '../../src/peer/wire.ts';
import { imagesDir, KEEP_IMAGES, localImages, receiveReplica, REPLICA_PROTOCOL } from '../../src/cluster/replicas.ts';
import type { Journal } from '../../src/daemon/journal.ts';
import type { WparRecord } from '../../src/cluster/records.ts';
import type { Peer } from '../../src/peer/peers.ts';
import { definition, tempDir } from '../image/fixtures.ts';
import { within } from '../support/bounded.ts';

const dirs = tempDir('corral-replica-test-');
let owner: Identity; let stranger: Identity; let receiver: Identity;
let server: Server;
let port = 0;
const events: Record<string, unknown>[] = [];
const journal = { record: (e: Record<string, unknown>) => { events.push(e); } } as unknown as Journal;
const home = join(dirs.path, 'receiver-home');
let recordEpoch = 1;
let ownerPeer: Peer;

/** Every entry of the receiver's image directory for `name` (hidden ones too). */
const leftovers = (name: string): string[] => { try { return readdirSync(imagesDir(home, name)).sort(); } catch { return []; } };

before(async () => {
  owner = await loadIdentity(join(dirs.path, 'id-alpha'), 'alpha');
  stranger = await loadIdentity(join(dirs.path, 'id-mallory'), 'mallory');
  receiver = await loadIdentity(join(dirs.path, 'id-beta'), 'beta');
  ownerPeer = { name: 'alpha', fingerprint: owner.fingerprint, address: null };
  server = createServer((socket) => {
    void receiveReplica(socket as unknown as TLSSocket, ownerPeer, {
      home, journal, member: () => true,
      record: async (name) => ({ name, host: 'alpha', epoch: recordEpoch, created: 0, definition: { ...definition(name), checkpointable: true } }) as WparRecord,
      checkSignature: (m, label) => checkImageSignature(m, receiver, { byFingerprint: (fp) => (fp === owner.fingerprint ? ownerPeer : fp === stranger.fingerprint ? { name: 'mallory', fingerprint: stranger.fingerprint, address: null } : undefined) }, label),
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
after(() => { server?.close(); dirs[Symbol.dispose](); });

/** An image of WPAR `name` signed by `by`, with a counter file in its root; its bytes. */
async function image(name: string, by: Identity, tag: string, epoch?: number): Promise<Buffer> {
  const root = join(dirs.path, `root-${tag}`);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'count.txt'), '1\n2\n3\n');
  const dir = join(dirs.path, `img-${tag}`);
  await writeImage(dir, { definition: { ...definition(name), checkpointable: true }, root, agents: new Map([['counter', { count: 3 }]]), signer: imageSigner(by), ...(epoch !== undefined && { epoch }) });
  return readFileSync(imagePath(dir));
}

/** Sends `bytes` as a replica (announcing `size`), resolves the receiver's answer. */
async function send(name: string, seq: number, bytes: Buffer, size = bytes.length, epoch = 1): Promise<Record<string, unknown>> {
  const socket: Socket = connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const wire = new Wire(socket, 'receiver', 10_000);
  try {
    await wire.send({ type: 'cluster.replica', protocol: REPLICA_PROTOCOL, name, epoch, seq, time: Date.now(), size });
    for (let i = 0; i < bytes.length; i += 64 << 10) await wire.sendData(bytes.subarray(i, i + (64 << 10)));
    await wire.send({ type: 'cluster.replica.end' });
    const f = await wire.next();
    assert.equal(f.kind, 'message');
    return (f as { message: Record<string, unknown> }).message;
  } finally {
    wire.destroy();
  }
}

describe('receiving a replica', () => {
  it('keeps a verified image under EPOCH-SEQ, acknowledges its size, and keeps only the two newest', async () => {
    const bytes = await image('job', owner, 'good');
    for (const seq of [1, 2, 3]) {
      const a = await send('job', seq, bytes);
      assert.deepEqual(a, { type: 'cluster.replica.ack', bytes: bytes.length });
    }
    // Pruning follows the acknowledgement; its event says it is done.
    await within(new Promise<void>((done) => {
      const look = (): void => { if (events.filter((e) => e.type === 'cluster.replica.received').length === 3) done(); else setTimeout(look, 10); };
      look();
    }), 'the third image pruned', 5_000);
    assert.deepEqual((await localImages(home, 'job')).map((i) => `${i.epoch}-${i.seq}`), ['1-3', '1-2']);
    assert.equal(KEEP_IMAGES, 2);
    assert.deepEqual(leftovers('job'), ['1-2', '1-3'], 'no hidden staging directory left');
    assert.deepEqual(readFileSync(imagePath(join(imagesDir(home, 'job'), '1-3'))), bytes, 'byte for byte');
  });

  it('refuses a damaged image (one byte changed, in a header or in a file) and leaves nothing', async () => {
    const good = await image('dmg', owner, 'dmg');
    const header = Buffer.from(good);
    header[Math.floor(header.length / 2)]! ^= 0x40;
    const content = Buffer.from(good);
    content[content.indexOf('1\n2\n3\n')]! ^= 0x01;
    for (const [bytes, why] of [[header, /^dmg: image from alpha: .*checksum/], [content, /^dmg: image from alpha: .*(SHA-256|digest)/]] as const) {
      const a = await send('dmg', 1, bytes);
      assert.equal(a.type, 'error');
      assert.match(String(a.message), why);
      assert.deepEqual(leftovers('dmg'), []);
    }
    const refused = events.find((e) => e.type === 'cluster.replica.refused' && e.name === 'dmg');
    assert.ok(refused, 'a cluster.replica.refused event');
  });

  it('refuses a truncated stream and one longer than announced, leaving nothing', async () => {
    const bytes = await image('cut', owner, 'cut');
    const short = await send('cut', 1, bytes.subarray(0, bytes.length - 100), bytes.length);
    assert.equal(short.type, 'error');
    assert.match(String(short.message), /bytes received of the \d+ announced/);
    const long = await send('cut', 2, Buffer.concat([bytes, Buffer.alloc(10)]), bytes.length);
    assert.equal(long.type, 'error');
    assert.match(String(long.message), /more than the \d+ bytes announced/);
    assert.deepEqual(leftovers('cut'), []);
  });

  it('refuses an image signed by another identity than the sender\'s, even a trusted one', async () => {
    const a = await send('foreign', 1, await image('foreign', stranger, 'foreign'));
    assert.equal(a.type, 'error');
    assert.equal(a.code, 'EPERM');
    assert.match(String(a.message), /not signed by alpha/);
    assert.deepEqual(leftovers('foreign'), []);
  });

  it('refuses an image that records another epoch than the one announced', async () => {
    const a = await send('epo', 1, await image('epo', owner, 'epo', 5));
    assert.equal(a.code, 'EPERM');
    assert.match(String(a.message), /taken at epoch 5, not 1 as announced/);
    assert.deepEqual(leftovers('epo'), []);
    assert.equal((await send('epo', 2, await image('epo', owner, 'epo1', 1))).type, 'cluster.replica.ack');
  });

  it('refuses an image from a host that is not the owner at that epoch', async () => {
    recordEpoch = 2;
    try {
      const a = await send('job', 4, await image('job', owner, 'stale'), undefined, 1);
      assert.equal(a.code, 'EPERM');
      assert.match(String(a.message), /not its owner at epoch 1 \(alpha is, epoch 2\)/);
      assert.deepEqual(leftovers('job'), ['1-2', '1-3'], 'what it had is kept');
    } finally {
      recordEpoch = 1;
    }
  });
});
