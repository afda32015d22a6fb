// Version-3 images (M5): the root copied while it changes, then deltas, the last one frozen; and
// version-2 images still read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import type { WparError } from '../../src/kernel/errno.ts';
import { packImage, readImageFrom, restoreImage, restoreImageFrom, verifyImage, writeImage, IMAGE_FILE, type ImageManifest } from '../../src/image/index.ts';
import { BLOCK, ENTRY, formatEntryBytes, padding } from '../../src/image/format/format.ts';
import { sourceSystem } from '../../src/image/format/manifest.ts';
import { encodeHeaders, type TarEntry } from '../../src/image/format/tar.ts';
import { trailerData, trailerHeader } from '../../src/image/format/trailer.ts';
import { chunked, collect, definition, snapshot, tempDir } from './fixtures.ts';

/** A root with a bit of everything, some of it to be changed while "running". */
function makeRoot(root: string): void {
  mkdirSync(join(root, 'keep/deep'), { recursive: true });
  mkdirSync(join(root, 'gone/sub'), { recursive: true });
  mkdirSync(join(root, 'becomes-file'));
  writeFileSync(join(root, 'becomes-file/inside'), 'x');
  writeFileSync(join(root, 'becomes-dir'), 'file first');
  writeFileSync(join(root, 'keep/deep/same'), 'unchanged');
  writeFileSync(join(root, 'keep/grows'), 'a'.repeat(3000));
  writeFileSync(join(root, 'gone/sub/f'), 'bye');
  writeFileSync(join(root, 'recreated'), 'old');
  symlinkSync('keep/deep/same', join(root, 'link'));
}

/** What the "WPAR" does between the copy and the freeze: removes, re-creates, retypes, grows. */
function change(root: string): void {
  rmSync(join(root, 'gone'), { recursive: true });
  rmSync(join(root, 'becomes-file'), { recursive: true });
  writeFileSync(join(root, 'becomes-file'), 'now a file');
  unlinkSync(join(root, 'becomes-dir'));
  mkdirSync(join(root, 'becomes-dir'));
  writeFileSync(join(root, 'becomes-dir/child'), 'child');
  writeFileSync(join(root, 'keep/grows'), 'b'.repeat(9000));
  unlinkSync(join(root, 'recreated'));
  writeFileSync(join(root, 'recreated'), 'new');
  unlinkSync(join(root, 'link'));
  symlinkSync('becomes-file', join(root, 'link'));
  writeFileSync(join(root, 'keep/new'), 'fresh');
}

test('a root changed before the freeze: the image holds it as it is at the freeze, with the removals', async () => {
  using tmp = tempDir();
  const root = join(tmp.path, 'root');
  makeRoot(root);
  const dir = join(tmp.path, 'img');
  let atFreeze: string[] = [];
  let rounds = 0;
  const manifest = await writeImage(dir, {
    definition: definition(), root,
    agents: async () => {
      change(root);
      atFreeze = snapshot(root);
      return new Map([['app', { n: 7 }]]);
    },
  }, { onRounds: (s) => { rounds = s.rounds.length; } });
  assert.equal(manifest.version, 3);
  assert.equal(rounds, 2, 'the whole root, then the frozen delta (a small root needs no other round)');
  const [last] = manifest.parts.deltas!;
  assert.equal(manifest.parts.deltas!.length, 1);
  // gone (with what is under it), becomes-file and becomes-dir are listed removed; recreated and
  // link keep their type, so the delta's entries replace them.
  assert.equal(last!.removed, 3);
  assert.ok(last!.files >= 5, 'changed and new files are in the delta');
  const target = join(tmp.path, 'restored');
  const data = await restoreImage(dir, target);
  assert.deepEqual(snapshot(target), atFreeze);
  assert.deepEqual(data.agents, new Map([['app', { n: 7 }]]));
  assert.deepEqual(await verifyImage(dir), manifest);
});

