// R7: a restarted daemon adopts the WPARs that kept running (issue 11 item 2), end to end: a real
// wpard SIGKILLed and started again on the same home, driven by the real commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HomeLayout } from '../../src/daemon/home.ts';
import { recordPendingKill } from '../../src/daemon/pending-kill.ts';
import { processesOf, ROOT, System, waitForOutput } from './harness.ts';

const ADOPTEE = join(import.meta.dirname, 'fixtures/adoptee.ts');
const asRoot = process.getuid?.() === 0;
const TICKER = 'trap "echo bye; exit 7" TERM; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done';

/** Resolves once `check()` is true, looking again on every change in `dir`; fails after `ms`. */
function until(dir: string, check: () => boolean, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (check()) return resolve();
    const watcher = watch(dir, () => { if (check()) done(); });
    const timer = setTimeout(() => done(new Error(`gave up after ${ms} ms waiting for ${what}`)), ms);
    const tick = setInterval(() => { if (check()) done(); }, 100); // a change fs.watch coalesced away
    function done(err?: Error): void {
      watcher.close();
      clearTimeout(timer);
      clearInterval(tick);
      if (err) reject(err); else resolve();
    }
  });
}

/**
 * Whatever happened: a daemon on the home stops what runs there (adopting it first) and removes its
 * cgroups, then the home goes. A crashed daemon's WPARs would otherwise outlive a failed test.
 */
async function cleanUp(first: System): Promise<void> {
  if (live(first.pid)) await first.stop();
  const last = await System.start({ home: first.home }).catch(() => null);
  await last?.[Symbol.asyncDispose]();
  rmSync(first.home, { recursive: true, force: true });
}

function lastTick(text: string): number {
  const all = [...text.matchAll(/^tick (\d+)$/gm)];
  return all.length === 0 ? 0 : Number(all.at(-1)![1]);
}

function live(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

function parentOf(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
  } catch {
    return 0;
  }
}

