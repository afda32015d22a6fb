// Items 4 and 5 of issue 11: the store never loses a write that records a completed action silently,
// refuses a database that was emptied or is not one, and is private whatever the umask.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Store } from '../../src/daemon/store.ts';
import { WparError } from '../../src/kernel/errno.ts';
import type { WparDefinition } from '../../src/runtime/definition.ts';

const def = (name: string): WparDefinition => ({ name, argv: ['sleep', '60'], env: { SECRET: 's3cr3t' }, hostname: null, checkpointable: false, limits: {}, autostart: false });

function withHome(fn: (home: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const home = mkdtempSync(join(tmpdir(), 'corral-store-'));
    try { await fn(home); } finally { rmSync(home, { recursive: true, force: true }); }
  };
}

test('a write refused by the database is reported once, kept in order and recorded when it can be', withHome(async (home) => {
  const path = join(home, 'corral.db');
  const failures: string[] = [];
  let recovered!: () => void;
  const recoveredP = new Promise<void>((r) => { recovered = r; });
  const store = new Store(path, { onWriteFailure: (m) => failures.push(m), onRecovered: () => recovered(), retryMs: 20 });
  store.insert(def('web'), false, 1);
  store.setRunning('web', { pid: 4711, pgid: 4711, cgroupPath: null, startedAt: 2 });
  // Another connection holds the write lock: the next writes are refused (SQLITE_BUSY), as on a full disk.
  const other = new DatabaseSync(path);
  other.exec('BEGIN IMMEDIATE');
  store.setExit('web', { code: 0, signal: null, reason: 'stopped by stopwpar', at: 3 }, false);
  store.setBroken('web', false);
  assert.equal(failures.length, 1, 'reported once');
  assert.match(failures[0]!, /^store: not recorded yet, will retry: how web ended \(stopped by stopwpar\): database is locked/);
  assert.deepEqual(store.unrecorded, ['how web ended (stopped by stopwpar)', 'that web is not broken']);
  other.exec('ROLLBACK');
  other.close();
  await recoveredP;
  assert.deepEqual(store.unrecorded, []);
  const w = store.all().get('web')!;
  assert.equal(w.running, null, 'the stale running record is gone');
  assert.equal(w.lastExit?.reason, 'stopped by stopwpar');
  assert.deepEqual(store.close(), []);
}));

test('closing with writes still refused says exactly which were not recorded', withHome((home) => {
  const path = join(home, 'corral.db');
  const store = new Store(path, { retryMs: 60_000 });
  store.insert(def('web'), false, 1);
  const other = new DatabaseSync(path);
  other.exec('BEGIN IMMEDIATE');
  store.remove('web');
  assert.deepEqual(store.close(), ['the removal of web']);
  other.exec('ROLLBACK');
  other.close();
}));

test('an emptied corral.db is refused with its path and how to recover, and left as it was', withHome((home) => {
  const path = join(home, 'corral.db');
  writeFileSync(path, '');
  assert.throws(() => new Store(path), (e: WparError) =>
    e.code === 'EIO' && e.message.includes(`the store ${path} is empty (0 bytes)`) && e.message.includes(`mv ${path} ${path}.damaged`));
  assert.equal(statSync(path).size, 0);
}));

test('a corral.db that is not a database is refused with its path and how to recover', withHome((home) => {
  const path = join(home, 'corral.db');
  writeFileSync(path, 'x'.repeat(8192));
  assert.throws(() => new Store(path), (e: WparError) => e.code === 'EIO' && e.message.startsWith(`cannot open the store ${path}: file is not a database;`) && /restore it from a backup/.test(e.message));
  assert.equal(readFileSync(path, 'utf8'), 'x'.repeat(8192));
}));

test('the database and its WAL and shared-memory files are 0600 whatever the umask; an old 0644 one is repaired', withHome((home) => {
  const path = join(home, 'corral.db');
  const umask = process.umask(0);
  try {
    const store = new Store(path);
    store.insert(def('web'), false, 1);
    for (const f of [path, `${path}-wal`, `${path}-shm`]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    store.close();
    chmodSync(path, 0o644); // as an older version left it
    new Store(path).close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
  } finally {
    process.umask(umask);
  }
}));
