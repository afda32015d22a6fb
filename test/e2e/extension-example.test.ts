// The shipped example extension (examples/accounting-extension.ts) in a real daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, subscribe, System } from './harness.ts';
import type { UsageRecord } from '../../examples/accounting-extension.ts';

test('examples/accounting-extension.ts records one usage line per WPAR run', async () => {
  await using sys = await System.start({ extensions: [join(ROOT, 'examples/accounting-extension.ts')] });
  assert.match(sys.log, /loaded extension accounting/);
  await sys.ok('mkwpar', ['-n', 'a', '-s', '--', 'sleep', '300']);
  await sys.ok('mkwpar', ['-n', 'b', '--', 'true']);
  const ended = await subscribe(sys, (e) => e.type === 'runtime.exited' && e.name === 'b');
  await sys.ok('startwpar', ['b']);
  await ended.event;
  await sys.ok('stopwpar', ['a']);
  const records = readFileSync(join(sys.home, 'extensions/accounting/usage.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as UsageRecord);
  assert.deepEqual(records.map((r) => [r.name, r.cid]), [['b', 2], ['a', 1]]);
  assert.ok(records.every((r) => r.seconds >= 0 && r.stoppedAt >= r.startedAt));
});
