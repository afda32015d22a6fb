/**
 * The corral: what the caller of `activate` describes a WPAR with, and the kernel's frozen copy of it
 * that every callout receives (K17).
 * @module
 */

/** A WPAR description: a `name` and anything else the runtime needs, as plain data. */
export interface Corral {
  /** The WPAR's name: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`, unique among this kernel's WPARs. */
  readonly name: string;
  readonly [key: string]: unknown;
}

/** The kernel's copy of a corral, with the cid it was given; deeply frozen. */
export type KernelCorral = Readonly<Corral> & { readonly cid: number };

/** The WPAR name rule (K14.1). */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Thrown by {@link copyCorral} with a path to the offending value. */
export class CorralCopyError extends Error {}

/**
 * A deep copy of plain data: objects, arrays, strings, numbers, booleans, bigints, null and undefined.
 * Nested values are frozen; the top level stays open until {@link sealCorral} adds the cid. Anything
 * else (functions, Maps, class instances, cycles) is refused: a kernel copy that a hook could still
 * mutate through a shared Map would break K17. Getters are read once, here.
 */
export function copyCorral(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CorralCopyError('corral must be an object');
  }
  return copyObject(value, 'corral', new Set()) as Record<string, unknown>;
}

/** Adds the cid to a copy from {@link copyCorral} and freezes it: the kernel's copy (K17). */
export function sealCorral(copy: Record<string, unknown>, cid: number): KernelCorral {
  copy.cid = cid;
  return Object.freeze(copy) as unknown as KernelCorral;
}

function copyValue(value: unknown, path: string, seen: Set<object>): unknown {
  switch (typeof value) {
    case 'string': case 'number': case 'boolean': case 'bigint': case 'undefined':
      return value;
    case 'object':
      if (value === null) return null;
      if (seen.has(value)) throw new CorralCopyError(`${path} is a cycle`);
      return Object.freeze(copyObject(value, path, seen));
    default:
      throw new CorralCopyError(`${path} is a ${typeof value}; a corral holds plain data only`);
  }
}

function copyObject(value: object, path: string, seen: Set<object>): unknown {
  seen.add(value);
  let out: unknown;
  if (Array.isArray(value)) {
    out = Array.from(value, (v, i) => copyValue(v, `${path}[${i}]`, seen));
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new CorralCopyError(`${path} is not a plain object; a corral holds plain data only`);
    }
    const obj: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      obj[key] = copyValue((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
    }
    out = obj;
  }
  seen.delete(value);
  return out;
}
