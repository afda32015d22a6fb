/**
 * Atomicity: a writer killed or aborted at any point leaves no image that is accepted as new, and an
 * earlier image in the same directory stays valid; restores create nothing unless they succeed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WparError } from '../../src/kernel/errno.ts';
import { restoreImage, verifyImage, writeImage, IMAGE_FILE } from '../../src/image/index.ts';
import { definition, snapshot, tempDir } from './fixtures.ts';

const WRITE_MODULE = pathToFileURL(join(import.meta.dirname, '../../src/image/write/write.ts')).href;

/** A root of `mb` MiB: small files and one sparse large file (quick to make, slow enough to write). */
function makeRoot(base: string, mb: number): string {
  const root = join(base, 'root');
  mkdirSync(join(root, 'small'), { recursive: true });
  for (let i = 0; i < 50; i++) writeFileSync(join(root, 'small', `f${i}`), `file ${i}\n`.repeat(i));
  writeFileSync(join(root, 'big.bin'), '');
  truncateSync(join(root, 'big.bin'), mb << 20);
  return root;
}

/**
 * Run a writer in a child process that stops dead (blocks) once `stopAt(bytesDone, bytesTotal)`
 * holds, then SIGKILL it: a kill at a precise point of the write.
 */
async function killWriterAt(dir: string, root: string, stopAt: string): Promise<void> {
  const code = `
    const { writeImage } = await import(${JSON.stringify(WRITE_MODULE)});
    const stopAt = ${stopAt};
    const def = ${JSON.stringify(definition('second'))};
    await writeImage(${JSON.stringify(dir)}, { definition: def, root: ${JSON.stringify(root)}, agents: new Map() }, {
      onProgress: ({ bytesDone, bytesTotal }) => {
        if (!stopAt(bytesDone, bytesTotal)) return;
        process.stdout.write('stopped\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
      },
    });
    process.stdout.write('finished\\n');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const said = await new Promise<string>((resolve) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', () => resolve(out.trim()));
  });
  assert.equal(said, 'stopped', 'the writer reached the kill point');
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
}

test('a writer killed mid-write leaves the earlier image valid, and the next write cleans up', async (t) => {
  using tmp = tempDir();
  const root = makeRoot(tmp.path, 24);
  const dir = join(tmp.path, 'img');
  const first = await writeImage(dir, { definition: definition('first'), root, agents: new Map([['v', 1]]) });
  const points: Array<[string, string]> = [
    ['after the first chunk', '(done) => done > 0'],
    ['half way', '(done, total) => done > total / 2'],
    ['after the last chunk, before fsync and rename', '(done, total) => done === total'],
  ];
  for (const [name, stopAt] of points) {
    await t.test(name, async () => {
      await killWriterAt(dir, root, stopAt);
      assert.ok(readdirSync(dir).some((n) => n.endsWith('.tmp')), 'the killed writer left its temporary file');
      assert.deepEqual(await verifyImage(dir), first, 'the earlier image is still the image, and valid');
    });
  }
  const second = await writeImage(dir, { definition: definition('third'), root, agents: new Map() });
  assert.deepEqual(readdirSync(dir), [IMAGE_FILE], 'stale temporary files of dead writers are removed');
  assert.deepEqual(await verifyImage(dir), second);
});

test('a writer killed with no earlier image leaves nothing that is accepted', async () => {
  using tmp = tempDir();
  const root = makeRoot(tmp.path, 8);
  const dir = join(tmp.path, 'img');
  await killWriterAt(dir, root, '(done, total) => done === total');
  await assert.rejects(verifyImage(dir), (err: WparError) => err.code === 'ENOENT');
});

test('an aborted write removes its temporary file and keeps the earlier image', async () => {
  using tmp = tempDir();
  const root = makeRoot(tmp.path, 4);
  const dir = join(tmp.path, 'img');
  const first = await writeImage(dir, { definition: definition(), root, agents: new Map() });
  const controller = new AbortController();
  await assert.rejects(
    writeImage(dir, { definition: definition(), root, agents: new Map() }, {
      signal: controller.signal,
      onProgress: ({ bytesDone }) => bytesDone > 1 << 20 && controller.abort(),
    }),
    (err: WparError) => err.code === 'EINTR' && /writing interrupted/.test(err.message),
  );
  assert.deepEqual(readdirSync(dir), [IMAGE_FILE]);
  assert.deepEqual(await verifyImage(dir), first);
});

test('restoring onto an existing target is EEXIST and changes nothing', async () => {
  using tmp = tempDir();
  const root = makeRoot(tmp.path, 1);
  const dir = join(tmp.path, 'img');
  await writeImage(dir, { definition: definition(), root, agents: new Map() });
  const target = join(tmp.path, 'existing');
  mkdirSync(target);
  writeFileSync(join(target, 'keep.txt'), 'mine');
  const before = snapshot(target);
  const siblings = readdirSync(tmp.path).sort();
  await assert.rejects(restoreImage(dir, target), (err: WparError) =>
    err.code === 'EEXIST' && err.message === `image ${dir}: the restore target ${target} already exists`);
  assert.deepEqual(snapshot(target), before);
  assert.deepEqual(readdirSync(tmp.path).sort(), siblings, 'no staging directory left');
});

test('a damaged image restores nothing and is left as it was', async () => {
  using tmp = tempDir();
  const root = makeRoot(tmp.path, 2);
  const dir = join(tmp.path, 'img');
  const manifest = await writeImage(dir, { definition: definition(), root, agents: new Map() });
  const file = join(dir, IMAGE_FILE);
  const damaged = readFileSync(file);
  const inBigFile = manifest.parts.root.offset + 2 * 512 + 1000; // after the headers of root/ and big.bin
  damaged[inBigFile] = damaged[inBigFile]! ^ 1;
  writeFileSync(file, damaged);
  const siblings = readdirSync(tmp.path).sort();
  await assert.rejects(restoreImage(dir, join(tmp.path, 'target')), /part root: SHA-256 mismatch/);
  assert.deepEqual(readdirSync(tmp.path).sort(), siblings, 'neither target nor staging directory');
  assert.ok(readFileSync(file).equals(damaged));
});

test('an aborted restore removes what it staged', async () => {
  using tmp = tempDir();
  const root = makeRoot(tmp.path, 4);
  const dir = join(tmp.path, 'img');
  await writeImage(dir, { definition: definition(), root, agents: new Map() });
  const controller = new AbortController();
  const siblings = readdirSync(tmp.path).sort();
  await assert.rejects(
    restoreImage(dir, join(tmp.path, 'target'), {
      signal: controller.signal,
      onProgress: ({ bytesDone }) => bytesDone > 1 << 20 && controller.abort(),
    }),
    (err: WparError) => err.code === 'EINTR',
  );
  assert.deepEqual(readdirSync(tmp.path).sort(), siblings);
});
