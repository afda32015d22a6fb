// The agent server against a real kernel, driven by a raw JSON-lines client (as a program in any
// language would be): hello, deny/allow as kernel denials, errors, limits, the socket's mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAgentServer } from '../../src/agent/server.ts';
import type { WparError } from '../../src/index.ts';
import { nextEvent, RawClient, system } from './helpers.ts';

async function hello(c: RawClient, pid: number): Promise<Record<string, unknown>> {
  return c.request({ id: 'h', type: 'hello', protocol: 1, pid, name: 'raw-test' });
}

test('the socket is mode 0600, bound without a temporary directory left behind', async () => {
  await using sys = await system();
  const st = statSync(sys.socketPath);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(sys.dir), ['agent.sock']);
});

test('a second server on a live socket, or on a path holding a file, fails with EEXIST', async () => {
  await using sys = await system();
  const common = { wparName: 'web', openOwner: () => { throw new Error('unused'); }, cid: () => sys.cid };
  await assert.rejects(startAgentServer({ ...common, socketPath: sys.socketPath }),
    (e: WparError) => e.code === 'EEXIST' && /already listening/.test(e.message));
  const file = join(sys.dir, 'file');
  writeFileSync(file, 'x');
  await assert.rejects(startAgentServer({ ...common, socketPath: file }),
    (e: WparError) => e.code === 'EEXIST' && /other than a socket/.test(e.message));
  assert.deepEqual(readdirSync(sys.dir).sort(), ['agent.sock', 'file']);
});

test('hello opens the owner agent:WPAR/PID; deny is a kernel denial with that owner and reason; allow removes it', async () => {
  await using sys = await system();
  using c = await RawClient.open(sys.socketPath);
  assert.deepEqual(await hello(c, 4711), {
    id: 'h', ok: true, protocol: 1, wpar: 'web', cid: sys.cid, owner: 'agent:web/4711', maxLineBytes: 8 * 1024 * 1024,
  });
  const d = await c.request({ id: 1, type: 'deny', reason: 'writing batch 12' });
  assert.equal(d['ok'], true);
  assert.equal(d['owner'], 'agent:web/4711');
  assert.equal(typeof d['denial'], 'number');
  const [denial] = sys.kernel.status(sys.cid)!.denials;
  assert.deepEqual(denial, { owner: 'agent:web/4711', reason: 'writing batch 12', since: d['since'] });
  assert.deepEqual(await c.request({ id: 2, type: 'allow', denial: d['denial'] }), { id: 2, ok: true, allowed: true });
  assert.deepEqual(sys.kernel.status(sys.cid)!.denials, []);
  const again = await c.request({ id: 3, type: 'allow', denial: d['denial'] });
  assert.equal((again['error'] as { code: string }).code, 'EINVAL');
});

test('a destroyed connection releases every denial it held (the owner closes)', async () => {
  await using sys = await system();
  const c = await RawClient.open(sys.socketPath);
  await hello(c, 4242);
  await c.request({ id: 1, type: 'deny', reason: 'one' });
  await c.request({ id: 2, type: 'deny', reason: 'two' });
  assert.equal(sys.kernel.status(sys.cid)!.denials.length, 2);
  const closed = nextEvent(sys.kernel, (e) => e.type === 'owner.close' && e.owner === 'agent:web/4242');
  c.socket.destroy();
  await closed;
  assert.deepEqual(sys.kernel.status(sys.cid)!.denials, []);
  assert.ok(sys.logs.some((l) => /agent:web\/4242 left .*2 denial\(s\) released/.test(l)), sys.logs.join('\n'));
});

test('deny during a checkpoint answers EBUSY with the explanation', async () => {
  await using sys = await system();
  using c = await RawClient.open(sys.socketPath);
  await hello(c, 7);
  using _checkpoint = await sys.kernel.services.tryCheckpoint(sys.cid, { timeoutMs: 0 });
  const answer = await c.request({ id: 1, type: 'deny', reason: 'too late' });
  assert.equal(answer['ok'], false);
  const error = answer['error'] as { code: string; message: string };
  assert.equal(error.code, 'EBUSY');
  assert.match(error.message, /a checkpoint of this WPAR is in progress; deny\(\) can be retried after it completes/);
});

