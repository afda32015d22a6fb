/**
 * Console benchmarks (issue 10), each beside a baseline from the same run: the first load's bytes
 * (gzip ÷ raw), the first render of 1,000 WPARs in headless Chromium (÷ the same page with one
 * WPAR), an event's latency to an open page (÷ the same events to a raw control-API follower), and
 * the daemon's start-up time with `--http` off (÷ with it on).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium, type BrowserContext } from 'playwright-core';
import { verdict, type Row } from './measure.ts';

const ROOT = resolve(import.meta.dirname, '..');
const WPARD = join(ROOT, 'dist/daemon/wpard.js');
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

interface Daemon { home: string; stop(): Promise<void>; login?: string; origin?: string; startMs: number }

async function startDaemon(args: string[] = []): Promise<Daemon> {
  const home = mkdtempSync(join(tmpdir(), 'corral-bench-console-'));
  const t0 = performance.now();
  const proc = spawn(process.execPath, [WPARD, '--home', home, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let login: string | undefined;
  let origin: string | undefined;
  for await (const line of createInterface({ input: proc.stderr! })) {
    const m = /console on (\S+): open (\S+)/.exec(line);
    if (m) { origin = m[1]; login = m[2]; }
    if (line.includes(' serving ')) break;
  }
  const startMs = performance.now() - t0;
  const exited = new Promise((r) => proc.once('exit', r));
  return {
    home, startMs, ...(login && { login }), ...(origin && { origin }),
    async stop() { proc.kill('SIGTERM'); await exited; rmSync(home, { recursive: true, force: true }); },
  };
}

function call(d: Daemon, method: string, path: string, body?: unknown): Promise<void> {
  return new Promise((ok, fail) => {
    const req = request({ socketPath: join(d.home, 'run/wpard.sock'), method, path, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode! < 300 ? ok() : fail(new Error(`${method} ${path}: ${res.statusCode}`))));
    });
    req.on('error', fail);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Bytes of one response body as sent (gzip when asked). */
function bytesOf(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((ok, fail) => {
    request(url, { headers }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => { n += c.length; });
      res.on('end', () => ok(n));
    }).on('error', fail).end();
  });
}

