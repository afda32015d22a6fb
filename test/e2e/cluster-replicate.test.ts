// Scheduled, replicated checkpoints (C5) and failover (C6) on real etcd and three test hosts:
// checkpoints happen on schedule without stopping the WPAR, a denial skips one with an event,
// replicas land on N hosts and etcd names them, lswpar -L shows them, two images are kept on each
// host; a lost host's failover WPAR runs on from its newest replica on exactly one other host (agent
// state restored, epoch raised), the old host, back, removes its stale copy; with no replica it is
// shown B with the reason and runs nowhere.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processesOf, ROOT, waitForOutput, type System } from './harness.ts';
import { until, CLUSTER_SKIP, ClusterNet, type ClusterHost } from './cluster-hosts.ts';
import type { WparInfo } from '../../src/daemon/protocol.ts';

const skip = CLUSTER_SKIP;
const COUNTER = join(ROOT, 'examples/agent-counter.ts');
const HOLDER = join(import.meta.dirname, 'fixtures/holder.ts');
const fast = ['-e', 'COUNTER_STEP_MS=10', '-e', 'COUNTER_PAUSE_MS=40', '-e', 'COUNTER_BATCH=5'];
const TTL_S = 3;
/** Running: active, or in one of its scheduled checkpoints (TRY waiting, frozen). */
const RUNNING = new Set(['A', 'T', 'F']);

const sys = (h: ClusterHost): System => ({ home: h.home } as unknown as System);

/** SIGKILLs `pids`; one that is gone already (its pid namespace's init went first) is no error. */
function killAll(pids: readonly number[]): void {
  for (const p of pids) {
    try { process.kill(p, 'SIGKILL'); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; }
  }
}

/** The complete images of `name` kept on `h` (`EPOCH-SEQ`), sorted, and any other entries. */
function images(h: ClusterHost, name: string): string[] {
  try { return readdirSync(join(h.home, 'checkpoints', name)).sort(); } catch { return []; }
}

/** The numbers in `file`: must be 1, 2, 3, ... without a gap or a repeat. */
function counted(file: string): number {
  const n = readFileSync(file, 'utf8').trim().split('\n').map(Number);
  n.forEach((v, i) => assert.equal(v, i + 1, `${file}: line ${i + 1} is ${v}`));
  return n.length;
}

