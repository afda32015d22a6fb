// Item 11 of issue 11: an error names its root cause once, with the innermost errno; mkwpar -s of a
// command that cannot start leaves nothing behind unless asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { System } from './harness.ts';
import { rootCause, WparError } from '../../src/kernel/errno.ts';

test('rootCause is the innermost WparError of the cause chain', () => {
  const enoent = new WparError('ENOENT', 'WPAR web: command not found: x');
  const wrapped = new WparError('ECANCELED', 'activation cancelled: subsystem failed', { cause: new Error('plain', { cause: enoent }) });
  assert.equal(rootCause(wrapped), enoent);
  assert.equal(rootCause(enoent), enoent);
  assert.equal(rootCause(new Error('no errno')), undefined);
});

test('startwpar of a missing command: the WPAR named once, the root cause with ENOENT', async () => {
  await using sys = await System.start();
  await sys.ok('mkwpar', ['-n', 'web', '--', 'no-such-cmd']);
  const r = await sys.run('startwpar', ['web']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'startwpar: web: command not found: no-such-cmd (ENOENT)\n');
  const w = await sys.wpar('web');
  assert.equal(w.state, 'B');
  assert.equal(w.lastExit?.reason, 'failed to start: command not found: no-such-cmd (ENOENT)');
  const verb = await sys.run('wpar', ['start', 'web']);
  assert.equal(verb.stderr, 'wpar start: web: command not found: no-such-cmd (ENOENT)\n');
});

test('mkwpar -s of a missing command leaves nothing behind; with --keep it stays, state B', async () => {
  await using sys = await System.start();
  const r = await sys.run('mkwpar', ['-n', 'typo', '-s', '--', 'no-such-cmd']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'mkwpar: typo: command not found: no-such-cmd (ENOENT)\n');
  assert.deepEqual(await sys.list(), []);
  const kept = await sys.run('mkwpar', ['-n', 'later', '-s', '--keep', '--', 'no-such-cmd']);
  assert.equal(kept.code, 1);
  assert.equal((await sys.wpar('later')).state, 'B');
});
