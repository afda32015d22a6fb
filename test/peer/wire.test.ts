// The peer protocol's framing (src/peer/wire.ts) over a loopback TCP pair: messages and data in
// order, batching, and every malformed frame refused as EPROTO without buffering past one frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { Wire } from '../../src/peer/wire.ts';
import { fingerprintOf, parseFingerprint } from '../../src/peer/fingerprint.ts';
import { parseAddress } from '../../src/peer/peers.ts';

async function pairOfSockets(): Promise<[Socket, Socket, () => void]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = await accepted;
  return [client, peer, () => { client.destroy(); peer.destroy(); server.close(); }];
}

test('messages and data frames arrive in order, whatever the batching', async () => {
  const [x, y, close] = await pairOfSockets();
  try {
    const a = new Wire(x, 'a', 5000);
    const b = new Wire(y, 'b', 5000);
    const big = Buffer.alloc(5 << 20, 7); // split into frames of at most 4 MiB
    await a.send({ type: 'hello', n: 1 });
    await a.sendData(Buffer.from('small'));
    await a.sendData(big);
    await a.send({ type: 'end' });
    await a.flush();
    assert.deepEqual((await b.message('hello')).n, 1);
    const first = await b.next();
    assert.equal(first.kind === 'data' && first.data.toString(), 'small');
    let got = 0;
    for (;;) {
      const f = await b.next();
      if (f.kind === 'message') { assert.equal(f.message.type, 'end'); break; }
      got += f.data.length;
    }
    assert.equal(got, big.length);
  } finally {
    close();
  }
});

test('malformed frames are protocol errors (EPROTO)', async () => {
  const cases: [string, Buffer][] = [
    ['too long', Buffer.from([0xff, 0xff, 0xff, 0xff, 1])],
    ['empty', Buffer.from([0, 0, 0, 0])],
    ['unknown kind', Buffer.from([0, 0, 0, 2, 9, 0])],
    ['not JSON', Buffer.concat([Buffer.from([0, 0, 0, 4, 1]), Buffer.from('{{{')])],
    ['no type', Buffer.concat([Buffer.from([0, 0, 0, 3, 1]), Buffer.from('{}')])],
  ];
  for (const [what, bytes] of cases) {
    const [x, y, close] = await pairOfSockets();
    try {
      const b = new Wire(y, 'peer', 5000);
      x.write(bytes);
      await assert.rejects(b.next(), (err: Error & { code?: string }) => err.code === 'EPROTO' && /protocol error/.test(err.message), what);
    } finally {
      close();
    }
  }
});

test('an error message from the peer is thrown with its code; silence is ETIMEDOUT', async () => {
  const [x, y, close] = await pairOfSockets();
  try {
    const a = new Wire(x, 'a', 5000);
    const b = new Wire(y, 'peer b', 300);
    await a.send({ type: 'error', code: 'EEXIST', message: 'web: taken' });
    await a.flush();
    await assert.rejects(b.message('welcome'), { code: 'EEXIST', message: 'peer b: web: taken' });
    await assert.rejects(b.next(), { code: 'ETIMEDOUT' });
  } finally {
    close();
  }
});

test('fingerprints and addresses are checked', () => {
  const fp = fingerprintOf(Buffer.from('x'));
  assert.match(fp, /^sha256:[0-9a-f]{64}$/);
  assert.equal(parseFingerprint(fp.slice(7).toUpperCase().match(/../g)!.join(':')), fp, "OpenSSL's form");
  assert.throws(() => parseFingerprint('sha256:abc'), { code: 'EINVAL' });
  assert.deepEqual(parseAddress('10.0.0.2:7070'), { host: '10.0.0.2', port: 7070, text: '10.0.0.2:7070' });
  assert.equal(parseAddress('[::1]:7070').host, '::1');
  for (const bad of ['10.0.0.2', '10.0.0.2:0', 'a b:1', '10.0.0.2:70000']) assert.throws(() => parseAddress(bad), { code: 'EINVAL' }, bad);
});
