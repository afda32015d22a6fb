/** Round trips: a tree and agent state written, verified, restored and compared. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chmodSync, linkSync, lstatSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readImage, restoreImage, verifyImage, writeImage, IMAGE_FILE } from '../../src/image/index.ts';
import { definition, snapshot, tempDir } from './fixtures.ts';

/** A tree with every kind of thing an image must carry. */
function buildTree(root: string): void {
  mkdirSync(join(root, 'etc/app/conf.d'), { recursive: true });
  mkdirSync(join(root, 'var/lib/data'), { recursive: true });
  writeFileSync(join(root, 'etc/app/main.conf'), 'listen 8080\n');
  writeFileSync(join(root, 'etc/app/conf.d/empty.conf'), '');
  writeFileSync(join(root, 'var/lib/data/blob.bin'), Buffer.alloc(70_000, 0xab));
  writeFileSync(join(root, 'var/lib/data/exact.bin'), Buffer.alloc(1024, 1)); // a whole number of blocks
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  writeFileSync(join(root, 'secret.key'), 'k', { mode: 0o600 });
  writeFileSync(join(root, 'readonly.txt'), 'ro', { mode: 0o444 });
  chmodSync(join(root, 'readonly.txt'), 0o444);
  for (const [name, mode] of [['world.txt', 0o666], ['none.txt', 0o000], ['sticky.txt', 0o1644], ['group.txt', 0o664]] as const) {
    writeFileSync(join(root, name), name);
    chmodSync(join(root, name), mode);
  }
  // Unicode, spaces, a name of exactly 100 bytes, and a path far past ustar's 255.
  mkdirSync(join(root, 'ünïcødé 日本語 🐄'));
  writeFileSync(join(root, 'ünïcødé 日本語 🐄', 'naïve café.txt'), 'unicode\n');
  writeFileSync(join(root, 'n'.repeat(95)), 'hundred'); // "root/" + 95 = 100 bytes
  const deep = join(root, ...Array.from({ length: 12 }, (_, i) => `level-${i}-${'x'.repeat(20)}`));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, `${'long'.repeat(30)}.txt`), 'deep\n');
  // Symlinks: relative, absolute, dangling, to a directory; kept as links.
  symlinkSync('../app/main.conf', join(root, 'etc/app/conf.d/main-link'));
  symlinkSync('/etc/hostname', join(root, 'abs-link'));
  symlinkSync('does/not/exist', join(root, 'dangling'));
  symlinkSync('etc', join(root, 'etc-link'));
  symlinkSync(`${'t'.repeat(150)}/target`, join(root, 'long-target'));
  // A hard link is stored as a second file.
  linkSync(join(root, 'run.sh'), join(root, 'run-hardlink.sh'));
  // A read-only directory with content, and a sticky one.
  mkdirSync(join(root, 'sealed'));
  writeFileSync(join(root, 'sealed/inside.txt'), 'in');
  mkdirSync(join(root, 'tmp'));
  chmodSync(join(root, 'tmp'), 0o1777);
  // Distinct mtimes, old and recent, on files, links and directories (directories last).
  utimesSync(join(root, 'etc/app/main.conf'), 946684800, 946684800); // 2000-01-01
  utimesSync(join(root, 'secret.key'), 1234567890, 1234567890);
  chmodSync(join(root, 'sealed'), 0o555);
  utimesSync(join(root, 'sealed'), 1000000000, 1000000000);
  utimesSync(join(root, 'etc/app'), 1500000000, 1500000000);
}

test('a tree and agent state survive write, verify and restore', async () => {
  using tmp = tempDir();
  const root = join(tmp.path, 'root');
  mkdirSync(root);
  buildTree(root);
  const before = snapshot(root);
  const agents = new Map<string, unknown>([
    ['sessions', { open: new Map([['alice', new Date('2024-05-06T07:08:09Z')]]), count: 3n, tags: new Set(['a', 'b']) }],
    ['queue', [1, 'two', { three: [3, null, undefined] }, new Uint8Array([1, 2, 3])]],
    ['ünïcødé', 'state'],
  ]);
  const progress: Array<{ bytesDone: number; bytesTotal: number }> = [];
  const dir = join(tmp.path, 'img');
  const written = await writeImage(dir, { definition: definition(), root, agents }, { onProgress: (p) => progress.push(p) });

  assert.deepEqual(snapshot(root), before, 'writing does not touch the root');
  assert.equal(lstatSync(join(dir, IMAGE_FILE)).mode & 0o777, 0o600, 'the image is private to its owner');
  const last = progress.at(-1)!;
  assert.equal(last.bytesDone, last.bytesTotal);
  assert.equal(last.bytesTotal, lstatSync(join(dir, IMAGE_FILE)).size);
  assert.ok(progress.every((p, i) => p.bytesTotal === last.bytesTotal && (i === 0 || p.bytesDone >= progress[i - 1]!.bytesDone)));

  const manifest = await verifyImage(dir);
  assert.deepEqual(manifest, written);
  assert.equal(manifest.version, 3);
  assert.equal(manifest.wpar, 'web');
  assert.deepEqual(manifest.agents, ['queue', 'sessions', 'ünïcødé']);
  assert.equal(manifest.parts.root.symlinks, 5);

  const target = join(tmp.path, 'restored', 'root');
  const restored = await restoreImage(dir, target);
  assert.deepEqual(snapshot(target), before);
  assert.deepEqual(restored.definition, definition());
  assert.deepEqual(restored.agents, agents);
  assert.deepEqual(restored.manifest, written);
  assert.equal(readFileSync(join(target, 'run-hardlink.sh'), 'utf8'), '#!/bin/sh\necho hi\n');
  assert.equal(lstatSync(join(target, 'run-hardlink.sh')).nlink, 1, 'hard links come back as separate files');

  const read = await readImage(dir);
  assert.deepEqual(read.agents, agents);
});

