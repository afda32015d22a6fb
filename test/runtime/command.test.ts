import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planCommand, SEAL_FDS, WPAR_CAPABILITIES, WPAR_INIT, type SealLayout } from '../../src/runtime/command.ts';
import type { Isolation } from '../../src/runtime/isolation.ts';

const base: Isolation = { seal: null, cgroup: null, prlimit: '/usr/bin/prlimit', shell: '/bin/sh', summary: '', notes: [] };
const seal = { bwrap: '/usr/bin/bwrap', setpriv: '/usr/bin/setpriv', ids: { base: 200_000, size: 65_536 }, network: { ip: '/sbin/ip', nsenter: '/usr/bin/nsenter', sysctl: '/sbin/sysctl' } };
const full: Isolation = { ...base, seal, cgroup: { version: 1, controllers: ['memory', 'pids', 'cpu', 'freezer'], mounts: {} } };
const layout: SealLayout = { root: '/h/wpars/web/root', agentDir: '/h/run/agent-3', tmpDir: '/h/wpars/web/tmp', hide: '/h' };
const argv = ['app', '$(touch pwned)', '--flag'];

/** The value following `flag` each time it appears in `args`. */
function after(args: readonly string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
}

describe('planCommand', () => {
  test('sealed: outer bwrap as root, setpriv to the base uid, inner bwrap; argv last and untouched', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: { memoryBytes: 1 << 20 }, isolation: full, layout });
    assert.equal(plan.mode, 'sealed');
    assert.equal(plan.file, '/usr/bin/bwrap');
    // A constant trampoline closes the inner bwrap's --userns-block-fd; argv are its positional parameters.
    const trampoline = ['/bin/sh', '-c', `exec ${SEAL_FDS.innerGo}<&- && exec "$@"`, 'wpar'];
    assert.deepEqual(plan.args.slice(-argv.length - trampoline.length - 1), ['--', ...trampoline, ...argv]);
    const [outer, rest] = [plan.args.slice(0, plan.args.indexOf('/usr/bin/setpriv')), plan.args.slice(plan.args.indexOf('/usr/bin/setpriv'))];
    // The outer layer: the namespaces, the host read-only, the home hidden, its own things put back.
    for (const flag of ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--as-pid-1', '--new-session']) assert.ok(outer.includes(flag), flag);
    assert.ok(!plan.args.includes('tini'), 'the inner bwrap is PID 1: it reaps and passes the exit status on');
    assert.ok(!outer.includes('--unshare-net'), 'the host network by default');
    assert.deepEqual(after(outer, '--hostname'), ['web']);
    assert.deepEqual(after(outer, '--ro-bind'), ['/']);
    assert.deepEqual(after(outer, '--tmpfs'), ['/dev/shm', '/h', '/h/wpars/web/tmp']);
    assert.deepEqual(after(outer, '--bind'), [layout.root, layout.agentDir]);
    assert.deepEqual(after(outer, '--dir'), ['/h/wpars', '/h/wpars/web', '/h/run']);
    assert.deepEqual(after(outer, '--size'), [String(1 << 20)], 'the private tmpfs is bounded by the memory limit');
    assert.deepEqual(after(outer, '--info-fd'), [String(SEAL_FDS.outerInfo)]);
    assert.deepEqual(after(outer, '--block-fd'), [String(SEAL_FDS.outerGo)]);
    // R7: the exit status goes to a file, and nothing ties the sandbox's life to the daemon's.
    assert.deepEqual(after(outer, '--json-status-fd'), [String(SEAL_FDS.status)]);
    assert.equal(plan.args.includes('--die-with-parent'), false);
    assert.deepEqual(after(outer, '--cap-add'), WPAR_CAPABILITIES);
    assert.ok(!WPAR_CAPABILITIES.includes('CAP_SYS_ADMIN') && !WPAR_CAPABILITIES.includes('CAP_NET_ADMIN'));
    // The inner layer: the unprivileged user namespace, mapped by the daemon, and the cgroup namespace.
    assert.deepEqual(rest.slice(0, 5), ['/usr/bin/setpriv', '--reuid=200000', '--regid=200000', '--clear-groups', '--']);
    const inner = rest.slice(5, rest.length - argv.length - trampoline.length - 1);
    assert.equal(inner[0], '/usr/bin/bwrap');
    for (const flag of ['--unshare-user', '--unshare-cgroup']) assert.ok(inner.includes(flag), flag);
    assert.deepEqual(after(inner, '--userns-block-fd'), [String(SEAL_FDS.innerGo)]);
    assert.deepEqual(after(inner, '--chdir'), [layout.root]);
    assert.deepEqual(plan.unenforced, []);
  });

  test('sealed -N none and address=: a network namespace of its own', () => {
    for (const network of [{ mode: 'none' } as const, { mode: 'bridge', address: '10.9.0.2', prefix: 24, gateway: '10.9.0.1', bridge: 'corral0' } as const]) {
      const plan = planCommand({ argv, hostname: 'web', limits: {}, isolation: full, layout, network });
      assert.ok(plan.args.includes('--unshare-net'), network.mode);
      assert.deepEqual(after(plan.args, '--size'), [], 'no memory limit, no size');
    }
  });

  test('sealed without a user namespace: the outer layer runs the command under its own PID 1, in the root', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: {}, isolation: { ...full, seal: { ...seal, ids: null } }, layout });
    assert.ok(!plan.args.includes('/usr/bin/setpriv') && !plan.args.includes('--unshare-user'));
    assert.deepEqual(after(plan.args, '--chdir'), [layout.root]);
    assert.deepEqual(plan.args.slice(-argv.length - 1), ['--', ...argv]);
    assert.ok(!plan.args.includes('--as-pid-1'), 'bwrap\'s own reaper is PID 1');
  });

  test('a bridge network without iproute2 is refused with what to install', () => {
    assert.throws(() => planCommand({
      argv, hostname: 'web', limits: {}, isolation: { ...full, seal: { ...seal, network: null } }, layout,
      network: { mode: 'bridge', address: '10.9.0.2', prefix: 24, gateway: '10.9.0.1', bridge: 'corral0' },
    }), /ENOENT|iproute2/);
  });

  test('a network of its own needs the sealed runtime', () => {
    assert.throws(() => planCommand({ argv, hostname: 'web', limits: {}, isolation: { ...full, seal: null }, network: { mode: 'none' } }), /sealed runtime/);
  });

  test('a cgroup without the seal: only the wait', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: { procs: 3 }, isolation: { ...full, seal: null } });
    assert.deepEqual([plan.file, ...plan.args], ['/bin/sh', WPAR_INIT, '--wait', '--', ...argv]);
    assert.equal(plan.mode, 'held');
  });

  test('sealed without a cgroup: rlimits in front', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: { procs: 3 }, isolation: { ...full, cgroup: null }, layout });
    assert.deepEqual([plan.file, ...plan.args.slice(0, 2)], ['/usr/bin/prlimit', '--nproc=3', '--']);
    assert.equal(plan.args[2], '/usr/bin/bwrap');
    assert.equal(plan.mode, 'sealed');
  });

  test('fallback without limits spawns the command itself', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: {}, isolation: base });
    assert.deepEqual([plan.file, ...plan.args], argv);
    assert.equal(plan.mode, 'direct');
  });

  test('fallback with limits puts prlimit in front; cpu cannot be enforced', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: { memoryBytes: 1024, procs: 5, cpuPercent: 50 }, isolation: base });
    assert.deepEqual([plan.file, ...plan.args], ['/usr/bin/prlimit', '--data=1024', '--nproc=5', '--', ...argv]);
    assert.deepEqual(plan.unenforced, ['cpuPercent']);
  });

  test('without prlimit nothing is enforced', () => {
    const plan = planCommand({ argv, hostname: 'web', limits: { memoryBytes: 1024, procs: 5 }, isolation: { ...base, prlimit: null } });
    assert.deepEqual([plan.file, ...plan.args], argv);
    assert.deepEqual(plan.unenforced, ['memoryBytes', 'procs']);
  });
});
