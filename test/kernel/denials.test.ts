// Item 6 of issue 11: a checkpoint refused by many denials is still one short line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKernel, describeDenials, WPAR_CHECKPOINT_DENY, WPAR_CHECKPOINT_TRY, ETIMEDOUT } from '../../src/index.ts';

test('describeDenials lists the first three, then counts the rest; long reasons are cut', () => {
  const at = new Date(2026, 11, 1, 10, 2, 11).getTime();
  const denials = Array.from({ length: 10_000 }, (_, i) => ({ owner: `agent:web/${i}`, reason: i === 1 ? 'x'.repeat(10_000) : `batch ${i}`, since: at }));
  const text = describeDenials(denials);
  assert.equal(text, `denied by agent:web/0 "batch 0" since 10:02:11; denied by agent:web/1 "${'x'.repeat(117)}..." since 10:02:11; denied by agent:web/2 "batch 2" since 10:02:11; and 9997 more denials (lswpar -L lists them)`);
  assert.equal(describeDenials(denials.slice(0, 4)).endsWith('; and 1 more denial (lswpar -L lists them)'), true);
  assert.equal(describeDenials(denials.slice(0, 3)).includes('more'), false);
});

test('a TRY timed out by 10,000 denials reports them in a line under 1 KB', async () => {
  const kernel = createKernel();
  const cid = await kernel.activate({ name: 'web' });
  const owners = Array.from({ length: 100 }, (_, i) => kernel.extension(`ext${i}`));
  for (const o of owners) for (let j = 0; j < 100; j++) o.kwpar_checkpoint_status(cid, WPAR_CHECKPOINT_DENY, `hold ${j}`);
  assert.equal(await kernel.services.kwpar_checkpoint_status(cid, WPAR_CHECKPOINT_TRY, 0), ETIMEDOUT);
  const err = await kernel.services.tryCheckpoint(cid, { timeoutMs: 0 }).then(() => undefined, (e: Error) => e);
  assert.ok(err instanceof Error);
  assert.ok(Buffer.byteLength(err.message) < 1024, `${Buffer.byteLength(err.message)} bytes`);
  assert.match(err.message, /and \d+ more denials/);
});