function command(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

function freezerState(cgroupPath: string): string {
  return readFileSync(join('/sys/fs/cgroup/freezer', cgroupPath, 'freezer.state'), 'utf8').trim();
}

test('SIGKILL of the daemon with three WPARs running (one mid-checkpoint): the next daemon adopts them all', { skip: !asRoot && 'needs root (sealed WPARs)', timeout: 120_000 }, async () => {
  const first = await System.start();
  const layout = new HomeLayout(first.home);
  let chkpt: ReturnType<typeof spawn> | undefined;
  try {
    await first.ok('mkwpar', ['-n', 'ticker', '-A', '--', 'sh', '-c', TICKER]);
    await first.ok('mkwpar', ['-n', 'agent', '--', process.execPath, ADOPTEE]);
    await first.ok('mkwpar', ['-n', 'ckpt', '-c', '--', process.execPath, ADOPTEE, 'hold']);
    for (const name of ['ticker', 'agent', 'ckpt']) await first.ok('startwpar', [name]);
    await waitForOutput(first, 'ticker', /tick 2\n/);
    await waitForOutput(first, 'agent', /ready/);
    await waitForOutput(first, 'ckpt', /ready/);
    // A checkpoint in flight: TRY granted, the participant's save never answers.
    chkpt = spawn(process.execPath, [join(ROOT, 'dist/cli/bin/chkptwpar.js'), '--home', first.home, '-d', join(first.home, 'img'), 'ckpt'], { stdio: 'ignore' });
    await waitForOutput(first, 'ckpt', /saving/);
    // Every process but the ticker's short-lived children (a sleep, or the shell's fork before it
    // execs sleep, whose command line is still the shell's): the children of a `sh` of the WPAR.
    const lasting = (name: string): number[] => {
      const pids = processesOf(name, first.home);
      const shells = new Set(pids.filter((pid) => command(pid).startsWith('sh\0')));
      return pids.filter((pid) => !command(pid).startsWith('sleep\0') && !shells.has(parentOf(pid)));
    };
    const before = Object.fromEntries((await first.list()).map((w) => [w.name, { pid: w.pid!, cid: w.cid!, all: lasting(w.name) }]));
    assert.equal((await first.wpar('ckpt')).state, 'T', 'mid-checkpoint when the daemon dies');

    await first.crash();
    chkpt.kill('SIGKILL');
    // As if it had died after the freeze (R4.3): the next daemon must thaw it.
    const ckptCgroup = `${layout.cgroupParent}/ckpt`;
    writeFileSync(join('/sys/fs/cgroup/freezer', ckptCgroup, 'freezer.state'), 'FROZEN');
    await until(join('/sys/fs/cgroup/freezer', ckptCgroup), () => freezerState(ckptCgroup) === 'FROZEN', 10_000, 'ckpt to freeze');
    // Output goes on while no daemon runs (no SIGPIPE: nothing of it went through the daemon).
    const log = layout.consoleLog('ticker');
    const atCrash = lastTick(readFileSync(log, 'utf8'));
    await until(layout.wparDir('ticker'), () => lastTick(readFileSync(log, 'utf8')) >= atCrash + 3, 10_000, 'ticks while the daemon is down');
    const whileDown = lastTick(readFileSync(log, 'utf8'));

    await using second = await System.start({ home: first.home });
    assert.match(second.log, /recovered after an unexpected stop: 3 WPAR\(s\) were active \(agent, ckpt, ticker\): adopted 3, ended meanwhile 0, could not adopt 0/);
    const after = Object.fromEntries((await second.list()).map((w) => [w.name, w]));
    for (const name of ['ticker', 'agent', 'ckpt']) {
      assert.equal(after[name]!.state, 'A', `${name} is active again`);
      assert.equal(after[name]!.pid, before[name]!.pid, `${name}: the same outer bwrap`);
      assert.equal(after[name]!.cid, before[name]!.cid, `${name}: the same cid`);
      assert.deepEqual(before[name]!.all.filter((pid) => !live(pid)), [], `${name}: every process still runs`);
    }
    assert.equal(after.ckpt!.phase, 'normal', 'no checkpoint left over');
    assert.equal(freezerState(ckptCgroup), 'THAWED', 'the frozen WPAR is thawed');

    // What was written while the daemon was down is in the log, and output carries on.
    const logs = await second.ok('wpar', ['logs', 'ticker']);
    assert.match(logs, new RegExp(`^tick ${whileDown}$`, 'm'));
    await waitForOutput(second, 'ticker', new RegExp(`tick ${whileDown + 5}\n`));

    // The agent reaches the new daemon through the socket re-opened in the same directory.
    const node = before.agent!.all.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === ADOPTEE)!;
    process.kill(node, 'SIGUSR2');
    await waitForOutput(second, 'agent', /denied|deny failed/);
    assert.doesNotMatch(await second.ok('wpar', ['logs', 'agent']), /deny failed/);
    const denials = (await second.wpar('agent')).denials;
    assert.deepEqual(denials.map((d) => d.reason), ['after restart']);
    const refused = await second.run('chkptwpar', ['-d', join(second.home, 'img2'), '-w', '0', 'agent']);
    assert.notEqual(refused.code, 0, 'the denial holds a checkpoint off');

    // The adopted WPAR is fully managed: checkpointed (freeze and thaw), stopped, its exit recorded.
    await second.ok('stopwpar', ['ticker']);
    const stopped = await second.wpar('ticker');
    assert.equal(stopped.state, 'D');
    assert.equal(stopped.lastExit!.code, 7, 'the exit status, from bwrap\'s status file');
    assert.match(stopped.lastExit!.reason, /stopped by stopwpar/);
    assert.deepEqual(before.ticker!.all.filter(live), [], 'no process of it survives');
    assert.match(await second.ok('wpar', ['logs', 'ticker']), /bye\n$/);
  } finally {
    chkpt?.kill('SIGKILL');
    await cleanUp(first);
  }
});

test('a WPAR that exited while the daemon was down is recorded with its exit status; one killed, as killed', { skip: !asRoot && 'needs root (sealed WPARs)', timeout: 60_000 }, async () => {
  const first = await System.start();
  try {
    await exitedWhileDown(first);
  } finally {
    await cleanUp(first);
  }
});

