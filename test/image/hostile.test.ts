/**
 * Hostile images: hand-made with every digest correct, so only the structure can give them away.
 * None may create anything outside the restore target, and a refused restore leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WparError } from '../../src/kernel/errno.ts';
import { restoreImage, verifyImage, IMAGE_FILE } from '../../src/image/index.ts';
import { craftImage, tempDir, type CraftEntry } from './fixtures.ts';

const evil = Buffer.from('pwned\n');

test('a hand-made image with a benign tree restores (the crafting is sound)', async () => {
  using tmp = tempDir();
  const dir = join(tmp.path, 'img');
  mkdirSync(dir);
  writeFileSync(join(dir, IMAGE_FILE), craftImage([
    { path: 'root/', type: 'dir' },
    { path: 'root/d/', type: 'dir' },
    { path: 'root/d/f', type: 'file', data: Buffer.from('ok') },
    { path: 'root/l', type: 'symlink', linkpath: '/etc/passwd' },
  ]));
  await restoreImage(dir, join(tmp.path, 'target'));
  assert.equal(readFileSync(join(tmp.path, 'target/d/f'), 'utf8'), 'ok');
});

/** Each case: a root part, and what it must be refused for. */
function cases(outside: string): Array<[string, CraftEntry[], RegExp]> {
  return [
    ['.. in a path', [
      { path: 'root/', type: 'dir' },
      { path: 'root/../evil', type: 'file', data: evil },
    ], /escapes the root with \.\.; refused/],
    ['.. deep in a path', [
      { path: 'root/', type: 'dir' },
      { path: 'root/a/', type: 'dir' },
      { path: 'root/a/../../../evil', type: 'file', data: evil },
    ], /escapes the root with \.\.; refused/],
    ['.. in a pax path', [
      { path: 'root/', type: 'dir' },
      { path: 'root/../ëvil', type: 'file', data: evil },
    ], /escapes the root with \.\.; refused/],
    ['an absolute path', [
      { path: 'root/', type: 'dir' },
      { path: `${outside}/evil`, type: 'file', data: evil },
    ], /has an absolute path; refused/],
    ['an absolute path as the root', [
      { path: `${outside}/`, type: 'dir' },
    ], /has an absolute path; refused/],
    ['a path outside root/', [
      { path: 'root/', type: 'dir' },
      { path: 'etc/evil', type: 'file', data: evil },
    ], /expected entry manifest\.json, found "etc\/evil"/],
    ['writing through an absolute symlink', [
      { path: 'root/', type: 'dir' },
      { path: 'root/link', type: 'symlink', linkpath: outside },
      { path: 'root/link/evil', type: 'file', data: evil },
    ], /not inside a directory stored before it \(a symlink cannot be a parent\); refused/],
    ['a directory through a relative symlink', [
      { path: 'root/', type: 'dir' },
      { path: 'root/up', type: 'symlink', linkpath: '../..' },
      { path: 'root/up/sub/', type: 'dir' },
    ], /a symlink cannot be a parent/],
    ['replacing a symlink with a file', [
      { path: 'root/', type: 'dir' },
      { path: 'root/f', type: 'symlink', linkpath: `${outside}/victim` },
      { path: 'root/f', type: 'file', data: evil },
    ], /appears twice; refused/],
    ['a file as a parent', [
      { path: 'root/', type: 'dir' },
      { path: 'root/f', type: 'file', data: evil },
      { path: 'root/f/g', type: 'file', data: evil },
    ], /not inside a directory stored before it/],
    ['a parent that was never stored', [
      { path: 'root/', type: 'dir' },
      { path: 'root/missing/f', type: 'file', data: evil },
    ], /not inside a directory stored before it/],
    ['an empty path component', [
      { path: 'root/', type: 'dir' },
      { path: 'root//f', type: 'file', data: evil },
    ], /empty, \. or \.\. path component; refused/],
    ['a . path component', [
      { path: 'root/', type: 'dir' },
      { path: 'root/./f', type: 'file', data: evil },
    ], /empty, \. or \.\. path component; refused/],
    ['a character device', [
      { path: 'root/', type: 'dir' },
      { path: 'root/null', type: 'file', rawType: '3' },
    ], /entry is a character device, which images never contain/],
    ['a block device', [
      { path: 'root/', type: 'dir' },
      { path: 'root/sda', type: 'file', rawType: '4' },
    ], /a block device/],
    ['a FIFO', [
      { path: 'root/', type: 'dir' },
      { path: 'root/fifo', type: 'file', rawType: '6' },
    ], /a FIFO/],
    ['a hard link', [
      { path: 'root/', type: 'dir' },
      { path: 'root/shadow', type: 'file', rawType: '1', linkpath: '/etc/shadow' },
    ], /a hard link/],
    ['no root directory first', [
      { path: 'root/f', type: 'file', data: evil },
    ], /expected entry root\//],
    ['a pax key images never use', [
      { path: 'root/', type: 'dir' },
      { path: 'root/f', type: 'file', data: evil, pax: { 'SCHILY.xattr.security.capability': 'x' } },
    ], /pax key "SCHILY\.xattr\.security\.capability" is not one images use/],
    ['a pax path that escapes', [
      { path: 'root/', type: 'dir' },
      { path: 'root/innocent', type: 'file', data: evil, pax: { path: 'root/../../evil' } },
    ], /escapes the root with \.\.; refused/],
    ['a pax linkpath with a NUL', [
      { path: 'root/', type: 'dir' },
      { path: 'root/l', type: 'symlink', pax: { linkpath: 'a\0b' } },
    ], /pax linkpath contains NUL/],
  ];
}

test('hostile images are refused, create nothing, and leave the image as it was', async (t) => {
  using tmp = tempDir();
  const outside = join(tmp.path, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'victim'), 'untouched');
  for (const [name, root, reason] of cases(outside)) {
    await t.test(name, async () => {
      const dir = join(tmp.path, 'img');
      mkdirSync(dir, { recursive: true });
      const image = craftImage(root);
      writeFileSync(join(dir, IMAGE_FILE), image);
      const parent = join(tmp.path, 'wpars', 'web');
      const target = join(parent, 'root');
      const refused = (err: WparError) => {
        assert.equal(err.code, 'EINVAL');
        assert.match(err.message, reason);
        assert.ok(err.message.startsWith(`image ${dir}: `), err.message);
        return true;
      };
      await assert.rejects(verifyImage(dir), refused);
      await assert.rejects(restoreImage(dir, target), refused);
      assert.equal(existsSync(target), false, 'no target');
      assert.equal(existsSync(join(tmp.path, 'wpars')), false, 'parents it made are removed again');
      assert.deepEqual(readdirSync(outside), ['victim']);
      assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'untouched');
      assert.deepEqual(readdirSync(tmp.path).sort(), ['img', 'outside'], 'nothing written beside the target');
      assert.ok(readFileSync(join(dir, IMAGE_FILE)).equals(image), 'the image is left as it was');
    });
  }
});

