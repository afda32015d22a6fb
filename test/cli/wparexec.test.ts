// wparexec: exit status mapping, and the foreground run against a fake daemon.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, test } from 'node:test';
import { runCommand } from '../../src/cli/command.ts';
import { exitStatusFor, wparexec } from '../../src/cli/commands/wparexec.ts';
import { apiError, fakeDaemon, json, testIo, wparInfo, type FakeDaemon, type Received } from './helpers.ts';

describe('exit status mapping', () => {
  test("CMD's exit code", () => {
    assert.equal(exitStatusFor({ code: 0, signal: null }), 0);
    assert.equal(exitStatusFor({ code: 3, signal: null }), 3);
    assert.equal(exitStatusFor({ code: 255, signal: null }), 255);
  });

  test('128 + the number of the signal that killed it', () => {
    assert.equal(exitStatusFor({ code: null, signal: 'SIGKILL' }), 137);
    assert.equal(exitStatusFor({ code: null, signal: 'SIGTERM' }), 143);
    assert.equal(exitStatusFor({ code: null, signal: 'SIGINT' }), 130);
    assert.equal(exitStatusFor({ code: null, signal: 'SIGSEGV' }), 139);
  });

  test('1 when nothing is known', () => {
    assert.equal(exitStatusFor({ code: null, signal: null }), 1);
    assert.equal(exitStatusFor({ code: null, signal: 'SIGNOPE' }), 1);
  });
});