describe('scheduled checkpoints copied to other hosts, and failover', { skip, timeout: 300_000 }, () => {
  const net = new ClusterNet({ prefix: 'crp', subnet: '10.219.0' });
  let a: ClusterHost; let b: ClusterHost; let c: ClusterHost;
  before(async () => {
    [a, b, c] = await net.up(['alpha', 'beta', 'gamma']);
  });
  after(async () => { await net.destroy(); });

  it('checkpoints on schedule without stopping the WPAR, copies each image to N hosts, records them, keeps two', async () => {
    const four = await a.next((e) => e.type === 'cluster.replicated' && e.name === 'job' && e.recorded === true && (e.seq as number) >= 4);
    await a.ok('mkwpar', ['-n', 'job', '-c', '--checkpoint-every', '1', '--replicas', '2', '--host', 'alpha', '-s', ...fast, '--', process.execPath, COUNTER]);
    const pid = (await a.list()).find((w) => w.name === 'job')!.pid;
    const e = await four.event;
    assert.deepEqual(e.hosts, ['beta', 'gamma']);
    assert.deepEqual(e.failed, []);
    // Checkpoints did not stop it (no -k): the same process, active.
    const job = (await b.list()).find((w) => w.name === 'job')!;
    assert.deepEqual([job.host, job.pid], ['alpha', pid]);
    assert.ok(RUNNING.has(job.state), job.state);
    // The record in etcd, as any member's lswpar shows it.
    assert.ok(job.checkpoint, 'lswpar --json shows the last checkpoint');
    assert.deepEqual(job.checkpoint.hosts, ['beta', 'gamma']);
    assert.equal(job.checkpoint.epoch, 1);
    assert.ok(job.checkpoint.seq >= 4 && job.checkpoint.size > 0 && job.checkpoint.ageSec <= 5, JSON.stringify(job.checkpoint));
    const long = await c.ok('lswpar', ['-L', 'job']);
    assert.match(long, /SCHEDULED CHECKPOINTS\nEvery: +1 s\nReplicas wanted: +2\nLast checkpoint: +\S.* \(\d+ s ago\), epoch 1, #\d+, [\d.]+ (KiB|MiB)\nReplicas on: +beta, gamma\n/);
    // Pruning: stop the schedule (the WPAR), then each host keeps exactly its two newest images.
    await a.ok('stopwpar', ['job']);
    const kept = await until('two images on each host, the same two', 15_000, () => {
      const [x, y, z] = [images(a, 'job'), images(b, 'job'), images(c, 'job')];
      return x.length === 2 && JSON.stringify(x) === JSON.stringify(y) && JSON.stringify(y) === JSON.stringify(z) ? x : undefined;
    });
    assert.ok(kept.every((d) => /^1-\d+$/.test(d)), kept.join(','));
    const record = (await a.list()).find((w) => w.name === 'job')!.checkpoint!;
    assert.ok(kept.includes(`1-${record.seq}`), `the recorded replica ${record.seq} is one of those kept (${kept.join(',')})`);
    await a.ok('rmwpar', ['job']);
  });

  it('skips a checkpoint its agent denies, with an event naming the denial, and the WPAR runs on', async () => {
    const skipped = await a.next((e) => e.type === 'checkpoint.skipped' && e.name === 'holder');
    await a.ok('mkwpar', ['-n', 'holder', '-c', '--checkpoint-every', '1', '--host', 'alpha', '-s', '--', process.execPath, HOLDER, 'holding on']);
    const pid = (await a.list()).find((w) => w.name === 'holder')!.pid;
    const e = await skipped.event;
    assert.equal(e.code, 'ETIMEDOUT');
    assert.match(String(e.reason), /not checkpointed after 250 ms \(ETIMEDOUT\): denied by agent:holder/);
    assert.deepEqual((e.denials as { reason: string }[]).map((d) => d.reason), ['holding on']);
    // Tried again at the next tick, skipped again; meanwhile it runs, untouched.
    const again = await a.next((x) => x.type === 'checkpoint.skipped' && x.name === 'holder');
    await again.event;
    const w = (await a.list()).find((x) => x.name === 'holder')!;
    assert.equal(w.pid, pid);
    assert.ok(w.state === 'A' || w.state === 'T', `state ${w.state}: running (T while the next TRY waits)`);
    assert.deepEqual(a.events('runtime.frozen').filter((x) => x.name === 'holder'), [], 'never frozen');
    assert.deepEqual(images(a, 'holder'), [], 'nothing left of the skipped checkpoints');
    await a.ok('rmwpar', ['-F', 'holder']);
  });

  it('a failover WPAR with no replica: shown B with the reason, started nowhere', async () => {
    const none = await a.next((e) => e.type === 'cluster.failover.none' && e.name === 'orphan');
    await c.ok('mkwpar', ['-n', 'orphan', '--failover', '--host', 'gamma', '-s', '--', 'sleep', '600']);
    const procs = processesOf('orphan', c.home);
    assert.ok(procs.length > 0);
    await c.kill();
    killAll(processesOf('orphan', c.home));
    c.link(false);
    await none.event;
    const w = await until('orphan listed B', 10_000, async () => (await a.list()).find((x) => x.name === 'orphan' && x.state === 'B'));
    assert.equal(w.host, 'gamma');
    assert.equal(w.lastExit?.reason, 'lost with host gamma; no replica');
    assert.deepEqual([...processesOf('orphan', a.home), ...processesOf('orphan', b.home), ...processesOf('orphan', c.home)], []);
    assert.equal((await b.list()).filter((x) => x.name === 'orphan').length, 1, 'listed once');
    // Removed from the cluster only with -F (its host is lost); gone from every list.
    const plain = await a.run('rmwpar', ['orphan']);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /its host gamma is lost; rmwpar -F removes it/);
    await a.ok('rmwpar', ['-F', 'orphan']);
    assert.deepEqual((await b.list()).filter((x) => x.name === 'orphan'), []);
  });

  it('a lost host\'s failover WPAR runs on from its newest replica on another host; the old host, back, removes its copy', async () => {
    // gamma is lost (the test before): the replica goes to beta, the only other up host.
    const replicated = await a.next((e) => e.type === 'cluster.replicated' && e.name === 'ha' && e.recorded === true && (e.seq as number) >= 2);
    await a.ok('mkwpar', ['-n', 'ha', '-c', '--failover', '--checkpoint-every', '1', '--host', 'alpha', '-s', ...fast, '--', process.execPath, COUNTER]);
    assert.deepEqual((await replicated.event).hosts, ['beta']);
    const failedOver = await b.next((e) => e.type === 'cluster.failover' && e.name === 'ha');
    // Crash alpha: its daemon and the WPAR's processes (the fencing watchdog's job, not tested here), its link cut.
    const killedAt = Date.now();
    await a.kill();
    killAll(processesOf('ha', a.home));
    a.link(false);
    const e = await failedOver.event;
    const recoveredMs = (e.recoveredAt as number) - killedAt;
    assert.equal(e.from, 'alpha');
    assert.equal(e.to, 'beta');
    assert.equal(e.epoch, 2);
    // Lease TTL + its margin + the restart, with room for a loaded machine.
    assert.ok(recoveredMs < TTL_S * 1000 + 1000 + 8000, `recovered ${recoveredMs} ms after the crash (restart ${String(e.ms)} ms)`);
    const w = (await b.list()).find((x) => x.name === 'ha')!;
    assert.deepEqual([w.host, w.epoch], ['beta', 2]);
    assert.ok(RUNNING.has(w.state) && w.phase !== 'restarting', `running, RESTART_CLEAR done (${w.state}, ${String(w.phase)})`);
    // Agent state restored from the replica (R5) and the count goes on without a gap or repeat.
    const log = await waitForOutput(sys(b), 'ha', /starting after (\d+)[\s\S]*batch \d+ written/);
    const after = Number(/starting after (\d+)/.exec(log)![1]);
    assert.ok(after > 0, 'it continued from a saved count');
    assert.ok(readFileSync(`/proc/${w.pid}/environ`, 'latin1').split('\0').includes('WPAR_EPOCH=2'), 'its processes get the new epoch');
    await until('the count going on past the replica', 10_000, () => (counted(join(w.root, 'count.txt')) > after + 5 ? true : undefined));
    // Exactly one restarter: gamma is lost, alpha is lost; beta ran it once.
    assert.equal(b.events('cluster.failover').filter((x) => x.name === 'ha').length, 1);
    // alpha comes back: its copy of ha (its daemon's store still has it) goes without running.
    a.link(true);
    await a.start('alpha');
    // Served from the socket's first moment; the reconciling follows at once (before any autostart).
    const stale = await until('alpha removing its stale copy at its start', 10_000, () => a.events('cluster.stale.removed').find((x) => x.name === 'ha'));
    assert.deepEqual([stale.owner, stale.epoch], ['beta', 2]);
    assert.ok(!existsSync(join(a.home, 'wpars', 'ha')), 'its directory is gone');
    assert.deepEqual(processesOf('ha', a.home), [], 'nothing of it runs on alpha');
    assert.equal(a.events('runtime.started').filter((x) => x.name === 'ha' && (x.time as number) > killedAt).length, 0, 'never started on alpha again');
    const listed = (await a.list()).filter((x) => x.name === 'ha');
    assert.deepEqual(listed.map((x: WparInfo) => x.host), ['beta']);
    assert.ok(RUNNING.has(listed[0]!.state), listed[0]!.state);
  });
  it('a host cut off with its daemon running: its failover WPAR goes elsewhere, and when it re-joins it removes its copy', async () => {
    // ha runs on beta (the test before); alpha is back and up, so beta's next replica goes there.
    const toAlpha = await b.next((e) => e.type === 'cluster.replicated' && e.name === 'ha' && e.recorded === true && e.epoch === 2
      && JSON.stringify(e.hosts) === '["alpha"]');
    await toAlpha.event;
    const failedOver = await a.next((e) => e.type === 'cluster.failover' && e.name === 'ha');
    const rejoined = await b.next((e) => e.type === 'cluster.rejoined');
    b.link(false);
    killAll(processesOf('ha', b.home)); // the fencing watchdog's job
    const e = await failedOver.event;
    assert.deepEqual([e.from, e.to, e.epoch], ['beta', 'alpha', 3]);
    const w = (await a.list()).find((x) => x.name === 'ha')!;
    assert.deepEqual([w.host, w.epoch], ['alpha', 3]);
    b.link(true);
    await rejoined.event;
    const stale = await until('beta removing its stale copy when it re-joins', 10_000, () => b.events('cluster.stale.removed').find((x) => x.name === 'ha'));
    assert.deepEqual([stale.owner, stale.epoch], ['alpha', 3]);
    assert.ok(!existsSync(join(b.home, 'wpars', 'ha')));
    assert.deepEqual(processesOf('ha', b.home), []);
    assert.deepEqual((await b.list()).filter((x) => x.name === 'ha').map((x) => x.host), ['alpha']);
  });
});
