import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { closeConsoleFile, ConsoleLog, ConsoleLogKeeper, followLog, openConsoleFile, readLogTail } from '../../src/runtime/console-log.ts';

const dir = mkdtempSync(join(tmpdir(), 'corral-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(dir, `w${n++}`, 'console.log');

function write(log: ConsoleLog, text: string): Promise<void> {
  return new Promise((resolve, reject) => log.write(text, (err) => (err ? reject(err) : resolve())));
}
function close(log: ConsoleLog): Promise<void> {
  return new Promise((resolve) => log.end(resolve));
}
const line = (i: number): string => `line ${String(i).padStart(4, '0')}\n`; // 10 bytes

describe('ConsoleLog', () => {
  test('rotation keeps N files, each within maxBytes, holding the newest lines whole', async () => {
    const path = fresh();
    const log = await ConsoleLog.open(path, { maxBytes: 100, files: 3 });
    for (let i = 0; i < 1000; i++) await write(log, line(i));
    await close(log);
    assert.deepEqual(readdirSync(join(path, '..')).sort(), ['console.log', 'console.log.1', 'console.log.2']);
    for (const file of ['console.log', 'console.log.1', 'console.log.2']) {
      assert.ok(statSync(join(path, '..', file)).size <= 100, `${file} is bounded`);
    }
    const text = await readLogTail(path);
    assert.equal(text, Array.from({ length: 30 }, (_, k) => line(970 + k)).join(''));
    assert.equal(await readLogTail(path, { lines: 2 }), line(998) + line(999));
    assert.equal(await readLogTail(path, { lines: 0 }), '');
  });

  test('a big chunk is split at newlines; a line longer than a file is cut', async () => {
    const path = fresh();
    const log = await ConsoleLog.open(path, { maxBytes: 25, files: 2 });
    await write(log, 'aaaaaaaaa\nbbbbbbbbb\ncccccccccc\n');
    await close(log);
    assert.equal(readFileSync(`${path}.1`, 'utf8'), 'aaaaaaaaa\nbbbbbbbbb\n');
    assert.equal(readFileSync(path, 'utf8'), 'cccccccccc\n');
    const long = await ConsoleLog.open(path, { maxBytes: 25, files: 2 });
    await write(long, 'x'.repeat(60));
    await close(long);
    assert.equal(readFileSync(path, 'utf8'), 'x'.repeat(10));
    assert.equal(readFileSync(`${path}.1`, 'utf8'), 'x'.repeat(25));
  });

  test('reopening appends; files: 1 keeps only the current file', async () => {
    const path = fresh();
    let log = await ConsoleLog.open(path, { maxBytes: 20, files: 1 });
    await write(log, line(1));
    await close(log);
    log = await ConsoleLog.open(path, { maxBytes: 20, files: 1 });
    await write(log, line(2));
    await write(log, line(3));
    await close(log);
    assert.equal(readFileSync(path, 'utf8'), line(3));
    assert.equal(existsSync(`${path}.1`), false);
  });

  test('rejects bad bounds', async () => {
    await assert.rejects(ConsoleLog.open(fresh(), { maxBytes: 0 }), /bad console log size 0/);
    await assert.rejects(ConsoleLog.open(fresh(), { files: 0 }), /bad console log file count 0/);
  });
});

describe('followLog', () => {
  test('yields the tail, then new writes, even across several rotations between reads', async () => {
    const path = fresh();
    const log = await ConsoleLog.open(path, { maxBytes: 30, files: 3 });
    for (let i = 0; i < 5; i++) await write(log, line(i));
    const controller = new AbortController();
    const chunks = followLog(path, { signal: controller.signal, lines: 2, files: 3 });
    assert.deepEqual(await chunks.next(), { done: false, value: line(3) + line(4) });
    // Three rotations before the follower reads again.
    for (let i = 5; i < 14; i++) await write(log, line(i));
    let seen = '';
    const expected = Array.from({ length: 9 }, (_, k) => line(5 + k)).join('');
    while (seen !== expected) {
      const next = await chunks.next();
      assert.equal(next.done, false, `ended early after ${JSON.stringify(seen)}`);
      seen += next.value;
    }
    controller.abort();
    assert.deepEqual(await chunks.next(), { done: true, value: undefined });
    await close(log);
  });

  test('waits for a log that does not exist yet', async () => {
    const path = fresh();
    const controller = new AbortController();
    const log = await ConsoleLog.open(path);
    await close(log);
    rmSync(path);
    const first = (async () => {
      for await (const chunk of followLog(path, { signal: controller.signal })) {
        controller.abort();
        return chunk;
      }
      return null;
    })();
    const again = await ConsoleLog.open(path);
    await write(again, 'hello\n');
    assert.equal(await first, 'hello\n');
    await close(again);
  });

  test('an aborted signal ends it at once', async () => {
    const path = fresh();
    const log = await ConsoleLog.open(path);
    await write(log, 'old\n');
    const chunks: string[] = [];
    for await (const chunk of followLog(path, { signal: AbortSignal.abort(), lines: 0 })) chunks.push(chunk);
    assert.deepEqual(chunks, []);
    await close(log);
  });
});

describe('ConsoleLogKeeper (a log its writers append to themselves, R7)', () => {
  /** A shell that appends `count` 10-byte lines to the log through its own O_APPEND descriptor. */
  async function shellWrites(path: string, from: number, count: number): Promise<void> {
    const fd = openConsoleFile(path);
    try {
      const script = `i=${from}; while [ $i -lt ${from + count} ]; do printf 'line %04d\\n' $i; i=$((i+1)); done`;
      const child = spawn('sh', ['-c', script], { stdio: ['ignore', fd, 'inherit'] });
      await new Promise((resolve) => child.once('exit', resolve));
    } finally {
      closeConsoleFile(fd);
    }
  }

  test('copy and truncate keeps N files near maxBytes while another process writes; the newest lines are kept', async () => {
    const path = fresh();
    closeConsoleFile(openConsoleFile(path));
    assert.equal(statSync(path).mode & 0o777, 0o600, 'the log is 0600');
    const keeper = new ConsoleLogKeeper(path, { maxBytes: 200, files: 3 });
    try {
      for (let batch = 0; batch < 20; batch++) {
        await shellWrites(path, batch * 25, 25); // 250 bytes: past maxBytes every batch
        await keeper.check();
      }
    } finally {
      await keeper.close();
    }
    assert.ok(keeper.rotations >= 19, `rotated ${keeper.rotations} times`);
    assert.deepEqual(readdirSync(join(path, '..')).sort(), ['console.log', 'console.log.1', 'console.log.2']);
    const text = await readLogTail(path);
    assert.ok(Buffer.byteLength(text) <= 3 * 250, 'bounded by files x (maxBytes + one burst)');
    assert.ok(text.endsWith(line(499)), 'the newest line is kept');
    const numbers = [...text.matchAll(/line (\d+)/g)].map((m) => Number(m[1]));
    // In order. (A rotation racing a write may lose what lands between its copy and its truncation.)
    assert.ok(numbers.every((v, i) => i === 0 || v > numbers[i - 1]!), 'in order');
    assert.ok(numbers.length >= 40, 'the rotated files hold at least maxBytes each');
  });

  test('a log that grew unwatched (no daemon) keeps only its last maxBytes when rotated', async () => {
    const path = fresh();
    await shellWrites(path, 0, 100); // 1000 bytes
    const keeper = new ConsoleLogKeeper(path, { maxBytes: 100, files: 2 });
    await keeper.close();
    assert.equal(statSync(path).size, 0);
    assert.equal(readFileSync(`${path}.1`, 'utf8'), Array.from({ length: 10 }, (_, k) => line(90 + k)).join(''));
  });

  test('followLog goes on across a truncation, reading what it missed from the copy', async () => {
    const path = fresh();
    await shellWrites(path, 0, 3);
    const keeper = new ConsoleLogKeeper(path, { maxBytes: 1_000_000, files: 2 });
    const ac = new AbortController();
    const got: string[] = [];
    const seen = (text: string): Promise<void> => new Promise((resolve) => { waiting = () => got.join('').includes(text) && resolve(); waiting(); });
    let waiting = (): void => undefined;
    const following = (async () => {
      for await (const chunk of followLog(path, { signal: ac.signal, files: 2 })) { got.push(chunk); waiting(); }
    })();
    try {
      await seen(line(2));
      await shellWrites(path, 3, 2); // read or not yet, then truncated away: the copy has them
      await keeper.rotate();
      await shellWrites(path, 5, 2);
      await seen(line(6));
    } finally {
      ac.abort();
      await following;
      await keeper.close();
    }
    assert.equal(got.join(''), Array.from({ length: 7 }, (_, k) => line(k)).join(''));
  });
});