async function exitedWhileDown(first: System): Promise<void> {
  const layout = new HomeLayout(first.home);
  await first.ok('mkwpar', ['-n', 'quits', '--', 'sh', '-c', 'echo up; while [ ! -e done ]; do sleep 0.05; done; exit 5']);
  await first.ok('mkwpar', ['-n', 'killed', '--', 'sleep', '300']);
  await first.ok('startwpar', ['quits']);
  await first.ok('startwpar', ['killed']);
  await waitForOutput(first, 'quits', /up/);
  const sleeping = (): number | undefined => processesOf('killed', first.home).find((pid) => command(pid).startsWith('sleep\0'));
  await until('/proc', () => sleeping() !== undefined, 10_000, 'the sleep of "killed" to run');
  const pids = { quits: processesOf('quits', first.home), killed: processesOf('killed', first.home) };
  const cids = Object.fromEntries((await first.list()).map((w) => [w.name, w.cid!]));
  await first.crash();
  writeFileSync(join(layout.root('quits'), 'done'), '');
  process.kill(sleeping()!, 'SIGKILL');
  for (const name of ['quits', 'killed'] as const) {
    await until('/proc', () => pids[name].every((pid) => !live(pid)), 10_000, `${name} to end`);
  }
  await using second = await System.start({ home: first.home });
  assert.match(second.log, /adopted 0, ended meanwhile 2, could not adopt 0/);
  const quits = await second.wpar('quits');
  assert.equal(quits.state, 'D');
  assert.equal(quits.lastExit!.code, 5);
  assert.match(quits.lastExit!.reason, /exited with status 5 while the daemon was down/);
  const killed = await second.wpar('killed');
  assert.equal(killed.state, 'B');
  assert.equal(killed.lastExit!.signal, 'SIGKILL');
  assert.match(killed.lastExit!.reason, /killed by SIGKILL while the daemon was down/);
  assert.equal(existsSync(join('/sys/fs/cgroup/pids', layout.cgroupParent, 'quits')), false, 'its cgroup is removed');
  for (const name of ['quits', 'killed']) assert.equal(existsSync(layout.agentDir(cids[name]!)), false, `${name}: its agent directory is removed`);
  // It starts again as usual.
  await second.ok('startwpar', ['killed']);
  assert.equal((await second.wpar('killed')).state, 'A');
}

test('a WPAR whose chkptwpar -k had completed its image when the daemon died is stopped by the next daemon, never thawed', { skip: !asRoot && 'needs root (sealed WPARs)', timeout: 60_000 }, async () => {
  const first = await System.start();
  try {
    const layout = new HomeLayout(first.home);
    await first.ok('mkwpar', ['-n', 'saved', '-c', '-s', '--', 'sleep', '300']);
    const pids = processesOf('saved', first.home);
    assert.ok(pids.length > 0);
    await first.crash();
    // As if it had died between the image and the stop of `chkptwpar -k`: frozen, the record written.
    const cgroup = `${layout.cgroupParent}/saved`;
    writeFileSync(join('/sys/fs/cgroup/freezer', cgroup, 'freezer.state'), 'FROZEN');
    await until(join('/sys/fs/cgroup/freezer', cgroup), () => freezerState(cgroup) === 'FROZEN', 10_000, 'saved to freeze');
    recordPendingKill(layout, 'saved', '/srv/images/saved');
    await using second = await System.start({ home: first.home });
    const w = await second.wpar('saved');
    assert.deepEqual([w.state, w.pid], ['D', null]);
    assert.match(w.lastExit!.reason, /stopped after checkpoint \(chkptwpar -k into \/srv\/images\/saved\): the image was complete when the daemon stopped/);
    await until('/proc', () => pids.every((pid) => !live(pid)), 10_000, 'its processes to be gone');
    assert.equal(existsSync(layout.pendingKill('saved')), false, 'the record is removed');
    await second.ok('startwpar', ['saved']);
    assert.equal((await second.wpar('saved')).state, 'A', 'it starts again as usual');
    // A record left by a -k whose stop failed belongs to that run: a new start drops it, so a later
    // crash does not stop the new run.
    await second.ok('stopwpar', ['saved']);
    recordPendingKill(layout, 'saved', '/srv/images/saved');
    await second.ok('startwpar', ['saved']);
    assert.equal(existsSync(layout.pendingKill('saved')), false, 'a new run drops an old record');
  } finally {
    await cleanUp(first);
  }
});

