// `wpard --http` (issue 10, W1): the address's syntax, the access rules, and refusals in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Access, cookieValue, refuseChange } from '../../src/console/access.ts';
import { parseHttpAddress } from '../../src/console/address.ts';
import { ROOT, runNode } from '../e2e/harness.ts';

test('--http takes ADDR:PORT, :PORT (loopback) or [IPV6]:PORT, and refuses anything else saying why', () => {
  assert.deepEqual(parseHttpAddress(':8080'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseHttpAddress('0.0.0.0:0'), { host: '0.0.0.0', port: 0 });
  assert.deepEqual(parseHttpAddress('[::1]:9'), { host: '::1', port: 9 });
  assert.deepEqual(parseHttpAddress('localhost:80'), { host: 'localhost', port: 80 });
  for (const [spec, why] of [['8080', /no port/], [':http', /not a number/], [':65536', /not a number/], ['::1:80', /brackets/], ['a b:1', /neither/], ['[x]:1', /IPv6/]] as const) {
    assert.throws(() => parseHttpAddress(spec), (err: Error & { code?: string }) => err.code === 'EINVAL' && why.test(err.message), spec);
  }
});

test('the token, the cookie and the Origin rule', () => {
  const token = 'A'.repeat(43);
  const a = new Access(token, 1234);
  assert.equal(a.cookieName, 'corral_console_1234');
  assert.match(a.sessionCookie(), /^corral_console_1234=[A-Za-z0-9_-]+; HttpOnly; SameSite=Strict; Path=\/$/);
  const session = cookieValue(a.sessionCookie().split(';')[0], a.cookieName);
  assert.equal(a.authenticate({ cookie: `x=1; corral_console_1234=${session}` }), 'cookie');
  assert.equal(a.authenticate({ authorization: `Bearer ${token}` }), 'bearer');
  assert.equal(a.authenticate({ authorization: `Bearer ${token}x` }), null);
  assert.equal(a.authenticate({ authorization: 'Basic abc', cookie: `corral_console_1234=${session}` }), null, 'a wrong Authorization is not saved by a cookie');
  assert.equal(a.authenticate({ cookie: `corral_console_1235=${session}` }), null, 'another port\'s cookie');
  assert.equal(new Access('B'.repeat(43), 1234).authenticate({ cookie: `corral_console_1234=${session}` }), null, 'another token\'s session');

  const host = '127.0.0.1:1234';
  assert.equal(refuseChange('cookie', { host, origin: 'http://127.0.0.1:1234', 'sec-fetch-site': 'same-origin' }), null);
  assert.match(refuseChange('cookie', { host })!, /Origin/);
  assert.match(refuseChange('cookie', { host, origin: 'http://127.0.0.1:9999' })!, /not allowed/);
  assert.match(refuseChange('cookie', { host, origin: 'http://127.0.0.1:1234', 'sec-fetch-site': 'same-site' })!, /same-site/);
  assert.equal(refuseChange('bearer', { host }), null, 'curl with the token');
  assert.match(refuseChange('bearer', { host, origin: 'http://evil.example' })!, /not allowed/);
});

test('wpard refuses a bad --http, or a port in use, in one line with the errno', { timeout: 60_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'corral-flags-'));
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  try {
    const bad = await runNode(join(ROOT, 'dist/daemon/wpard.js'), ['--home', home, '--http', 'nonsense']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'wpard: --http "nonsense": no port; expected ADDR:PORT or :PORT (EINVAL)\n');
    const port = (busy.address() as AddressInfo).port;
    const inUse = await runNode(join(ROOT, 'dist/daemon/wpard.js'), ['--home', home, '--http', `127.0.0.1:${port}`]);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, new RegExp(`^wpard: cannot start: cannot serve the console on 127\\.0\\.0\\.1:${port}: .*\\(EADDRINUSE\\)\\n$`));
  } finally {
    busy.close();
    rmSync(home, { recursive: true, force: true });
  }
});
