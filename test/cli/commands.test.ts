// Commands against a tiny fake wpard on a temporary Unix socket: requests sent, output, error lines.
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { runCommand } from '../../src/cli/command.ts';
import { chkptwpar, events, logs, lswpar, mkwpar, restartwpar, rmwpar, startwpar, stopwpar } from '../../src/cli/commands/index.ts';
import type { Command } from '../../src/cli/command.ts';
import { runWpar } from '../../src/cli/wpar.ts';
import { apiError, fakeDaemon, json, tempHome, testIo, wparInfo, type FakeDaemon, type Handler } from './helpers.ts';

let daemon: FakeDaemon | undefined;
afterEach(async () => {
  await daemon?.close();
  daemon = undefined;
});

async function start(handler: Handler): Promise<FakeDaemon> {
  daemon = await fakeDaemon(handler);
  return daemon;
}

/** Runs a command against the fake daemon's home. */
async function run(command: Command<unknown>, argv: string[], d: FakeDaemon = daemon!) {
  const t = testIo({ WPAR_HOME: d.home });
  const status = await runCommand(command, argv, t.io);
  return { status, stdout: t.stdout(), stderr: t.stderr() };
}

describe('mkwpar', () => {
  test('posts the definition with the command argv exactly as given', async () => {
    const d = await start((r, res) => json(res, 201, wparInfo({ name: 'web' })));
    const argv = ['sh', '-c', 'echo "$(id -u)"; touch x', "don't", '\\n', '$HOME', '*'];
    const r = await run(mkwpar, ['-n', 'web', '-e', 'Q="a;b"', '--', ...argv]);
    assert.deepEqual(r, { status: 0, stdout: 'Workload partition web created.\n', stderr: '' });
    assert.deepEqual(d.received, [{
      method: 'POST', url: '/v1/wpars',
      body: { definition: { name: 'web', argv, env: { Q: '"a;b"' }, hostname: null, checkpointable: false, limits: {}, autostart: false } },
    }]);
  });

  test('-s --json prints the started WPAR as JSON', async () => {
    const info = wparInfo({ name: 'web', state: 'A', cid: 4, pid: 99 });
    const d = await start((_r, res) => json(res, 201, info));
    const r = await run(mkwpar, ['-s', '--json', '-n', 'web', 'sleep', '9']);
    assert.equal(r.status, 0);
    assert.deepEqual(JSON.parse(r.stdout), info);
    assert.equal((d.received[0]!.body as { start?: boolean }).start, true);
    const plain = await run(mkwpar, ['-s', '-n', 'web', 'sleep', '9']);
    assert.equal(plain.stdout, 'Workload partition web created and started (CID 4, PID 99).\n');
  });

  test('bad input is refused before the daemon is asked', async () => {
    const d = await start((_r, res) => json(res, 201, wparInfo()));
    for (const argv of [['-n', '../x', '--', 'ls'], ['-n', 'a b', 'ls'], ['-n', 'x'.repeat(65), 'ls'], ['-n', 'w', '-e', 'NOEQ', 'ls'], ['-n', 'w', '--']]) {
      const r = await run(mkwpar, argv);
      assert.equal(r.status, 2);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.split('\n').length, 2, r.stderr);
    }
    assert.deepEqual(d.received, []);
  });

  test("the daemon's refusal is one line", async () => {
    await start((_r, res) => apiError(res, 409, 'EEXIST', 'web: a WPAR of that name already exists'));
    const r = await run(mkwpar, ['-n', 'web', 'ls']);
    assert.deepEqual(r, { status: 1, stdout: '', stderr: 'mkwpar: web: a WPAR of that name already exists (EEXIST)\n' });
  });
});

