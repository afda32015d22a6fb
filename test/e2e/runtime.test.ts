// End to end (issue #3): a real wpard in a temp home, driven by the real commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { HomeLayout } from '../../src/daemon/home.ts';
import { join } from 'node:path';
import { processesOf, subscribe, System } from './harness.ts';

const asRoot = process.getuid?.() === 0 && process.platform === 'linux';

test('define, start, list, stop and remove a WPAR running a real program', async () => {
  await using sys = await System.start();
  await sys.ok('mkwpar', ['-n', 'web', '-c', '-e', 'GREETING=hello', '--', 'sh', '-c', 'echo "$GREETING from $WPAR_NAME in $PWD"; exec sleep 300']);
  let w = await sys.wpar('web');
  assert.equal(w.state, 'D');
  assert.equal(w.cid, null);
  assert.equal(w.checkpointable, true);
  assert.ok(existsSync(w.root), 'mkwpar created the root');

  await sys.ok('startwpar', ['web']);
  w = await sys.wpar('web');
  assert.equal(w.state, 'A');
  assert.equal(w.cid, 1);
  assert.equal(w.phase, 'normal');
  assert.ok(processesOf('web', sys.home).length > 0);
  const table = await sys.ok('lswpar', []);
  assert.match(table, /web\s+A\s+1\b/);

  await sys.ok('stopwpar', ['web']);
  w = await sys.wpar('web');
  assert.equal(w.state, 'D');
  assert.equal(w.lastExit?.reason, 'stopped by stopwpar');
  assert.deepEqual(processesOf('web', sys.home), []);
  assert.match(await sys.ok('wpar', ['logs', 'web']), new RegExp(`hello from web in ${w.root}`));

  await sys.ok('rmwpar', ['web']);
  assert.equal(existsSync(w.root), false, 'rmwpar removed the root');
  const r = await sys.run('lswpar', ['web']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /web.*ENOENT/);
});

test('a program that exits by itself: WPAR deactivated, back to D, exit status recorded', async () => {
  await using sys = await System.start();
  await sys.ok('mkwpar', ['-n', 'job', '--', 'sh', '-c', 'exit 7']);
  const { event } = await subscribe(sys, (e) => e.type === 'runtime.exited' && e.name === 'job');
  await sys.ok('startwpar', ['job']);
  await event;
  const w = await sys.wpar('job');
  assert.equal(w.state, 'D');
  assert.equal(w.lastExit?.code, 7);
  assert.match(w.lastExit!.reason, /exited with status 7/);
  assert.match(await sys.ok('lswpar', ['-L', 'job']), /7/);
});

test('stopwpar: SIGTERM, then SIGKILL after -t; -F kills at once; no process survives', async () => {
  await using sys = await System.start();
  await sys.ok('mkwpar', ['-n', 'stubborn', '-s', '--', 'sh', '-c', 'trap "" TERM; sleep 300 & sleep 300 & wait']);
  const t0 = performance.now();
  await sys.ok('stopwpar', ['-t', '1', 'stubborn']);
  assert.ok(performance.now() - t0 >= 1000, 'waited for the grace period');
  assert.deepEqual(processesOf('stubborn', sys.home), []);
  await sys.ok('startwpar', ['stubborn']);
  const t1 = performance.now();
  await sys.ok('stopwpar', ['-F', 'stubborn']);
  assert.ok(performance.now() - t1 < 1000, 'force does not wait');
  assert.deepEqual(processesOf('stubborn', sys.home), []);
});

test('isolation: own PID namespace and hostname inside, as root', { skip: !asRoot && 'needs root on Linux' }, async () => {
  await using sys = await System.start();
  await sys.ok('mkwpar', ['-n', 'iso', '-h', 'inside-host', '--', 'sh', '-c', 'echo "pid=$$ host=$(hostname) procs=$(ls /proc | grep -c "^[0-9]")"']);
  const started = await subscribe(sys, (e) => e.type === 'runtime.started' && e.name === 'iso');
  const { event } = await subscribe(sys, (e) => e.type === 'runtime.exited' && e.name === 'iso');
  await sys.ok('startwpar', ['iso']);
  assert.match((await started.event).isolation as string, /^sealed: user \(uid 0 = host \d+\), mount \(host read-only\), pid, uts, ipc, cgroup, net; cgroup/);
  await event;
  const log = await sys.ok('wpar', ['logs', 'iso']);
  const m = /pid=(\d+) host=(\S+) procs=(\d+)/.exec(log);
  assert.ok(m, log);
  assert.ok(Number(m[1]) <= 4, `pid ${m[1]} is low inside its own namespace`);
  assert.equal(m[2], 'inside-host');
  assert.ok(Number(m[3]) <= 6, `only the WPAR's processes are visible (bwrap, sh, its $(...) subshell, ls, grep) (${m[3]})`);
});