describe('a foreground run', () => {
  let daemon: FakeDaemon | undefined;
  afterEach(async () => {
    await daemon?.close();
    daemon = undefined;
  });

  /** A daemon that creates `job`, streams `output` as its log, and answers the wait with `exit` (or holds it). */
  async function jobDaemon(output: string, exit: { code: number | null; signal: string | null } | 'hold') {
    const held: { wait?: ServerResponse; logs?: ServerResponse } = {};
    daemon = await fakeDaemon((r: Received, res) => {
      if (r.method === 'POST' && r.url === '/v1/wpars') return json(res, 201, wparInfo({ name: 'job', state: 'A', cid: 1, transient: true }));
      if (r.url === '/v1/wpars/job/logs?follow=1&next=1') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(output);
        if (exit === 'hold') held.logs = res;
        else res.end();
        return;
      }
      if (r.url === '/v1/wpars/job/wait') {
        if (exit === 'hold') held.wait = res;
        else json(res, 200, { ...exit, at: 0, reason: 'exited' });
        return;
      }
      if (r.method === 'POST' && r.url === '/v1/wpars/job/start') return json(res, 200, wparInfo({ name: 'job', state: 'A', cid: 1, transient: true }));
      if (r.url === '/v1/wpars/job/stop') {
        json(res, 200, wparInfo({ name: 'job' }));
        return;
      }
      apiError(res, 404, 'ENOENT', 'unexpected');
    });
    return { daemon, held };
  }

  test("copies the console log and exits with CMD's status", async () => {
    const { daemon: d } = await jobDaemon('hello\nworld\n', { code: 3, signal: null });
    const t = testIo({ WPAR_HOME: d.home });
    const status = await runCommand(wparexec, ['-n', 'job', '--', 'sh', '-c', 'echo hello; echo world; exit 3'], t.io);
    assert.equal(status, 3);
    assert.equal(t.stdout(), 'hello\nworld\n');
    assert.equal(t.stderr(), '');
    assert.equal(t.subscribers(), 0);
    assert.deepEqual(d.received[0], {
      method: 'POST', url: '/v1/wpars',
      body: {
        definition: { name: 'job', argv: ['sh', '-c', 'echo hello; echo world; exit 3'], env: {}, hostname: null, checkpointable: false, limits: {}, autostart: false },
        transient: true,
      },
    });
  });

  test('killed by a signal: 128 + its number', async () => {
    const { daemon: d } = await jobDaemon('', { code: null, signal: 'SIGKILL' });
    const t = testIo({ WPAR_HOME: d.home });
    assert.equal(await runCommand(wparexec, ['-n', 'job', 'sleep', '100'], t.io), 137);
  });

  test('Ctrl-C stops the WPAR, a second one forces the stop; then the status of the stopped CMD', async () => {
    const { daemon: d, held } = await jobDaemon('working\n', 'hold');
    const t = testIo({ WPAR_HOME: d.home });
    const running = runCommand(wparexec, ['-n', 'job', 'sleep', '100'], t.io);
    await d.arrived('GET', '/v1/wpars/job/wait');
    await t.waitForStdout('working\n');
    t.interrupt('SIGINT');
    const stop1 = await d.arrived('POST', '/v1/wpars/job/stop');
    assert.deepEqual(stop1.body, {});
    t.interrupt('SIGTERM');
    await d.arrived('POST', '/v1/wpars/job/stop', 2);
    assert.deepEqual(d.received.filter((r) => r.url === '/v1/wpars/job/stop').map((r) => r.body), [{}, { force: true }]);
    held.logs!.end('bye\n');
    json(held.wait!, 200, { code: null, signal: 'SIGKILL', at: 0, reason: 'stopped by stopwpar' });
    assert.equal(await running, 137);
    assert.equal(t.stdout(), 'working\nbye\n');
    assert.equal(t.stderr(), '');
  });

  test('Ctrl-C after the WPAR is already gone: asks again how it ended', async () => {
    let waits = 0;
    daemon = await fakeDaemon((r, res) => {
      if (r.url === '/v1/wpars') return json(res, 201, wparInfo({ name: 'job', state: 'A', cid: 1 }));
      if (r.url.startsWith('/v1/wpars/job/logs')) { res.writeHead(200); res.end(); return; }
      if (r.url === '/v1/wpars/job/start') return json(res, 200, wparInfo({ name: 'job', state: 'A', cid: 1 }));
      if (r.url === '/v1/wpars/job/stop') return apiError(res, 404, 'ENOENT', 'job: no such WPAR');
      if (r.url === '/v1/wpars/job/wait' && ++waits === 2) return json(res, 200, { code: 5, signal: null, at: 0, reason: 'exited' });
      // the first wait is never answered
    });
    const t = testIo({ WPAR_HOME: daemon.home });
    const running = runCommand(wparexec, ['-n', 'job', 'true'], t.io);
    await daemon.arrived('GET', '/v1/wpars/job/wait');
    t.interrupt('SIGTERM');
    assert.equal(await running, 5);
    assert.equal(t.stderr(), '');
  });

  test('three interrupts give up waiting: 130', async () => {
    daemon = await fakeDaemon((r, res) => {
      if (r.url === '/v1/wpars') return json(res, 201, wparInfo({ name: 'job', state: 'A', cid: 1 }));
      if (r.url.startsWith('/v1/wpars/job/logs')) { res.writeHead(200); res.end(); return; }
      if (r.url === '/v1/wpars/job/start') return json(res, 200, wparInfo({ name: 'job', state: 'A', cid: 1 }));
      if (r.url === '/v1/wpars/job/stop') return json(res, 200, wparInfo({ name: 'job', state: 'A', cid: 1 }));
      // the wait is never answered
    });
    const t = testIo({ WPAR_HOME: daemon.home });
    const running = runCommand(wparexec, ['-n', 'job', 'true'], t.io);
    await daemon.arrived('GET', '/v1/wpars/job/wait');
    t.interrupt();
    t.interrupt();
    t.interrupt();
    assert.equal(await running, 130);
    assert.equal(t.subscribers(), 0);
  });

  test('a WPAR that cannot be created or started: the one error line, exit 1', async () => {
    daemon = await fakeDaemon((_r, res) => apiError(res, 503, 'ECANCELED', 'job: activation refused: owner "quota" threw: over quota'));
    const t = testIo({ WPAR_HOME: daemon.home });
    assert.equal(await runCommand(wparexec, ['-n', 'job', 'true'], t.io), 1);
    assert.equal(t.stderr(), 'wparexec: job: activation refused: owner "quota" threw: over quota (ECANCELED)\n');
    assert.equal(t.stdout(), '');
    assert.equal(t.subscribers(), 0);
  });

  test('the log is followed before the WPAR starts, so a quick CMD loses no output', async () => {
    daemon = await fakeDaemon((r, res) => {
      if (r.url === '/v1/wpars') return json(res, 201, wparInfo({ name: 'job', state: 'D', transient: true }));
      if (r.url.startsWith('/v1/wpars/job/logs')) { res.writeHead(200); res.end('all of it\n'); return; }
      if (r.url === '/v1/wpars/job/start') return json(res, 200, wparInfo({ name: 'job', state: 'A', cid: 1 }));
      json(res, 200, { code: 0, signal: null, at: 0, reason: 'exited' });
    });
    const t = testIo({ WPAR_HOME: daemon.home });
    assert.equal(await runCommand(wparexec, ['-n', 'job', 'true'], t.io), 0);
    assert.equal(t.stdout(), 'all of it\n');
    assert.deepEqual(daemon.received.map((r) => `${r.method} ${r.url}`), [
      'POST /v1/wpars', 'GET /v1/wpars/job/logs?follow=1&next=1', 'POST /v1/wpars/job/start', 'GET /v1/wpars/job/wait',
    ]);
  });
});
