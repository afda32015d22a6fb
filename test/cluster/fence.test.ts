// The fencing watchdog (C4) on its own: its deadline arithmetic with an injected clock, and the real
// bash program driven over its pipe with short deadlines — it kills what it was given after the
// deadline and not before, a feed moves the deadline, `stop` and a wrong start time kill nothing,
// and a closed pipe (the daemon died) still fences.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { BASH, bootMs, Fence, FENCE_WATCHDOG, fenceDeadlineCs, fencedReason } from '../../src/cluster/fence.ts';
import type { Journal } from '../../src/daemon/journal.ts';
import type { WparManager } from '../../src/daemon/wpars.ts';
import type { Isolation } from '../../src/runtime/isolation.ts';
import { readStat } from '../../src/runtime/proc.ts';

describe('fenceDeadlineCs', () => {
  it('is the send time plus fence-after, on the monotonic clock, rounded down', () => {
    // Sent at wall 10_000, acknowledged at wall 10_180 (180 ms later), when the boot clock reads 5_000.
    assert.equal(fenceDeadlineCs(10_000, 10_180, 5_000, 1_500), Math.floor((5_000 - 180 + 1_500) / 10));
    assert.equal(fenceDeadlineCs(10_000, 10_000, 5_005, 1_004), 600); // 6009 ms → 600 cs, never later
  });
  it('a daemon paused after the acknowledgement gets an earlier deadline, never a later one', () => {
    // The boot clock is read first; a pause of 4 s before the wall clock is read shortens the time left.
    const prompt = fenceDeadlineCs(10_000, 10_100, 5_000, 2_000);
    const paused = fenceDeadlineCs(10_000, 14_100, 5_000, 2_000);
    assert.ok(paused < prompt);
  });
  it('a wall clock set back counts as no time elapsed', () => {
    assert.equal(fenceDeadlineCs(10_000, 9_000, 5_000, 1_000), 600);
  });
  it('the reason names the unrenewed time', () => {
    assert.match(fencedReason({ renewedAgoMs: 1520 }), /^fenced: lease not renewed for 1\.5 s/);
  });
});

/** A victim: `sleep 600` in a process group of its own (as a WPAR's main process is). */
function victim(): { child: ChildProcess; spec: string; exited: Promise<number> } {
  const child = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
  const exited = once(child, 'exit').then(() => Date.now());
  const st = readStat(child.pid!);
  assert.ok(st);
  return { child, spec: `pgrp:${child.pid}:${st.startTime}`, exited };
}

