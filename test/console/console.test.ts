// The web console (issue 10) in a real browser: Debian's Chromium driven by playwright-core, against a
// real wpard with --http in a temp home, driving the real commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { imagePath } from '../../src/image/index.ts';
import { ROOT, waitForOutput } from '../e2e/harness.ts';
import { launch, NO_BROWSER } from './browser.ts';
import { http, pidRunning, startConsoleSystem } from './helpers.ts';

const DENIER = join(import.meta.dirname, 'fixtures/denier.ts');
/** Test artefacts (the screenshot) go here; not committed. */
const ARTIFACTS = join(ROOT, 'test-results');
const LOOP = ['sh', '-c', 'while true; do echo "tick $(date +%T)"; sleep 1; done'];

/** The list's row of one WPAR (the row whose header cell is its name). */
function row(page: Page, name: string) {
  return page.locator('#wpars tbody tr').filter({ has: page.getByRole('rowheader', { name, exact: true }) });
}

test('without the token every route answers 401 and names no WPAR', { skip: NO_BROWSER, timeout: 120_000 }, async () => {
  await using c = await startConsoleSystem();
  await c.sys.ok('mkwpar', ['-n', 'secret-payroll', '--', 'true']);
  const tokenFile = join(c.sys.home, 'console.token');
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  assert.equal(readFileSync(tokenFile, 'utf8').trim(), c.token);

  const paths = ['/', '/app.js', '/style.css', '/api/wpars', '/api/wpars/secret-payroll', '/api/wpars/secret-payroll/events',
    '/api/wpars/secret-payroll/logs', '/api/events', '/api/system', '/metrics', '/no-such-page', '/?token=not-the-token'];
  const wrong: Record<string, string>[] = [{}, { authorization: 'Bearer not-the-token' }, { cookie: `corral_console_${new URL(c.origin).port}=forged` }];
  for (const headers of wrong) {
    for (const path of paths) {
      const r = await http(c.origin + path, { headers });
      assert.equal(r.status, 401, `${path} with ${JSON.stringify(headers)}`);
      assert.doesNotMatch(r.body, /secret-payroll|"name"/, `${path} leaks nothing`);
    }
    const act = await http(`${c.origin}/api/wpars/secret-payroll/start`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json', origin: c.origin }, body: '{}' });
    assert.equal(act.status, 401);
  }
  assert.equal((await c.sys.wpar('secret-payroll')).state, 'D', 'nothing was started');
  const ok = await http(`${c.origin}/api/wpars`, { headers: { authorization: `Bearer ${c.token}` } });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /secret-payroll/, 'the token opens it');

  await using browser = await launch();
  const page = await browser.newPage();
  const res = await page.goto(`${c.origin}/`);
  assert.equal(res?.status(), 401);
  assert.doesNotMatch(await page.content(), /secret-payroll/);
});

