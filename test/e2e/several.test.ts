// Item 19 of issue 11: startwpar and stopwpar of several names in one command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { System } from './harness.ts';

test('startwpar a b c and stopwpar a b c: one command each; a failure is its own line, the rest go on', async () => {
  await using sys = await System.start();
  for (const n of ['a', 'b', 'c']) await sys.ok('mkwpar', ['-n', n, '--', 'sleep', '300']);
  const started = await sys.run('startwpar', ['a', 'nope', 'b', 'c']);
  assert.equal(started.code, 1);
  assert.match(started.stdout, /^Workload partition a started \(CID \d+, PID \d+\)\.\nWorkload partition b started .*\nWorkload partition c started .*\n$/);
  assert.equal(started.stderr, 'startwpar: nope: no such WPAR (ENOENT)\n');
  assert.deepEqual((await sys.list()).map((w) => w.state), ['A', 'A', 'A']);
  const json = JSON.parse(await sys.ok('stopwpar', ['-F', '--json', 'a', 'b', 'c'])) as { name: string; state: string }[];
  assert.deepEqual(json.map((w) => [w.name, w.state]), [['a', 'D'], ['b', 'D'], ['c', 'D']]);
});
