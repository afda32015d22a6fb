// Commands that act where the WPAR is (C3), on real daemons over a real etcd: chkptwpar and
// `wpar logs -f` of a WPAR on another host are relayed from its owner; restartwpar claims its name
// in the cluster first (C3: names are unique); hosts publish their capacity (C1).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { processesOf, ROOT } from './harness.ts';
import { CLUSTER_SKIP, ClusterNet, epochOf, type ClusterHost } from './cluster-hosts.ts';

const skip = CLUSTER_SKIP;

/** `wpar logs ARGS` against `host`, running in the background: its output so far, a wait for text, its end. */
function follow(host: ClusterHost, args: readonly string[]) {
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli/bin/wpar.js'), 'logs', '--home', host.home, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of waiters.splice(0)) if (stdout.includes(w.text)) w.resolve(); else waiters.push(w);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const ended = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    until: (text: string, ms = 15_000) => new Promise<void>((resolve, reject) => {
      if (stdout.includes(text)) { resolve(); return; }
      const t = setTimeout(() => reject(new Error(`no ${JSON.stringify(text)} from wpar logs ${args.join(' ')} in ${ms} ms; stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`)), ms);
      waiters.push({ text, resolve: () => { clearTimeout(t); resolve(); } });
    }),
    ended: (ms = 15_000) => Promise.race([ended, new Promise<never>((_r, reject) => setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`wpar logs ${args.join(' ')} still running after ${ms} ms`)); }, ms).unref())]),
    kill: () => child.kill('SIGTERM'),
  };
}

const HOLDER = join(import.meta.dirname, 'fixtures/holder.ts');

/** The connections established on `host`'s peer endpoint (one per relay or call in flight). */
function relays(host: ClusterHost): string {
  return execFileSync('nsenter', [`--net=/run/netns/${host.ns}`, '--', 'ss', '-Htn', 'state', 'established', '( sport = :7070 )'], { encoding: 'utf8' }).trim();
}

