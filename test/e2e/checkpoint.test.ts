// Checkpoint and restart end to end (issue #4): two daemons in two homes are two systems.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processesOf, ROOT, subscribe, System, trust, waitForOutput } from './harness.ts';

const COUNTER = join(ROOT, 'examples/agent-counter.ts');
const HOLDER = join(import.meta.dirname, 'fixtures/holder.ts');
const fast = ['-e', 'COUNTER_STEP_MS=10', '-e', 'COUNTER_PAUSE_MS=30', '-e', 'COUNTER_BATCH=5'];

function imageDir(): string {
  return mkdtempSync(join(tmpdir(), 'corral-img-'));
}

/** Lines of a count file as numbers. */
function counts(file: string): number[] {
  return readFileSync(file, 'utf8').trim().split('\n').map(Number);
}

test('a job that uses the agent: chkptwpar -k on A, restartwpar on B, continues from its count and finds its files', async () => {
  await using a = await System.start();
  await using b = await System.start();
  await trust(b, a);
  const img = imageDir();
  try {
    await a.ok('mkwpar', ['-n', 'counter', '-c', ...fast, '--', process.execPath, COUNTER]);
    await a.ok('startwpar', ['counter']);
    await waitForOutput(a, 'counter', /batch 3 written/);
    const summary = await a.ok('chkptwpar', ['-d', img, '-k', 'counter']);
    assert.match(summary, /counter/);
    const stopped = await a.wpar('counter');
    assert.equal(stopped.state, 'D', '-k stopped it');
    const saved = counts(join(stopped.root, 'count.txt'));
    assert.ok(saved.length >= 15);

    await b.ok('restartwpar', ['-d', img, 'counter']);
    const w = await b.wpar('counter');
    assert.equal(w.state, 'A');
    assert.equal(w.phase, 'normal', 'RESTART_CLEAR once the agent restored');
    const out = await waitForOutput(b, 'counter', new RegExp(`batch ${saved.length / 5 + 2} written`));
    assert.match(out, new RegExp(`starting after ${saved.length}\\b`), 'continued from the saved count');
    await b.ok('stopwpar', ['counter']);
    const all = counts(join(w.root, 'count.txt'));
    assert.deepEqual(all.slice(0, saved.length), saved, 'found its files');
    assert.deepEqual(all, all.map((_, i) => i + 1), 'no gap, no repeat');
    assert.ok(all.length > saved.length);
  } finally {
    rmSync(img, { recursive: true, force: true });
  }
});

test('a program without the agent restarts from its command with its root restored', async () => {
  await using a = await System.start();
  await using b = await System.start();
  await trust(b, a);
  const img = imageDir();
  try {
    const loop = 'touch log.txt; i=$(wc -l < log.txt); while true; do i=$((i+1)); echo $i >> log.txt; sleep 0.02; done';
    await a.ok('mkwpar', ['-n', 'loop', '-c', '-s', '--', 'sh', '-c', loop]);
    const root = (await a.wpar('loop')).root;
    await new Promise<void>((done) => { const w = watch(root, () => { if (existsSync(join(root, 'log.txt')) && counts(join(root, 'log.txt')).length >= 10) { w.close(); done(); } }); });
    await a.ok('chkptwpar', ['-d', img, '-k', 'loop']);
    const before = counts(join(root, 'log.txt'));
    await b.ok('restartwpar', ['-d', img, '-n', 'loop2', 'loop']);
    const root2 = (await b.wpar('loop2')).root;
    await new Promise<void>((done) => { const w = watch(root2, () => { if (counts(join(root2, 'log.txt')).length >= before.length + 5) { w.close(); done(); } }); });
    await b.ok('stopwpar', ['loop2']);
    const after = counts(join(root2, 'log.txt'));
    assert.deepEqual(after.slice(0, before.length), before, 'root restored');
    assert.deepEqual(after, after.map((_, i) => i + 1), 'and the command went on from it');
  } finally {
    rmSync(img, { recursive: true, force: true });
  }
});

