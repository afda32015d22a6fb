import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { killLeftovers } from '../../src/runtime/leftovers.ts';
import { adopt, examineRecorded, type AdoptOptions } from '../../src/runtime/launch.ts';
import { definition, fallback, isolation, running, Scratch, skipUnlessIsolated } from './helpers.ts';

const scratch = new Scratch();
after(() => scratch.cleanup());
const fixture = join(import.meta.dirname, 'fixtures', 'crashing-daemon.ts');

interface Recorded { pid: number; pgid: number; pids: number[]; cgroupPath: string | null; startTime: number | null }

/** Runs a "daemon" that starts a WPAR, reads what it recorded, then SIGKILLs it. */
async function crash(fallback: boolean, noCgroup = false): Promise<Recorded> {
  const daemon = spawn(process.execPath, [fixture, JSON.stringify({ dir: scratch.dir, cgroupParent: scratch.cgroupParent, fallback, noCgroup })], {
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

  test('kills a sealed WPAR of a crashed daemon that had no cgroup: its sandbox runs in a session of its own', { skip: skipUnlessIsolated }, async () => {
    const recorded = await crash(false, true);
    assert.equal(recorded.cgroupPath, null);
    assert.ok(recorded.pids.length >= 4, `both bwraps, sh and a sleep at least: ${recorded.pids.join(' ')}`);
    assert.deepEqual(recorded.pids.filter((pid) => !running(pid)), []);
    const report = await killLeftovers({ isolation: { ...isolation, cgroup: null }, groups: [{ pgid: recorded.pgid, name: 'crash' }] });
    assert.deepEqual(recorded.pids.filter(running), [], 'the whole PID namespace is gone, setsid or not');
    for (const pid of recorded.pids) assert.ok(report.killed.includes(pid), `${pid} reported`);
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

describe('adopting what a crashed daemon left running (R7)', { timeout: 60_000 }, () => {
  const options = (recorded: Recorded, more: Partial<AdoptOptions> = {}): AdoptOptions => ({
    definition: definition('crash', ['sh']), consoleLog: join(scratch.dir, 'crash', 'console.log'),
    agentPath: join(scratch.dir, 'crash', 'agent', 'agent.sock'), isolation, cgroupParent: scratch.cgroupParent,
    record: { pid: recorded.pid, startTime: recorded.startTime, cgroupPath: recorded.cgroupPath }, ...more,
  });

  test('only the recorded processes are adopted: start time, name, cgroup and the seal are checked', { skip: skipUnlessIsolated }, async () => {
    const recorded = await crash(false);
    try {
      assert.equal(typeof recorded.startTime, 'number');
      assert.deepEqual(examineRecorded(options(recorded)), { kind: 'running' });
      assert.equal(examineRecorded(options(recorded, { definition: definition('other', ['sh']) })).kind, 'refused', 'another WPAR\'s name');
      assert.equal(examineRecorded(options(recorded, { record: { pid: recorded.pid, startTime: recorded.startTime! + 1, cgroupPath: recorded.cgroupPath } })).kind, 'exited', 'the pid is another process now');
      assert.equal(examineRecorded(options(recorded, { record: { pid: recorded.pid, startTime: null, cgroupPath: recorded.cgroupPath } })).kind, 'refused', 'no start time recorded');
      assert.equal(examineRecorded(options(recorded, { record: { pid: recorded.pid, startTime: recorded.startTime, cgroupPath: 'elsewhere' } })).kind, 'refused', 'another cgroup');
      assert.equal(examineRecorded(options(recorded, { isolation: fallback })).kind, 'refused', 'not sealed');

      const wpar = await adopt(options(recorded));
      assert.equal(wpar.adopted, true);
      assert.equal(wpar.pid, recorded.pid);
      assert.deepEqual([...wpar.pids()].sort(), [...recorded.pids].sort());
      await wpar.freeze();
      await wpar.thaw();
      const exit = await wpar.stop({ graceMs: 5_000 });
      assert.equal(exit.signal, 'SIGTERM', 'the exit status, from bwrap\'s status file');
      assert.deepEqual(recorded.pids.filter(running), [], 'every process is gone');
      assert.equal(existsSync(join(Object.values(isolation.cgroup!.mounts)[0]!, recorded.cgroupPath!)), false, 'its cgroup is removed');
      assert.equal(examineRecorded(options(recorded)).kind, 'exited');
    } finally {
      await killLeftovers({ isolation, cgroupParent: scratch.cgroupParent });
    }
  });

  test('killLeftovers leaves the cgroups it is told to keep, and their parent', { skip: skipUnlessIsolated }, async () => {
    const recorded = await crash(false);
    try {
      const report = await killLeftovers({ isolation, cgroupParent: scratch.cgroupParent, keep: [recorded.cgroupPath!] });
      assert.deepEqual(report, { killed: [], cgroupsRemoved: [] });
      assert.deepEqual(recorded.pids.filter((pid) => !running(pid)), []);
    } finally {
      await killLeftovers({ isolation, cgroupParent: scratch.cgroupParent });
    }
  });
});
