// The SDK (`corral/agent`) against the real server and a real kernel: in-process where simpler, in a
// child process with WPAR_AGENT set where the process itself matters (exit, staying alive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createAgent, type Participant } from '../../src/agent/index.ts';
import { startAgentServer } from '../../src/agent/server.ts';
import type { WparError } from '../../src/index.ts';
import { Lines, nextEvent, system } from './helpers.ts';

const CHILD = join(import.meta.dirname, 'fixtures', 'child.ts');

function runChild(mode: string, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [CHILD, mode], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  return { child, out: new Lines(child.stdout) };
}

test('child process: deny appears in the kernel as agent:NAME/PID with the reason; exiting releases it', async () => {
  await using sys = await system();
  const { child, out } = runChild('deny', { ...process.env, WPAR_AGENT: sys.socketPath });
  const line = JSON.parse(await out.waitFor(() => true)) as Record<string, unknown>;
  const owner = `agent:web/${child.pid}`;
  assert.deepEqual(line, { owner, reason: 'child critical section', active: true });
  assert.deepEqual(sys.kernel.status(sys.cid)!.denials.map((d) => [d.owner, d.reason]), [[owner, 'child critical section']]);
  const released = nextEvent(sys.kernel, (e) => e.type === 'allow' && e.owner === owner);
  child.stdin.write('exit\n');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  const event = await released;
  assert.equal(event.type === 'allow' && event.cause, 'owner-closed');
  assert.deepEqual(sys.kernel.status(sys.cid)!.denials, []);
});

test('child process: a program that only registered a participant exits when its work ends', async () => {
  await using sys = await system();
  const { child, out } = runChild('register', { ...process.env, WPAR_AGENT: sys.socketPath });
  const left = sys.waitLog((l) => l.startsWith(`agent:web/${child.pid} left`));
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  assert.deepEqual(out.all, ['registered']);
  await left;
  assert.deepEqual(sys.server.participants(), []);
  assert.ok(sys.logs.some((l) => l === `agent:web/${child.pid} registered participant "child-state"`), sys.logs.join('\n'));
});

test('child process: outside a WPAR the agent is inert — every call succeeds and does nothing', async () => {
  const env = { ...process.env };
  delete env['WPAR_AGENT'];
  const { child, out } = runChild('inert', env);
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(out.all[0]!), { inWpar: false, denialInert: true, active: false, allowed: false, registrationInert: true });
});

test('in-process: inert agent; argument errors are the same in and out of a WPAR', async () => {
  const a = createAgent({ socketPath: undefined });
  assert.equal(a.inWpar, false);
  assert.equal(createAgent({ socketPath: '' }).inWpar, false);
  using d = await a.deny('x');
  assert.equal(d.inert, true);
  await assert.rejects(a.deny(''), (e: WparError) => e.code === 'EINVAL');
  await assert.rejects(a.register({ name: 'p' } as unknown as Participant), (e: WparError) => e.code === 'EINVAL');
});

test('in-process: allow(), using and await using release the denial; the owner is agent:NAME/PID', async () => {
  await using sys = await system();
  const a = createAgent({ socketPath: sys.socketPath, pid: 777 });
  try {
    const denials = () => sys.kernel.status(sys.cid)!.denials.map((d) => `${d.owner} ${d.reason}`);
    const d = await a.deny('first');
    assert.equal(a.owner, 'agent:web/777');
    assert.equal(d.owner, 'agent:web/777');
    assert.deepEqual(denials(), ['agent:web/777 first']);
    assert.equal(await d.allow(), true);
    assert.equal(await d.allow(), true, 'idempotent: the same answer');
    assert.equal(d.active, false);
    assert.deepEqual(denials(), []);
    {
      await using _e = await a.deny('scoped, awaited');
      assert.deepEqual(denials(), ['agent:web/777 scoped, awaited']);
    }
    assert.deepEqual(denials(), []);
    const gone = nextEvent(sys.kernel, (e) => e.type === 'allow' && e.reason === 'scoped');
    {
      using _f = await a.deny('scoped');
    }
    await gone;
    assert.deepEqual(denials(), []);
  } finally {
    a.close();
  }
});

