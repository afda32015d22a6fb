import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planCommand, WPAR_INIT } from '../../src/runtime/command.ts';
import { UNSHARE_FLAGS, type Isolation } from '../../src/runtime/isolation.ts';

const base: Isolation = { namespaces: null, cgroup: null, prlimit: '/usr/bin/prlimit', shell: '/bin/sh', summary: '', notes: [] };
const full: Isolation = {
  ...base,
  namespaces: { unshare: '/usr/bin/unshare', tini: '/usr/bin/tini' },
  cgroup: { version: 1, controllers: ['memory', 'pids', 'cpu', 'freezer'], mounts: {} },
};
const argv = ['app', '$(touch pwned)', '--flag'];

describe('planCommand', () => {
  test('namespaces and cgroup: unshare, then PID 1 waits, sets the hostname, becomes tini; argv last and untouched', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: { memoryBytes: 1024 }, isolation: full });
    assert.deepEqual([plan.file, ...plan.args], [
      '/usr/bin/unshare', ...UNSHARE_FLAGS, '--', '/bin/sh', WPAR_INIT, '--wait', '--hostname', 'web', '--', '/usr/bin/tini', '--', ...argv,
    ]);
    assert.equal(plan.hold, true);
    assert.deepEqual(plan.unenforced, []);
  });

  test('a cgroup without namespaces: only the wait', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: { procs: 3 }, isolation: { ...full, namespaces: null } });
    assert.deepEqual([plan.file, ...plan.args], ['/bin/sh', WPAR_INIT, '--wait', '--', ...argv]);
    assert.equal(plan.hold, true);
  });

  test('namespaces without a cgroup: no wait, rlimits in front', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: { procs: 3 }, isolation: { ...full, cgroup: null } });
    assert.deepEqual([plan.file, ...plan.args], [
      '/usr/bin/prlimit', '--nproc=3', '--', '/usr/bin/unshare', ...UNSHARE_FLAGS, '--', '/bin/sh', WPAR_INIT, '--hostname', 'web', '--', '/usr/bin/tini', '--', ...argv,
    ]);
    assert.equal(plan.hold, false);
  });

  test('fallback without limits spawns the command itself', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: {}, isolation: base });
    assert.deepEqual([plan.file, ...plan.args], argv);
    assert.equal(plan.hold, false);
  });

  test('fallback with limits puts prlimit in front; cpu cannot be enforced', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: { memoryBytes: 1024, procs: 5, cpuPercent: 50 }, isolation: base });
    assert.deepEqual([plan.file, ...plan.args], ['/usr/bin/prlimit', '--data=1024', '--nproc=5', '--', ...argv]);
    assert.deepEqual(plan.unenforced, ['cpuPercent']);
  });

  test('without prlimit nothing is enforced', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: { memoryBytes: 1024, procs: 5 }, isolation: { ...base, prlimit: null } });
    assert.deepEqual([plan.file, ...plan.args], argv);
    assert.deepEqual(plan.unenforced, ['memoryBytes', 'procs']);
  });
});