test('limits: a memory hog is stopped by the memory limit', { skip: !asRoot && 'needs root on Linux' }, async () => {
  await using sys = await System.start();
  await sys.ok('mkwpar', ['-n', 'hog', '-R', 'memory=64M', '--', process.execPath, '-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));']);
  const { event } = await subscribe(sys, (e) => e.type === 'runtime.exited' && e.name === 'hog');
  await sys.ok('startwpar', ['hog']);
  await event;
  const w = await sys.wpar('hog');
  assert.match(w.lastExit!.reason, /memory limit/);
  assert.equal(w.state, 'B');
});

test('limits: a fork loop is capped by the process limit', { skip: !asRoot && 'needs root on Linux' }, async () => {
  await using sys = await System.start();
  // 40 background sleeps under procs=12: the shell notes each attempt; the fork past the limit fails.
  await sys.ok('mkwpar', ['-n', 'forker', '-R', 'procs=12', '--', 'sh', '-c', 'for i in $(seq 1 40); do echo $i > attempts; sleep 300 & done 2> fork-errors']);
  const { event } = await subscribe(sys, (e) => e.type === 'runtime.exited' && e.name === 'forker');
  await sys.ok('startwpar', ['forker']);
  await event;
  const root = (await sys.wpar('forker')).root;
  assert.match(readFileSync(join(root, 'fork-errors'), 'utf8'), /fork/i);
  const attempts = Number(readFileSync(join(root, 'attempts'), 'utf8'));
  assert.ok(attempts <= 12, `the fork loop got to attempt ${attempts} of 40 under procs=12`);
  assert.deepEqual(processesOf('forker', sys.home), [], 'and none left');
});

