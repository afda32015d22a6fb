import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { killLeftovers } from '../../src/runtime/leftovers.ts';
import { isolation, running, Scratch, skipUnlessIsolated } from './helpers.ts';

const scratch = new Scratch();
after(() => scratch.cleanup());
const fixture = join(import.meta.dirname, 'fixtures', 'crashing-daemon.ts');

interface Recorded { pgid: number; pids: number[]; cgroupPath: string | null }

/** Runs a "daemon" that starts a WPAR, reads what it recorded, then SIGKILLs it. */
async function crash(fallback: boolean): Promise<Recorded> {
  const daemon = spawn(process.execPath, [fixture, JSON.stringify({ dir: scratch.dir, cgroupParent: scratch.cgroupParent, fallback })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  const lines = createInterface({ input: daemon.stdout! });
  const [first] = await lines[Symbol.asyncIterator]().next().then((r) => [r.value as string | undefined]);
  daemon.kill('SIGKILL');
  await exited;
  assert.ok(first, 'the daemon recorded its WPAR before crashing');
  return JSON.parse(first) as Recorded;
}

describe('killLeftovers', { timeout: 30_000 }, () => {
  test('kills the processes a crashed daemon left in its cgroups and removes the cgroups', { skip: skipUnlessIsolated }, async () => {
    const recorded = await crash(false);
    assert.equal(recorded.pids.length, 5, 'two bwraps, sh and two sleeps');
    assert.deepEqual(recorded.pids.filter((pid) => !running(pid)), [], 'the crash left them running');
    const report = await killLeftovers({ isolation, cgroupParent: scratch.cgroupParent });
    assert.deepEqual([...report.killed].sort(), [...recorded.pids].sort());
    assert.deepEqual(report.cgroupsRemoved, [recorded.cgroupPath, scratch.cgroupParent]);
    assert.deepEqual(recorded.pids.filter(running), []);
    for (const mount of new Set(Object.values(isolation.cgroup!.mounts))) assert.equal(existsSync(join(mount, recorded.cgroupPath!)), false);
  });

  test('kills a recorded process group of a crashed fallback daemon', async () => {
    const recorded = await crash(true);
    assert.equal(recorded.pids.length, 3, 'sh and two sleeps');
    assert.deepEqual(recorded.pids.filter((pid) => !running(pid)), []);
    const report = await killLeftovers({ isolation, groups: [{ pgid: recorded.pgid, name: 'crash' }] });
    assert.deepEqual([...report.killed].sort(), [...recorded.pids].sort());
    assert.deepEqual(recorded.pids.filter(running), []);
  });

  test('leaves a recorded group alone when its processes are not that WPAR\'s', async () => {
    const stranger = spawn('sleep', ['60'], { detached: true, stdio: 'ignore', env: { WPAR_NAME: 'someone-else' } });
    try {
      const report = await killLeftovers({ isolation, groups: [{ pgid: stranger.pid!, name: 'crash' }] });
      assert.deepEqual(report.killed, []);
      assert.equal(running(stranger.pid!), true);
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  test('nothing to do is fine', async () => {
    assert.deepEqual(await killLeftovers({ isolation, cgroupParent: `${scratch.cgroupParent}-none`, groups: [] }), { killed: [], cgroupsRemoved: [] });
  });
});