describe('errors', () => {
  test('startwpar: web: no such WPAR (ENOENT)', async () => {
    const d = await start((_r, res) => apiError(res, 404, 'ENOENT', 'web: no such WPAR'));
    const r = await run(startwpar, ['web']);
    assert.deepEqual(r, { status: 1, stdout: '', stderr: 'startwpar: web: no such WPAR (ENOENT)\n' });
    assert.deepEqual(d.received, [{ method: 'POST', url: '/v1/wpars/web/start', body: undefined }]);
  });

  test('no daemon: says so, with the socket and how to start one', async () => {
    const h = tempHome();
    try {
      const t = testIo({ WPAR_HOME: h.home });
      const status = await runCommand(lswpar, [], t.io);
      assert.equal(status, 1);
      assert.equal(t.stderr(), `lswpar: wpard is not running: no socket at ${h.home}/run/wpard.sock (ENOENT); start it with "wpard --home ${h.home}" (or "npm start" in the corral checkout)\n`);
      // Something that is not a listening socket at the path: connection refused.
      mkdirSync(join(h.home, 'run'));
      writeFileSync(join(h.home, 'run', 'wpard.sock'), '');
      const t2 = testIo({ WPAR_HOME: h.home });
      assert.equal(await runCommand(startwpar, ['web'], t2.io), 1);
      assert.match(t2.stderr(), /^startwpar: wpard is not running: nothing listens on .*wpard\.sock \(ECONNREFUSED\); start it with "wpard --home /);
    } finally {
      h.remove();
    }
  });

  test('chkptwpar: ETIMEDOUT with every denial, errno not repeated', async () => {
    await start((_r, res) => apiError(res, 504, 'ETIMEDOUT', 'web: not checkpointed after 30 s (ETIMEDOUT): denied by agent:web/4711 "writing batch 12" since 10:02:11'));
    const r = await run(chkptwpar, ['-d', '/img', 'web']);
    assert.equal(r.stderr, 'chkptwpar: web: not checkpointed after 30 s (ETIMEDOUT): denied by agent:web/4711 "writing batch 12" since 10:02:11\n');
    assert.equal(r.status, 1);
  });

  test('an answer that is not JSON', async () => {
    await start((_r, res) => { res.writeHead(200); res.end('<html>'); });
    const r = await run(startwpar, ['web']);
    assert.equal(r.stderr, 'startwpar: web: wpard answered something that is not JSON: "<html>" (EIO)\n');
  });
});

describe('the other commands', () => {
  test('stopwpar, rmwpar, restartwpar send what the flags say', async () => {
    const d = await start((r, res) => {
      if (r.method === 'DELETE') { res.writeHead(204); res.end(); return; }
      json(res, r.url === '/v1/restart' ? 201 : 200, wparInfo({ name: 'web2', state: 'A', cid: 5, pid: 7 }));
    });
    assert.equal((await run(stopwpar, ['-F', '-t', '3', 'web'])).status, 0);
    const rm = await run(rmwpar, ['-F', 'web']);
    assert.deepEqual(rm, { status: 0, stdout: 'Workload partition web removed.\n', stderr: '' });
    const t = testIo({ WPAR_HOME: d.home }, '/data');
    assert.equal(await runCommand(restartwpar, ['-d', 'img', '-n', 'web2', 'web'], t.io), 0);
    assert.equal(t.stdout(), 'Workload partition web2 restarted from /data/img (CID 5, PID 7).\n');
    assert.deepEqual(d.received, [
      { method: 'POST', url: '/v1/wpars/web/stop', body: { force: true, timeoutSec: 3 } },
      { method: 'DELETE', url: '/v1/wpars/web?force=1', body: undefined },
      { method: 'POST', url: '/v1/restart', body: { dir: '/data/img', name: 'web', newName: 'web2' } },
    ]);
  });

  test('chkptwpar: one-line summary, or the result as JSON', async () => {
    const result = { name: 'web', dir: '/data/img', bytes: 2048, frozenMs: 40, totalMs: 900, agents: ['db'], killed: true };
    // The daemon streams NDJSON: progress lines, then the result.
    const d = await start((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(JSON.stringify({ type: 'progress', time: 1, bytesDone: 1024, bytesTotal: 2048 }) + '\n');
      res.end(JSON.stringify({ type: 'result', time: 2, result }) + '\n');
    });
    const t = testIo({ WPAR_HOME: d.home }, '/data');
    assert.equal(await runCommand(chkptwpar, ['-d', 'img', '-k', '-w', '5', 'web'], t.io), 0);
    assert.equal(t.stdout(), 'Checkpointed web into /data/img: 2.0 KiB, frozen 40 ms, total 900 ms, agents db; the WPAR was stopped\n');
    assert.deepEqual(d.received[0], { method: 'POST', url: '/v1/wpars/web/checkpoint', body: { dir: '/data/img', kill: true, waitSec: 5 } });
    const j = await run(chkptwpar, ['--json', '-d', '/data/img', 'web']);
    assert.deepEqual(JSON.parse(j.stdout), result);
  });

  test('chkptwpar: a daemon answering with the result alone (plain JSON) is understood', async () => {
    const result = { name: 'web', dir: '/data/img', bytes: 4096, frozenMs: 10, totalMs: 300, agents: [], killed: false };
    await start((_r, res) => json(res, 200, result));
    const j = await run(chkptwpar, ['--json', '-d', '/data/img', 'web']);
    assert.equal(j.status, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), result);
  });

  test('chkptwpar: an error streamed after progress is the one error line', async () => {
    await start((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end(JSON.stringify({ type: 'error', time: 1, error: { code: 'ETIMEDOUT', message: 'web: not checkpointed after 1 s (ETIMEDOUT): denied by db "txn" since 10:00:00' } }) + '\n');
    });
    const r = await run(chkptwpar, ['-d', '/data/img', 'web']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'chkptwpar: web: not checkpointed after 1 s (ETIMEDOUT): denied by db "txn" since 10:00:00\n');
  });

  test('lswpar --json prints exactly one JSON array of what the daemon answered', async () => {
    const list = [wparInfo({ name: 'a' }), wparInfo({ name: 'b', state: 'A', cid: 1, phase: 'normal' })];
    const d = await start((_r, res) => json(res, 200, list));
    const r = await run(lswpar, ['--json', 'a', 'b']);
    assert.equal(r.status, 0);
    assert.deepEqual(JSON.parse(r.stdout), list);
    assert.equal(d.received[0]!.url, '/v1/wpars?name=a&name=b');
    const table = await run(lswpar, []);
    assert.match(table.stdout, /^Name +State +CID +Phase +Denials +Command\n-+\na +D +- +- +0 +node server\.js\nb +A +1 +normal +0 +node server\.js\n$/);
  });
});