test('without a freeze hook the image has no delta, and writing the same tree twice gives the same bytes', async () => {
  using tmp = tempDir();
  const root = join(tmp.path, 'root');
  makeRoot(root);
  const created = new Date(1_700_000_000_000);
  const a = await collect(packImage({ definition: definition(), root, agents: new Map() }, { created }));
  const b = await collect(packImage({ definition: definition(), root, agents: new Map() }, { created, chunkBytes: 4096 }));
  assert.ok(a.equals(b));
  const { manifest } = await readImageFrom(chunked(a), { label: 'mem' });
  assert.deepEqual(manifest.parts.deltas, []);
});

/** A small image with one delta that removes, retypes and replaces (for the byte-flipping tests). */
async function smallDeltaImage(base: string): Promise<Buffer> {
  const root = join(base, 'root');
  mkdirSync(join(root, 'd'), { recursive: true });
  writeFileSync(join(root, 'd/f'), 'one');
  writeFileSync(join(root, 'g'), 'two');
  return collect(packImage({
    definition: definition(), root,
    agents: async () => {
      rmSync(join(root, 'd'), { recursive: true });
      writeFileSync(join(root, 'd'), 'd is a file now');
      writeFileSync(join(root, 'g'), 'three');
      return new Map([['a', 1]]);
    },
  }, { created: new Date(1_700_000_000_000) }));
}

test('one flipped byte anywhere in a version-3 image (root, delta, definition, agents, manifest, trailer) is refused', async () => {
  using tmp = tempDir();
  const image = await smallDeltaImage(tmp.path);
  const { manifest } = await readImageFrom(chunked(image), { label: 'mem' });
  assert.equal(manifest.parts.deltas!.length, 1);
  for (let i = 0; i < image.length; i++) {
    const copy = Buffer.from(image);
    copy[i] = copy[i]! ^ 0x01;
    await assert.rejects(readImageFrom(chunked(copy), { label: 'mem' }), (err: WparError) => err.code === 'EINVAL', `byte ${i}`);
  }
});

test('a damaged delta is refused by a restore, which creates nothing', async () => {
  using tmp = tempDir();
  const image = await smallDeltaImage(tmp.path);
  const { manifest } = await readImageFrom(chunked(image), { label: 'mem' });
  const d = manifest.parts.deltas![0]!;
  // A byte of the list of removed paths, of an entry's header, and of its data.
  for (const at of [d.offset + BLOCK + 3, d.offset + 2 * BLOCK + 10, d.offset + d.bytes - BLOCK + 1]) {
    const copy = Buffer.from(image);
    copy[at] = copy[at]! ^ 0x01;
    const target = join(tmp.path, 'out', 'restored');
    await assert.rejects(restoreImageFrom(chunked(copy, [700]), target, { label: 'mem' }), /image mem: /);
    assert.equal(existsSync(join(tmp.path, 'out')), false, `byte ${at}: nothing created`);
  }
  const target = join(tmp.path, 'ok');
  await restoreImageFrom(chunked(image, [700]), target, { label: 'mem' });
  assert.equal(readFileSync(join(target, 'd'), 'utf8'), 'd is a file now');
  assert.equal(readFileSync(join(target, 'g'), 'utf8'), 'three');
});

