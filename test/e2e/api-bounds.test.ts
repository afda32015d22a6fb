// Item 3 of issue 11: the control API bounds what it reads and answers a body that is too large or
// not JSON as the client's error, in the API's error shape — not as 500 EIO.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { System } from './harness.ts';
import { within } from '../support/bounded.ts';

function post(sys: System, path: string, body: string | Buffer, type: string): Promise<{ status: number; body: unknown }> {
  return within(new Promise((resolve, reject) => {
    const req = request({ socketPath: join(sys.home, 'run/wpard.sock'), path, method: 'POST', headers: { 'content-type': type, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  }), `an answer to POST ${path}`);
}

test('413 and 415 are client errors in the API error shape; the daemon goes on', async () => {
  await using sys = await System.start();
  const big = await post(sys, '/v1/wpars', JSON.stringify({ definition: { name: 'web', argv: ['x'.repeat(2 * 1024 * 1024)] } }), 'application/json');
  assert.equal(big.status, 413);
  assert.deepEqual(Object.keys(big.body as object), ['error']);
  assert.equal((big.body as { error: { code: string } }).error.code, 'EMSGSIZE');
  const xml = await post(sys, '/v1/wpars', '<wpar name="web"/>', 'application/xml');
  assert.equal(xml.status, 415);
  assert.equal((xml.body as { error: { code: string } }).error.code, 'EINVAL');
  assert.match((xml.body as { error: { message: string } }).error.message, /send application\/json/);
  const bad = await post(sys, '/v1/wpars', '{"definition":', 'application/json');
  assert.equal(bad.status, 400);
  assert.equal((bad.body as { error: { code: string } }).error.code, 'EINVAL');
  assert.deepEqual(await sys.list(), [], 'nothing was created');
});
