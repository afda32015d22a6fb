import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { detectIsolation } from '../../src/runtime/isolation.ts';

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
