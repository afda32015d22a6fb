/**
 * A counting job that survives checkpoint and restart (the agent demo, and the workload of the
 * checkpoint/restart end-to-end test).
 *
 * It appends 1, 2, 3, ... to `count.txt` in its working directory (the WPAR's root), a batch at a
 * time. While it writes a batch it denies checkpoints, so a checkpoint always falls between batches:
 * the saved `{ count }` and the file in the image agree. On the arrival system it continues from the
 * restored count, so the file goes on without a gap or a repeat.
 *
 *     mkwpar -n counter -c -s -- node examples/agent-counter.ts
 *     chkptwpar -d /tmp/img counter      # waits for the batch being written
 *
 * Environment (all optional): COUNTER_BATCH lines per batch (10), COUNTER_STEP_MS pause between
 * lines (100), COUNTER_PAUSE_MS pause between batches (500), COUNTER_LIMIT stop at this count (never).
 * @module
 */
import { appendFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { agent, WparError } from 'corral/agent';

const FILE = 'count.txt';
const batchSize = setting('COUNTER_BATCH', 10);
const stepMs = setting('COUNTER_STEP_MS', 100);
const pauseMs = setting('COUNTER_PAUSE_MS', 500);
const limit = setting('COUNTER_LIMIT', Infinity);

let count = 0;

// On the arrival system of a restart, this resolves only after afterRestore has run.
await agent.register({
  name: 'counter',
  beforeCheckpoint: () => ({ count }),
  afterRestore: (state: { count: number }) => { count = state.count; },
});
console.log(`counter: ${agent.inWpar ? `in a WPAR as ${agent.owner}` : 'not in a WPAR (agent inert)'}, starting after ${count}`);

while (count < limit) {
  try {
    await writeBatch();
  } catch (err) {
    if (!(err instanceof WparError && err.code === 'EBUSY')) throw err;
    console.log('counter: a checkpoint is in progress; the next batch waits for it');
  }
  await sleep(pauseMs);
}

/** Appends the next batch under a denial: no checkpoint can happen in the middle of it. */
async function writeBatch(): Promise<void> {
  const batch = Math.floor(count / batchSize) + 1;
  using _denial = await denyWhenReachable(`writing batch ${batch}`);
  for (let i = 0; i < batchSize && count < limit; i++) {
    await appendFile(FILE, `${count + 1}\n`);
    count += 1;
    await sleep(stepMs);
  }
  console.log(`counter: batch ${batch} written, count ${count}`);
}

/**
 * A denial, waiting while the agent endpoint cannot be reached: a restarting daemon adopts this WPAR
 * and opens its endpoint again (R7), and no checkpoint can start before it has. EBUSY (a checkpoint
 * is under way) is the caller's to handle.
 */
async function denyWhenReachable(reason: string): Promise<Disposable> {
  for (;;) {
    try {
      return await agent.deny(reason);
    } catch (err) {
      if (err instanceof WparError && err.code === 'EBUSY') throw err;
      console.log(`counter: the agent endpoint cannot be reached (${(err as Error).message}); trying again`);
      await sleep(250);
    }
  }
}

function setting(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return process.env[name] && Number.isFinite(value) && value >= 0 ? value : fallback;
}
