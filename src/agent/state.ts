/**
 * Participant state to and from its {@link StateEnvelope}: plain JSON when JSON carries the value
 * exactly, else V8's structured-clone serialization (`node:v8`), base64.
 * @module
 */
import { deserialize, serialize } from 'node:v8';
import { WparError } from '../kernel/errno.ts';
import type { StateEnvelope } from './protocol.ts';

/**
 * Encodes a state. JSON is used when a JSON round trip gives back an equal value (null, booleans,
 * strings, finite numbers other than -0, arrays without holes or extra properties, plain objects —
 * no cycles); anything else goes through `v8.serialize` (structured clone: Map, Set, Date, RegExp,
 * BigInt, typed arrays, Buffers, Error, `undefined`, NaN, cycles...).
 * @throws WparError EINVAL when the value cannot be structured-cloned (a function, a symbol, a class
 * instance's private state...), naming what failed.
 */
export function encodeState(value: unknown): StateEnvelope {
  let json: boolean;
  try {
    json = isPlainJson(value, new Set());
  } catch {
    json = false; // too deep to check: let the serializer decide
  }
  if (json) return { encoding: 'json', value };
  try {
    return { encoding: 'v8', data: serialize(value).toString('base64') };
  } catch (err) {
    throw new WparError('EINVAL', `the state is not structured-clone-able: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Decodes a state envelope back to the value.
 * @throws WparError EINVAL for a payload V8 cannot read (damaged, or written by a newer V8).
 */
export function decodeState(envelope: StateEnvelope): unknown {
  if (envelope.encoding === 'json') return envelope.value;
  try {
    return deserialize(Buffer.from(envelope.data, 'base64'));
  } catch (err) {
    throw new WparError('EINVAL', `the saved state cannot be read (v8 payload): ${(err as Error).message}`, { cause: err });
  }
}

function isPlainJson(v: unknown, stack: Set<object>): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0);
  if (typeof v !== 'object') return false;
  if (stack.has(v)) return false; // a cycle
  stack.add(v);
  try {
    const proto: unknown = Object.getPrototypeOf(v);
    if (Array.isArray(v)) {
      if (proto !== Array.prototype || Object.keys(v).length !== v.length) return false;
      for (let i = 0; i < v.length; i++) if (!isPlainJson(v[i], stack)) return false;
      return true;
    }
    if (proto !== Object.prototype && proto !== null) return false;
    const o = v as Record<string, unknown>;
    for (const key of Object.keys(o)) if (!isPlainJson(o[key], stack)) return false;
    return true;
  } finally {
    stack.delete(v);
  }
}