test('an extension: WPARSTART before the WPAR has any process, WPARSTOP after all are gone', async () => {
  await using sys = await System.start({ extensions: [join(import.meta.dirname, 'fixtures/probe-extension.ts'), join(import.meta.dirname, 'fixtures/broken-extension.ts')] });
  assert.match(sys.log, /loaded extension probe/);
  assert.match(sys.log, /broken.*cannot find its configuration.*not loaded/);
  await sys.ok('mkwpar', ['-n', 'p', '-s', '--', 'sh', '-c', 'sleep 300 & sleep 300 & wait']);
  await sys.ok('stopwpar', ['p']);
  const lines = readFileSync(join(sys.home, 'probe.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { flag: string; processes: number });
  assert.deepEqual(lines.map((l) => [l.flag, l.processes]), [['WPARSTART', 0], ['WPARSTOP', 0]]);
});

test('an agent denial from inside a WPAR appears in lswpar --json and goes when its process exits', async () => {
  await using sys = await System.start();
  // The denier runs under a shell that outlives it, so the WPAR stays active after the denier exits.
  const holder = join(import.meta.dirname, 'fixtures/holder.ts');
  await sys.ok('mkwpar', ['-n', 'db', '-c', '--', 'sh', '-c', `${process.execPath} ${holder}; exec sleep 300`]);
  const denied = await subscribe(sys, (e) => e.type === 'deny' && e.name === 'db');
  await sys.ok('startwpar', ['db']);
  await denied.event;
  const w = await sys.wpar('db');
  assert.equal(w.denials.length, 1);
  assert.match(w.denials[0]!.owner, /^agent:db\/\d+$/);
  assert.equal(w.denials[0]!.reason, 'writing batch 12');
  assert.ok(Math.abs(w.denials[0]!.since - Date.now()) < 60_000);
  assert.match(await sys.ok('lswpar', ['-L', 'db']), /agent:db\/\d+.*writing batch 12/);

  const released = await subscribe(sys, (e) => e.type === 'allow' && e.name === 'db');
  const denier = processesOf('db', sys.home).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === holder);
  assert.ok(denier, 'the denier process is found');
  process.kill(denier, 'SIGKILL'); // the process exits without allowing: its connection drops
  assert.equal((await released.event).cause, 'owner-closed');
  const after = await sys.wpar('db');
  assert.equal(after.state, 'A', 'the WPAR is still running');
  assert.deepEqual(after.denials, []);
});

test('bad input: a clear one-line error naming errno, and nothing changes', async () => {
  await using sys = await System.start();
  await sys.ok('mkwpar', ['-n', 'keep', '--', 'true']);
  const cases: [string, string[], RegExp][] = [
    ['mkwpar', ['-n', '../x', '--', 'true'], /WPAR name.*EINVAL/],
    ['mkwpar', ['-n', 'a b', '--', 'true'], /WPAR name.*EINVAL/],
    ['mkwpar', ['-n', 'a'.repeat(65), '--', 'true'], /WPAR name.*EINVAL/],
    ['mkwpar', ['-n', 'nocmd'], /command/],
    ['mkwpar', ['-n', 'badr', '-R', 'memory=lots', '--', 'true'], /memory/],
    ['mkwpar', ['-n', 'badr2', '-R', 'disk=1G', '--', 'true'], /unknown limit/],
    ['mkwpar', ['-n', 'keep', '--', 'true'], /EEXIST/],
    ['startwpar', ['ghost'], /ghost.*ENOENT/],
    ['stopwpar', ['ghost'], /ghost.*ENOENT/],
    ['rmwpar', ['ghost'], /ghost.*ENOENT/],
  ];
  for (const [cmd, args, message] of cases) {
    const r = await sys.run(cmd, args);
    assert.notEqual(r.code, 0, `${cmd} ${args.join(' ')} should fail`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.deepEqual((await sys.list()).map((w) => w.name), ['keep']);
});

test('argv with $(...), ; and quotes is passed literally, never to a shell', async () => {
  await using sys = await System.start();
  const args = ['$(touch pwned)', 'a; touch pwned2', '"quoted"', "it's", '`touch pwned3`'];
  await sys.ok('mkwpar', ['-n', 'lit', '--', process.execPath, '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', ...args]);
  const { event } = await subscribe(sys, (e) => e.type === 'runtime.exited' && e.name === 'lit');
  await sys.ok('startwpar', ['lit']);
  await event;
  const w = await sys.wpar('lit');
  assert.deepEqual(JSON.parse((await sys.ok('wpar', ['logs', 'lit'])).trim()), args);
  for (const f of ['pwned', 'pwned2', 'pwned3']) assert.equal(existsSync(join(w.root, f)), false);
});

test('the control socket is mode 0600 in a 0700 directory', async () => {
  await using sys = await System.start();
  assert.equal(statSync(join(sys.home, 'run/wpard.sock')).mode & 0o777, 0o600);
  assert.equal(statSync(join(sys.home, 'run')).mode & 0o777, 0o700);
});

test('SIGTERM stops every WPAR cleanly and exits 0', async () => {
  await using sys = await System.start();
  await sys.ok('mkwpar', ['-n', 'a', '-s', '--', 'sleep', '300']);
  await sys.ok('mkwpar', ['-n', 'b', '-s', '--', 'sleep', '300']);
  assert.equal(await sys.stop(), 0);
  assert.deepEqual([...processesOf('a', sys.home), ...processesOf('b', sys.home)], []);
  const log = readFileSync(join(sys.home, 'events.log'), 'utf8');
  assert.equal((log.match(/"type":"wpar.stopped"/g) ?? []).length, 2, 'both deactivated (WPARSTOP ran)');
  if (asRoot) {
    const parent = new HomeLayout(sys.home).cgroupParent;
    const left = readdirSync('/sys/fs/cgroup').filter((c) => existsSync(join('/sys/fs/cgroup', c, parent)));
    assert.deepEqual(left, [], `the home's cgroup parent ${parent} is removed with the daemon`);
  }
});

// What cannot be adopted (R7): WPARs of a daemon forced to the fallback isolation (a process group,
// no bwrap status file) are stopped at restart and reported. Sealed ones are adopted (adopt.test.ts).
test('SIGKILL of a fallback daemon, then restart: what cannot be adopted is stopped and reported, definitions intact, -A restarted', async () => {
  const first = await System.start({ args: ['--fallback-isolation'] });
  await first.ok('mkwpar', ['-n', 'auto', '-A', '-s', '--', 'sleep', '300']);
  await first.ok('mkwpar', ['-n', 'manual', '-s', '--', 'sh', '-c', 'sleep 300 & sleep 300 & wait']);
  await first.ok('mkwpar', ['-n', 'idle', '--', 'true']);
  const before = [...processesOf('auto', first.home), ...processesOf('manual', first.home)];
  assert.ok(before.length >= 2);
  await first.crash();
  await using second = await System.start({ home: first.home, args: ['--fallback-isolation'] });
  assert.match(second.log, /recovered.*2 WPAR.*adopted 0, ended meanwhile 0, could not adopt 2 \(auto: not sealed/);
  for (const pid of before) assert.equal(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '), false, `pid ${pid} was stopped`);
  assert.deepEqual(processesOf('manual', second.home), []);
  const ws = await second.list();
  assert.deepEqual(ws.map((w) => w.name), ['auto', 'idle', 'manual']);
  const byName = Object.fromEntries(ws.map((w) => [w.name, w]));
  assert.equal(byName.auto!.state, 'A', 'auto-start WPAR started again');
  assert.equal(byName.manual!.state, 'B');
  assert.match(byName.manual!.lastExit!.reason, /daemon stopped unexpectedly and its processes could not be adopted \(not sealed/);
  assert.equal(byName.idle!.state, 'D');
});