test('log in, see WPARs live: a denial appears without a reload, a checkpoint writes an image, Stop stops', { skip: NO_BROWSER, timeout: 120_000 }, async () => {
  await using c = await startConsoleSystem();
  const img = mkdtempSync(join(tmpdir(), 'corral-console-img-'));
  try {
    await c.sys.ok('mkwpar', ['-n', 'denier', '-c', '-R', 'memory=256M,procs=64', '--', process.execPath, DENIER]);
    await c.sys.ok('mkwpar', ['-n', 'web', '-c', '-s', '-R', 'cpu=50', '--', ...LOOP]);
    await c.sys.ok('mkwpar', ['-n', 'batch', '--', 'true']);
    await c.sys.ok('startwpar', ['denier']);
    await waitForOutput(c.sys, 'denier', /ready/);

    await using browser = await launch();
    const page = await browser.newPage();
    const res = await page.goto(c.login);
    assert.equal(res?.status(), 200);
    assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
    const [cookie] = await browser.cookies(c.origin);
    assert.ok(cookie, 'a session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.notEqual(cookie.value, c.token, 'the cookie is not the token');

    await row(page, 'denier').locator('td.state', { hasText: 'active' }).waitFor();
    await row(page, 'web').locator('td.state', { hasText: 'active' }).waitFor();
    await row(page, 'batch').locator('td.state', { hasText: 'defined' }).waitFor();
    // W3: Move is offered (the daemon has the move route) for an active, checkpointable WPAR.
    assert.equal(await row(page, 'web').getByRole('button', { name: 'Move' }).isEnabled(), true);
    assert.match(await row(page, 'denier').locator('td').nth(4).innerText(), /\/ 256 MiB/, 'memory use against its limit');

    // A denial made by the agent after the page loaded appears without a reload.
    await page.evaluate(() => { (globalThis as unknown as { marker: string }).marker = 'same page'; });
    const pid = pidRunning(c.sys, 'denier', DENIER);
    process.kill(pid, 'SIGUSR1');
    const denials = row(page, 'denier').locator('td.denials');
    await denials.getByText(/agent:denier\/\d+ "writing batch 7" since \d\d:\d\d:\d\d/).waitFor();
    assert.equal(await page.evaluate(() => (globalThis as unknown as { marker?: string }).marker), 'same page', 'no reload');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'console.png') });

    // A checkpoint it denies fails after the willing-to-wait seconds, with the reason in words.
    await row(page, 'denier').getByRole('button', { name: 'Checkpoint' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Image directory').fill(img);
    await dialog.getByLabel('Willing to wait (seconds)').fill('1');
    await dialog.getByRole('button', { name: 'Checkpoint' }).click();
    await page.getByRole('alert').getByText(/not checkpointed after 1 s \(ETIMEDOUT\): denied by agent:denier\/\d+ "writing batch 7"/).waitFor();
    assert.equal(existsSync(imagePath(img)), false);

    // Allowed again: the checkpoint from the page writes an image.
    process.kill(pid, 'SIGUSR1');
    await denials.getByText('0', { exact: true }).waitFor();
    await row(page, 'denier').getByRole('button', { name: 'Checkpoint' }).click();
    await dialog.getByLabel('Image directory').fill(img);
    await dialog.getByLabel('Willing to wait (seconds)').fill('5');
    await dialog.getByRole('button', { name: 'Checkpoint' }).click();
    await page.getByRole('status').getByText(`Checkpointed denier to ${img}`).waitFor();
    assert.ok(statSync(imagePath(img)).size > 0, 'the image exists');
    const progress = await page.evaluate(() => (globalThis as unknown as { corralStats: { progress: { name: string; bytesDone: number; bytesTotal: number }[] } }).corralStats.progress);
    assert.ok(progress.some((p) => p.name === 'denier' && p.bytesTotal > 0 && p.bytesDone === p.bytesTotal), 'the page heard the image being written');
    assert.equal((await c.sys.wpar('denier')).state, 'A', 'still running after the checkpoint');

    // Restart from that image, under another name, with the form.
    const restart = page.getByRole('form', { name: 'Restart from an image' });
    await restart.getByLabel('Image directory').fill(img);
    await restart.getByLabel('WPAR in the image').fill('denier');
    await restart.getByLabel('New name (optional)').fill('denier-copy');
    await restart.getByRole('button', { name: 'Restart' }).click();
    await page.getByRole('status').getByText(`Restarted denier-copy from ${img}.`).waitFor();
    await row(page, 'denier-copy').locator('td.state', { hasText: 'active' }).waitFor();
    assert.equal((await c.sys.wpar('denier-copy')).state, 'A');

    // The WPAR's own page: definition, console log, events, checkpoints.
    await row(page, 'denier').getByRole('link', { name: 'denier' }).click();
    await page.locator('#definition').getByText(DENIER).waitFor();
    await page.locator('#log').getByText('denied').waitFor();
    await page.locator('#events').getByText(/checkpoint\.done denier/).waitFor();
    await page.locator('#checkpoints').getByText(img).first().waitFor();
    // The console log follows: what the program writes now appears (deny, then allow again).
    process.kill(pid, 'SIGUSR1');
    await page.locator('#log').getByText(/allowed\ndenied/).waitFor();
    process.kill(pid, 'SIGUSR1');
    await page.locator('#log').getByText(/allowed\ndenied\nallowed/).waitFor();
    await page.getByRole('link', { name: '← all WPARs' }).click();

    // Events reach the open page quickly: 20 deny/allow pairs, each timed from its journal entry.
    await page.evaluate(() => { (globalThis as unknown as { corralStats: { eventLatencies: number[] } }).corralStats.eventLatencies = []; });
    process.kill(pid, 'SIGUSR2');
    await page.waitForFunction(() => (globalThis as unknown as { corralStats: { eventLatencies: number[] } }).corralStats.eventLatencies.length >= 40, undefined, { timeout: 20_000 });
    const latencies = await page.evaluate(() => (globalThis as unknown as { corralStats: { eventLatencies: number[] } }).corralStats.eventLatencies);
    const median = [...latencies].sort((a, b) => a - b)[latencies.length >> 1]!;
    assert.ok(median <= 100, `event → page median ${median} ms ≤ 100 ms`);

    // Stop, with its button: the WPAR stops.
    await row(page, 'web').getByRole('button', { name: 'Stop' }).click();
    await row(page, 'web').locator('td.state', { hasText: 'defined' }).waitFor();
    const web = await c.sys.wpar('web');
    assert.equal(web.state, 'D');
    assert.equal(web.lastExit?.reason, 'stopped by stopwpar');
    // And an error in words: stopping what is not running.
    await row(page, 'web').getByRole('button', { name: 'Stop' }).evaluate((b) => { (b as unknown as { disabled: boolean }).disabled = false; });
    await row(page, 'web').getByRole('button', { name: 'Stop' }).click();
    await page.getByRole('alert').getByText('Stop web failed: web: not active (state D) (EINVAL)').waitFor();
    // Start, with its button.
    await row(page, 'web').getByRole('button', { name: 'Start' }).click();
    await row(page, 'web').locator('td.state', { hasText: 'active' }).waitFor();
    assert.equal((await c.sys.wpar('web')).state, 'A');
  } finally {
    rmSync(img, { recursive: true, force: true });
  }
});

