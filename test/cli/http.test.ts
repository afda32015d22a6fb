// The commands' minimal HTTP/1.1 client (src/cli/http.ts) against raw answers, split anywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sendRequest } from '../../src/cli/http.ts';

/** Serves `answer` (written in pieces of `step` bytes) to one request; resolves the request's text. */
async function exchange(answer: string, step: number, body?: Buffer): Promise<{ status: number; text: string; complete: boolean; request: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-http-'));
  const socketPath = join(dir, 's');
  let request = '';
  const server = createServer((s: Socket) => {
    s.on('data', (d) => {
      request += d.toString('latin1');
      if (!request.includes('\r\n\r\n')) return;
      const bytes = Buffer.from(answer, 'latin1');
      for (let i = 0; i < bytes.length; i += step) s.write(bytes.subarray(i, i + step));
      s.end();
    });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  try {
    const res = await sendRequest({ socketPath, method: 'POST', path: '/v1/x?y=1', headers: { accept: 'application/json' }, ...(body && { body }) });
    let text = '';
    for await (const chunk of res) text += (chunk as Buffer).toString('latin1');
    return { status: res.statusCode, text, complete: res.complete, request };
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('content-length and chunked bodies, split at every byte', async () => {
  for (const step of [1, 3, 1000]) {
    const plain = await exchange('HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello', step, Buffer.from('{"a":1}'));
    assert.deepEqual({ ...plain, request: undefined }, { status: 201, text: 'hello', complete: true, request: undefined });
    assert.match(plain.request, /^POST \/v1\/x\?y=1 HTTP\/1\.1\r\nhost: localhost\r\nconnection: close\r\naccept: application\/json\r\n\r\n\{"a":1\}$/);
    const chunked = await exchange('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n1;x=y\r\n \r\n6\r\nworld!\r\n0\r\n\r\n', step);
    assert.deepEqual({ ...chunked, request: undefined }, { status: 200, text: 'hello world!', complete: true, request: undefined });
    const empty = await exchange('HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n', step);
    assert.equal(empty.status, 204);
    assert.equal(empty.text, '');
  }
});

test('an answer cut short is an error, not a short body', async () => {
  await assert.rejects(exchange('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello', 2), /the answer stopped before its end/);
  await assert.rejects(exchange('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel', 2), /the answer stopped before its end/);
  await assert.rejects(exchange('SSH-2.0-OpenSSH\r\n\r\n', 4), /wpard answered a status line that is not HTTP/);
  await assert.rejects(exchange('', 1), /closed the connection before answering/);
});

test('no socket: the connection error keeps its code', async () => {
  await assert.rejects(sendRequest({ socketPath: '/nonexistent/wpard.sock', method: 'GET', path: '/', headers: {} }), { code: 'ENOENT' });
});