test('a TRY held by an agent denial: chkptwpar -w 1 fails with ETIMEDOUT naming it; after the allow it succeeds', async () => {
  await using sys = await System.start();
  const img = imageDir();
  try {
    await sys.ok('mkwpar', ['-n', 'held', '-c', '--', process.execPath, HOLDER]);
    const denied = await subscribe(sys, (e) => e.type === 'deny' && e.name === 'held');
    await sys.ok('startwpar', ['held']);
    await denied.event;
    const t0 = performance.now();
    const r = await sys.run('chkptwpar', ['-d', img, '-w', '1', 'held']);
    assert.ok(performance.now() - t0 >= 1000);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^chkptwpar: held: not checkpointed after 1 s \(ETIMEDOUT\): denied by agent:held\/\d+ "writing batch 12" since \d\d:\d\d:\d\d\n$/);
    const w = await sys.wpar('held');
    assert.equal(w.state, 'A');
    assert.equal(w.phase, 'normal');
    assert.equal(existsSync(join(img, 'image.tar')), false);

    const holder = processesOf('held', sys.home).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === HOLDER);
    process.kill(holder!, 'SIGUSR1');
    await waitForOutput(sys, 'held', /allowed/);
    await sys.ok('chkptwpar', ['-d', img, '-w', '5', 'held']);
    assert.ok(existsSync(join(img, 'image.tar')));
    assert.equal((await sys.wpar('held')).state, 'A', 'still running after the checkpoint');
  } finally {
    rmSync(img, { recursive: true, force: true });
  }
});

