/** Damage: every single flipped byte, every truncation and any appended byte is refused. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WparError } from '../../src/kernel/errno.ts';
import { packImage, readImageFrom, verifyImage, writeImage, IMAGE_FILE } from '../../src/image/index.ts';
import { chunked, collect, definition, tempDir } from './fixtures.ts';

/** A small image with every kind of byte: pax headers, data, padding, small parts, manifest, trailer. */
async function smallImage(): Promise<Buffer> {
  using tmp = tempDir();
  const root = join(tmp.path, 'root');
  mkdirSync(join(root, 'dir'), { recursive: true });
  writeFileSync(join(root, 'dir/a.txt'), 'hello\n');
  writeFileSync(join(root, 'blocks.bin'), Buffer.alloc(1024, 7));
  writeFileSync(join(root, 'ünï.txt'), 'pax path'); // non-ASCII name: a pax header
  symlinkSync('dir/a.txt', join(root, 'link'));
  const agents = new Map<string, unknown>([['app', { at: new Date(0), seen: new Map([[1, 'x']]) }]]);
  return await collect(packImage({ definition: definition(), root, agents }, { created: new Date(1_700_000_000_000) }));
}

async function refusal(bytes: Buffer): Promise<string | null> {
  try {
    await readImageFrom(chunked(bytes), { label: 'mem' });
    return null;
  } catch (err) {
    if (!(err instanceof WparError) || err.code !== 'EINVAL') throw err;
    return err.message;
  }
}

test('the pristine image is accepted', async () => {
  const image = await smallImage();
  assert.equal(await refusal(image), null);
  assert.ok(image.length < 32 * 1024, `a small image (${image.length} bytes)`);
});

test('a flipped byte anywhere is refused (every byte, two different flips)', async () => {
  const image = await smallImage();
  const accepted: number[] = [];
  for (let i = 0; i < image.length; i++) {
    for (const mask of [0x01, 0x80]) {
      const copy = Buffer.from(image);
      copy[i] = copy[i]! ^ mask;
      if ((await refusal(copy)) === null) accepted.push(i);
    }
  }
  assert.deepEqual(accepted, [], 'offsets whose flip went unnoticed');
});

test('an image cut short anywhere is refused', async () => {
  const image = await smallImage();
  const accepted: number[] = [];
  for (let len = 0; len < image.length; len++) {
    const message = await refusal(image.subarray(0, len));
    if (message === null) accepted.push(len);
  }
  assert.deepEqual(accepted, []);
  assert.match((await refusal(image.subarray(0, image.length - 700)))!, /cut short after \d+ bytes \(image truncated\)/);
});

test('bytes after the end are refused', async () => {
  const image = await smallImage();
  for (const extra of [Buffer.from([0]), Buffer.alloc(512), Buffer.from('junk')]) {
    assert.match((await refusal(Buffer.concat([image, extra])))!, /data after the end of the archive/);
  }
});

test('on disk, damage is reported with the image, the part and the reason', async () => {
  using tmp = tempDir();
  const root = join(tmp.path, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'data.txt'), 'x'.repeat(5000));
  const dir = join(tmp.path, 'img');
  await writeImage(dir, { definition: definition(), root, agents: new Map([['a', 1]]) });
  const file = join(dir, IMAGE_FILE);
  const pristine = readFileSync(file);
  const manifest = await verifyImage(dir);
  const rootPart = manifest.parts.root;
  const flipAt = async (offset: number) => {
    const copy = Buffer.from(pristine);
    copy[offset] = copy[offset]! ^ 0x20;
    writeFileSync(file, copy);
    return verifyImage(dir).then(() => 'accepted', (err: WparError) => `${err.code} ${err.message}`);
  };
  // Version 3: the manifest follows the agents part (format, root, deltas, definition, agents).
  const manifestStart = manifest.parts.agents.offset + manifest.parts.agents.bytes;
  const cases: Array<[string, number, RegExp]> = [
    ['file data', rootPart.offset + 2 * 512 + 100, /^EINVAL image .*: part root: SHA-256 mismatch \(image damaged or tampered\)$/],
    ['padding after data', rootPart.offset + 2 * 512 + 5000 + 10, /part root: SHA-256 mismatch/],
    ['a header field tar ignores (uname)', rootPart.offset + 512 + 270, /part root: bad tar header checksum/],
    ['the definition', manifest.parts.definition.offset + 600, /part definition: SHA-256 mismatch|part definition: .*JSON/],
    ['the agents', manifest.parts.agents.offset + 520, /part agents: SHA-256 mismatch/],
    ['the manifest', manifestStart + 600, /part manifest: (SHA-256 mismatch|not valid JSON)/],
    ['the trailer digest', pristine.length - 3 * 512 + 5, /part (manifest|trailer)/],
    ['the trailer header', pristine.length - 4 * 512 + 3, /part trailer: (bad tar header checksum|the trailer header is damaged)/],
    ['the end blocks', pristine.length - 10, /part end of archive: the end-of-archive block is not zero/],
  ];
  for (const [what, offset, pattern] of cases) {
    const outcome = await flipAt(offset);
    assert.match(outcome, pattern, what);
    assert.ok(outcome.includes(`image ${dir}:`), `${what}: names the image`);
  }
  const cut = rootPart.offset + 700;
  writeFileSync(file, pristine.subarray(0, cut));
  await assert.rejects(verifyImage(dir), { message: `image ${dir}: part root: cut short after ${cut} bytes (image truncated)` });
  writeFileSync(file, pristine);
  assert.deepEqual(await verifyImage(dir), manifest);
});

test('a missing image is ENOENT; something else than an image is EINVAL', async () => {
  using tmp = tempDir();
  await assert.rejects(verifyImage(join(tmp.path, 'none')), (err: WparError) => err.code === 'ENOENT' && /no image here/.test(err.message));
  mkdirSync(join(tmp.path, 'other'));
  writeFileSync(join(tmp.path, 'other', IMAGE_FILE), 'this is not a tar file at all'.repeat(40));
  await assert.rejects(verifyImage(join(tmp.path, 'other')), (err: WparError) => err.code === 'EINVAL');
});
