// Signed images (M8), tried as an attacker would: an image whose definition was edited and whose
// every hash was recomputed passes the integrity checks, so only the signature can refuse it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packImage, restoreImage } from '../../src/image/index.ts';
import type { ImageSigner } from '../../src/image/format/manifest.ts';
import { System } from './harness.ts';

async function trust(on: System, signer: System, name: string): Promise<void> {
  const id = JSON.parse(await signer.ok('wpar', ['identity', '--json'])) as { fingerprint: string };
  await on.ok('wpar', ['peer', 'add', name, id.fingerprint]);
}

/** Rewrites the image in `dir` with `edit` applied to its definition, every digest recomputed. */
async function forge(dir: string, edit: (argv: readonly string[]) => string[], signer?: ImageSigner): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'corral-forge-'));
  try {
    const data = await restoreImage(dir, join(scratch, 'root'));
    const definition = { ...data.definition, argv: edit(data.definition.argv) };
    const chunks: Buffer[] = [];
    const gen = packImage({ definition, root: join(scratch, 'root'), agents: data.agents, ...(signer && { signer }) });
    for (let r = await gen.next(); r.done !== true; r = await gen.next()) chunks.push(r.value);
    writeFileSync(join(dir, 'image.tar'), Buffer.concat(chunks));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The signature of the image in `dir`, replayed: what an attacker can copy without the key. */
async function replayedSigner(dir: string): Promise<ImageSigner> {
  const scratch = mkdtempSync(join(tmpdir(), 'corral-forge-'));
  try {
    const sig = (await restoreImage(dir, join(scratch, 'root'))).manifest.signature!;
    return { fingerprint: sig.fingerprint, certificate: sig.certificate, sign: () => sig.value };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

test('images are signed; restartwpar refuses altered, unsigned and unknown-signer images, --insecure accepts with a warning', { timeout: 120_000 }, async () => {
  await using a = await System.start({ args: ['--name', 'alpha'] });
  await using b = await System.start({ args: ['--name', 'beta'] });
  await using stranger = await System.start({ args: ['--name', 'stranger'] });
  await trust(b, a, 'alpha');
  const img = mkdtempSync(join(tmpdir(), 'corral-img-'));
  const other = mkdtempSync(join(tmpdir(), 'corral-img-'));
  try {
    await a.ok('mkwpar', ['-n', 'job', '-c', '-s', '--', 'sh', '-c', 'echo hi > note.txt; exec sleep 300']);
    await a.ok('chkptwpar', ['-d', img, 'job']);
    const ida = JSON.parse(await a.ok('wpar', ['identity', '--json'])) as { fingerprint: string };
    const manifest = readFileSync(join(img, 'image.tar'), 'latin1');
    assert.match(manifest, new RegExp(`"fingerprint": "${ida.fingerprint}"`), 'signed by the writing home');

    // The attacker's edit: another command, every hash recomputed, the signature copied over.
    const pwned = join(b.home, 'pwned');
    await forge(img, () => ['sh', '-c', `touch ${pwned}; exec sleep 300`], await replayedSigner(img));
    let r = await b.run('restartwpar', ['-d', img, 'job']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^restartwpar: job: refused: image .*: the signature does not match the image \(altered after signing\) \(EPERM\)\n$/);
    assert.deepEqual(await b.list(), [], 'nothing created');
    assert.equal(existsSync(join(b.home, 'wpars', 'job')), false);

    // Unsigned (the attacker drops the signature).
    await forge(img, (argv) => [...argv]);
    r = await b.run('restartwpar', ['-d', img, 'job']);
    assert.match(r.stderr, /unsigned \(format version 3\).*\(EPERM\)/);

    // Signed by an identity b does not trust.
    await stranger.ok('mkwpar', ['-n', 'job', '-c', '-s', '--', 'sleep', '300']);
    await stranger.ok('chkptwpar', ['-d', other, 'job']);
    r = await b.run('restartwpar', ['-d', other, 'job']);
    assert.match(r.stderr, /signed by an unknown identity sha256:[0-9a-f]{64} .*\(EPERM\)/);
    assert.deepEqual(await b.list(), []);

    // --insecure accepts it, with a warning on stderr and an event.
    r = await b.run('restartwpar', ['--insecure', '-d', other, 'job']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: --insecure/);
    const events = readFileSync(join(b.home, 'events.log'), 'utf8');
    assert.match(events, /"type":"restart.insecure","time":\d+,"name":"job".*unknown identity/);
    assert.equal((await b.list())[0]?.state, 'A');
  } finally {
    rmSync(img, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }
});
