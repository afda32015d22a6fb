import assert from 'node:assert/strict';
import { existsSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { WparError } from '../../src/kernel/errno.ts';
import { readLogTail } from '../../src/runtime/console-log.ts';
import type { Isolation } from '../../src/runtime/isolation.ts';
import { definition, fallback, isolation, running, Scratch, skipUnlessIsolated, waitForOutput } from './helpers.ts';

const scratch = new Scratch();
after(() => scratch.cleanup());
const node = process.execPath;

/** Resolves once `file` exists and its content differs from `from` (fs.watch on its directory). */
async function changed(file: string, from: string | null): Promise<string> {
  const read = (): string | null => (existsSync(file) ? readFileSync(file, 'utf8') : null);
  const watcher = watch(join(file, '..'));
  try {
    return await new Promise<string>((resolve) => {
      const check = (): void => {
        const now = read();
        if (now !== null && now !== '' && now !== from) resolve(now);
      };
      watcher.on('change', check);
      check();
    });
  } finally {
    watcher.close();
  }
}

const modes: [string, Isolation, string | false][] = [
  ['the seal and a cgroup', isolation, skipUnlessIsolated],
  ['fallback (process group, rlimits)', fallback, false],
];

for (const [mode, iso, skip] of modes) {
  const tag = iso === fallback ? 'fb' : 'ns';
  describe(`launch with ${mode}`, { skip }, () => {
    test('runs argv literally: nothing is interpreted by a shell', async () => {
      const weird = ['$(touch pwned)', '`touch pwned`', 'a; touch pwned', "it's \"quoted\"", 'two\nlines', '', '  spaced  ', '--flag', '*', '$HOME'];
      const def = definition(`argv-${tag}`, [node, '-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))', '--', ...weird]);
      const wpar = await scratch.launch(def, iso);
      assert.deepEqual(await wpar.exited, { code: 0, signal: null, oomKilled: false });
      assert.deepEqual(JSON.parse(await readLogTail(scratch.log(def.name))), weird);
      assert.equal(existsSync(join(scratch.root(def.name), 'pwned')), false);
      assert.equal(existsSync('pwned'), false);
    });

    test('sets the environment and the working directory', async () => {
      process.env['CORRAL_DAEMON_ONLY'] = 'must not leak';
      const def = definition(`env-${tag}`, [node, '-e', 'process.stdout.write(JSON.stringify({ cwd: process.cwd(), env: process.env }))'], {
        env: { FOO: 'bar baz', WPAR_NAME: 'overridden?' },
      });
      const wpar = await scratch.launch(def, iso);
      delete process.env['CORRAL_DAEMON_ONLY'];
      await wpar.exited;
      const { cwd, env } = JSON.parse(await readLogTail(scratch.log(def.name))) as { cwd: string; env: Record<string, string> };
      assert.equal(cwd, scratch.root(def.name));
      assert.equal(env['FOO'], 'bar baz');
      assert.equal(env['WPAR_NAME'], def.name);
      assert.equal(env['WPAR_CID'], '42');
      assert.equal(env['WPAR_ROOT'], scratch.root(def.name));
      assert.equal(env['WPAR_AGENT'], join(scratch.dir, def.name, 'agent', 'agent.sock'));
      assert.equal(env['HOME'], scratch.root(def.name));
      assert.ok(env['PATH']);
      assert.equal(env['CORRAL_DAEMON_ONLY'], undefined);
    });

    test('reports the exit code, and stdout and stderr both reach the console log', async () => {
      const def = definition(`exit-${tag}`, ['sh', '-c', 'echo out; echo err >&2; exit 7']);
      const wpar = await scratch.launch(def, iso);
      assert.deepEqual(await wpar.exited, { code: 7, signal: null, oomKilled: false });
      const log = await readLogTail(scratch.log(def.name));
      assert.match(log, /out\n/);
      assert.match(log, /err\n/);
    });

    test('a missing command is ENOENT and starts nothing', async () => {
      await assert.rejects(scratch.launch(definition(`missing-${tag}`, ['no-such-command-here']), iso), (err: unknown) => {
        assert.ok(err instanceof WparError);
        assert.equal(err.code, 'ENOENT');
        assert.match(err.message, /command not found: no-such-command-here/);
        return true;
      });
    });

    test('stop: SIGTERM first, so a process that handles it exits cleanly', async () => {
      const def = definition(`term-${tag}`, ['sh', '-c', 'trap "echo bye; exit 0" TERM; echo ready; sleep 60 & wait']);
      const wpar = await scratch.launch(def, iso);
      await waitForOutput(scratch.log(def.name), 'ready');
      assert.deepEqual(await wpar.stop({ graceMs: 10_000 }), { code: 0, signal: null, oomKilled: false });
      assert.match(await readLogTail(scratch.log(def.name)), /bye/);
    });

    test('stop: a process ignoring SIGTERM gets SIGKILL after the grace period, grandchildren too', async () => {
      const def = definition(`ignore-${tag}`, ['sh', '-c', 'trap "" TERM; sh -c "sleep 60 & echo inner; sleep 60" & sleep 60 & echo outer; wait']);
      const wpar = await scratch.launch(def, iso);
      await waitForOutput(scratch.log(def.name), ['inner', 'outer']);
      const pids = wpar.pids();
      assert.ok(pids.length >= 4, `expected the shell, its subshell and sleeps, got ${pids.join(' ')}`);
      const started = Date.now();
      const exit = await wpar.stop({ graceMs: 400 });
      assert.ok(Date.now() - started >= 400, 'waited for the grace period');
      assert.equal(exit.signal, 'SIGKILL');
      assert.deepEqual(pids.filter(running), [], 'every process is gone');
      assert.deepEqual(wpar.pids(), []);
    });

    test('stop with force kills at once', async () => {
      const def = definition(`force-${tag}`, ['sh', '-c', 'trap "" TERM; echo ready; sleep 60']);
      const wpar = await scratch.launch(def, iso);
      await waitForOutput(scratch.log(def.name), 'ready');
      const pids = wpar.pids();
      const started = Date.now();
      const exit = await wpar.stop({ force: true, graceMs: 30_000 });
      assert.ok(Date.now() - started < 5_000);
      assert.equal(exit.signal, 'SIGKILL');
      assert.deepEqual(pids.filter(running), []);
    });

    test('freeze stops progress and thaw resumes it', async () => {
      const def = definition(`freeze-${tag}`, ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > count; sleep 0.01; done']);
      const wpar = await scratch.launch(def, iso);
      const count = join(scratch.root(def.name), 'count');
      await changed(count, null);
      await wpar.freeze();
      const frozenAt = readFileSync(count, 'utf8');
      await sleep(250); // a frozen WPAR emits nothing to wait for: give it time to (not) progress
      assert.equal(readFileSync(count, 'utf8'), frozenAt, 'no progress while frozen');
      await wpar.thaw();
      await changed(count, frozenAt);
      // A frozen WPAR can still be stopped.
      await wpar.freeze();
      const exit = await wpar.stop({ graceMs: 5_000 });
      assert.equal(exit.signal, 'SIGTERM');
    });
  });
}

describe('sealed and cgroup only', { skip: skipUnlessIsolated }, () => {
  test('ps inside sees only the WPAR: bwrap as PID 1, then the command', async () => {
    const def = definition('pidns', ['ps', '-e', '-o', 'pid=,comm=']);
    const wpar = await scratch.launch(def);
    await wpar.exited;
    const rows = (await readLogTail(scratch.log(def.name))).trim().split('\n').map((r) => r.trim().split(/\s+/));
    assert.deepEqual(rows.map((r) => r[0]), ['1', '2'], `only bwrap and ps: ${JSON.stringify(rows)}`);
    assert.equal(rows[0]![1], 'bwrap');
    assert.equal(rows[1]![1], 'ps');
  });

  test('the hostname inside is the definition\'s, else the WPAR name; outside it is unchanged', async () => {
    const { hostname } = await import('node:os');
    const outside = hostname();
    const named = definition('uts', ['cat', '/proc/sys/kernel/hostname'], { hostname: 'web.example' });
    await (await scratch.launch(named)).exited;
    assert.equal(await readLogTail(scratch.log('uts')), 'web.example\n');
    const plain = definition('uts2', ['cat', '/proc/sys/kernel/hostname']);
    await (await scratch.launch(plain)).exited;
    assert.equal(await readLogTail(scratch.log('uts2')), 'uts2\n');
    assert.equal(hostname(), outside);
  });

  test('a memory hog is killed by the memory limit and reported as such', async () => {
    const def = definition('hog', ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'], { limits: { memoryBytes: 32 * 2 ** 20 } });
    const wpar = await scratch.launch(def);
    assert.deepEqual(await wpar.exited, { code: null, signal: 'SIGKILL', oomKilled: true });
    assert.doesNotMatch(await readLogTail(scratch.log(def.name)), /survived/);
  });

  test('a fork loop is capped by procs', async () => {
    const def = definition('forks', ['sh', '-c', 'for i in $(seq 40); do sleep 60 & done; echo all-forked'], { limits: { procs: 10 } });
    const wpar = await scratch.launch(def);
    const exit = await wpar.exited;
    assert.equal(exit.code, 2, 'the shell gives up when fork fails');
    const log = await readLogTail(scratch.log(def.name));
    assert.match(log, /Cannot fork/);
    assert.doesNotMatch(log, /all-forked/);
  });

  test('the command is in its cgroup, in every hierarchy, from its first instruction, and sees it as its root', async () => {
    // Inside, a cgroup namespace rooted at the WPAR's own cgroup shows it as "/"; the host sees where
    // it really is. A command that read its cgroup before being moved would show a path above "/".
    const def = definition('first', ['sh', '-c', 'cat /proc/self/cgroup; echo host:; exec sleep 60']);
    const wpar = await scratch.launch(def);
    const text = await waitForOutput(scratch.log(def.name), 'host:');
    const inside = text.trim().split('\n').filter((l) => /^\d+:/.test(l));
    const command = wpar.pids().find((pid) => !/bwrap/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8')))!;
    const outside = readFileSync(`/proc/${command}/cgroup`, 'utf8').trim().split('\n');
    for (const controller of ['memory', 'pids', 'cpu', 'freezer']) {
      const has = (l: string): boolean => l.split(':')[1]!.split(',').includes(controller);
      assert.equal(inside.find(has)?.split(':')[2], '/', `${controller} inside: ${inside.find(has)}`);
      assert.equal(outside.find(has)?.split(':')[2], `/${scratch.cgroupParent}/first`, `${controller} outside`);
    }
    await wpar.stop({ force: true });
  });

  test('the cgroup exists while running, holds every process, and is removed after', async () => {
    const def = definition('cg', ['sh', '-c', 'sleep 60 & echo ready; wait'], { limits: { cpuPercent: 50, procs: 50, memoryBytes: 64 * 2 ** 20 } });
    const wpar = await scratch.launch(def);
    await waitForOutput(scratch.log(def.name), 'ready');
    const support = isolation.cgroup!;
    const memoryDir = join(support.mounts.memory!, wpar.cgroupPath!);
    assert.equal(readFileSync(join(memoryDir, 'memory.limit_in_bytes'), 'utf8').trim(), String(64 * 2 ** 20));
    assert.equal(readFileSync(join(support.mounts.pids!, wpar.cgroupPath!, 'pids.max'), 'utf8').trim(), '50');
    assert.equal(readFileSync(join(support.mounts.cpu!, wpar.cgroupPath!, 'cpu.cfs_quota_us'), 'utf8').trim(), '50000');
    // Both bwraps, sh, sleep: the helpers are inside too, from before the command ran.
    assert.equal(wpar.pids().length, 4);
    assert.ok(wpar.pids().includes(wpar.pid));
    await wpar.stop({ force: true });
    for (const mount of new Set(Object.values(support.mounts))) assert.equal(existsSync(join(mount, wpar.cgroupPath!)), false);
  });
});

describe('fallback only', () => {
  test('limits become rlimits of the command', async () => {
    const def = definition('rlimits', ['cat', '/proc/self/limits'], { limits: { memoryBytes: 64 * 2 ** 20, procs: 321, cpuPercent: 50 } });
    const wpar = await scratch.launch(def, fallback);
    assert.deepEqual(wpar.unenforcedLimits, ['cpuPercent']);
    await wpar.exited;
    const limits = await readLogTail(scratch.log(def.name));
    assert.match(limits, /Max data size\s+67108864\s+67108864/);
    assert.match(limits, /Max processes\s+321\s+321/);
  });

  test('the WPAR is its own process group, and the main process\'s exit takes the group with it', async () => {
    const def = definition('group', ['sh', '-c', 'sleep 60 & echo ready $$ $!; read x < /proc/self/stat; echo $x']);
    const wpar = await scratch.launch(def, fallback);
    const exit = await wpar.exited;
    assert.equal(exit.code, 0);
    const log = await readLogTail(scratch.log(def.name));
    const [, shell, sleeper] = /ready (\d+) (\d+)/.exec(log)!;
    assert.equal(Number(shell), wpar.pid);
    assert.equal(running(Number(sleeper)), false, 'the background sleep was killed with the group');
    const fields = log.split('\n')[1]!.split(') ')[1]!.split(' ');
    assert.equal(Number(fields[2]), wpar.pid, 'pgid is the pid');
  });
});