test('in-process: deny() is a handle before it settles (R6): allow() and using work unawaited; awaiting gives the denial', async () => {
  await using sys = await system();
  const a = createAgent({ socketPath: sys.socketPath, pid: 779 });
  try {
    const denials = () => sys.kernel.status(sys.cid)!.denials.map((d) => d.reason);
    const pending = a.deny('not awaited');
    assert.equal(typeof pending.allow, 'function');
    assert.equal((await pending).owner, 'agent:web/779', 'awaiting it gives the AgentDenial');
    assert.deepEqual(denials(), ['not awaited']);
    assert.equal(await pending.allow(), true);
    assert.deepEqual(denials(), []);
    const made = nextEvent(sys.kernel, (e) => e.type === 'deny' && e.reason === 'scoped, unawaited');
    const gone = nextEvent(sys.kernel, (e) => e.type === 'allow' && e.reason === 'scoped, unawaited');
    {
      using _g = a.deny('scoped, unawaited');
    }
    await made;
    await gone;
    assert.deepEqual(denials(), []);
    assert.equal(await a.deny('').allow(), false, 'a denial that could not be made: nothing to allow');
  } finally {
    a.close();
  }
});

test('in-process: deny during a checkpoint throws EBUSY explaining it can be retried after', async () => {
  await using sys = await system();
  const a = createAgent({ socketPath: sys.socketPath, pid: 778 });
  try {
    const checkpoint = await sys.kernel.services.tryCheckpoint(sys.cid, { timeoutMs: 0 });
    await assert.rejects(a.deny('writing batch 12'), (e: WparError) => e.name === 'WparError' && e.code === 'EBUSY'
      && e.message.includes('a checkpoint of this WPAR is in progress; deny() can be retried after it completes'));
    checkpoint.clear();
    using d = await a.deny('writing batch 12');
    assert.equal(d.active, true);
  } finally {
    a.close();
  }
});

test('in-process: closing the connection releases the denials; the handle turns inactive; the next call reconnects', async () => {
  await using sys = await system();
  const a = createAgent({ socketPath: sys.socketPath, pid: 779 });
  try {
    const d = await a.deny('held');
    const released = nextEvent(sys.kernel, (e) => e.type === 'allow' && e.owner === 'agent:web/779');
    a.close();
    await released;
    assert.equal(d.active, false);
    assert.equal(await d.allow(), false);
    using again = await a.deny('after reconnecting');
    assert.equal(again.owner, 'agent:web/779');
  } finally {
    a.close();
  }
});

test('in-process: after the daemon side drops, the next call reconnects and registers the participants again', async () => {
  await using sys = await system();
  const a = createAgent({ socketPath: sys.socketPath, pid: 780 });
  try {
    const reg = await a.register({ name: 'keep', beforeCheckpoint: () => 1, afterRestore: () => {} });
    await sys.server.close();
    const again = await startAgentServer({
      socketPath: sys.socketPath, wparName: 'web', openOwner: (n) => sys.kernel.extension(n), cid: () => sys.cid,
    });
    try {
      // A call that races the drop can still go out on the closed connection and fail (ECANCELED,
      // as documented); the call after it reconnects. Either way the next successful call is on a
      // new connection with the participants registered again.
      const denyAgain = () => a.deny('after the daemon came back');
      using _d = await denyAgain().catch((err: WparError) => {
        assert.equal(err.code, 'ECANCELED');
        return denyAgain();
      });
      assert.deepEqual(again.participants(), ['keep']);
      assert.equal(reg.registered, true);
      assert.deepEqual(await again.save(), { keep: { encoding: 'json', value: 1 } });
    } finally {
      a.close();
      await again.close();
    }
  } finally {
    a.close();
  }
});

test('in-process: register twice is EEXIST (same program or another)', async () => {
  await using sys = await system();
  const a = createAgent({ socketPath: sys.socketPath, pid: 1 });
  const b = createAgent({ socketPath: sys.socketPath, pid: 2 });
  try {
    const p = { name: 'cache', beforeCheckpoint: () => 1, afterRestore: () => {} };
    const reg = await a.register(p);
    assert.equal(reg.registered, true);
    await assert.rejects(a.register(p), (e: WparError) => e.code === 'EEXIST' && /this program/.test(e.message));
    await assert.rejects(b.register(p), (e: WparError) => e.code === 'EEXIST' && /by agent:web\/1/.test(e.message));
    await reg.unregister();
    assert.equal(reg.registered, false);
    assert.deepEqual(sys.server.participants(), []);
    await b.register(p);
    assert.deepEqual(sys.server.participants(), ['cache']);
  } finally {
    a.close();
    b.close();
  }
});

