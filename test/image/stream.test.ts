/** The image as a stream: any chunking, a socket, determinism, and plain tar compatibility. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { packImage, readImageFrom, restoreImageFrom } from '../../src/image/index.ts';
import { chunked, collect, definition, snapshot, tempDir } from './fixtures.ts';

function makeRoot(base: string): string {
  const root = join(base, 'root');
  mkdirSync(join(root, 'a/b'), { recursive: true });
  // Spans several 4 MiB chunks, and a pattern so that a misplaced piece shows.
  const data = Buffer.allocUnsafe(9 * 1024 * 1024 + 17);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  writeFileSync(join(root, 'a/b/data.bin'), data);
  writeFileSync(join(root, 'a/small.txt'), 'small');
  writeFileSync(join(root, `${'é'.repeat(80)}.txt`), 'long unicode name');
  symlinkSync('a/small.txt', join(root, 'link'));
  utimesSync(join(root, 'a'), 1_600_000_000, 1_600_000_000);
  return root;
}

const agents = new Map<string, unknown>([['app', { cursor: 42, since: new Date('2025-01-02T03:04:05Z') }]]);

test('any chunking of the stream restores the same tree', async () => {
  using tmp = tempDir();
  const root = makeRoot(tmp.path);
  const image = await collect(packImage({ definition: definition(), root, agents }));
  const cuts: number[][] = [[1, 2, 3, 5, 7, 11, 13, 65_536], [511, 513], [512], [100_000, 1], [image.length]];
  for (const [i, sizes] of cuts.entries()) {
    const target = join(tmp.path, `out${i}`);
    const data = await restoreImageFrom(chunked(image, sizes), target, { label: `cut ${sizes.join(',')}` });
    assert.deepEqual(snapshot(target), snapshot(root));
    assert.deepEqual(data.agents, agents);
  }
});

test('an image goes over a socket in one pass each way', async () => {
  using tmp = tempDir();
  const root = makeRoot(tmp.path);
  const sock = join(tmp.path, 'sock');
  const target = join(tmp.path, 'arrived');
  const received = new Promise<Awaited<ReturnType<typeof restoreImageFrom>>>((resolve, reject) => {
    const server = createServer((conn: Socket) => {
      restoreImageFrom(conn, target, { label: 'socket' }).then(resolve, reject).finally(() => server.close());
    });
    server.listen(sock);
  });
  const client = connect(sock);
  await pipeline(Readable.from(packImage({ definition: definition(), root, agents })), client);
  const data = await received;
  assert.deepEqual(snapshot(target), snapshot(root));
  assert.deepEqual(data.definition, definition());
});

test('the same tree at the same time makes the same bytes', async () => {
  using tmp = tempDir();
  const root = makeRoot(tmp.path);
  const created = new Date('2025-06-07T08:09:10Z');
  const a = await collect(packImage({ definition: definition(), root, agents }, { created }));
  const b = await collect(packImage({ definition: definition(), root, agents }, { created, chunkBytes: 4096 }));
  assert.ok(a.equals(b));
  const { manifest } = await readImageFrom(chunked(a), { label: 'mem' });
  assert.equal(manifest.created, created.toISOString());
});

test('an image is a plain POSIX tar: GNU tar extracts the same root', async (t) => {
  if (spawnSync('tar', ['--version']).status !== 0) {
    t.skip('no tar here');
    return;
  }
  using tmp = tempDir();
  const root = makeRoot(tmp.path);
  const image = await collect(packImage({ definition: definition(), root, agents }));
  const file = join(tmp.path, 'image.tar');
  writeFileSync(file, image);
  const out = join(tmp.path, 'x');
  mkdirSync(out);
  const r = spawnSync('tar', ['-xf', file, '-C', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(snapshot(join(out, 'root')), snapshot(root));
});
