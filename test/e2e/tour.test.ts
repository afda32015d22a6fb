// Item 12 of issue 11: the README's tour runs as written. Each `$ ` line of its console block is run
// by bash in the checkout (so the alias line defines `wpar` exactly as a reader's shell would), with
// the tour's paths (/tmp/other, /tmp/counter.img, the default home) mapped into a temp directory;
// `npm start [-- --home DIR]` lines start a daemon the way npm start does (its PATH first has the
// pinned Node). A command followed by an error line must fail with that line; one followed by
// output must print its first line (numbers aside).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, System } from './harness.ts';
import { within } from '../support/bounded.ts';

interface Step { readonly command: string; readonly output: readonly string[] }

function tourSteps(): Step[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## A tour'));
  const block = /```console\n([\s\S]*?)```/.exec(section)![1]!;
  const steps: { command: string; output: string[] }[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), output: [] });
    else if (line !== '') steps.at(-1)!.output.push(line);
  }
  return steps;
}

/** A regexp for a line shown in the README: literal except that numbers and clock times may differ. */
function shown(line: string): RegExp {
  // A duration is shown in ms or s (676 ms, 1.7 s) depending on how long it took.
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\d+/g, '\\d+').replace(/\\d\+ ms\b/g, '\\d+(?:\\.\\d+)? m?s');
  return new RegExp(`^${escaped}`);
}

test('the README tour runs as written', { timeout: 180_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'corral-tour-'));
  const map = (text: string): string => text.replaceAll('/tmp/other', join(work, 'other')).replaceAll('/tmp/counter.img', join(work, 'counter.img'));
  const systems: System[] = [];
  const path = `${join(ROOT, 'node_modules/.bin')}:${process.env['PATH']}`;
  const savedPath = process.env['PATH'];
  process.env['PATH'] = path; // as npm start runs wpard: the WPAR's `node` is the pinned one
  const env = { ...process.env, WPAR_HOME: join(work, 'default'), PATH: path };
  let aliases = '';
  try {
    const steps = tourSteps();
    assert.ok(steps.length >= 10, 'the tour has its steps');
    for (const step of steps) {
      const command = map(step.command.replace(/\s+# .*$/, ''));
      const npmStart = /^npm start(?: -- --home (\S+))?$/.exec(command);
      if (npmStart) {
        systems.push(await System.start({ home: npmStart[1] ?? join(work, 'default') }));
        continue;
      }
      if (command.startsWith('alias ')) { aliases += `${command}\n`; continue; }
      if (command.includes(' -w 0 ')) {
        // A reader types this seconds after the start; the test waits for the counter's first denial.
        await within((async () => { while ((await systems[0]!.wpar('counter')).denials.length === 0) await new Promise((r) => setTimeout(r, 20)); })(), 'the counter to deny');
      }
      const r = spawnSync('bash', ['-c', `shopt -s expand_aliases\n${aliases}${command}`], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
      const first = step.output[0] === undefined ? undefined : map(step.output[0]);
      if (first !== undefined && /\(E[A-Z]+\)/.test(first)) {
        assert.notEqual(r.status, 0, `${command} should fail`);
        assert.match(r.stderr, shown(first.slice(0, first.indexOf(' since '))), command);
      } else {
        assert.equal(r.status, 0, `${command}: ${r.stderr}`);
        if (first !== undefined) assert.match(r.stdout, shown(first), command);
      }
    }
    const after = await systems[1]!.wpar('counter');
    assert.equal(after.state, 'A', 'the counter runs on the other system');
  } finally {
    process.env['PATH'] = savedPath;
    for (const s of systems) await s[Symbol.asyncDispose]();
    rmSync(work, { recursive: true, force: true });
  }
});

test('npm start -- --home DIR serves DIR and its alias names it (it was silently ignored)', async () => {
  const home = mkdtempSync(join(tmpdir(), 'corral-start-'));
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [join(ROOT, 'dist/daemon/start.js'), '--home', home], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    await within(new Promise<void>((ready, fail) => {
      child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; if (err.includes(' serving ') && out.includes('alias')) ready(); });
      child.stdout.on('data', () => { if (err.includes(' serving ') && out.includes('alias')) ready(); });
      child.once('exit', (code) => fail(new Error(`npm start exited ${code}: ${err}`)));
    }), 'npm start to serve');
    assert.match(err, new RegExp(`wpard: serving ${home} on ${home}/run/wpard.sock`));
    assert.match(out, new RegExp(`alias wpar='.*wpar\\.js --home ${home}'`));
  } finally {
    child.kill('SIGTERM');
    await within(new Promise((r) => child.once('exit', r)), 'npm start to stop');
    rmSync(home, { recursive: true, force: true });
  }
});