test('a version-2 image (written by the earlier writer) still verifies and restores', async () => {
  using tmp = tempDir();
  const dir = join(tmp.path, 'img');
  mkdirSync(dir);
  copyFileSync(join(import.meta.dirname, 'fixtures/v2-image.tar'), join(dir, IMAGE_FILE));
  const target = join(tmp.path, 'restored');
  const data = await restoreImage(dir, target);
  assert.equal(data.manifest.version, 2);
  assert.equal(data.manifest.parts.deltas, undefined);
  assert.deepEqual(data.agents, new Map([['counter', { n: 41 }]]));
  assert.deepEqual(snapshot(target), [
    '/ dir 755 1750000000',
    'config link etc/app/config.json ' + snapshot(target)[1]!.split(' ').at(-1),
    'counter file 600 1750000000 3 ' + createHash('sha256').update('41\n').digest('hex').slice(0, 16),
    'etc/ dir 755 1750000000',
    'etc/app/ dir 755 1750000000',
    'etc/app/config.json file 644 1750000000 14 ' + createHash('sha256').update('{"port":8080}\n').digest('hex').slice(0, 16),
    'grüße.txt file 644 1750000000 6 ' + createHash('sha256').update('hallo\n').digest('hex').slice(0, 16),
  ]);
});

// Hand-made version-3 images: correct digests, hostile content. -----------------------------------

interface Entry { readonly path: string; readonly type: TarEntry['type']; readonly data?: string | Buffer; readonly linkpath?: string }

function entryBytes(e: Entry): Buffer {
  const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? '');
  const headers = encodeHeaders({ path: e.path, type: e.type, mode: e.type === 'file' ? 0o644 : 0o755, size: data.length, mtime: 1_700_000_000, linkpath: e.linkpath ?? '' });
  return Buffer.concat([headers, data, Buffer.alloc(padding(data.length))]);
}

function counts(entries: readonly Entry[]) {
  const c = { entries: entries.length, files: 0, directories: 0, symlinks: 0, dataBytes: 0 };
  for (const e of entries) {
    if (e.type === 'file') c.files++;
    else if (e.type === 'dir') c.directories++;
    else c.symlinks++;
    c.dataBytes += Buffer.isBuffer(e.data) ? e.data.length : Buffer.byteLength(e.data ?? '');
  }
  return c;
}

/** A version-3 image with root part `root` and one delta (`removed`, then `entries`). */
function craftV3(root: readonly Entry[], removed: readonly unknown[], entries: readonly Entry[]): Buffer {
  const small = (path: string, data: Buffer) => entryBytes({ path, type: 'file', data });
  const parts = [
    small(ENTRY.format, formatEntryBytes(3)),
    Buffer.concat(root.map(entryBytes)),
    Buffer.concat([small(ENTRY.delta, Buffer.from(JSON.stringify({ removed }))), ...entries.map(entryBytes)]),
    small(ENTRY.definition, Buffer.from(JSON.stringify(definition()))),
    small(ENTRY.agents, serialize(new Map())),
  ];
  let offset = 0;
  const [format, rootPart, delta, def, agents] = parts.map((b) => {
    const d = { offset, bytes: b.length, sha256: createHash('sha256').update(b).digest('hex') };
    offset += b.length;
    return d;
  }) as [ImageManifest['parts']['format'], ImageManifest['parts']['format'], ImageManifest['parts']['format'], ImageManifest['parts']['format'], ImageManifest['parts']['format']];
  const manifest: ImageManifest = {
    format: 'corral-image', version: 3, created: new Date().toISOString(), wpar: 'web', source: sourceSystem(), agents: [],
    parts: { format, root: { ...rootPart, ...counts(root) }, deltas: [{ ...delta, ...counts(entries), removed: removed.length }], definition: def, agents },
  };
  const manifestEntry = small(ENTRY.manifest, Buffer.from(JSON.stringify(manifest)));
  return Buffer.concat([...parts, manifestEntry, trailerHeader(), trailerData(createHash('sha256').update(manifestEntry).digest('hex')), Buffer.alloc(2 * BLOCK)]);
}

const base: Entry[] = [
  { path: 'root/', type: 'dir' },
  { path: 'root/d/', type: 'dir' },
  { path: 'root/d/f', type: 'file', data: 'f' },
  { path: 'root/l', type: 'symlink', linkpath: '/etc' },
];