test('a second connection from the same PID gets its own owner', async () => {
  await using sys = await system();
  using a = await RawClient.open(sys.socketPath);
  using b = await RawClient.open(sys.socketPath);
  assert.equal((await hello(a, 99))['owner'], 'agent:web/99');
  assert.equal((await hello(b, 99))['owner'], 'agent:web/99#2');
});

test('protocol errors: before hello, bad hello, unknown type, malformed and oversize lines — the server goes on', async () => {
  await using sys = await system({ server: { maxLineBytes: 1024 } });
  using c = await RawClient.open(sys.socketPath);
  const code = (m: Record<string, unknown>): string => (m['error'] as { code: string }).code;
  const msg = (m: Record<string, unknown>): string => (m['error'] as { message: string }).message;

  let m = await c.request({ id: 1, type: 'deny', reason: 'x' });
  assert.equal(code(m), 'EPERM');
  assert.match(msg(m), /hello first/);
  m = await c.request({ id: 2, type: 'hello', protocol: 2, pid: 1 });
  assert.equal(code(m), 'EINVAL');
  assert.match(msg(m), /protocol 2.*speaks protocol 1/);
  m = await c.request({ id: 3, type: 'hello', protocol: 1 });
  assert.match(msg(m), /pid/);
  await hello(c, 5);
  m = await c.request({ id: 4, type: 'hello', protocol: 1, pid: 5 });
  assert.match(msg(m), /already/);

  m = await c.request({ id: 5, type: 'teleport' });
  assert.deepEqual(m, { id: 5, ok: false, error: { code: 'EINVAL', message: 'unknown message type "teleport"' } });

  c.write('this is not json\n');
  m = await c.next();
  assert.equal(m['id'], null);
  assert.equal(code(m), 'EINVAL');
  assert.match(msg(m), /malformed line \(not JSON\)/);
  c.write('[1,2]\n');
  assert.match(msg(await c.next()), /a message is a JSON object/);
  c.write('{"type":"ping"}\n');
  assert.match(msg(await c.next()), /"id" must be/);

  c.write(`{"id":6,"type":"deny","reason":"${'x'.repeat(700)}`);
  c.write(`${'y'.repeat(700)}"}\n`);
  m = await c.next();
  assert.equal(m['id'], null);
  assert.match(msg(m), /longer than 1024 bytes/);
  assert.deepEqual(sys.kernel.status(sys.cid)!.denials, []);

  assert.deepEqual(await c.request({ id: 7, type: 'ping' }), { id: 7, ok: true });
  assert.equal(code(await c.request({ id: 8, type: 'deny', reason: '' })), 'EINVAL');
  assert.equal(code(await c.request({ id: 9, type: 'allow', denial: 'nope' })), 'EINVAL');
  assert.equal(code(await c.request({ id: 10, type: 'register', name: '' })), 'EINVAL');
});

test('participant names are unique per WPAR: a second register anywhere is EEXIST naming the holder', async () => {
  await using sys = await system();
  using a = await RawClient.open(sys.socketPath);
  using b = await RawClient.open(sys.socketPath);
  await hello(a, 1);
  await hello(b, 2);
  assert.deepEqual(await a.request({ id: 1, type: 'register', name: 'cache' }), { id: 1, ok: true, restoring: false });
  const dup = await b.request({ id: 1, type: 'register', name: 'cache' });
  assert.equal((dup['error'] as { code: string }).code, 'EEXIST');
  assert.match((dup['error'] as { message: string }).message, /"cache" is already registered in WPAR "web" \(by agent:web\/1\)/);
  assert.deepEqual(sys.server.participants(), ['cache']);
  assert.deepEqual(await a.request({ id: 2, type: 'unregister', name: 'cache' }), { id: 2, ok: true });
  assert.deepEqual(await b.request({ id: 2, type: 'register', name: 'cache' }), { id: 2, ok: true, restoring: false });
  assert.deepEqual(sys.server.connections().map((c) => [c.owner, c.participants]), [['agent:web/1', []], ['agent:web/2', ['cache']]]);
});

