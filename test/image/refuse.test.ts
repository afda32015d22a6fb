/** What the writer refuses to store, with the path named, leaving no image or temporary file behind. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { WparError } from '../../src/kernel/errno.ts';
import type { WparDefinition } from '../../src/runtime/definition.ts';
import { writeImage } from '../../src/image/index.ts';
import { definition, tempDir } from './fixtures.ts';

async function refused(
  dir: string, root: string, code: string, pattern: RegExp,
  def: WparDefinition = definition(), agents = new Map<string, unknown>(),
): Promise<void> {
  await assert.rejects(writeImage(dir, { definition: def, root, agents }), (err: WparError) => {
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
  assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [], 'no image and no temporary file');
}

function rootWith(base: string, make: (root: string) => void): string {
  const root = join(base, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'ok.txt'), 'fine');
  make(root);
  return root;
}

test('a FIFO in the root is refused with its path', async () => {
  using tmp = tempDir();
  const root = rootWith(tmp.path, (r) => assert.equal(spawnSync('mkfifo', [join(r, 'sub', 'pipe')]).status, 0));
  await refused(join(tmp.path, 'img'), root, 'EINVAL',
    new RegExp(`part root: ${join(root, 'sub', 'pipe')} is a FIFO; only regular files, directories and symlinks can be checkpointed`));
});

test('a socket in the root is refused with its path', async () => {
  using tmp = tempDir();
  const root = rootWith(tmp.path, () => undefined);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(root, 'sub', 'sock'), resolve));
  try {
    await refused(join(tmp.path, 'img'), root, 'EINVAL', /sub\/sock is a socket/);
  } finally {
    server.close();
  }
});

test('a device node in the root is refused with its path', async (t) => {
  using tmp = tempDir();
  const root = rootWith(tmp.path, () => undefined);
  if (spawnSync('mknod', [join(root, 'null'), 'c', '1', '3']).status !== 0) {
    t.skip('mknod needs privileges here');
    return;
  }
  await refused(join(tmp.path, 'img'), root, 'EINVAL', /root\/null is a character device/);
});

test('a name that is not UTF-8 is refused', async () => {
  using tmp = tempDir();
  const root = rootWith(tmp.path, (r) => writeFileSync(Buffer.concat([Buffer.from(`${r}/bad-`), Buffer.from([0xff, 0xfe])]), 'x'));
  await refused(join(tmp.path, 'img'), root, 'EINVAL', /bad-.*: the name is not valid UTF-8/);
});

test('an image directory inside the root is refused', async () => {
  using tmp = tempDir();
  const root = rootWith(tmp.path, () => undefined);
  await assert.rejects(writeImage(join(root, 'sub', 'img'), { definition: definition(), root, agents: new Map() }),
    /the image directory is inside the root .* being checkpointed/);
  assert.deepEqual(readdirSync(join(root, 'sub', 'img')), []);
});

test('a missing root is ENOENT; a file as root is EINVAL', async () => {
  using tmp = tempDir();
  await refused(join(tmp.path, 'img'), join(tmp.path, 'nope'), 'ENOENT', /part root: cannot read root/);
  writeFileSync(join(tmp.path, 'file'), '');
  await refused(join(tmp.path, 'img'), join(tmp.path, 'file'), 'EINVAL', /part root: root .* is not a directory/);
});

test('a bad definition or agent state is refused', async () => {
  using tmp = tempDir();
  const root = rootWith(tmp.path, () => undefined);
  await refused(join(tmp.path, 'img'), root, 'EINVAL', /part definition: not a valid WPAR definition: bad WPAR name "\.\.\/bad"/,
    { ...definition(), name: '../bad' });
  await refused(join(tmp.path, 'img'), root, 'EINVAL', /part agents: a state cannot be serialized/,
    definition(), new Map<string, unknown>([['app', { f: () => 1 }]]));
});