describe('wpar', () => {
  test('verbs, full names, --home before the verb; the prefix is the invocation', async () => {
    const d = await start((r, res) => (r.url.startsWith('/v1/wpars/nope') ? apiError(res, 404, 'ENOENT', 'nope: no such WPAR') : json(res, 200, wparInfo({ state: 'A', cid: 2 }))));
    const t = testIo({});
    assert.equal(await runWpar(['--home', d.home, 'start', 'web'], t.io), 0);
    assert.equal(t.stdout(), 'Workload partition web started (CID 2).\n');
    const t2 = testIo({ WPAR_HOME: d.home });
    assert.equal(await runWpar(['startwpar', 'nope'], t2.io), 1);
    assert.equal(t2.stderr(), 'wpar startwpar: nope: no such WPAR (ENOENT)\n');
    assert.deepEqual(d.received.map((r) => r.url), ['/v1/wpars/web/start', '/v1/wpars/nope/start']);
  });

  test('help and usage errors', async () => {
    const t = testIo({});
    assert.equal(await runWpar(['help', 'mk'], t.io), 0);
    assert.match(t.stdout(), /^Usage: wpar mk -n WparName/);
    const t2 = testIo({});
    assert.equal(await runWpar(['exec', '--help'], t2.io), 0);
    assert.match(t2.stdout(), /^Usage: wpar exec \[-n WparName\]/);
    const t3 = testIo({});
    assert.equal(await runWpar(['frob'], t3.io), 2);
    assert.equal(t3.stderr(), `wpar: unknown command "frob" (one of mk, start, stop, rm, ls, exec, chkpt, restart, move, logs, events, identity, peer, hosts, drain, undrain); see 'wpar --help'\n`);
    const t4 = testIo({});
    assert.equal(await runWpar([], t4.io), 2);
    assert.equal(t4.stderr().split('\n').length, 2);
  });
});

