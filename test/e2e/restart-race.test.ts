// Issue 11 items 1 and 16: a restart holds its name before touching the disk and removes only what
// it made (two restarts of one image, or a restart racing mkwpar, never delete a running WPAR's
// root); chkptwpar into a directory that holds an image refuses unless -F.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { System } from './harness.ts';

async function trust(on: System, signer: System): Promise<void> {
  const id = JSON.parse(await signer.ok('wpar', ['identity', '--json'])) as { fingerprint: string };
  await on.ok('wpar', ['peer', 'add', 'writer', id.fingerprint]);
}

test('concurrent restarts of one image, and a restart racing mkwpar, never delete the running WPAR\'s root', { timeout: 120_000 }, async () => {
  await using a = await System.start();
  await using b = await System.start();
  await trust(b, a);
  const img = mkdtempSync(join(tmpdir(), 'corral-img-'));
  try {
    await a.ok('mkwpar', ['-n', 'job', '-c', '-s', '--', 'sh', '-c', 'echo hi > note.txt; echo started; exec sleep 300']);
    await a.ok('chkptwpar', ['-d', img, 'job']);
    for (let round = 0; round < 4; round++) {
      const race = round % 2 === 0
        ? [b.run('restartwpar', ['-d', img, 'job']), b.run('restartwpar', ['-d', img, 'job'])]
        : [b.run('restartwpar', ['-d', img, 'job']), b.run('mkwpar', ['-n', 'job', '-s', '--', 'sh', '-c', 'echo mine > own.txt; exec sleep 300'])];
      const results = await Promise.all(race);
      const won = results.filter((r) => r.code === 0);
      assert.equal(won.length, 1, results.map((r) => r.stderr).join(''));
      const lost = results.find((r) => r.code !== 0)!;
      assert.match(lost.stderr, /job.*\(EEXIST\)\n$/);
      const w = (await b.list())[0]!;
      assert.equal(w.state, 'A');
      // Whoever won, its root is intact and running: the loser removed nothing of it.
      const byRestart = existsSync(join(w.root, 'note.txt'));
      const byMk = await b.run('wpar', ['logs', 'job']);
      assert.ok(byRestart || byMk.code === 0);
      if (results[0]!.code === 0) assert.equal(readFileSync(join(w.root, 'note.txt'), 'utf8'), 'hi\n');
      assert.ok(existsSync(join(b.home, 'wpars/job/console.log')), 'the console log is kept');
      assert.deepEqual(readdirSync(join(b.home, 'wpars/job')).filter((n) => n.includes('restore')), [], 'no staging left');
      await b.ok('rmwpar', ['-F', 'job']);
    }
  } finally {
    rmSync(img, { recursive: true, force: true });
  }
});

test('chkptwpar into a directory that holds an image: EEXIST and the image unchanged; -F replaces it', { timeout: 60_000 }, async () => {
  await using sys = await System.start();
  const img = mkdtempSync(join(tmpdir(), 'corral-img-'));
  try {
    await sys.ok('mkwpar', ['-n', 'job', '-c', '-s', '--', 'sleep', '300']);
    await sys.ok('chkptwpar', ['-d', img, 'job']);
    const before = readFileSync(join(img, 'image.tar'));
    const r = await sys.run('chkptwpar', ['-d', img, 'job']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^chkptwpar: job: ${img} already holds an image; use -F to replace it \\(EEXIST\\)\\n$`));
    assert.ok(readFileSync(join(img, 'image.tar')).equals(before));
    const w = (await sys.list()).find((x) => x.name === 'job')!;
    assert.deepEqual([w.state, w.phase], ['A', 'normal'], 'nothing changed');
    // R4.1 first: a WPAR that cannot be checkpointed says so, whatever DIR holds.
    await sys.ok('mkwpar', ['-n', 'plain', '-s', '--', 'sleep', '300']);
    const plain = await sys.run('chkptwpar', ['-d', img, 'plain']);
    assert.match(plain.stderr, /not checkpointable/);
    assert.doesNotMatch(plain.stderr, /EEXIST/);
    await sys.ok('chkptwpar', ['-F', '-d', img, 'job']);
    assert.ok(!readFileSync(join(img, 'image.tar')).equals(before), 'replaced');
  } finally {
    rmSync(img, { recursive: true, force: true });
  }
});
