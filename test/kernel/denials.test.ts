// Item 6 of issue 11: a checkpoint refused by many denials is still one short line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKernel, describeDenials, WPAR_CHECKPOINT_DENY, WPAR_CHECKPOINT_TRY, ETIMEDOUT } from '../../src/index.ts';

test('describeDenials lists every denial up to the first twenty, then counts the rest; long reasons are cut', () => {
  const at = new Date(2026, 11, 1, 10, 2, 11).getTime();
  const denials = Array.from({ length: 10_000 }, (_, i) => ({ owner: `agent:web/${i}`, reason: i === 1 ? 'x'.repeat(10_000) : `batch ${i}`, since: at }));
  const text = describeDenials(denials);
  const shown = Array.from({ length: 20 }, (_, i) => `denied by agent:web/${i} "${i === 1 ? `${'x'.repeat(117)}...` : `batch ${i}`}" since 10:02:11`);
  assert.equal(text, `${shown.join('; ')}; and 9980 more denials (lswpar -L lists them)`);
  assert.ok(text.length < 1200, 'one bounded line');
  assert.equal(describeDenials(denials.slice(0, 21)).endsWith('; and 1 more denial (lswpar -L lists them)'), true);
  const five = describeDenials(denials.slice(0, 5));
  assert.equal(five.includes('more'), false);
  for (let i = 0; i < 5; i++) assert.ok(five.includes(`agent:web/${i} `), `lists agent:web/${i}`);
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
