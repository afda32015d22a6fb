// WparManager in-process, with a real kernel and runtime: what a racing command must not disturb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKernel, WparError } from '../../src/index.ts';
import { HomeLayout } from '../../src/daemon/home.ts';
import { Journal } from '../../src/daemon/journal.ts';
import { Store } from '../../src/daemon/store.ts';
import { WparManager, type AgentEndpoint } from '../../src/daemon/wpars.ts';
import { detectIsolation } from '../../src/runtime/isolation.ts';

test('a start racing a restart gets EBUSY and does not take the agent states the restart hands over', async () => {
  const home = mkdtempSync(join(tmpdir(), 'corral-mgr-'));
  const kernel = createKernel();
  const store = new Store(join(home, 'corral.db'));
  const journal = new Journal(join(home, 'events.log'), store, () => {});
  const handed: Record<string, unknown>[] = [];
  const endpoint = (): AgentEndpoint => ({
    save: async () => ({}), saved: async () => {}, participants: () => [],
    restore: async (states) => { handed.push(states); }, close: async () => {},
  });
  const manager = new WparManager({ kernel, store, layout: new HomeLayout(home), isolation: detectIsolation({ fallback: true }), journal, agents: async () => endpoint() });
  let release!: () => void;
  const hold = kernel.extension('hold').watch({ start: () => new Promise<void>((r) => { release = r; }) });
  try {
    await manager.create({ name: 'moved', argv: ['sleep', '60'], env: {}, hostname: null, checkpointable: true, limits: {}, autostart: false });
    const restarting = manager.start('moved', { restart: true, agentStates: { counter: { count: 40 } } });
    await assert.rejects(manager.start('moved'), (e: WparError) => e.code === 'EBUSY' && /while starting/.test(e.message));
    release();
    await restarting;
    assert.deepEqual(handed, [{ counter: { count: 40 } }], 'the restart\'s states reached the agent endpoint');
    await manager.restored('moved');
    await manager.stop('moved', { force: true });
  } finally {
    await hold.unregister();
    await journal.close();
    store.close();
    rmSync(home, { recursive: true, force: true });
  }
});

test('a start rolled back by a later subsystem leaves the WPAR broken with no cid, its processes stopped', async () => {
  const home = mkdtempSync(join(tmpdir(), 'corral-mgr-'));
  const kernel = createKernel();
  const store = new Store(join(home, 'corral.db'));
  const journal = new Journal(join(home, 'events.log'), store, () => {});
  const endpoint = (): AgentEndpoint => ({ save: async () => ({}), saved: async () => {}, participants: () => [], restore: async () => {}, close: async () => {} });
  const manager = new WparManager({ kernel, store, layout: new HomeLayout(home), isolation: detectIsolation({ fallback: true }), journal, agents: async () => endpoint() });
  // After the runtime: its start runs once the processes run, and its failure rolls the runtime back.
  kernel.use({ name: 'later', start: () => { throw new WparError('EPERM', 'refused by the later subsystem'); }, stop: () => {} });
  try {
    await manager.create({ name: 'rolled', argv: ['sleep', '60'], env: {}, hostname: null, checkpointable: false, limits: {}, autostart: false });
    await assert.rejects(manager.start('rolled'), (e: WparError) => e.code === 'EPERM' && /later subsystem/.test(e.message));
    const info = manager.info('rolled');
    assert.equal(info.state, 'B');
    assert.equal(info.cid, null, 'no stale cid');
    assert.equal(info.pid, null);
    assert.deepEqual(manager.active(), []);
    assert.match(info.lastExit?.reason ?? '', /^failed to start: refused by the later subsystem/);
  } finally {
    await journal.close();
    store.close();
    rmSync(home, { recursive: true, force: true });
  }
});

test('rmwpar -F of an active transient WPAR joins the removal its end starts: removed once', async () => {
  const home = mkdtempSync(join(tmpdir(), 'corral-mgr-'));
  const kernel = createKernel();
  const store = new Store(join(home, 'corral.db'));
  const journal = new Journal(join(home, 'events.log'), store, () => {});
  const removed: string[] = [];
  const unfollow = journal.follow((e) => { if (e.type === 'runtime.removed') removed.push(String(e.name)); });
  const endpoint = (): AgentEndpoint => ({ save: async () => ({}), saved: async () => {}, participants: () => [], restore: async () => {}, close: async () => {} });
  const manager = new WparManager({ kernel, store, layout: new HomeLayout(home), isolation: detectIsolation({ fallback: true }), journal, agents: async () => endpoint() });
  try {
    await manager.create({ name: 'once', argv: ['sleep', '60'], env: {}, hostname: null, checkpointable: false, limits: {}, autostart: false }, true);
    await manager.start('once');
    await manager.remove('once', { force: true });
    assert.equal(manager.has('once'), false);
    assert.deepEqual(removed, ['once'], 'one removal');
    assert.equal((await manager.wait('once')).reason, 'removed by rmwpar -F', 'a late wait still gets the exit');
  } finally {
    unfollow();
    await journal.close();
    store.close();
    rmSync(home, { recursive: true, force: true });
  }
});