test('hostile deltas are refused whatever the digests say, and a restore creates nothing', async (t) => {
  const cases: Array<[string, readonly unknown[], Entry[], RegExp]> = [
    ['removing what is not there', ['nope'], [], /part delta 1: removed path "nope" is not in the root stored before it/],
    ['removing the root', [''], [], /removed path "" is not a relative path inside the root/],
    ['removing with ..', ['d/../..'], [], /removed path "d\/..\/.." is not a relative path/],
    ['removing under a removed directory', ['d', 'd/f'], [], /removed path "d\/f" is not in the root stored before it/],
    ['a list that is not a list', [{ path: 'd' }], [], /removed path .* is not a relative path/],
    ['a type change without removal', [], [{ path: 'root/d', type: 'file', data: 'x' }], /entry "root\/d" changes a dir into a file without removing it first/],
    ['writing through a symlink', [], [{ path: 'root/l/passwd', type: 'file', data: 'x' }], /is not inside a directory stored before it/],
    ['a path twice in one delta', [], [{ path: 'root/d/f', type: 'file', data: 'a' }, { path: 'root/d/f', type: 'file', data: 'b' }], /appears twice in one delta/],
    ['an entry under a removed directory', ['d'], [{ path: 'root/d/g', type: 'file', data: 'x' }], /is not inside a directory stored before it/],
    ['the root replaced by a file', [], [{ path: 'root', type: 'file', data: 'x' }], /./],
  ];
  for (const [what, removed, entries, pattern] of cases) {
    await t.test(what, async () => {
      using tmp = tempDir();
      const image = craftV3(base, removed, entries);
      const target = join(tmp.path, 'out', 'restored');
      await assert.rejects(restoreImageFrom(chunked(image), target, { label: 'crafted' }), (err: WparError) => err.code === 'EINVAL' && pattern.test(err.message));
      assert.equal(existsSync(join(tmp.path, 'out')), false, 'nothing created');
    });
  }
  await t.test('the same builder makes an image that restores (the refusals are for their content)', async () => {
    using tmp = tempDir();
    const image = craftV3(base, ['d', 'l'], [{ path: 'root/d', type: 'file', data: 'now a file' }, { path: 'root/l/', type: 'dir' }, { path: 'root/l/x', type: 'file', data: 'x' }]);
    const target = join(tmp.path, 'restored');
    await restoreImageFrom(chunked(image, [600]), target, { label: 'crafted' });
    assert.equal(readFileSync(join(target, 'd'), 'utf8'), 'now a file');
    assert.deepEqual(readdirSync(join(target, 'l')), ['x']);
  });
});

test('a file rewritten while the root is copied is stored again frozen, never torn', async () => {
  using tmp = tempDir();
  const root = join(tmp.path, 'root');
  mkdirSync(root);
  for (let i = 0; i < 40; i++) writeFileSync(join(root, `big${i}`), Buffer.alloc(256 << 10, i));
  const dir = join(tmp.path, 'img');
  // While the copy runs (each chunk handed out is a moment the main thread is free), files are
  // rewritten, replaced by rename, and removed; the freeze hook stops that and records the tree.
  let n = 0;
  let stop = false;
  let atFreeze: string[] = [];
  const churn = setInterval(() => {
    if (stop) return;
    n++;
    writeFileSync(join(root, `big${n % 40}`), Buffer.alloc((n % 7) << 16, n));
    writeFileSync(join(root, 'tmp'), String(n));
    renameSync(join(root, 'tmp'), join(root, `renamed${n % 3}`));
    rmSync(join(root, `big${(n + 20) % 40}`), { force: true });
  }, 1);
  try {
    await writeImage(dir, {
      definition: definition(), root,
      agents: async () => {
        stop = true;
        atFreeze = snapshot(root);
        return new Map();
      },
    }, { onProgress: () => undefined });
  } finally {
    clearInterval(churn);
  }
  const target = join(tmp.path, 'restored');
  await restoreImage(dir, target);
  assert.deepEqual(snapshot(target), atFreeze);
});