test('a page on another origin cannot act, even with the session cookie', { skip: NO_BROWSER, timeout: 120_000 }, async () => {
  await using c = await startConsoleSystem();
  await c.sys.ok('mkwpar', ['-n', 'web', '-s', '--', ...LOOP]);
  const stopUrl = `${c.origin}/api/wpars/web/stop`;
  // Another port on the same host: same site, so SameSite sends the cookie; the Origin check must refuse.
  const evil = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><form id="f" method="POST" action="${stopUrl}" enctype="text/plain"><input name='{"force":true,"x":"' value='"}'></form>
<script>
fetch(${JSON.stringify(stopUrl)}, { method: 'POST', mode: 'no-cors', credentials: 'include', body: '{}' })
  .finally(() => fetch(${JSON.stringify(stopUrl)}, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(() => {}))
  .finally(() => document.getElementById('f').submit());
</script>`);
  });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
  try {
    await using browser = await launch();
    const page = await browser.newPage();
    await page.goto(c.login);
    await row(page, 'web').locator('td.state', { hasText: 'active' }).waitFor();
    const answers: number[] = [];
    const refusals = new Promise<void>((done) => page.on('response', (r) => {
      if (r.url() === stopUrl && r.request().method() === 'POST') { answers.push(r.status()); if (answers.length === 2) done(); }
    }));
    await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    await Promise.race([refusals, new Promise((_, fail) => setTimeout(() => fail(new Error(`the console answered only ${JSON.stringify(answers)} in 20 s`)), 20_000).unref())]);
    await page.waitForURL(stopUrl); // the form's navigation landed on the refusal
    assert.deepEqual(answers, [403, 403], 'the no-cors fetch and the form post were refused');
    assert.match(await page.content(), /not allowed/);
    assert.equal((await c.sys.wpar('web')).state, 'A', 'still running');

    // Without a browser: the cookie without this console's Origin cannot act either.
    const cookie = (await browser.cookies(c.origin))[0]!;
    for (const headers of [{}, { origin: 'http://evil.example' }, { origin: c.origin, 'sec-fetch-site': 'cross-site' }] as Record<string, string>[]) {
      const r = await http(stopUrl, { method: 'POST', headers: { ...headers, cookie: `${cookie.name}=${cookie.value}`, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(r.status, 403, JSON.stringify(headers));
    }
    assert.equal((await c.sys.wpar('web')).state, 'A', 'still running');
  } finally {
    evil.close();
  }
});
