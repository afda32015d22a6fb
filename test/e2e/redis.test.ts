// End to end (issues #4, #7): a real program nobody here wrote — Redis, from Debian — runs sealed,
// is checkpointed on one system and restarted on another with every acknowledged write.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { findTool } from '../../src/runtime/isolation.ts';
import { System, trust, waitForOutput } from './harness.ts';

const redis = findTool('redis-server');
const cli = findTool('redis-cli');

/** A free TCP port on loopback (bound, read, released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('Redis (appendonly) checkpointed with -k on one system and restarted on another keeps every acknowledged write', {
  skip: redis && cli ? false : 'needs redis-server and redis-cli (apt-get install redis-server)', timeout: 120_000,
}, async () => {
  await using a = await System.start();
  await using b = await System.start();
  await trust(b, a);
  const port = await freePort();
  const call = (...args: string[]): string => execFileSync(cli!, ['-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 }).trim();
  await a.ok('mkwpar', ['-n', 'redis', '-c', '-R', 'memory=256M', '-s', '--', redis!,
    '--port', String(port), '--bind', '127.0.0.1', '--dir', '.', '--appendonly', 'yes', '--appendfsync', 'always', '--save', '']);
  await waitForOutput(a, 'redis', /Ready to accept connections/);
  const info = await a.wpar('redis');
  assert.match(info.isolation!, /^sealed: user/);
  for (let i = 0; i < 200; i++) assert.equal(call('SET', `key:${i}`, `value ${i}`), 'OK');
  assert.equal(call('INCRBY', 'counter', '41'), '41');

  const images = mkdtempSync(join(tmpdir(), 'corral-redis-img-'));
  try {
    await a.ok('chkptwpar', ['-d', join(images, 'redis'), '-k', 'redis']);
    assert.throws(() => call('PING'), 'the departure no longer serves');
    await b.ok('restartwpar', ['-d', join(images, 'redis'), 'redis']);
    await waitForOutput(b, 'redis', /Ready to accept connections/);
    assert.equal(call('DBSIZE'), '201');
    for (let i = 0; i < 200; i += 37) assert.equal(call('GET', `key:${i}`), `value ${i}`);
    assert.equal(call('INCR', 'counter'), '42');
    assert.equal((await b.wpar('redis')).state, 'A');
  } finally {
    rmSync(images, { recursive: true, force: true });
  }
});