test('save speaks the protocol: the daemon asks, the program answers states; saved and restore likewise', async () => {
  await using sys = await system();
  using c = await RawClient.open(sys.socketPath);
  await hello(c, 3);
  await c.request({ id: 1, type: 'register', name: 'p' });
  const saving = sys.server.save();
  const ask = await c.next();
  assert.deepEqual({ ...ask, id: 0 }, { id: 0, type: 'save', participants: ['p'] });
  c.send({ id: ask['id'], ok: true, states: { p: { encoding: 'json', value: { n: 1 } } } });
  assert.deepEqual(await saving, { p: { encoding: 'json', value: { n: 1 } } });

  const savedDone = sys.server.saved({ completed: false });
  const told = await c.next();
  assert.deepEqual({ ...told, id: 0 }, { id: 0, type: 'saved', participants: ['p'], completed: false });
  c.send({ id: told['id'], ok: true });
  await savedDone;

  const restoring = sys.server.restore({ p: { encoding: 'json', value: { n: 1 } } });
  const r = await c.next();
  assert.deepEqual({ ...r, id: 0 }, { id: 0, type: 'restore', states: { p: { encoding: 'json', value: { n: 1 } } } });
  c.send({ id: r['id'], ok: true });
  await restoring;
});

test('save fails naming the participant: no answer in time (ETIMEDOUT), a refusal or a bad state (ECANCELED)', async () => {
  await using sys = await system({ server: { saveTimeoutMs: 50 } });
  using slow = await RawClient.open(sys.socketPath);
  await hello(slow, 10);
  await slow.request({ id: 1, type: 'register', name: 'sleepy' });
  await assert.rejects(sys.server.save(), (e: WparError) => e.code === 'ETIMEDOUT'
    && /participant "sleepy" \(agent:web\/10\) did not answer save within 0.05 s/.test(e.message));
  await slow.next(); // the save request it ignored
  slow.socket.destroy();

  using refusing = await RawClient.open(sys.socketPath);
  await hello(refusing, 11);
  await refusing.request({ id: 1, type: 'register', name: 'grumpy' });
  const saving = sys.server.save();
  const ask = await refusing.next();
  refusing.send({ id: ask['id'], ok: false, error: { code: 'ECANCELED', message: 'disk on fire', participant: 'grumpy' } });
  await assert.rejects(saving, (e: WparError) => e.code === 'ECANCELED'
    && /participant "grumpy" \(agent:web\/11\) failed to save: disk on fire/.test(e.message));

  const saving2 = sys.server.save();
  const ask2 = await refusing.next();
  refusing.send({ id: ask2['id'], ok: true, states: { grumpy: { encoding: 'yaml' } } });
  await assert.rejects(saving2, /"grumpy" \(agent:web\/11\) answered save without a valid state/);
});

test('an oversize answer to save fails the save at once, naming the connection', async () => {
  await using sys = await system({ server: { maxLineBytes: 100 } });
  using c = await RawClient.open(sys.socketPath);
  await hello(c, 12);
  await c.request({ id: 1, type: 'register', name: 'big' });
  const saving = sys.server.save();
  const ask = await c.next();
  c.send({ id: ask['id'], ok: true, states: { big: { encoding: 'json', value: 'x'.repeat(200) } } });
  await assert.rejects(saving, (e: WparError) => e.code === 'ECANCELED' && /agent:web\/12 answered save with a line longer than 100 bytes/.test(e.message));
});

test('restore fails naming participants that never registered (ETIMEDOUT); bad states are EINVAL', async () => {
  await using sys = await system({ restart: true, server: { restoreTimeoutMs: 50 } });
  await assert.rejects(sys.server.restore({ ghost: { encoding: 'json', value: 1 } }),
    (e: WparError) => e.code === 'ETIMEDOUT' && /participant "ghost" did not register/.test(e.message));
  await assert.rejects(sys.server.restore({ p: { count: 1 } }), (e: WparError) => e.code === 'EINVAL' && /"p"/.test(e.message));
  await sys.server.restore({}); // nothing to restore
});

test('close ends every connection, releases its denials and removes the socket', async () => {
  await using sys = await system();
  using c = await RawClient.open(sys.socketPath);
  await hello(c, 20);
  await c.request({ id: 1, type: 'deny', reason: 'busy' });
  const ended = new Promise((resolve) => c.socket.once('close', resolve));
  await sys.server.close();
  await ended;
  assert.deepEqual(sys.kernel.status(sys.cid)!.denials, []);
  assert.deepEqual(readdirSync(sys.dir), []);
});