describe('commands act where the WPAR is', { skip, timeout: 120_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost; let b: ClusterHost;
  const images = mkdtempSync(join(tmpdir(), 'corral-cwhere-'));
  before(async () => {
    [a, b] = await net.up(['alpha', 'beta']);
  });
  after(async () => {
    await net.destroy();
    rmSync(images, { recursive: true, force: true });
  });

  it('every live host publishes its capacity; wpar hosts shows it', async () => {
    const hosts = JSON.parse(await a.ok('wpar', ['hosts', '--json'])) as { name: string; capacity?: { cpus: number; memoryBytes: number } }[];
    assert.deepEqual(hosts.map((h) => [h.name, h.capacity]), [
      ['alpha', { cpus: availableParallelism(), memoryBytes: totalmem() }], ['beta', { cpus: availableParallelism(), memoryBytes: totalmem() }],
    ]);
    const table = await b.ok('wpar', ['hosts']);
    assert.match(table, new RegExp(`\\nalpha\\s+\\S+\\s+up\\s+\\d+\\s+\\d+ s\\s+${availableParallelism()}\\s+[\\d.]+ GiB\\n`));
  });

  it('chkptwpar from a host that does not own the WPAR checkpoints it on its owner', async () => {
    await a.ok('mkwpar', ['-c', '-n', 'ck', '--host', 'beta', '-s', '--', 'sleep', '600']);
    const dir = join(images, 'ck');
    const r = JSON.parse(await a.ok('chkptwpar', ['--json', '-d', dir, 'ck'])) as { name: string; dir: string; bytes: number; killed: boolean };
    assert.deepEqual([r.name, r.dir, r.killed], ['ck', dir, false]);
    assert.ok(r.bytes > 0);
    assert.ok(existsSync(join(dir, 'image.tar')), 'the image was written');
    // It ran on beta (its journal says so), and not on alpha.
    const on = async (h: ClusterHost): Promise<string[]> => (await h.ok('wpar', ['events', '--json', '-n', '200'])).split('\n').filter((l) => l.includes('"checkpoint.done"'));
    assert.equal((await on(b)).length, 1);
    assert.equal((await on(a)).length, 0);
    // The WPAR runs on, still on beta; a refusal from the owner comes back as the owner said it.
    assert.deepEqual((await a.list()).filter((w) => w.name === 'ck').map((w) => [w.host, w.state]), [['beta', 'A']]);
    const again = await a.run('chkptwpar', ['-d', dir, 'ck']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds an image.*\(EEXIST\)/);
  });

  it('a chkptwpar from another host that is killed while it waits abandons the checkpoint on the owner', async () => {
    await a.ok('mkwpar', ['-c', '-n', 'held', '--host', 'beta', '-s', '--', process.execPath, HOLDER]);
    const log = follow(b, ['-f', 'held']);
    await log.until('denied\n');
    const dir = join(images, 'held');
    const client = spawn(process.execPath, [join(ROOT, 'dist/cli/bin/chkptwpar.js'), '--home', a.home, '-d', dir, '-w', '60', 'held'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => client.once('close', resolve));
    // The relay is open on beta once the checkpoint waits there (bounded poll: no event for it).
    for (const t0 = Date.now(); relays(b) === '' && Date.now() - t0 < 10_000;) await delay(50);
    assert.notEqual(relays(b), '', 'the checkpoint is relayed from beta');
    client.kill('SIGKILL');
    await exited;
    for (const t0 = Date.now(); relays(b) !== '' && Date.now() - t0 < 5000;) await delay(50);
    assert.equal(relays(b), '', 'the relay ended with its client');
    // Allowed now: an abandoned checkpoint does not go on to write its image; a new one works.
    const holder = processesOf('held', b.home).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === HOLDER);
    process.kill(holder!, 'SIGUSR1');
    await log.until('allowed\n');
    await a.ok('chkptwpar', ['-d', join(images, 'held2'), '-w', '10', 'held']);
    assert.ok(existsSync(join(images, 'held2', 'image.tar')));
    assert.equal(existsSync(join(dir, 'image.tar')), false, 'the abandoned checkpoint wrote no image');
    assert.deepEqual((await a.list()).filter((w) => w.name === 'held').map((w) => [w.host, w.state]), [['beta', 'A']]);
    await a.ok('stopwpar', ['-F', 'held']);
    assert.equal(await log.ended(), 0);
  });

  it('wpar logs and wpar logs -f (also --json) from another host; -f ends when the WPAR stops', async () => {
    await a.ok('mkwpar', ['-n', 'talk', '--host', 'beta', '-s', '--', 'sh', '-c', 'echo first; sleep 1; echo second; exec sleep 600']);
    const f = follow(a, ['-f', '--json', 'talk']);
    await f.until('"line":"second"');
    assert.deepEqual(f.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown), [{ name: 'talk', line: 'first' }, { name: 'talk', line: 'second' }]);
    const plain = follow(a, ['-f', 'talk']);
    await plain.until('second\n');
    assert.equal(await a.ok('wpar', ['logs', 'talk']), 'first\nsecond\n');
    await a.ok('stopwpar', ['-F', 'talk']);
    assert.equal(await f.ended(), 0, f.stderr);
    assert.equal(await plain.ended(), 0, plain.stderr);
    // A follower that goes away ends its relay: after many, the owner still serves new ones.
    await a.ok('startwpar', ['talk']);
    for (let i = 0; i < 3; i++) {
      const gone = follow(a, ['-f', 'talk']);
      await gone.until('first\n');
      gone.kill();
      await gone.ended();
    }
    // ...and beta closed those relays: no connection stays open on its peer endpoint (bounded poll: no event for it).
    const open = (): string => relays(b);
    for (const t0 = Date.now(); open() !== '' && Date.now() - t0 < 5000;) await delay(50);
    assert.equal(open(), '', 'relays left open on beta');
    const last = follow(a, ['-f', 'talk']);
    await last.until('second\n');
    assert.notEqual(open(), '', 'a live follower has its relay open on beta');
    await b.ok('stopwpar', ['-F', 'talk']);
    assert.equal(await last.ended(), 0, last.stderr);
  });

  it('restartwpar claims the name in the cluster first: a taken name is EEXIST naming its host, nothing made', async () => {
    const dir = join(images, 'ck2');
    await b.ok('chkptwpar', ['-k', '-d', dir, 'ck']); // ck stays defined on beta (state D)
    const epoch = (await a.list()).find((w) => w.name === 'ck')!.epoch!;
    const taken = await a.run('restartwpar', ['--insecure', '-d', dir, 'ck']);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /ck: the name is taken in the cluster \(defined on beta\) \(EEXIST\)/);
    assert.deepEqual((await a.list()).filter((w) => w.name === 'ck').map((w) => [w.host, w.state]), [['beta', 'D']]);
    assert.equal(existsSync(join(a.home, 'wpars', 'ck')), false, 'nothing made on alpha');

    // Under a free name it is restarted here, claimed for this host with the image's epoch + 1.
    // Signed by beta, a live member: trusted without --insecure (M8 with C1).
    const info = JSON.parse(await a.ok('restartwpar', ['--json', '-d', dir, '-n', 'ck9', 'ck'])) as { name: string; state: string };
    assert.deepEqual([info.name, info.state], ['ck9', 'A']);
    const listed = (await b.list()).find((w) => w.name === 'ck9')!;
    assert.deepEqual([listed.host, listed.state, listed.epoch], ['alpha', 'A', epoch + 1]);
    assert.deepEqual([...new Set(processesOf('ck9', a.home).map(epochOf).filter((e) => e !== undefined))], [`WPAR_EPOCH=${epoch + 1}`]);
    // The name is the cluster's now: beta cannot take it.
    const clash = await b.run('mkwpar', ['-n', 'ck9', '--', 'sleep', '1']);
    assert.equal(clash.code, 1);
    assert.match(clash.stderr, /ck9: the name is taken in the cluster \(defined on alpha\)/);
    await b.ok('rmwpar', ['-F', 'ck9']);
    assert.equal((await a.list()).some((w) => w.name === 'ck9'), false);
  });

  it('a restart that fails after its claim gives the claim back', async () => {
    // Its command exists while it is checkpointed, and is gone when it is restarted: the restart
    // claims the name, restores the root, then cannot start it.
    const progDir = mkdtempSync(join(tmpdir(), 'corral-cwhere-prog-'));
    chmodSync(progDir, 0o755); // a sealed WPAR reaches host programs as others may
    const prog = join(progDir, 'only-now');
    copyFileSync('/bin/sleep', prog);
    chmodSync(prog, 0o755);
    const dir = join(images, 'gone');
    try {
      await a.ok('mkwpar', ['-c', '-n', 'gone', '--host', 'beta', '-s', '--', prog, '600']);
      await a.ok('chkptwpar', ['-d', dir, 'gone']);
    } finally {
      rmSync(progDir, { recursive: true, force: true });
    }
    const r = await a.run('restartwpar', ['--insecure', '-d', dir, '-n', 'gone2', 'gone']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /gone2: (restart failed: )?command not found: .*only-now \(ENOENT\)/);
    assert.equal((await b.list()).some((w) => w.name === 'gone2'), false);
    assert.equal(existsSync(join(a.home, 'wpars', 'gone2')), false, 'nothing left on alpha');
    // Released: beta may take the name now.
    await b.ok('mkwpar', ['-n', 'gone2', '--host', 'beta', '--', 'sleep', '1']);
    assert.deepEqual((await a.list()).filter((w) => w.name === 'gone2').map((w) => w.host), ['beta']);

    // A draining host places nothing new: not by a restart either (EBUSY), and claims nothing.
    await a.ok('wpar', ['drain', 'alpha']);
    const busy = await a.run('restartwpar', ['--insecure', '-d', dir, '-n', 'gone3', 'gone']);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /gone3: host alpha is draining: nothing new is placed there; not restarted \(EBUSY\)/);
    assert.equal((await b.list()).some((w) => w.name === 'gone3'), false);
    await a.ok('wpar', ['undrain', 'alpha']);
  });
});