test('save and restore round trip across two systems, with Map and Date state', async () => {
  // Departure system.
  const states = await (async () => {
    await using departure = await system();
    const a = createAgent({ socketPath: departure.socketPath, pid: 100 });
    const calls: string[] = [];
    const sessions = new Map([['alice', new Date(Date.UTC(2024, 0, 2))]]);
    try {
      await a.register({
        name: 'sessions',
        beforeCheckpoint: async () => { calls.push('before sessions'); return { sessions, hits: 41n }; },
        afterCheckpoint: (info) => { calls.push(`after sessions ${info.completed}`); },
        afterRestore: () => { throw new Error('not on the departure system'); },
      });
      await a.register({
        name: 'counter',
        beforeCheckpoint: () => ({ count: 5 }),
        afterRestore: () => {},
      });
      using checkpoint = await departure.kernel.services.tryCheckpoint(departure.cid, { timeoutMs: 0 });
      const saved = await departure.server.save();
      assert.deepEqual(saved['counter'], { encoding: 'json', value: { count: 5 } });
      assert.equal(saved['sessions']?.encoding, 'v8');
      await departure.server.saved();
      checkpoint.clear();
      assert.deepEqual(calls, ['before sessions', 'after sessions true']);
      return JSON.parse(JSON.stringify(saved)) as Record<string, unknown>; // as the image stores it
    } finally {
      a.close();
    }
  })();

  // Arrival system: a different kernel; the daemon hands the states over before the program registers.
  await using arrival = await system({ restart: true });
  assert.equal(arrival.kernel.status(arrival.cid)!.phase, 'restarting');
  const restoring = arrival.server.restore(states);
  const b = createAgent({ socketPath: arrival.socketPath, pid: 200 });
  try {
    let restored: unknown;
    let count = 0;
    await b.register({
      name: 'sessions',
      beforeCheckpoint: () => undefined,
      afterRestore: (state) => { restored = state; },
    });
    assert.deepEqual(restored, { sessions: new Map([['alice', new Date(Date.UTC(2024, 0, 2))]]), hits: 41n },
      'register resolved after afterRestore');
    await b.register<{ count: number }>({
      name: 'counter',
      beforeCheckpoint: () => ({ count }),
      afterRestore: (state) => { count = state.count; },
    });
    assert.equal(count, 5);
    await restoring;
    arrival.kernel.services.restartClear(arrival.cid);
    assert.equal(arrival.kernel.status(arrival.cid)!.phase, 'normal');
  } finally {
    b.close();
  }
});

test('a participant whose beforeCheckpoint throws fails the save, naming it', async () => {
  await using sys = await system();
  const a = createAgent({ socketPath: sys.socketPath, pid: 300 });
  try {
    await a.register({ name: 'flaky', beforeCheckpoint: () => { throw new Error('db locked'); }, afterRestore: () => {} });
    await assert.rejects(sys.server.save(), (e: WparError) => e.code === 'ECANCELED'
      && /participant "flaky" \(agent:web\/300\) failed to save: beforeCheckpoint of participant "flaky" failed: db locked/.test(e.message));
  } finally {
    a.close();
  }
});

test('a participant whose state cannot be cloned fails the save with EINVAL in the message', async () => {
  await using sys = await system();
  const a = createAgent({ socketPath: sys.socketPath, pid: 301 });
  try {
    await a.register({ name: 'fn', beforeCheckpoint: () => ({ f: () => 1 }), afterRestore: () => {} });
    await assert.rejects(sys.server.save(), /participant "fn" \(agent:web\/301\) failed to save: the state of participant "fn" cannot be saved: .*\(EINVAL\)/);
  } finally {
    a.close();
  }
});

test('a state too large for one line fails the save with a clear error naming the participant', async () => {
  await using sys = await system({ server: { maxLineBytes: 300 } });
  const a = createAgent({ socketPath: sys.socketPath, pid: 302 });
  try {
    await a.register({ name: 'small', beforeCheckpoint: () => 1, afterRestore: () => {} });
    await a.register({ name: 'huge', beforeCheckpoint: () => 'x'.repeat(500), afterRestore: () => {} });
    await assert.rejects(sys.server.save(), (e: WparError) => e.code === 'ECANCELED'
      && /participant "huge" \(agent:web\/302\) failed to save: the answer to save is \d+ bytes, over the daemon's limit of 300 bytes per line/.test(e.message));
  } finally {
    a.close();
  }
});

test('restore: an afterRestore that throws rejects register in the program and fails the restore, naming it', async () => {
  await using sys = await system({ restart: true });
  const restoring = sys.server.restore({ broken: { encoding: 'json', value: 1 } });
  const a = createAgent({ socketPath: sys.socketPath, pid: 400 });
  try {
    await assert.rejects(a.register({ name: 'broken', beforeCheckpoint: () => 1, afterRestore: () => { throw new Error('schema changed'); } }),
      /schema changed/);
    await assert.rejects(restoring, (e: WparError) => e.code === 'ECANCELED'
      && /participant "broken" \(agent:web\/400\) failed to restore: afterRestore of participant "broken" failed: schema changed/.test(e.message));
  } finally {
    a.close();
  }
});