describe('streams', () => {
  test('wpar logs copies the log; -f ends cleanly on Ctrl-C', async () => {
    const d = await start((r, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('line 1\n');
      if (r.url.includes('follow=1')) res.write('line 2\n'); // and keep following
      else res.end();
    });
    const once = await run(logs, ['web']);
    assert.deepEqual(once, { status: 0, stdout: 'line 1\n', stderr: '' });
    const t = testIo({ WPAR_HOME: d.home });
    const running = runCommand(logs, ['-f', 'web'], t.io, 'wpar logs');
    await t.waitForStdout('line 2\n');
    t.interrupt('SIGINT');
    assert.equal(await running, 0);
    assert.equal(t.stdout(), 'line 1\nline 2\n');
    assert.equal(t.stderr(), '');
    assert.equal(t.subscribers(), 0);
    assert.equal(d.received.at(-1)!.url, '/v1/wpars/web/logs?follow=1');
  });

  test('wpar logs --json: one { name, line } object a line, also with -f and a line split across chunks', async () => {
    const d = await start((r, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('line 1\nhalf ');
      setImmediate(() => {
        res.write('and \u00e9 \\ "quoted"\n');
        if (r.url.includes('follow=1')) res.write('line 3\n'); // and keep following
        else res.end('no newline');
      });
    });
    const once = await run(logs, ['--json', 'web']);
    assert.equal(once.status, 0);
    assert.deepEqual(once.stdout.split('\n').slice(0, -1).map((l) => JSON.parse(l) as unknown), [
      { name: 'web', line: 'line 1' }, { name: 'web', line: 'half and \u00e9 \\ "quoted"' }, { name: 'web', line: 'no newline' },
    ]);
    const t = testIo({ WPAR_HOME: d.home });
    const running = runCommand(logs, ['-f', '--json', 'web'], t.io, 'wpar logs');
    await t.waitForStdout('{"name":"web","line":"line 3"}\n');
    t.interrupt('SIGINT');
    assert.equal(await running, 0);
    assert.deepEqual(t.stdout().split('\n').slice(0, -1).map((l) => (JSON.parse(l) as { line: string }).line), ['line 1', 'half and \u00e9 \\ "quoted"', 'line 3']);
    assert.equal(d.received.at(-1)!.url, '/v1/wpars/web/logs?follow=1');
  });

  test('wpar logs of an unknown WPAR', async () => {
    await start((_r, res) => apiError(res, 404, 'ENOENT', 'nope: no such WPAR'));
    assert.deepEqual(await run(logs, ['nope'], daemon), { status: 1, stdout: '', stderr: 'logs: nope: no such WPAR (ENOENT)\n' });
  });

  test('wpar events: one human line per event, lines split across chunks; --json as received', async () => {
    const T = Date.UTC(2025, 0, 2, 10, 2, 11, 5);
    const e1 = JSON.stringify({ type: 'wpar.active', time: T, cid: 1, name: 'web' });
    const e2 = JSON.stringify({ type: 'deny', time: T, cid: 1, name: 'web', owner: 'agent:web/1', reason: 'busy', since: T });
    const d = await start((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const all = `${e1}\n${e2}\n`;
      res.write(all.slice(0, 10));
      res.write(all.slice(10, e1.length + 5));
      res.end(all.slice(e1.length + 5));
    });
    const r = await run(events, []);
    assert.equal(r.status, 0);
    const lines = r.stdout.split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.005 {2}wpar\.active {7}web {2}cid=1$/);
    assert.match(lines[1]!, /^\d\d:\d\d:\d\d\.005 {2}deny {14}web {2}cid=1 owner=agent:web\/1 reason=busy since=\d\d:\d\d:\d\d$/);
    assert.equal((await run(events, ['--json'])).stdout, `${e1}\n${e2}\n`);
    assert.equal(d.received[0]!.url, '/v1/events');
  });

  test('wpar events -f ends cleanly on Ctrl-C', async () => {
    const d = await start((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(JSON.stringify({ type: 'owner.open', time: 0, owner: 'x' }) + '\n');
    });
    const t = testIo({ WPAR_HOME: d.home });
    const running = runCommand(events, ['-f', '-n', '5'], t.io);
    await t.waitForStdout('owner.open');
    t.interrupt();
    assert.equal(await running, 0);
    assert.equal(t.stderr(), '');
    assert.equal(d.received[0]!.url, '/v1/events?follow=1&tail=5');
  });
});
