// Item 10 of issue 11: the one JSON-lines channel both ends of the agent protocol use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WparError } from '../../src/kernel/errno.ts';
import { JsonLinesChannel } from '../../src/agent/rpc.ts';
import type { WireMessage } from '../../src/agent/protocol.ts';
import { within } from '../support/bounded.ts';

async function pair(): Promise<{ a: Socket; b: Socket; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-rpc-'));
  const path = join(dir, 's');
  let accepted!: (s: Socket) => void;
  const got = new Promise<Socket>((r) => { accepted = r; });
  const server = createServer((s) => accepted(s));
  await new Promise<void>((r) => server.listen(path, r));
  const a = connect(path);
  const b = await within(got, 'a connection');
  return { a, b, async [Symbol.asyncDispose]() { a.destroy(); b.destroy(); server.close(); rmSync(dir, { recursive: true, force: true }); } };
}

test('requests are numbered and matched to their answers; everything else is handed over', async () => {
  await using p = await pair();
  const seen: WireMessage[] = [];
  const malformed: string[] = [];
  const client = new JsonLinesChannel(p.a, { maxLine: 1024, onMessage: (m) => seen.push(m), onMalformed: (k, m) => malformed.push(`${k}: ${m}`), onOversize: () => {} });
  const server = new JsonLinesChannel(p.b, {
    maxLine: 1024, onMalformed: () => {}, onOversize: () => {},
    onMessage: (m) => { server.send({ id: 99, ok: true }); server.send({ id: 7, type: 'ping' }); server.sendLine('[1]\n{oops\n'); server.send({ id: m['id'], ok: true, echo: m['type'] }); },
  });
  assert.deepEqual(await within(client.request('hello', { pid: 1 }), 'the answer'), { id: 1, ok: true, echo: 'hello' });
  assert.deepEqual(seen, [{ id: 99, ok: true }, { id: 7, type: 'ping' }], 'a stray answer and a request go to onMessage');
  assert.equal(malformed.length, 2);
  assert.match(malformed[0]!, /^object: /);
  assert.match(malformed[1]!, /^json: /);
});

test('a request times out with its own error; closing fails what is outstanding', async () => {
  await using p = await pair();
  const quiet = { maxLine: 1024, onMessage: () => {}, onMalformed: () => {}, onOversize: () => {} };
  const ch = new JsonLinesChannel(p.a, quiet);
  new JsonLinesChannel(p.b, quiet); // never answers
  await assert.rejects(ch.request('save', {}, { timeoutMs: 20, timeoutError: () => new WparError('ETIMEDOUT', 'no answer to save') }), { code: 'ETIMEDOUT', message: 'no answer to save' });
  const waiting = ch.request('restore', {});
  ch.close((type) => new WparError('ECANCELED', `closed before ${type}`));
  await assert.rejects(waiting, { code: 'ECANCELED', message: 'closed before restore' });
  assert.equal(ch.closed, true);
});
