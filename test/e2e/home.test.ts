// Items 4, 5 and 6 of issue 11, end to end: what a daemon keeps in its home is private whatever the
// umask and the home's mode; events.log is rotated within its bounds; an emptied store is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, System } from './harness.ts';

/** Every path under `dir` with its mode, except inside WPAR roots (the WPAR's own files). */
function modes(dir: string, out: Map<string, number> = new Map(), top = dir): Map<string, number> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const rel = relative(top, path);
    if (/^wpars\/[^/]+\/root$/.test(rel)) continue;
    out.set(rel, statSync(path).mode & 0o777);
    if (entry.isDirectory()) modes(path, out, top);
  }
  return out;
}

test('every file the daemon keeps is 0600 and every directory 0700, under umask 0 in a 0755 home', async () => {
  const home = mkdtempSync(join(tmpdir(), 'corral-e2e-'));
  chmodSync(home, 0o755);
  mkdirSync(join(home, 'wpars/old'), { recursive: true, mode: 0o755 });
  writeFileSync(join(home, 'events.log'), '', { mode: 0o644 }); // as an older version left them
  const umask = process.umask(0); // the daemon (a child) inherits it
  let sys: System;
  try {
    sys = await System.start({ home });
  } finally {
    process.umask(umask);
  }
  try {
    await sys.ok('wparexec', ['-n', 'secret', '-e', 'SECRET=s3cr3t', '--', 'sh', '-c', 'echo "the secret is $SECRET"']);
    await sys.ok('mkwpar', ['-n', 'kept', '-e', 'SECRET=s3cr3t', '-s', '--', 'sh', '-c', 'echo "kept $SECRET"; exec sleep 300']);
    await sys.ok('stopwpar', ['-F', 'kept']);
    const found = modes(home);
    for (const f of ['corral.db', 'corral.db-wal', 'corral.db-shm', 'events.log', 'wpars/kept/console.log']) {
      assert.equal(found.get(f), 0o600, `${f}: ${found.get(f)?.toString(8)}`);
    }
    for (const [path, mode] of found) {
      const dir = statSync(join(home, path)).isDirectory() && !statSync(join(home, path)).isSocket();
      if (statSync(join(home, path)).isSocket()) assert.equal(mode & 0o077, 0, `${path} ${mode.toString(8)}`);
      else if (dir && path !== 'wpars/old') assert.equal(mode, 0o700, `${path} ${mode.toString(8)}`);
      else if (!dir) assert.equal(mode, 0o600, `${path} ${mode.toString(8)}`);
    }
  } finally {
    await sys[Symbol.asyncDispose]();
  }
});

test('events.log is rotated within --journal-size and --journal-files; no line is split', async () => {
  await using sys = await System.start({ args: ['--journal-size', '4K', '--journal-files', '2'] });
  for (let i = 0; i < 8; i++) await sys.ok('wparexec', ['-n', `job${i}`, '--', 'true']);
  const files = readdirSync(sys.home).filter((f) => f.startsWith('events.log')).sort();
  assert.deepEqual(files, ['events.log', 'events.log.1']);
  for (const f of files) {
    const text = readFileSync(join(sys.home, f), 'utf8');
    assert.ok(Buffer.byteLength(text) <= 4096, `${f} holds ${Buffer.byteLength(text)} bytes`);
    for (const line of text.split('\n').filter((l) => l !== '')) JSON.parse(line);
  }
  const last = readFileSync(join(sys.home, 'events.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; name?: string });
  assert.ok(last.some((e) => e.name === 'job7'), 'the newest events are in events.log');
});

test('wpard refuses an emptied corral.db: one line with its path and how to recover; nothing changed', () => {
  const home = mkdtempSync(join(tmpdir(), 'corral-e2e-'));
  try {
    writeFileSync(join(home, 'corral.db'), '');
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/daemon/wpard.js'), '--home', home], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1);
    const db = join(home, 'corral.db');
    assert.equal(r.stderr, `wpard: cannot start: the store ${db} is empty (0 bytes): its WPAR definitions are lost; restore it from a backup, or move it away (mv ${db} ${db}.damaged) to start this home with no WPAR definitions (EIO)\n`);
    assert.equal(statSync(db).size, 0);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('wpard --journal-size and --journal-files refuse bad values as usage errors', () => {
  for (const [args, message] of [
    [['--journal-size', '12'], `wpard: bad --journal-size value "12": expected a size of at least 4K (e.g. 16M); see 'wpard --help'\n`],
    [['--journal-files', '0'], `wpard: bad --journal-files value "0": expected a whole number of at least 1; see 'wpard --help'\n`],
  ] as const) {
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/daemon/wpard.js'), ...args], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2);
    assert.equal(r.stderr, message);
  }
});
