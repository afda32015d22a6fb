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
  const killed = await sys.run('wparexec', ['-n', 'k', '--', 'sh', '-c', 'echo before; kill -KILL $$']);
  assert.equal(killed.code, 137);
  // Item 17 of issue 11: why it died, on stderr (its status alone says only 128+9), after its output.
  assert.equal(killed.stdout, 'before\n');
  assert.equal(killed.stderr, 'wparexec: k: killed by SIGKILL\n');
  const exited = await sys.run('wparexec', ['-n', 'e', '--', 'sh', '-c', 'exit 3']);
  assert.equal(exited.code, 3);
  assert.equal(exited.stderr, '', 'an exit status is the program\'s own business');
  const missing = await sys.run('wparexec', ['-n', 'm', '--', 'no-such-command-anywhere']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /command not found: no-such-command-anywhere/);
  assert.equal(missing.stderr.trim().split('\n').length, 1);
  assert.deepEqual(await sys.list(), []);
});

test('wparexec: a program killed by the memory limit says so on stderr', { skip: !(process.getuid?.() === 0 && process.platform === 'linux') && 'needs root on Linux' }, async () => {
  await using sys = await System.start();
  const r = await sys.run('wparexec', ['-n', 'hog', '-R', 'memory=64M', '--', process.execPath, '-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /^wparexec: hog: killed by the memory limit \(SIGKILL\)\n$/);
});
