// examples/agent-counter.ts as a real workload: checkpointed on one system (the TRY waits for the
// batch being written), restarted on another from the saved count, the file continuing without a gap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lines, system } from './helpers.ts';

const COUNTER = join(import.meta.dirname, '..', '..', 'examples', 'agent-counter.ts');
const SETTINGS = { COUNTER_BATCH: '5', COUNTER_STEP_MS: '10', COUNTER_PAUSE_MS: '10' };

function startCounter(root: string, socketPath: string) {
  const child = spawn(process.execPath, [COUNTER], {
    cwd: root, env: { ...process.env, ...SETTINGS, WPAR_AGENT: socketPath }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  return { child, out: new Lines(child.stdout) };
}

function counted(root: string): number[] {
  return readFileSync(join(root, 'count.txt'), 'utf8').trim().split('\n').map(Number);
}

test('agent-counter: checkpoint between batches, restart from the saved count on another system', { timeout: 60_000 }, async () => {
  await using departure = await system({ name: 'counter' });
  const rootA = join(departure.dir, 'root');
  mkdirSync(rootA);
  const a = startCounter(rootA, departure.socketPath);
  await a.out.waitFor((l) => l.includes('batch 2 written'));
  assert.match(a.out.all[0]!, new RegExp(`in a WPAR as agent:counter/${a.child.pid}`));

  // TRY waits for the batch in progress (a denial "writing batch N"), then the agents save.
  const checkpoint = await departure.kernel.services.tryCheckpoint(departure.cid, { timeoutMs: 10_000 });
  const states = JSON.parse(JSON.stringify(await departure.server.save())) as Record<string, { value: { count: number } }>;
  const saved = states['counter']!.value.count;
  assert.ok(saved >= 10 && saved % 5 === 0, `a whole number of batches: ${saved}`);
  // While the checkpoint is in progress the counter cannot start a batch: the root matches the state.
  const rootB = join(departure.dir, 'root-b');
  mkdirSync(rootB);
  copyFileSync(join(rootA, 'count.txt'), join(rootB, 'count.txt'));
  assert.deepEqual(counted(rootB), Array.from({ length: saved }, (_, i) => i + 1));
  await departure.server.saved();
  checkpoint.clear();
  a.child.kill('SIGKILL');
  await once(a.child, 'exit');

  // The arrival system: another kernel, the WPAR restarting, the image's root and agent state.
  await using arrival = await system({ name: 'counter', restart: true });
  const restoring = arrival.server.restore(states);
  const b = startCounter(rootB, arrival.socketPath);
  await restoring;
  arrival.kernel.services.restartClear(arrival.cid);
  assert.match(b.out.all[0] ?? await b.out.waitFor(() => true), new RegExp(`starting after ${saved}$`));
  await b.out.waitFor((l) => l.includes(`count ${saved + 10}`));
  b.child.kill('SIGKILL');
  await once(b.child, 'exit');
  const all = counted(rootB);
  assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1), 'no gap, no repeat');
});