test('an empty root and no agents make a valid image', async () => {
  using tmp = tempDir();
  const root = join(tmp.path, 'root');
  mkdirSync(root, { mode: 0o750 });
  chmodSync(root, 0o750);
  utimesSync(root, 1600000000, 1600000000);
  await writeImage(join(tmp.path, 'img'), { definition: definition('empty'), root, agents: new Map() });
  const target = join(tmp.path, 'back');
  const { manifest, agents } = await restoreImage(join(tmp.path, 'img'), target);
  assert.deepEqual(manifest.agents, []);
  assert.equal(agents.size, 0);
  assert.deepEqual(snapshot(target), snapshot(root));
});

test('set-user-ID and set-group-ID bits are stored but not restored', async () => {
  using tmp = tempDir();
  const root = join(tmp.path, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'tool'), 'x');
  chmodSync(join(root, 'tool'), 0o6755);
  await writeImage(join(tmp.path, 'img'), { definition: definition(), root, agents: new Map() });
  await restoreImage(join(tmp.path, 'img'), join(tmp.path, 'back'));
  assert.equal(lstatSync(join(tmp.path, 'back', 'tool')).mode & 0o7777, 0o755);
});

test('a second write replaces the image in the directory', async () => {
  using tmp = tempDir();
  const root = join(tmp.path, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'v'), '1');
  const dir = join(tmp.path, 'img');
  await writeImage(dir, { definition: definition(), root, agents: new Map([['n', 1]]) });
  writeFileSync(join(root, 'v'), '2');
  await writeImage(dir, { definition: definition(), root, agents: new Map([['n', 2]]) });
  const { agents } = await restoreImage(dir, join(tmp.path, 'back'));
  assert.equal(agents.get('n'), 2);
  assert.equal(readFileSync(join(tmp.path, 'back', 'v'), 'utf8'), '2');
});

test('ownership is recorded as the WPAR sees it and mapped again on the arrival (S6)', { skip: process.getuid?.() === 0 ? false : 'needs root to chown' }, async () => {
  const from = { base: 200_000, size: 65_536 };
  const to = { base: 400_000, size: 65_536 };
  using scratch = tempDir();
  const dir = scratch.path;
  const root = join(dir, 'root');
  mkdirSync(join(root, 'home/app'), { recursive: true });
  writeFileSync(join(root, 'owned-by-root'), 'r');
  writeFileSync(join(root, 'home/app/owned-by-1000'), 'a');
  symlinkSync('owned-by-root', join(root, 'link-by-33'));
  writeFileSync(join(root, 'host-root-file'), 'h'); // outside the range: uid 0 inside
  const { chownSync, lchownSync } = await import('node:fs');
  chownSync(root, from.base, from.base);
  chownSync(join(root, 'owned-by-root'), from.base, from.base);
  chownSync(join(root, 'home'), from.base, from.base);
  chownSync(join(root, 'home/app'), from.base + 1000, from.base + 1000);
  chownSync(join(root, 'home/app/owned-by-1000'), from.base + 1000, from.base + 100);
  lchownSync(join(root, 'link-by-33'), from.base + 33, from.base + 33);
  chownSync(join(root, 'host-root-file'), 0, 0);
  const img = join(dir, 'img');
  await writeImage(img, { definition: definition('own'), root, agents: new Map(), ids: from });
  const target = join(dir, 'restored');
  await restoreImage(img, target, { ids: to });
  const owner = (p: string): [number, number] => { const st = lstatSync(join(target, p)); return [st.uid, st.gid]; };
  assert.deepEqual(owner(''), [to.base, to.base]);
  assert.deepEqual(owner('owned-by-root'), [to.base, to.base]);
  assert.deepEqual(owner('home/app'), [to.base + 1000, to.base + 1000]);
  assert.deepEqual(owner('home/app/owned-by-1000'), [to.base + 1000, to.base + 100]);
  assert.deepEqual(owner('link-by-33'), [to.base + 33, to.base + 33]);
  assert.deepEqual(owner('host-root-file'), [to.base, to.base]);
  // Restored where nothing is sealed, the recorded (inside) ids are used as they are.
  const plain = join(dir, 'plain');
  await restoreImage(img, plain);
  assert.equal(lstatSync(join(plain, 'home/app/owned-by-1000')).uid, 1000);
});

test('the ownership epoch (C4) is recorded in the manifest when given, and absent otherwise', async () => {
  using tmp = tempDir();
  const root = join(tmp.path, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'f'), 'x');
  const written = await writeImage(join(tmp.path, 'with'), { definition: definition(), root, agents: new Map(), epoch: 7 });
  assert.equal(written.epoch, 7);
  assert.equal((await verifyImage(join(tmp.path, 'with'))).epoch, 7);
  await writeImage(join(tmp.path, 'without'), { definition: definition(), root, agents: new Map() });
  assert.equal('epoch' in (await verifyImage(join(tmp.path, 'without'))), false);
});