test('an adoption is an activation: WPARSTART callouts see it with the same cid, and one that refuses gets the WPAR stopped and reported', { skip: !asRoot && 'needs root (sealed WPARs)', timeout: 60_000 }, async () => {
  const first = await System.start();
  try {
    await first.ok('mkwpar', ['-n', 'kept', '-s', '--', 'sleep', '300']);
    await first.ok('mkwpar', ['-n', 'refused', '-s', '--', 'sleep', '300']);
    const before = Object.fromEntries((await first.list()).map((w) => [w.name, { pid: w.pid!, cid: w.cid!, all: processesOf(w.name, first.home) }]));
    await first.crash();
    await using second = await System.start({ home: first.home, extensions: [join(import.meta.dirname, 'fixtures/refuse-extension.ts')] });
    assert.match(second.log, /adopted 1, ended meanwhile 0, could not adopt 1 \(refused: .*WPARSTART callout.*not on this system/);
    const seen = readFileSync(join(second.home, 'refuse.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { name: string; cid: number });
    assert.deepEqual(seen.sort((a, b) => a.name.localeCompare(b.name)), [{ name: 'kept', cid: before.kept!.cid }, { name: 'refused', cid: before.refused!.cid }]);
    const kept = await second.wpar('kept');
    assert.equal(kept.state, 'A');
    assert.equal(kept.pid, before.kept!.pid);
    const refused = await second.wpar('refused');
    assert.equal(refused.state, 'B');
    assert.match(refused.lastExit!.reason, /could not be adopted .*not on this system.*stopped at restart/);
    assert.deepEqual(before.refused!.all.filter(live), [], 'its processes are stopped');
    assert.deepEqual(before.kept!.all.filter((pid) => !live(pid)), [], 'the adopted one is untouched');
  } finally {
    await cleanUp(first);
  }
});

test('adopted twice: a daemon that adopted a WPAR records it so the next one adopts it again', { skip: !asRoot && 'needs root (sealed WPARs)', timeout: 60_000 }, async () => {
  const first = await System.start();
  try {
    await first.ok('mkwpar', ['-n', 'again', '-s', '--', 'sleep', '300']);
    const { pid, cid } = await first.wpar('again');
    await first.crash();
    const second = await System.start({ home: first.home });
    assert.match(second.log, /adopted 1/);
    await second.crash();
    await using third = await System.start({ home: first.home });
    assert.match(third.log, /adopted 1/);
    const w = await third.wpar('again');
    assert.deepEqual([w.state, w.pid, w.cid], ['A', pid, cid]);
    await third.ok('stopwpar', ['again']);
    assert.equal((await third.wpar('again')).lastExit!.signal, 'SIGTERM');
  } finally {
    await cleanUp(first);
  }
});

test('the console log a WPAR writes itself stays bounded (copy and truncate), and wpar logs -f follows across it', { skip: !asRoot && 'needs root (sealed WPARs)', timeout: 60_000 }, async () => {
  await using sys = await System.start();
  const layout = new HomeLayout(sys.home);
  await sys.ok('mkwpar', ['-n', 'chatty', '--', 'sh', '-c', 'read go < go; for i in $(seq 1 60); do seq 100000 110000; sleep 0.01; done; echo end; exec sleep 300']);
  // The program waits for the follower: it writes 4.2 MB, past the default 3 x 1 MiB.
  execFileSync('mkfifo', ['-m', '0666', join(layout.root('chatty'), 'go')]);
  await sys.ok('startwpar', ['chatty']);
  const following = waitForOutput(sys, 'chatty', /^end$/m);
  writeFileSync(join(layout.root('chatty'), 'go'), 'go\n');
  const followed = await following;
  assert.match(followed, /^110000\nend\n$/m, 'the follower reached the end');
  const sizes = ['', '.1', '.2'].map((suffix) => (existsSync(layout.consoleLog('chatty') + suffix) ? statSync(layout.consoleLog('chatty') + suffix).size : 0));
  assert.ok(sizes[2]! > 0, 'rotated twice at least');
  assert.ok(sizes.reduce((a, b) => a + b) < 3 * 1024 * 1024 + 512 * 1024, `bounded: ${sizes.join(' + ')} bytes`);
  assert.equal(existsSync(layout.consoleLog('chatty') + '.3'), false);
  assert.match(await sys.ok('wpar', ['logs', 'chatty']), /end\n$/);
});
