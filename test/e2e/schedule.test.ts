// Scheduled checkpoints outside a cluster (C5, decided in docs/cluster.md): the same schedule runs
// with local images only — HOME/checkpoints/NAME/1-SEQ, the two newest kept — lswpar -L shows the
// last one, and an image taken on schedule restarts the WPAR with its agent's state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ROOT, subscribe, System, waitForOutput } from './harness.ts';
import type { WparInfo } from '../../src/daemon/protocol.ts';

const COUNTER = join(ROOT, 'examples/agent-counter.ts');
const fast = ['-e', 'COUNTER_STEP_MS=10', '-e', 'COUNTER_PAUSE_MS=40', '-e', 'COUNTER_BATCH=5'];

test('on one system: checkpoints every second into the home, two kept, shown by lswpar -L, restartable', { timeout: 120_000 }, async () => {
  await using a = await System.start();
  const third = await subscribe(a, (e) => e.type === 'checkpoint.done' && e.name === 'solo' && /\/1-3$/.test(String(e.dir)));
  await a.ok('mkwpar', ['-n', 'solo', '-c', '--checkpoint-every', '1', '-s', ...fast, '--', process.execPath, COUNTER]);
  await third.event;
  const [w] = JSON.parse(await a.ok('lswpar', ['--json', 'solo'])) as WparInfo[];
  assert.ok(w!.checkpoint && w!.checkpoint.seq >= 3 && w!.checkpoint.epoch === 1, JSON.stringify(w!.checkpoint));
  assert.deepEqual(w!.checkpoint.hosts, []);
  assert.match(await a.ok('lswpar', ['-L', 'solo']), /Last checkpoint: +\S.*, epoch 1, #\d+, .*\nReplicas on: +-\n/);
  await a.ok('stopwpar', ['solo']);
  const dir = join(a.home, 'checkpoints', 'solo');
  // The run under way when it stopped may still finish: wait (bounded) for the two newest to be all that is left.
  const end = Date.now() + 10_000;
  let kept = readdirSync(dir).sort();
  while (kept.length !== 2 && Date.now() < end) { await delay(100); kept = readdirSync(dir).sort(); }
  assert.equal(kept.length, 2, kept.join(','));
  assert.ok(kept.every((d) => /^1-\d+$/.test(d)));
  // The newest restarts, its agent given the saved count (R5).
  const newest = kept.map((d) => Number(d.slice(2))).sort((x, y) => y - x)[0]!;
  await a.ok('rmwpar', ['solo']);
  await a.ok('restartwpar', ['-d', join(dir, `1-${newest}`), 'solo']);
  const log = await waitForOutput(a, 'solo', /starting after (\d+)/);
  assert.ok(Number(/starting after (\d+)/.exec(log)![1]) > 0, log);
  await a.ok('rmwpar', ['-F', 'solo']);
});
