// Item 3 of issue 11: the agent endpoint's memory is bounded per connection, in total and in
// connections, and given back when a connection closes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteBudget } from '../../src/agent/protocol.ts';
import { RawClient, system } from './helpers.ts';

const MiB = 1024 * 1024;

/** Resolves once `ok()` holds, checking every 5 ms; fails after 5 s. */
async function until(ok: () => boolean): Promise<void> {
  for (const t0 = Date.now(); !ok();) {
    if (Date.now() - t0 > 5000) throw new Error('condition not reached within 5 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('partial lines across connections stay within the shared budget and are released on close', async () => {
  const budget = new ByteBudget(4 * MiB);
  await using sys = await system({ server: { maxLineBytes: 2 * MiB, budget } });
  const clients: RawClient[] = [];
  const line = `{"id":1,"type":"deny","reason":"${'x'.repeat(1.5 * MiB)}`; // never ended
  try {
    for (let i = 0; i < 8; i++) {
      const c = await RawClient.open(sys.socketPath);
      clients.push(c);
      c.write(line);
      if (i < 2) {
        // Held whole: wait (bounded) until the server has it.
        await until(() => sys.server.bufferedBytes() >= (i + 1) * line.length);
      } else {
        // No room left: the line is discarded and the client told so at once.
        const m = await c.next();
        assert.equal(m['id'], null);
        assert.equal((m['error'] as { code: string }).code, 'EMSGSIZE');
        assert.match((m['error'] as { message: string }).message, /already hold 4194304 bytes of partial lines/);
      }
      assert.ok(sys.server.bufferedBytes() <= 4 * MiB, `${sys.server.bufferedBytes()} bytes buffered`);
      assert.ok(budget.used <= 4 * MiB);
    }
    assert.equal(sys.server.bufferedBytes(), 2 * line.length);
    // A refused connection still works once its line has ended.
    clients[7]!.write('\n');
    assert.deepEqual(await clients[7]!.request({ id: 3, type: 'ping' }), { id: 3, ok: true });
  } finally {
    for (const c of clients) c[Symbol.dispose]();
  }
  await until(() => sys.server.connections().length === 0);
  assert.equal(sys.server.connections().length, 0);
  assert.equal(sys.server.bufferedBytes(), 0);
  assert.equal(budget.used, 0, 'every byte was given back');
});

test('one connection more than maxConnections is told EAGAIN and closed; the others go on', async () => {
  await using sys = await system({ server: { maxConnections: 3 } });
  const clients = await Promise.all([0, 1, 2].map(() => RawClient.open(sys.socketPath)));
  try {
    for (const c of clients) assert.deepEqual(await c.request({ id: 1, type: 'ping' }), { id: 1, ok: true });
    using extra = await RawClient.open(sys.socketPath);
    const m = await extra.next();
    assert.deepEqual(m, { id: null, ok: false, error: { code: 'EAGAIN', message: 'too many agent connections to WPAR "web" (at most 3)' } });
    await new Promise((r) => extra.socket.once('close', r));
    assert.deepEqual(await clients[0]!.request({ id: 2, type: 'ping' }), { id: 2, ok: true });
  } finally {
    for (const c of clients) c[Symbol.dispose]();
  }
});