/** The watchdog with a deadline `inMs` from now; its stdout lines collected. */
function watchdog(dir: string, inMs: number, afterMs = inMs): { dog: ChildProcess; lines: string[]; exited: Promise<number> } {
  const deadline = Math.floor((bootMs() + inMs) / 10);
  const dog = spawn(BASH, [FENCE_WATCHDOG, dir, String(Math.floor(afterMs / 10)), String(deadline)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  createInterface({ input: dog.stdout! }).on('line', (l) => lines.push(l));
  const exited = once(dog, 'exit').then(() => Date.now());
  return { dog, lines, exited };
}

describe('fence-watchdog.sh', { timeout: 30_000 }, () => {
  let dir: string;
  const victims: ChildProcess[] = [];
  before(() => { dir = mkdtempSync(join(tmpdir(), 'corral-fence-')); });
  after(() => {
    for (const v of victims) if (v.exitCode === null && v.signalCode === null) v.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('kills what it was given once the deadline passes, not before; writes a marker first; says so; exits', async () => {
    const v = victim(); victims.push(v.child);
    const t0 = Date.now();
    const w = watchdog(join(dir), 400);
    w.dog.stdin!.write(`add job ${v.spec}\n`);
    const killedAt = await v.exited;
    await w.exited;
    assert.ok(killedAt - t0 >= 390, `killed after ${killedAt - t0} ms, before its deadline`);
    assert.ok(killedAt - t0 < 1400, `killed after ${killedAt - t0} ms`);
    assert.equal(v.child.signalCode, 'SIGKILL');
    assert.deepEqual(w.lines, [`fenced job ${w.lines[0]!.split(' ')[2]}`, 'done']);
    const marker = JSON.parse(readFileSync(join(dir, 'job'), 'utf8')) as { name: string; renewedAgoMs: number };
    assert.equal(marker.name, 'job');
    assert.ok(marker.renewedAgoMs >= 390 && marker.renewedAgoMs < 1400, String(marker.renewedAgoMs));
    rmSync(join(dir, 'job'));
  });

  it('a feed moves the deadline; del forgets a WPAR', async () => {
    const v = victim(); const gone = victim(); victims.push(v.child, gone.child);
    const t0 = Date.now();
    const w = watchdog(dir, 300);
    w.dog.stdin!.write(`add job ${v.spec}\nadd old ${gone.spec}\ndel old\n`);
    w.dog.stdin!.write(`feed ${Math.floor((bootMs() + 900) / 10)}\n`);
    const killedAt = await v.exited;
    assert.ok(killedAt - t0 >= 880, `killed after ${killedAt - t0} ms: the feed did not move the deadline`);
    await w.exited;
    assert.equal(gone.child.exitCode, null, 'a removed WPAR is not killed');
    assert.equal(gone.child.signalCode, null);
    assert.deepEqual(readdirSync(dir), ['job']);
    rmSync(join(dir, 'job'));
  });

  it('stop: exits at once and kills nothing', async () => {
    const v = victim(); victims.push(v.child);
    const w = watchdog(dir, 300);
    w.dog.stdin!.write(`add job ${v.spec}\nstop\n`);
    await w.exited;
    assert.equal(w.dog.exitCode, 0);
    assert.deepEqual(w.lines, []);
    assert.deepEqual(readdirSync(dir), []);
    assert.ok(readStat(v.child.pid!) !== null, 'still running');
  });

  it('the pipe closed (the daemon died): it keeps its deadline and fences', async () => {
    const v = victim(); victims.push(v.child);
    const t0 = Date.now();
    const w = watchdog(dir, 400);
    w.dog.stdin!.end(`add job ${v.spec}\n`);
    const killedAt = await v.exited;
    assert.ok(killedAt - t0 >= 390 && killedAt - t0 < 1400, `killed after ${killedAt - t0} ms`);
    await w.exited;
    rmSync(join(dir, 'job'));
  });

  it('a process whose start time is not the one given (a reused pid) is not killed', async () => {
    const v = victim(); victims.push(v.child);
    const w = watchdog(dir, 200);
    const [, pid, start] = v.spec.split(':');
    w.dog.stdin!.write(`add job pgrp:${pid}:${Number(start) + 1} pid:${pid}:${Number(start) + 1}\n`);
    await w.exited;
    assert.ok(readStat(v.child.pid!) !== null, 'still running');
    rmSync(join(dir, 'job'));
  });
});

describe('Fence (the daemon side)', { timeout: 30_000 }, () => {
  let run: string;
  const victims: ChildProcess[] = [];
  before(() => { run = mkdtempSync(join(tmpdir(), 'corral-fence-run-')); });
  after(() => {
    for (const v of victims) if (v.exitCode === null && v.signalCode === null) v.kill('SIGKILL');
    rmSync(run, { recursive: true, force: true });
  });

  /** A Fence over a fake manager and journal: `wpars` maps names to their main pid and failover flag. */
  function fence(wpars: Map<string, { pid: number | null; failover: boolean }>, fenceAfterMs: number) {
    const followers = new Set<(e: { type: string; time: number; name?: string }) => void>();
    const recorded: Record<string, unknown>[] = [];
    const logged: string[] = [];
    const journal = {
      follow: (f: (e: { type: string; time: number }) => void) => { followers.add(f); return () => followers.delete(f); },
      record: (e: Record<string, unknown>) => { recorded.push(e); },
    };
    const manager = {
      has: (n: string) => wpars.has(n),
      info: (n: string) => ({ pid: wpars.get(n)!.pid, definition: { failover: wpars.get(n)!.failover || undefined } }),
    };
    const f = new Fence({
      runDir: run, cgroupParent: 'corral/test', isolation: { cgroup: null, seal: null } as unknown as Isolation,
      manager: manager as unknown as WparManager, journal: journal as unknown as Journal, host: 'alpha', fenceAfterMs, lost: () => false, log: (l) => logged.push(l),
    });
    const emit = (type: string, name: string): void => { for (const x of followers) x({ type, time: Date.now(), name }); };
    return { f, emit, recorded, logged };
  }

  it('guards started failover WPARs only; fences them past the deadline; reports once; refuses starts until renewed', async () => {
    const fo = victim(); const plain = victim(); victims.push(fo.child, plain.child);
    const wpars = new Map([['fo', { pid: fo.child.pid!, failover: true }], ['plain', { pid: plain.child.pid!, failover: false }]]);
    const { f, emit, recorded } = fence(wpars, 600);
    const t0 = Date.now();
    f.start(t0);
    assert.ok(f.guarding);
    assert.match(readFileSync(join(run, 'fence.pid'), 'latin1'), /^\d+ \d+\n$/);
    emit('runtime.started', 'fo');
    emit('runtime.started', 'plain');
    const killedAt = await fo.exited;
    assert.ok(killedAt - t0 >= 590 && killedAt - t0 < 1600, `fenced after ${killedAt - t0} ms`);
    assert.ok(readStat(plain.child.pid!) !== null, 'not a failover WPAR: not touched');
    const end = Date.now() + 5000;
    while (f.guarding || recorded.length === 0) {
      assert.ok(Date.now() < end, 'the watchdog did not exit and report within 5 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(recorded.map((e) => [e.type, e.name, e.host]), [['cluster.fenced', 'fo', 'alpha']]);
    assert.match(f.endedBy('fo') ?? '', /^fenced: lease not renewed for 0\.[5-9] s|^fenced: lease not renewed for 1\.\d s/);
    assert.equal(f.endedBy('plain'), undefined);
    assert.deepEqual(f.fencedNames(), ['fo']);
    assert.throws(() => f.admit('fo'), /fo: a --failover WPAR starts only while this host holds its lease.*/);
    f.admit('plain'); // without --failover: always
    f.reportEarlier();
    assert.equal(recorded.length, 1, 'reported once');
    // The lease renewed: a new watchdog; a new start of the WPAR clears its marker.
    f.renewed(Date.now());
    assert.ok(f.guarding);
    f.admit('fo');
    const again = victim(); victims.push(again.child);
    wpars.set('fo', { pid: again.child.pid!, failover: true });
    emit('runtime.started', 'fo');
    assert.deepEqual(f.fencedNames(), []);
    // A clean stop: nothing fenced, the pid file gone.
    await f.stop();
    assert.ok(!f.guarding);
    assert.ok(readStat(again.child.pid!) !== null);
    assert.throws(() => readFileSync(join(run, 'fence.pid')), /ENOENT/);
  });

  it('a restarted daemon retires the watchdog its predecessor left (checked by pid and start time)', async () => {
    const { f: first } = fence(new Map(), 20_000);
    first.start(Date.now());
    const oldPid = Number(readFileSync(join(run, 'fence.pid'), 'latin1').split(' ')[0]);
    const { f: second, logged } = fence(new Map(), 20_000);
    second.start(Date.now()); // the first daemon "died": its watchdog runs on
    assert.ok(readStat(oldPid) !== null);
    second.retireOld();
    const end = Date.now() + 5000;
    while (first.guarding) {
      assert.ok(Date.now() < end, 'the old watchdog still runs');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(logged.join('\n'), new RegExp(`retired the watchdog \\(pid ${oldPid}\\)`));
    assert.ok(second.guarding);
    await second.stop();
    await first.stop();
  });
});
