// Item 20 of issue 11: every wait in the tests is bounded, so a regression fails instead of hanging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, subscribe, System, waitForOutput } from './harness.ts';
import { within } from '../support/bounded.ts';

test('npm test bounds every test with --test-timeout', () => {
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  assert.match(scripts['test']!, /node --test .*--test-timeout=\d+/);
});

test('within: settles with the promise, or rejects naming what never came', async () => {
  assert.equal(await within(Promise.resolve(7), 'seven', 1000), 7);
  const t0 = performance.now();
  await assert.rejects(within(new Promise(() => {}), 'Godot', 50), /timed out after 50 ms waiting for Godot/);
  assert.ok(performance.now() - t0 < 5000);
});

test('the harness gives up on output or an event that never comes, within its bound', async () => {
  await using sys = await System.start();
  await sys.ok('mkwpar', ['-n', 'quiet', '-s', '--', 'sleep', '300']);
  await assert.rejects(waitForOutput(sys, 'quiet', /never printed/, 300), /timed out after 300 ms waiting for output of quiet/);
  const { event } = await subscribe(sys, (e) => e.type === 'no-such-event');
  await assert.rejects(within(event, 'no-such-event', 300), /timed out/);
  await sys.ok('stopwpar', ['-F', 'quiet']);
});

// Item 18 of issue 11: Ctrl-C of a daemon whose WPAR ignores SIGTERM says what it is waiting for.
test('SIGINT: the daemon says which WPARs it waits for and when SIGKILL comes', { timeout: 60_000 }, async () => {
  await using sys = await System.start();
  await sys.ok('mkwpar', ['-n', 'stubborn', '-s', '--', 'sh', '-c', 'trap "" TERM; while :; do sleep 1; done']);
  sys.signal('SIGINT');
  await sys.waitForLog(/wpard: SIGINT: stopping every WPAR \(stubborn\): SIGTERM now, SIGKILL after 10 s\n/);
  await sys.waitForLog(/wpard: waiting for 1 WPAR\(s\) to exit after SIGTERM: stubborn \(SIGKILL in \d+ s\)\n/);
  sys.signal('SIGINT');
  await sys.waitForLog(/wpard: SIGINT again: waiting for 1 WPAR\(s\) to exit after SIGTERM: stubborn \(SIGKILL in \d+ s\); send SIGKILL to abandon them\n/);
  assert.equal(await within(sys.exited, 'wpard to exit', 30_000), 0);
});
