// The agent protocol's building blocks: line framing and state envelopes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineReader, toStateEnvelope } from '../../src/agent/protocol.ts';
import { decodeState, encodeState } from '../../src/agent/state.ts';

function reader(max: number): { r: LineReader; lines: string[]; oversize: number[] } {
  const out = { lines: [] as string[], oversize: [] as number[] };
  const r = new LineReader(max, (l) => out.lines.push(l), () => out.oversize.push(out.lines.length));
  return { r, ...out };
}

test('LineReader: lines split across chunks, several per chunk, CRLF and empty lines', () => {
  const { r, lines } = reader(100);
  r.push(Buffer.from('{"a":'));
  r.push(Buffer.from('1}\n{"b":2}\r\n\n{"c"'));
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}']);
  r.push(Buffer.from(':3}\n'));
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}']);
});

test('LineReader: multi-byte UTF-8 split between chunks is decoded whole', () => {
  const { r, lines } = reader(100);
  const bytes = Buffer.from('"héllo ✓"\n');
  r.push(bytes.subarray(0, 3));
  r.push(bytes.subarray(3, 9));
  r.push(bytes.subarray(9));
  assert.deepEqual(lines, ['"héllo ✓"']);
});

test('LineReader: an oversize line is reported once, discarded to its end, and the stream goes on', () => {
  const { r, lines, oversize } = reader(10);
  r.push(Buffer.from('0123456789')); // exactly the limit: fine
  r.push(Buffer.from('\nabcdefgh'));
  r.push(Buffer.from('ijklmnop')); // passes the limit
  r.push(Buffer.from('qrstuvwxyz'));
  r.push(Buffer.from('...\nok\n'));
  assert.deepEqual(lines, ['0123456789', 'ok']);
  assert.deepEqual(oversize, [1]);
});

test('encodeState: plain JSON stays readable; everything else is a v8 payload that round-trips', () => {
  assert.deepEqual(encodeState({ count: 5, tags: ['a'], nested: { ok: true, none: null } }),
    { encoding: 'json', value: { count: 5, tags: ['a'], nested: { ok: true, none: null } } });
  const rich = {
    m: new Map<string, Date>([['t', new Date(1_700_000_000_000)]]),
    s: new Set([1, 2]), big: 12n, u: undefined, nan: NaN, bytes: new Uint8Array([1, 2, 3]), re: /x/g,
  };
  for (const value of [rich, [1, , 3], -0, undefined, Infinity]) { // eslint-disable-line no-sparse-arrays
    const env = encodeState(value);
    assert.equal(env.encoding, 'v8', `v8 for ${String(value)}`);
    const back = decodeState(JSON.parse(JSON.stringify(env)));
    assert.deepEqual(back, value);
  }
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic['self'] = cyclic;
  const back = decodeState(encodeState(cyclic)) as Record<string, unknown>;
  assert.equal(back['self'], back);
});

test('encodeState: a value that cannot be cloned fails with EINVAL saying why', () => {
  assert.throws(() => encodeState({ f: () => 1 }), (e: Error & { code?: string }) =>
    e.code === 'EINVAL' && /not structured-clone-able/.test(e.message));
});

test('toStateEnvelope: accepts the two encodings, normalised; rejects anything else', () => {
  assert.deepEqual(toStateEnvelope({ encoding: 'json', value: 1, extra: 2 }), { encoding: 'json', value: 1 });
  assert.deepEqual(toStateEnvelope({ encoding: 'v8', data: 'AAEC' }), { encoding: 'v8', data: 'AAEC' });
  for (const bad of [null, 1, [], {}, { encoding: 'json' }, { encoding: 'v8', data: 'not base64!' }, { encoding: 'v8', data: 'abc' }, { encoding: 'xml', value: 1 }]) {
    assert.equal(toStateEnvelope(bad), undefined, JSON.stringify(bad));
  }
});