async function firstLoad(d: Daemon): Promise<Row> {
  const token = new URL(d.login!).searchParams.get('token')!;
  let gz = 0;
  let raw = 0;
  for (const path of ['/', '/app.js', '/style.css']) {
    gz += await bytesOf(d.origin + path, { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip' });
    raw += await bytesOf(d.origin + path, { authorization: `Bearer ${token}` });
  }
  return { measure: 'console first load (HTML+JS+CSS)', value: `${(gz / 1024).toFixed(1)} KB gzip`, baseline: `${(raw / 1024).toFixed(1)} KB raw`, ratio: `${(gz / raw).toFixed(2)}×`, target: verdict(gz <= 100 * 1024, '≤ 100 KB gzip') };
}

async function browser(): Promise<BrowserContext & { profile: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'corral-bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: 60_000 });
  return Object.assign(context, { profile });
}

type Stats = { firstRenderMs: number; firstRenderRows: number; eventLatencies: number[] };
const statsOf = (): Stats => (globalThis as unknown as { corralStats: Stats }).corralStats;

/** Median first render (navigation start → table on screen) over `runs` loads. */
async function renderTime(ctx: BrowserContext, d: Daemon, rows: number, runs: number): Promise<number> {
  const page = await ctx.newPage();
  await page.goto(d.login!);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    if (i > 0) await page.reload();
    await page.waitForFunction((n) => { const s = (globalThis as unknown as { corralStats: Stats }).corralStats; return s.firstRenderMs > 0 && s.firstRenderRows === n; }, rows, { timeout: 30_000 });
    times.push((await page.evaluate(statsOf)).firstRenderMs);
  }
  await page.close();
  return median(times);
}

/** Journal → open page, and journal → a raw follower of the control API, for the same `n` events. */
async function eventLatency(ctx: BrowserContext, d: Daemon, n: number): Promise<[number, number]> {
  const page = await ctx.newPage();
  await page.goto(d.login!);
  await page.waitForFunction(() => (globalThis as unknown as { corralStats: Stats }).corralStats.firstRenderMs > 0);
  await page.evaluate(() => { (globalThis as unknown as { corralStats: Stats }).corralStats.eventLatencies = []; });
  const raw: number[] = [];
  const follower = await new Promise<import('node:http').ClientRequest>((subscribed) => {
    const req = request({ socketPath: join(d.home, 'run/wpard.sock'), path: '/v1/events?follow=1&tail=0' }, (res) => {
      createInterface({ input: res }).on('line', (l) => { raw.push(Date.now() - (JSON.parse(l) as { time: number }).time); }).on('error', () => {});
      res.on('error', () => {});
      subscribed(req);
    });
    req.on('error', () => {});
    req.end();
  });
  for (let i = 0; i < n; i++) {
    await call(d, 'POST', '/v1/wpars', { definition: { name: `late${i}`, argv: ['true'] } });
    await new Promise((r) => setTimeout(r, 20));
  }
  await page.waitForFunction((k) => (globalThis as unknown as { corralStats: Stats }).corralStats.eventLatencies.length >= k, n, { timeout: 30_000 });
  const seen = (await page.evaluate(statsOf)).eventLatencies;
  follower.destroy();
  await page.close();
  return [median(seen), median(raw)];
}

/** The bench's console rows. */
export async function consoleBench(): Promise<Row[]> {
  const rows: Row[] = [];
  // Start-up: --http off and on, interleaved.
  const off: number[] = [];
  const on: number[] = [];
  for (let i = 0; i < 9; i++) {
    for (const [args, into] of (i % 2 === 0 ? [[[], off], [['--http', ':0'], on]] : [[['--http', ':0'], on], [[], off]]) as [string[], number[]][]) {
      const d = await startDaemon(args);
      into.push(d.startMs);
      await d.stop();
    }
  }
  rows.push({ measure: 'wpard start-up, --http off', value: `${median(off).toFixed(1)} ms`, baseline: `${median(on).toFixed(1)} ms with --http on`, ratio: `${(median(off) / median(on)).toFixed(2)}×`, target: 'off loads no console code' });

  const one = await startDaemon(['--http', ':0']);
  const many = await startDaemon(['--http', ':0']);
  try {
    rows.push(await firstLoad(many));
    await call(one, 'POST', '/v1/wpars', { definition: { name: 'w0', argv: ['true'] } });
    for (let i = 0; i < 1000; i++) await call(many, 'POST', '/v1/wpars', { definition: { name: `w${String(i).padStart(4, '0')}`, argv: ['true'], checkpointable: i % 2 === 0 } });
    if (!existsSync(CHROMIUM)) {
      rows.push({ measure: 'console first render / event latency', value: 'skipped', baseline: '', ratio: '', target: `${CHROMIUM} not installed` });
      return rows;
    }
    const ctx = await browser();
    try {
      const t1 = await renderTime(ctx, one, 1, 5);
      const t1000 = await renderTime(ctx, many, 1000, 5);
      rows.push({ measure: 'console first render, 1,000 WPARs (Chromium)', value: `${t1000.toFixed(0)} ms`, baseline: `${t1.toFixed(0)} ms with 1 WPAR`, ratio: `${(t1000 / t1).toFixed(2)}×`, target: verdict(t1000 <= 500, '≤ 500 ms') });
      const [page, rawMs] = await eventLatency(ctx, many, 50);
      rows.push({ measure: 'event → open page (1,000 rows), median', value: `${page.toFixed(0)} ms`, baseline: `${rawMs.toFixed(0)} ms to a raw API follower`, ratio: `+${(page - rawMs).toFixed(0)} ms`, target: verdict(page <= 100, '≤ 100 ms') });
    } finally {
      await ctx.close();
      rmSync(ctx.profile, { recursive: true, force: true });
    }
  } finally {
    await one.stop();
    await many.stop();
  }
  return rows;
}
