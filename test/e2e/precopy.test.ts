// Checkpoints that copy the root while the WPAR runs (M5), end to end with a real daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readImage, restoreImage } from '../../src/image/index.ts';
import type { CheckpointResult } from '../../src/daemon/protocol.ts';
import { System, trust, waitForOutput } from './harness.ts';

const WRITER = join(import.meta.dirname, 'fixtures/seq-writer.ts');

test('a WPAR writing all along: the image holds its root at the freeze (A = B = the saved n), and the freeze is a small part', async (t) => {
  await using a = await System.start();
  await using b = await System.start();
  await trust(b, a);
  const img = mkdtempSync(join(tmpdir(), 'corral-img-'));
  try {
    await a.ok('mkwpar', ['-n', 'seq', '-c', '--', process.execPath, WRITER, '48']);
    await a.ok('startwpar', ['seq']);
    await waitForOutput(a, 'seq', /seq: 2000\b/, 60_000);
    const result = JSON.parse(await a.ok('chkptwpar', ['-d', img, '--json', 'seq'])) as CheckpointResult;
    t.diagnostic(`frozen ${result.frozenMs.toFixed(0)} ms of ${result.totalMs.toFixed(0)} ms; rounds ${JSON.stringify(result.rounds)}`);
    assert.ok(result.rounds !== undefined && result.rounds.length >= 2, 'the root copied running, then at least the frozen delta');
    assert.ok(result.rounds[0]!.bytes > 48 << 20, 'the first round copies the whole root');
    const last = result.rounds.at(-1)!;
    assert.ok(last.entries >= 3 && last.removed >= 1, `the frozen delta holds what changed since the round before: ${JSON.stringify(last)}`);
    assert.ok(result.frozenMs < result.totalMs / 2, `frozen ${result.frozenMs} ms of ${result.totalMs} ms`);
    const running = await a.wpar('seq');
    assert.equal(running.state, 'A', 'thawed and running on');

    // The image: A and B agree and equal the agent's saved n.
    const image = await readImage(img);
    assert.equal(image.manifest.version, 3);
    const saved = [...image.agents.values()][0] as unknown;
    const target = join(img, 'check', 'root');
    await restoreImage(img, target);
    const A = Number(readFileSync(join(target, 'A'), 'utf8'));
    const B = Number(readFileSync(join(target, 'B'), 'utf8'));
    assert.equal(A, B, 'A and B written at the same step');
    assert.ok(A > 2000);
    assert.match(JSON.stringify(saved), new RegExp(`"n":${A}\\b`), `the agent saved n = ${A}`);
    rmSync(join(img, 'check'), { recursive: true });

    // And it restarts on another system from there.
    await b.ok('restartwpar', ['-d', img, 'seq']);
    await waitForOutput(b, 'seq', new RegExp(`seq: ready after ${A}\\b`));
    assert.equal((await b.wpar('seq')).phase, 'normal');
  } finally {
    rmSync(img, { recursive: true, force: true });
  }
});
