import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { detectIsolation } from '../../src/runtime/isolation.ts';

describe('detectIsolation', () => {
  test('forcing the fallback gives a process group and rlimits', () => {
    const iso = detectIsolation({ fallback: true });
    assert.equal(iso.namespaces, null);
    assert.equal(iso.cgroup, null);
    assert.equal(iso.summary, iso.prlimit ? 'process group; rlimits' : 'process group; no limits');
    assert.deepEqual(iso.notes, ['fallback forced']);
  });

  const root = process.platform === 'linux' && process.getuid?.() === 0;
  test('as root on Linux: namespaces and the cgroup hierarchy this machine has', { skip: root ? false : 'needs root on Linux' }, () => {
    const iso = detectIsolation();
    assert.ok(iso.namespaces, `namespaces: ${iso.notes.join('; ')}`);
    assert.ok(iso.cgroup);
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    assert.equal(iso.cgroup.version, v2 ? 2 : 1);
    assert.match(iso.summary, new RegExp(`^namespaces pid,mount,uts,ipc; cgroup v${v2 ? 2 : 1} [a-z,]+$`));
    if (!v2 && iso.cgroup.controllers.length === 4) {
      // As on this project's test machine: cgroup v1 with every controller the runtime uses.
      assert.equal(iso.summary, 'namespaces pid,mount,uts,ipc; cgroup v1 memory,pids,cpu,freezer');
    }
  });
});