test('a damaged image (one byte flipped anywhere, or cut short) is refused and creates nothing', async () => {
  await using a = await System.start();
  await using b = await System.start();
  await trust(b, a);
  const img = imageDir();
  try {
    await a.ok('mkwpar', ['-n', 'src', '-c', '-s', '--', 'sh', '-c', 'head -c 200000 /dev/urandom > data.bin; echo hi > note.txt; echo ready; exec sleep 300']);
    await waitForOutput(a, 'src', /ready/); // a follow starts with the log so far
    await a.ok('chkptwpar', ['-d', img, '-k', 'src']);
    const pristine = readFileSync(join(img, 'image.tar'));
    const bad = imageDir();
    try {
      const damaged: [string, Buffer][] = [];
      for (const at of [0, 100, 511, 512, 700, Math.floor(pristine.length / 2), pristine.length - 600, pristine.length - 1]) {
        const copy = Buffer.from(pristine);
        copy[at] = copy[at]! ^ 0x01;
        damaged.push([`flip@${at}`, copy]);
      }
      for (const cut of [1, 512, pristine.length - 1]) damaged.push([`cut@${cut}`, pristine.subarray(0, pristine.length - cut)]);
      for (const [what, bytes] of damaged) {
        writeFileSync(join(bad, 'image.tar'), bytes);
        const r = await b.run('restartwpar', ['-d', bad, 'src']);
        assert.notEqual(r.code, 0, what);
        assert.match(r.stderr, /^restartwpar: src: .*\((EINVAL|ENOENT)\)\n$/, `${what}: ${r.stderr}`);
      }
      assert.deepEqual(await b.list(), [], 'nothing created');
      assert.equal(existsSync(join(b.home, 'wpars', 'src')), false, 'no half-made root');
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
    await b.ok('restartwpar', ['-d', img, 'src']);
    assert.equal(readFileSync(join((await b.wpar('src')).root, 'note.txt'), 'utf8'), 'hi\n', 'the pristine image restores');
  } finally {
    rmSync(img, { recursive: true, force: true });
  }
});

test('restart under a name that exists: EEXIST, nothing changed', async () => {
  await using sys = await System.start();
  const img = imageDir();
  try {
    await sys.ok('mkwpar', ['-n', 'dup', '-c', '-s', '--', 'sleep', '300']);
    await sys.ok('chkptwpar', ['-d', img, 'dup']);
    const before = await sys.list();
    const r = await sys.run('restartwpar', ['-d', img, 'dup']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /dup.*EEXIST/);
    const after = await sys.list();
    assert.deepEqual(after.map((w) => [w.name, w.state, w.cid]), before.map((w) => [w.name, w.state, w.cid]));
  } finally {
    rmSync(img, { recursive: true, force: true });
  }
});

/** A WPAR with a root large enough that writing its image takes a while. */
async function bigWpar(sys: System, name: string): Promise<void> {
  await sys.ok('mkwpar', ['-n', name, '-c', '--', 'sleep', '300']);
  const root = (await sys.wpar(name)).root;
  const chunk = Buffer.alloc(8 << 20, 7);
  for (let i = 0; i < 40; i++) writeFileSync(join(root, `blob-${i}`), chunk);
  await sys.ok('startwpar', [name]);
}

/** Resolves once a temporary image file appears in `dir` (the write is under way). */
function writeStarted(dir: string): Promise<void> {
  return new Promise((done) => {
    const w = watch(dir, () => { if (readdirSync(dir).some((f) => f.endsWith('.tmp'))) { w.close(); done(); } });
  });
}

test('chkptwpar killed mid-write: no image accepted, an earlier image intact, the WPAR running and thawed', async () => {
  await using sys = await System.start();
  const earlier = imageDir();
  const img = imageDir();
  try {
    await bigWpar(sys, 'big');
    await sys.ok('chkptwpar', ['-d', earlier, 'big']);
    const started = writeStarted(img);
    const failed = await subscribe(sys, (e) => e.type === 'checkpoint.failed' && e.name === 'big');
    const child = spawn(process.execPath, [join(ROOT, 'dist/cli/bin/chkptwpar.js'), '--home', sys.home, '-d', img, 'big'], { stdio: 'ignore' });
    await started;
    child.kill('SIGKILL');
    await failed.event;
    assert.equal(existsSync(join(img, 'image.tar')), false);
    assert.deepEqual(readdirSync(img), [], 'the temporary file is removed');
    const w = await sys.wpar('big');
    assert.equal(w.state, 'A');
    assert.equal(w.phase, 'normal');
    await using other = await System.start();
    await trust(other, sys);
    await other.ok('restartwpar', ['-d', earlier, 'big']);
  } finally {
    rmSync(earlier, { recursive: true, force: true });
    rmSync(img, { recursive: true, force: true });
  }
});

test('the daemon killed mid-write: no image accepted, an earlier image intact, the frozen WPAR adopted and thawed at restart', async () => {
  const first = await System.start();
  const earlier = imageDir();
  const img = imageDir();
  try {
    await bigWpar(first, 'big');
    await first.ok('chkptwpar', ['-d', earlier, 'big']);
    const started = writeStarted(img);
    const child = spawn(process.execPath, [join(ROOT, 'dist/cli/bin/chkptwpar.js'), '--home', first.home, '-d', img, 'big'], { stdio: 'ignore' });
    await started;
    await first.crash();
    child.kill('SIGKILL');
    const pids = processesOf('big', first.home);
    await using second = await System.start({ home: first.home });
    // R7: adopted, the same processes, no longer frozen.
    const w = await second.wpar('big');
    assert.equal(w.state, 'A');
    assert.equal(w.phase, 'normal');
    assert.deepEqual(processesOf('big', second.home).sort(), pids.sort(), 'the same processes');
    assert.deepEqual(pids.filter((pid) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('D')), [], 'none left frozen');
    assert.equal(existsSync(join(img, 'image.tar')), false);
    await using other = await System.start();
    await trust(other, second);
    await other.ok('restartwpar', ['-d', earlier, 'big']);
    // The next write into the interrupted directory succeeds and cleans up the stale temporary file.
    await second.ok('chkptwpar', ['-d', img, 'big']);
    assert.deepEqual(readdirSync(img), ['image.tar']);
  } finally {
    rmSync(earlier, { recursive: true, force: true });
    rmSync(img, { recursive: true, force: true });
  }
});
