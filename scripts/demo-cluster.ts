/**
 * `npm run demo:cluster`: three hosts on a real etcd; a counting job checkpointed every second and
 * copied to another host; its host crashes; the job goes on elsewhere from its newest replica with
 * its count; the old host comes back and removes its stale copy. Every step is a real command.
 *
 * The hosts are network namespaces on this machine (as in the tests: test/e2e/cluster-hosts.ts),
 * each with its own wpard and home; etcd runs in a namespace of its own. Needs root, iproute2 and
 * etcd (`npm run demo:cluster` installs them on Debian). Everything is removed at the end.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ClusterNet, type ClusterHost } from '../test/e2e/cluster-hosts.ts';
import { processesOf, subscribe, waitForOutput, type System } from '../test/e2e/harness.ts';
import { canMakeHosts } from '../test/e2e/move-hosts.ts';
import { haveEtcd } from '../test/support/etcd.ts';

const ROOT = resolve(import.meta.dirname, '..');
const TTL = 3;

function say(text: string): void {
  process.stdout.write(`\n\x1b[1m${text}\x1b[0m\n`);
}

/** Runs a command against `h`'s daemon, printing it and its output. */
async function run(h: ClusterHost, name: string, command: string, ...args: string[]): Promise<string> {
  process.stdout.write(`  [${name}] $ ${command} ${args.join(' ')}\n`);
  const r = await h.run(command, args);
  process.stdout.write((r.stdout + r.stderr).replace(/^/gm, '        ').replace(/ +$/, ''));
  if (r.code !== 0) throw new Error(`${command} exited ${r.code}`);
  return r.stdout;
}

const sys = (h: ClusterHost): System => ({ home: h.home } as unknown as System);

/** SIGKILLs `pids`; one that is gone already (its pid namespace's init went first) is no error. */
function killAll(pids: readonly number[]): void {
  for (const p of pids) {
    try { process.kill(p, 'SIGKILL'); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; }
  }
}

function counts(h: ClusterHost, name: string): string {
  const lines = readFileSync(join(h.home, 'wpars', name, 'root', 'count.txt'), 'utf8').trim().split('\n');
  return `${lines.length} lines, last: ${lines.slice(-3).join(', ')}`;
}

if (!canMakeHosts() || !haveEtcd()) {
  process.stderr.write('demo:cluster needs root, iproute2 (ip netns) and etcd (Debian: etcd-server; npm run demo:cluster installs it)\n');
  process.exit(1);
}

const net = new ClusterNet({ prefix: 'cdm', subnet: '10.218.0' });
try {
  say(`Three hosts (network namespaces, each with its own wpard) on a real etcd, lease TTL ${TTL} s`);
  net.create();
  const [a, b, c] = [net.host('a'), net.host('b'), net.host('c')];
  await net.startEtcd();
  await Promise.all([a.start('alpha', ['--lease-ttl', String(TTL)]), b.start('beta', ['--lease-ttl', String(TTL)]), c.start('gamma', ['--lease-ttl', String(TTL)])]);
  await run(a, 'alpha', 'wpar', 'hosts');

  say('On alpha: a counting job that fails over, checkpointed every second and copied to one other host');
  const copied = await subscribe(sys(a), (e) => e.type === 'cluster.replicated' && e.recorded === true && (e.seq as number) >= 3);
  await run(a, 'alpha', 'mkwpar', '-n', 'counter', '-c', '--failover', '--checkpoint-every', '1', '--replicas', '1', '--host', 'alpha',
    '-e', 'COUNTER_STEP_MS=20', '-e', 'COUNTER_PAUSE_MS=100', '-s', '--', process.execPath, join(ROOT, 'examples/agent-counter.ts'));
  const e = await copied.event;
  process.stdout.write(`        (checkpoint #${String(e.seq)} copied to ${(e.hosts as string[]).join(', ')}: ${String(e.bytes)} bytes)\n`);
  await run(b, 'beta', 'lswpar', '-L', 'counter');
  process.stdout.write(`        count.txt on alpha: ${counts(a, 'counter')}\n`);

  say('alpha crashes: its daemon and the job\'s processes are killed (SIGKILL), its link is cut');
  const holder = (e.hosts as string[])[0] === 'beta' ? b : c;
  const failedOver = await subscribe(sys(holder), (x) => x.type === 'cluster.failover' && x.name === 'counter');
  const crashedAt = Date.now();
  await a.kill();
  killAll(processesOf('counter', a.home));
  a.link(false);
  process.stdout.write(`        count.txt on alpha at the crash: ${counts(a, 'counter')}\n`);
  const f = await failedOver.event;
  const holderName = String(f.to);
  process.stdout.write(`        ${holderName} restarted it from its replica ${String(f.replica)}: epoch ${String(f.epoch)}, `
    + `${(f.recoveredAt as number) - crashedAt} ms after the crash (the lease TTL is ${TTL} s; the restart itself ${String(f.ms)} ms)\n`);
  await run(holder, holderName, 'wpar', 'hosts');
  await run(holder, holderName, 'lswpar');

  say(`On ${holderName}: the job goes on from the count it had at its last checkpoint`);
  await waitForOutput(sys(holder), 'counter', /starting after \d+[\s\S]*batch \d+ written[\s\S]*batch \d+ written/);
  await run(holder, holderName, 'wpar', 'logs', 'counter');
  process.stdout.write(`        count.txt on ${holderName}: ${counts(holder, 'counter')} (from the replica's count on: no gap, no repeat)\n`);

  say('alpha comes back: it no longer owns the job, and removes its stale copy without running it');
  a.link(true);
  await a.start('alpha', ['--lease-ttl', String(TTL)]);
  const stale = await subscribe(sys(a), (x) => x.type === 'cluster.stale.removed');
  // It may already have happened while the daemon started: look in its event log too.
  const log = (): boolean => readFileSync(join(a.home, 'events.log'), 'utf8').includes('"cluster.stale.removed"');
  if (!log()) await stale.event;
  process.stdout.write('        (alpha: cluster.stale.removed counter)\n');
  await run(a, 'alpha', 'lswpar');
  await run(a, 'alpha', 'wpar', 'hosts');
} finally {
  say('Cleaning up: every daemon, etcd, the namespaces and the homes');
  await net.destroy();
}
