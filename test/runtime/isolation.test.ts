import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { detectIsolation, isolationShortfalls } from '../../src/runtime/isolation.ts';

describe('detectIsolation', () => {
  test('forcing the fallback gives a process group and rlimits, and says that sealing is off', () => {
    const iso = detectIsolation({ fallback: true });
    assert.equal(iso.seal, null);
    assert.equal(iso.cgroup, null);
    assert.equal(iso.summary, iso.prlimit ? 'process group; rlimits' : 'process group; no limits');
    assert.equal(iso.notes.length, 1);
    assert.match(iso.notes[0]!, /^sealing: off \(wpard --fallback-isolation\)/);
  });

  const root = process.platform === 'linux' && process.getuid?.() === 0;
  test('as root on Linux: sealed, with the given id range, and the cgroup hierarchy this machine has', { skip: root ? false : 'needs root on Linux' }, () => {
    const iso = detectIsolation({ ids: { base: 300_000, size: 65_536 } });
    assert.ok(iso.seal, `sealed: ${iso.notes.join('; ')}`);
    assert.deepEqual(iso.seal.ids, { base: 300_000, size: 65_536 }, iso.notes.join('; '));
    assert.ok(iso.cgroup);
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    assert.equal(iso.cgroup.version, v2 ? 2 : 1);
    assert.match(iso.summary, new RegExp(`^sealed: user \\(uid 0 = host 300000\\), mount \\(host read-only\\), pid, uts, ipc, cgroup, net; cgroup v${v2 ? 2 : 1} [a-z,]+$`));
    if (!v2 && iso.cgroup.controllers.length === 4) {
      // As on this project's test machine: cgroup v1 with every controller, nothing missing.
      assert.deepEqual(iso.notes, []);
    }
  });
});

test('isolationShortfalls names each limit without its controller and a network without the sealed runtime (M6)', () => {
  const none = { seal: null, cgroup: null, prlimit: null, shell: '/bin/sh', summary: '', notes: [] };
  const v1 = { ...none, cgroup: { version: 1 as const, controllers: ['memory', 'freezer'] as const, mounts: {} } };
  assert.deepEqual(isolationShortfalls(none, { limits: {} }), []);
  assert.deepEqual(isolationShortfalls(v1, { limits: { memoryBytes: 1 << 20 } }), []);
  const weak = isolationShortfalls(v1, { limits: { memoryBytes: 1 << 20, procs: 5, cpuPercent: 50 }, network: { mode: 'none' } });
  assert.equal(weak.length, 3);
  assert.match(weak[0]!, /process limit needs the cgroup pids controller/);
  assert.match(weak[1]!, /CPU limit needs the cgroup cpu controller/);
  assert.match(weak[2]!, /network of its own \(-N none\) needs the sealed runtime/);
});
