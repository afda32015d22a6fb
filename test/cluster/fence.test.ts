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
import { BASH, bootMs, FENCE_WATCHDOG, fenceDeadlineCs, fencedReason } from '../../src/cluster/fence.ts';
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