test('a version-1 image (written before images were signed) still verifies and restores', async () => {
  using tmp = tempDir();
  const dir = join(tmp.path, 'img');
  mkdirSync(dir);
  writeFileSync(join(dir, IMAGE_FILE), craftImage([{ path: 'root/', type: 'dir' }, { path: 'root/a', type: 'file', data: Buffer.from('x') }], undefined, Buffer.from('{"format":"corral-image","version":1}\n')));
  const data = await restoreImage(dir, join(tmp.path, 'target'));
  assert.equal(data.manifest.version, 1);
  assert.equal(data.manifest.signature, undefined);
});

test('an image of a newer format version is refused before anything is created', async () => {
  using tmp = tempDir();
  const dir = join(tmp.path, 'img');
  mkdirSync(dir);
  const image = craftImage([{ path: 'root/', type: 'dir' }], undefined, Buffer.from('{"format":"corral-image","version":4}\n'));
  writeFileSync(join(dir, IMAGE_FILE), image);
  await assert.rejects(restoreImage(dir, join(tmp.path, 'target')), {
    code: 'EINVAL',
    message: `image ${dir}: part format: format version 4 is not supported (this reader reads versions 1, 2 and 3)`,
  });
  assert.deepEqual(readdirSync(tmp.path), ['img']);
  const foreign = craftImage([{ path: 'root/', type: 'dir' }], undefined, Buffer.from('{"format":"docker"}'));
  writeFileSync(join(dir, IMAGE_FILE), foreign);
  await assert.rejects(verifyImage(dir), /part format: not a Corral image: format "docker"/);
});
