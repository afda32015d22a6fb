// End to end (issue #7, S1–S8): what a program inside a sealed WPAR can and cannot do, tried from
// inside as an attacker would, against a real wpard started as root and driven by the real commands.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { HomeLayout } from '../../src/daemon/home.ts';
import { detectIsolation } from '../../src/runtime/isolation.ts';
import { canMakeHosts, TestHost } from '../support/netns.ts';
import { processesOf, ROOT, subscribe, System, waitForOutput } from './harness.ts';

const asRoot = process.getuid?.() === 0 && process.platform === 'linux';
const sealed = asRoot && detectIsolation().seal?.ids != null;
const skip = sealed ? false : 'needs root on Linux with bubblewrap and user namespaces';

/** `key=value` lines of a probe's output as an object. */
function answers(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => /^[a-z_.-]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Runs `script` in a new sealed WPAR `name` and resolves its answers once it prints `done=1`. */
async function probe(sys: System, name: string, script: string, more: readonly string[] = []): Promise<Record<string, string>> {
  await sys.ok('mkwpar', ['-n', name, '-e', `DAEMON_HOME=${sys.home}`, ...more, '-s', '--', 'sh', '-c', `${script}\necho done=1\nexec sleep 600`]);
  return answers(await waitForOutput(sys, name, /done=1/));
}

/** A node one-liner that connects to a Unix socket and prints `KEY=connected` or `KEY=<errno>`. */
const connect = (key: string, path: string): string =>
  `node -e 'require("net").connect(process.argv[1]).on("connect",()=>{console.log("${key}=connected");process.exit()}).on("error",(e)=>console.log("${key}="+e.code))' "${path}"`;

describe('a sealed WPAR (S1–S5), tried from inside', { skip, timeout: 120_000 }, () => {
  test('S1: root inside is an unprivileged uid outside, on its processes and its files; host secrets stay closed', async () => {
    await using sys = await System.start();
    const { base } = new HomeLayout(sys.home).ids;
    const a = await probe(sys, 'who', [
      'echo uid=$(id -u) gid=$(id -g)',
      'echo made > made-inside',
      'cat /etc/shadow >/dev/null 2>&1 && echo shadow=read || echo shadow=denied',
      'ls /root >/dev/null 2>&1 && echo slashroot=listed || echo slashroot=denied',
      'echo nnp=$(grep NoNewPrivs /proc/self/status | tr -dc 0-9)',
      'echo capbnd=$(grep CapBnd /proc/self/status | cut -f2)',
    ].join('\n'));
    assert.equal(a['uid'], '0 gid=0');
    assert.equal(a['shadow'], 'denied');
    assert.equal(a['slashroot'], 'denied');
    assert.equal(a['nnp'], '1', 'no_new_privs is set');
    const bounding = BigInt(`0x${a['capbnd']}`);
    for (const [cap, bit] of [['CAP_SYS_ADMIN', 21n], ['CAP_NET_ADMIN', 12n], ['CAP_SYS_PTRACE', 19n], ['CAP_SYS_MODULE', 16n], ['CAP_MKNOD', 27n]] as const) {
      assert.equal((bounding >> bit) & 1n, 0n, `${cap} is not in the bounding set`);
    }
    const w = await sys.wpar('who');
    assert.match(w.isolation!, new RegExp(`^sealed: user \\(uid 0 = host ${base}\\)`));
    // The host sees the mapped uid on the command and on the file it made.
    const status = readFileSync(`/proc/${commandPid(w.pid!)}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${base}\\s+${base}\\s+${base}\\s+${base}$`, 'm'));
    assert.equal(statSync(join(w.root, 'made-inside')).uid, base);
    assert.equal(statSync(join(w.root, 'made-inside')).gid, base);
    assert.equal(statSync(w.root).uid, base, 'the root belongs to uid 0 inside');
  });

  test('S2: the host is read-only but runs as before; the root is writable at its own path; TMPDIR is private', async () => {
    await using sys = await System.start();
    // A program kept anywhere on the host (here: a directory others may search under /tmp) runs.
    const progDir = mkdtempSync(join(tmpdir(), 'corral-prog-'));
    chmodSync(progDir, 0o755);
    const prog = join(progDir, 'hello.sh');
    writeFileSync(prog, '#!/bin/sh\necho "prog=ran from $0"\n', { mode: 0o755 });
    const stray = join(tmpdir(), `corral-stray-${process.pid}`);
    try {
      const a = await probe(sys, 'fs', [
        `${prog}`,
        'touch /usr/corral-probe 2>/dev/null && echo usr=written || echo usr=denied',
        'touch /etc/corral-probe 2>/dev/null && echo etc=written || echo etc=denied',
        `echo x > ${stray} 2>/dev/null && echo tmp=written || echo tmp=denied`,
        'echo x > "$TMPDIR/scratch" && echo tmpdir=written || echo tmpdir=denied',
        'echo cwd=$(pwd)',
        'echo x > "$WPAR_ROOT/kept" && echo root=written || echo root=denied',
        'echo procs=$(ls /proc | grep -c "^[0-9]")',
        'echo dev=$(ls /dev | tr "\\n" " ")',
        'echo shm=$(echo x > /dev/shm/s && echo ok)',
      ].join('\n'));
      assert.equal(a['prog'], `ran from ${prog}`);
      assert.equal(a['usr'], 'denied');
      assert.equal(a['etc'], 'denied');
      assert.equal(a['tmp'], 'denied', 'the host /tmp is read-only inside');
      assert.equal(existsSync(stray), false);
      assert.equal(a['tmpdir'], 'written');
      const w = await sys.wpar('fs');
      assert.equal(a['cwd'], w.root);
      assert.equal(a['root'], 'written');
      assert.equal(readFileSync(join(w.root, 'kept'), 'utf8'), 'x\n');
      assert.equal(existsSync(join(sys.home, 'wpars', 'fs', 'tmp', 'scratch')), false, 'TMPDIR is not seen outside');
      assert.ok(Number(a['procs']) <= 6, `its own /proc shows only its processes: ${a['procs']}`);
      assert.doesNotMatch(a['dev']!, /\b(vda|sda|kmsg|mem)\b/, `a minimal /dev: ${a['dev']}`);
      assert.equal(a['shm'], 'ok');
      // Nothing of the start's hand-shake (fds 3 to 7) is left open in the command (its `sleep`).
      let command: number | undefined;
      for (const deadline = Date.now() + 10_000; command === undefined && Date.now() < deadline; await delay(20)) {
        command = processesOf('fs', sys.home).find((pid) => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep'; } catch { return false; } });
      }
      assert.ok(command !== undefined, 'the probe execs sleep');
      const fds = readdirSync(`/proc/${command}/fd`).map(Number);
      assert.deepEqual(fds.filter((fd) => fd >= 3 && fd <= 7), [], `open fds: ${fds.join(' ')}`);
    } finally {
      rmSync(progDir, { recursive: true, force: true });
    }
  });

  test('a program kept where the WPAR cannot reach it is refused before the start, naming why (EPERM)', async () => {
    await using sys = await System.start();
    const hidden = mkdtempSync(join(tmpdir(), 'corral-private-')); // 0700, as mkdtemp makes it
    writeFileSync(join(hidden, 'prog.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
    try {
      await sys.ok('mkwpar', ['-n', 'unreachable', '--', join(hidden, 'prog.sh')]);
      const r = await sys.run('startwpar', ['unreachable']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`cannot run inside the sealed WPAR: ${hidden} is mode 0700: others may not search it.*\\(EPERM\\)$`, "m"));
      assert.equal((await sys.wpar('unreachable')).cid, null, 'nothing started');
    } finally {
      rmSync(hidden, { recursive: true, force: true });
    }
  });

  test('S3: the daemon\'s home, its control socket and other WPARs\' sockets and roots are out of sight and reach', async () => {
    await using sys = await System.start();
    await sys.ok('mkwpar', ['-n', 'victim', '-s', '--', 'sh', '-c', 'echo secret > secret; exec sleep 600']);
    const victim = await sys.wpar('victim');
    const victimSocket = new HomeLayout(sys.home).agentSocket(victim.cid!);
    const a = await probe(sys, 'attacker', [
      'echo home=$(ls -A "$DAEMON_HOME" | tr "\\n" " ")',
      'echo run=$(ls -A "$DAEMON_HOME/run" | tr "\\n" " ")',
      'echo wpars=$(ls -A "$DAEMON_HOME/wpars" | tr "\\n" " ")',
      'test -e "$DAEMON_HOME/corral.db" && echo db=visible || echo db=hidden',
      'cat "$DAEMON_HOME/wpars/victim/root/secret" 2>/dev/null && echo victimroot=read || echo victimroot=denied',
      'touch "$DAEMON_HOME/planted" 2>/dev/null && echo planted=yes || echo planted=no',
      connect('control', join(sys.home, 'run', 'wpard.sock')),
      connect('victimagent', victimSocket),
      connect('ownagent', '$WPAR_AGENT'),
      // Other ways to the control socket: through /proc of the daemon (not in its PID namespace).
      'ls /proc/*/root/ 2>/dev/null | grep -c wpard.sock | sed "s/^/viaproc=/"',
    ].join('\n'));
    const own = await sys.wpar('attacker');
    assert.equal(a['home']!.trim(), 'run wpars', 'only the paths back to its own things');
    assert.equal(a['run']!.trim(), `agent-${own.cid}`);
    assert.equal(a['wpars']!.trim(), 'attacker');
    assert.equal(a['db'], 'hidden');
    assert.equal(a['victimroot'], 'denied');
    assert.equal(a['control'], 'ENOENT');
    assert.equal(a['victimagent'], 'ENOENT');
    assert.equal(a['ownagent'], 'connected');
    assert.equal(a['viaproc'], '0');
    assert.equal(existsSync(join(sys.home, 'planted')), false);
    assert.equal(readFileSync(join(victim.root, 'secret'), 'utf8'), 'secret\n', 'the victim is untouched');
  });

  test('S3: an agent denies only for its own WPAR', async () => {
    await using sys = await System.start();
    await sys.ok('mkwpar', ['-n', 'victim', '-c', '-s', '--', 'sleep', '600']);
    await sys.ok('mkwpar', ['-n', 'attacker', '-c', '-s', '--', 'node', '--input-type=module', '-e',
      `import { agent } from ${JSON.stringify(join(ROOT, 'dist/agent/index.js'))}; await agent.deny('posing as victim'); console.log('denied'); setInterval(() => {}, 1e6);`]);
    await waitForOutput(sys, 'attacker', /denied/);
    assert.deepEqual((await sys.wpar('victim')).denials, []);
    const denials = (await sys.wpar('attacker')).denials;
    assert.equal(denials.length, 1);
    assert.equal(denials[0]!.reason, 'posing as victim');
    assert.match(denials[0]!.owner, /^agent:attacker\//);
  });

  test('S4: it cannot leave its cgroup, raise its limits or thaw itself; the limits hold', async () => {
    await using sys = await System.start();
    const a = await probe(sys, 'caged', [
      'n=0; for f in /sys/fs/cgroup/*/cgroup.procs /sys/fs/cgroup/*/tasks; do echo $$ > "$f" 2>/dev/null && n=$((n+1)); done; echo moved=$n',
      'echo 999999999999 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null && echo raised=yes || echo raised=no',
      'echo THAWED > /sys/fs/cgroup/freezer/freezer.state 2>/dev/null && echo freezer=yes || echo freezer=no',
      'mkdir /sys/fs/cgroup/memory/escape 2>/dev/null && echo mkdir=yes || echo mkdir=no',
      'echo cgroup=$(grep memory /proc/self/cgroup)',
    ].join('\n'), ['-R', 'memory=64M,procs=32']);
    assert.equal(a['moved'], '0');
    assert.equal(a['raised'], 'no');
    assert.equal(a['freezer'], 'no');
    assert.equal(a['mkdir'], 'no');
    assert.match(a['cgroup']!, /:memory:\/$/, 'its cgroup namespace is rooted at its own cgroup');
    const w = await sys.wpar('caged');
    const layout = new HomeLayout(sys.home);
    assert.equal(readFileSync(`/sys/fs/cgroup/memory/${layout.cgroupParent}/caged/memory.limit_in_bytes`, 'utf8').trim(), String(64 * 2 ** 20));
    assert.equal(w.state, 'A');

    // A memory hog and a fork bomb are still stopped by their limits.
    const hogEnded = (await subscribe(sys, (e) => e.type === 'runtime.exited' && e.name === 'hog')).event;
    const bombEnded = (await subscribe(sys, (e) => e.type === 'runtime.exited' && e.name === 'bomb')).event;
    await sys.ok('mkwpar', ['-n', 'hog', '-R', 'memory=32M', '-s', '--', 'sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived']);
    await sys.ok('mkwpar', ['-n', 'bomb', '-R', 'procs=16', '-s', '--', 'sh', '-c', 'for i in $(seq 100); do sleep 30 & done; echo all-forked']);
    assert.match(String((await hogEnded)['reason']), /memory limit/);
    assert.doesNotMatch(await sys.ok('wpar', ['logs', 'hog']), /survived/);
    assert.notEqual((await bombEnded)['code'], 0);
    const bombLog = await sys.ok('wpar', ['logs', 'bomb']);
    assert.match(bombLog, /fork/i);
    assert.doesNotMatch(bombLog, /all-forked/);
  });
});

describe('networks (S5), on a test host', { skip: sealed && canMakeHosts ? false : 'needs root, bubblewrap, user namespaces and ip netns', timeout: 120_000 }, () => {
  test('-N address= serves the host at that address, and keeps it across chkptwpar -k and restartwpar; -N none reaches only loopback, on any port', async () => {
    await using host = TestHost.create();
    await using sys = await System.start({ netns: host.name });
    const server = 'require("http").createServer((q,r)=>r.end("hello from "+process.env.WPAR_NAME)).listen(80,"0.0.0.0",()=>console.log("listening"))';
    await sys.ok('mkwpar', ['-n', 'web', '-c', '-N', 'address=10.214.7.2/24', '-s', '--', 'node', '-e', server]);
    await waitForOutput(sys, 'web', /listening/);
    const fetch = (): string => host.exec(['node', '-e', 'fetch("http://10.214.7.2").then(r=>r.text()).then(t=>console.log(t),e=>{console.log("failed "+e.cause?.code);})']).trim();
    assert.equal(fetch(), 'hello from web');
    assert.match(await sys.ok('lswpar', ['-L', 'web']), /Network:\s+10\.214\.7\.2\/24 via 10\.214\.7\.1 on corral0/);
    assert.equal((await sys.wpar('web')).definition.network?.mode, 'bridge');

    const images = mkdtempSync(join(tmpdir(), 'corral-img-'));
    try {
      await sys.ok('chkptwpar', ['-d', join(images, 'web'), '-k', 'web']);
      assert.match(fetch(), /^failed/);
      await sys.ok('rmwpar', ['web']);
      await sys.ok('restartwpar', ['-d', join(images, 'web'), 'web']);
      await waitForOutput(sys, 'web', /listening/);
      assert.equal(fetch(), 'hello from web');
    } finally {
      rmSync(images, { recursive: true, force: true });
    }

    const a = await probe(sys, 'alone', [
      'echo links=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" " ")',
      'node -e \'require("net").connect(80,"10.214.7.2").on("connect",()=>console.log("web=connected")).on("error",(e)=>console.log("web="+e.code))\'',
      'node -e \'require("http").createServer().listen(80,"127.0.0.1",()=>{require("net").connect(80,"127.0.0.1").on("connect",()=>{console.log("loopback=connected");process.exit()})})\'',
    ].join('\n'), ['-N', 'none']);
    assert.equal(a['links']!.trim(), 'lo');
    assert.equal(a['web'], 'ENETUNREACH');
    assert.equal(a['loopback'], 'connected');
  });
});

describe('said, never silent (S7)', { skip: asRoot ? false : 'needs root to start a daemon as another user', timeout: 60_000 }, () => {
  test('a daemon that is not root says what is missing at start-up and in lswpar -L', async () => {
    const home = mkdtempSync(join(tmpdir(), 'corral-nobody-'));
    chownSync(home, 65534, 65534);
    await using sys = await System.start({ home, user: 65534 });
    assert.match(sys.log, /isolation: not in force: sealing and cgroups: the daemon is not root/);
    await sys.ok('mkwpar', ['-n', 'plain', '--', 'true']);
    const long = await sys.run('lswpar', ['-L', 'plain']);
    assert.match(long.stdout, /Not in force:\s+sealing and cgroups: the daemon is not root/);
    const info = await sys.wpar('plain');
    assert.ok(info.isolationMissing.length > 0);
  });
});

/** The WPAR's command: the first process of the chain that is not bwrap (host pid), from the outer bwrap's pid. */
function commandPid(outer: number): number {
  let pid = outer;
  for (;;) {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
    if (children.length === 0) return pid;
    const cmd = readFileSync(`/proc/${children[0]}/cmdline`, 'utf8');
    pid = children[0]!;
    if (!/bwrap/.test(cmd)) return pid;
  }
}
