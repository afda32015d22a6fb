// wparexec end to end: a transient WPAR in the foreground, its output, its exit status, nothing left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { System } from './harness.ts';

test('wparexec prints CMD\'s output and exits with its status; the WPAR is gone after', async () => {
  await using sys = await System.start();
  const r = await sys.run('wparexec', ['-n', 'once', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.code, 3);
  assert.match(r.stdout, /out/);
  assert.match(r.stdout, /err/, 'the console log carries stderr too');
  assert.deepEqual(await sys.list(), []);
});

test('wparexec of a quick command, many times: never hangs, never loses output', async () => {
  await using sys = await System.start();
  for (let i = 0; i < 15; i++) {
    const r = await sys.run('wparexec', ['-n', `q${i}`, '--', 'echo', `quick ${i}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `quick ${i}\n`);
  }
  assert.deepEqual(await sys.list(), []);
});

test('wparexec: a signal kill maps to 128+N; a command that cannot start leaves nothing', async () => {
  await using sys = await System.start();
  const killed = await sys.run('wparexec', ['-n', 'k', '--', 'sh', '-c', 'kill -KILL $$']);
  assert.equal(killed.code, 137);
  const missing = await sys.run('wparexec', ['-n', 'm', '--', 'no-such-command-anywhere']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /command not found: no-such-command-anywhere/);
  assert.equal(missing.stderr.trim().split('\n').length, 1);
  assert.deepEqual(await sys.list(), []);
});
