/**
 * Garbage for the facade (K3): values of every type, hostile objects and proxies. A value is made
 * fresh for each call by `make`, which receives a recording `configp` for the shapes that need one.
 * `hookp` says what `kwpar_reghook` must make of the value as its `hookp`:
 * - `valid`: an object whose `configp` is a function, readable and writable: a key (K4);
 * - `invalid`: BADREGKEY (K6);
 * - `either`: a `configp` function is there but `current_hiwater` cannot be written, or the object
 *   is a function or array: the spec does not decide; a key is accepted, and the hook must then work.
 * @module
 */
import fc from 'fast-check';

export type HookpClass = 'valid' | 'invalid' | 'either';

export interface Garbage {
  readonly label: string;
  readonly make: (configp: (...args: unknown[]) => unknown) => unknown;
  readonly hookp: HookpClass;
}

const TRAPS = [
  'get', 'set', 'has', 'deleteProperty', 'ownKeys', 'getOwnPropertyDescriptor', 'defineProperty',
  'getPrototypeOf', 'setPrototypeOf', 'isExtensible', 'preventExtensions', 'apply', 'construct',
] as const;

/** A proxy handler whose every trap throws. */
export function throwingHandler(): ProxyHandler<object> {
  const h: Record<string, () => never> = {};
  for (const t of TRAPS) {
    h[t] = () => {
      throw new Error(`hostile proxy: ${t}`);
    };
  }
  return h as ProxyHandler<object>;
}

function boom(): never {
  throw new Error('hostile getter');
}

const g = (label: string, make: Garbage['make'], hookp: HookpClass = 'invalid'): Garbage =>
  Object.assign({ label, make, hookp }, { [fc.toStringMethod]: () => label });
const v = (label: string, value: unknown): Garbage => g(label, () => value);

/** Fixed garbage, by label. */
export const GARBAGE: readonly Garbage[] = [
  v('undefined', undefined), v('null', null), v('true', true), v('false', false),
  v('0', 0), v('-0', -0), v('1', 1), v('2', 2), v('3', 3), v('4', 4), v('5', 5), v('6', 6), v('-1', -1),
  v('1.5', 1.5), v('3.0000001', 3.0000001), v('NaN', Number.NaN), v('Infinity', Number.POSITIVE_INFINITY),
  v('-Infinity', Number.NEGATIVE_INFINITY), v('2^31-1', 2 ** 31 - 1), v('2^31', 2 ** 31), v('2^53', 2 ** 53),
  v('MAX_VALUE', Number.MAX_VALUE), v('MIN_VALUE', Number.MIN_VALUE), v('-2^31', -(2 ** 31)),
  v('2147483', 2147483), v('2147484', 2147484), v('1e21', 1e21),
  v("''", ''), v("'1'", '1'), v("'3'", '3'), v("' 3'", ' 3'), v("'0x3'", '0x3'), v("'reason'", 'reason'),
  v("'x'*1024", 'x'.repeat(1024)), v("'x'*1025", 'x'.repeat(1025)), v("'\\0'", '\0'), v("'😀'*512", '😀'.repeat(512)),
  v('0n', 0n), v('1n', 1n), v('3n', 3n), v('2n**64n', 2n ** 64n), v('-1n', -1n),
  v('Symbol()', Symbol('garbage')), v('Symbol.iterator', Symbol.iterator),
  g('{}', () => ({})), g('[]', () => []), g('[3]', () => [3]), g('[1, "x"]', () => [1, 'x']),
  g('new Number(3)', () => new Number(3)), g('new String("r")', () => new String('r')), g('Object(1n)', () => Object(1n)),
  g('new Boolean(true)', () => new Boolean(true)), g('new Date(0)', () => new Date(0)), g('/re/', () => /re/),
  g('new Map()', () => new Map([[1, 2]])), g('new Set()', () => new Set([1])), g('new Error()', () => new Error('e')),
  g('Promise.resolve(3)', () => Promise.resolve(3)), g('Uint8Array', () => new Uint8Array(3)),
  g('{valueOf: ()=>3}', () => ({ valueOf: () => 3 })), g('{toString: ()=>"3"}', () => ({ toString: () => '3' })),
  g('{[toPrimitive]: ()=>3}', () => ({ [Symbol.toPrimitive]: () => 3 })),
  g('{valueOf: throws}', () => ({ valueOf: boom, toString: boom })),
  g('{[toPrimitive]: throws}', () => ({ [Symbol.toPrimitive]: boom })),
  g('Object.create(null)', () => Object.create(null)),
  g('frozen {}', () => Object.freeze({})), g('sealed {a:1}', () => Object.seal({ a: 1 })),
  g('() => 0', () => () => 0), g('function () { return 3 }', () => function () {
    return 3;
  }), g('class {}', () => class {}), g('async () => 0', () => async () => 0),
  g('function* () {}', () => function* () {}),
  g('Proxy({}, all traps throw)', () => new Proxy({}, throwingHandler())),
  g('Proxy(fn, all traps throw)', () => new Proxy(() => 0, throwingHandler())),
  g('Proxy([], all traps throw)', () => new Proxy([], throwingHandler())),
  g('revoked Proxy', () => {
    const p = Proxy.revocable({}, {});
    p.revoke();
    return p.proxy;
  }),
  g('{get configp() throws}', () => ({ current_hiwater: 0, get configp(): never {
    return boom();
  } })),
  g('{configp: 5}', () => ({ current_hiwater: 0, configp: 5 })),
  g('{configp: "fn"}', () => ({ current_hiwater: 0, configp: 'fn' })),
  g('{configp: null}', () => ({ current_hiwater: 0, configp: null })),
  g('{configp: Proxy(all throw)}', () => ({ current_hiwater: 0, configp: new Proxy({}, throwingHandler()) })),
  g('{current_hiwater: 0}', () => ({ current_hiwater: 0 })),
  g('frozen {configp: 5}', () => Object.freeze({ current_hiwater: 0, configp: 5 })),
  g('Proxy(hookp, get configp throws)', (fn) => new Proxy({ current_hiwater: 0, configp: fn }, {
    get: (t, k) => (k === 'configp' ? boom() : Reflect.get(t, k)),
  })),
  // Genuinely valid hook descriptions (K4).
  g('{current_hiwater: 0, configp}', (fn) => ({ current_hiwater: 0, configp: fn }), 'valid'),
  g('{configp}', (fn) => ({ configp: fn }), 'valid'),
  g('null-prototype {configp}', (fn) => Object.assign(Object.create(null) as object, { current_hiwater: 0, configp: fn }), 'valid'),
  g('{configp, extra: "x"}', (fn) => ({ current_hiwater: 'not a number', configp: fn, extra: 'x' }), 'valid'),
  // Valid configp, but current_hiwater cannot be written, or the object is unusual: the spec does not decide.
  g('frozen {current_hiwater, configp}', (fn) => Object.freeze({ current_hiwater: 0, configp: fn }), 'either'),
  g('{configp, set current_hiwater throws}', (fn) => ({ configp: fn, set current_hiwater(_x: number) {
    boom();
  } }), 'either'),
  g('{configp, get-only current_hiwater}', (fn) => ({ configp: fn, get current_hiwater(): number {
    return 0;
  } }), 'either'),
  g('Proxy(hookp, set throws)', (fn) => new Proxy({ current_hiwater: 0, configp: fn }, {
    set: boom, defineProperty: boom,
  }), 'either'),
  // A getter that answers a function once and garbage afterwards: the kernel must use what it checked.
  g('{configp: flip-flop getter}', (fn) => {
    let reads = 0;
    return { current_hiwater: 0, get configp(): unknown {
      return reads++ === 0 ? fn : 5;
    } };
  }, 'either'),
  g('function with .configp', (fn) => Object.assign(() => 0, { current_hiwater: 0, configp: fn }), 'either'),
  g('array with .configp', (fn) => Object.assign([], { current_hiwater: 0, configp: fn }), 'either'),
  g('instance with configp on prototype', (fn) => {
    const proto = { configp: fn };
    return Object.assign(Object.create(proto) as object, { current_hiwater: 0 });
  }, 'either'),
];

const byLabel = new Map(GARBAGE.map((x) => [x.label, x]));

/** The fixed garbage entry called `label`. */
export function garbage(label: string): Garbage {
  const x = byLabel.get(label);
  if (x === undefined) throw new Error(`no garbage called ${label}`);
  return x;
}

/** Any garbage: the fixed pool, or a generated number, string or structured value. */
export const garbageArb: fc.Arbitrary<Garbage> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...GARBAGE) },
  { weight: 1, arbitrary: fc.double().map((d) => v(`double ${Object.is(d, -0) ? '-0' : String(d)}`, d)) },
  { weight: 1, arbitrary: fc.integer({ min: -5, max: 2 ** 31 }).map((i) => v(`int ${i}`, i)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }).map((s) => v(`string ${JSON.stringify(s)}`, s)) },
  {
    weight: 1,
    arbitrary: fc.anything({ withBigInt: true, withBoxedValues: true, withMap: true, withSet: true, withNullPrototype: true, withSparseArray: true, withTypedArray: true, withDate: true })
      .map((a) => g(`anything ${fc.stringify(a)}`, () => a)),
  },
);

/** Values that are valid in one position or another, to get past earlier checks and reach later ones. */
export function mostlyValid<T>(valid: readonly T[], label: (x: T) => string): fc.Arbitrary<Garbage> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(...valid).map((x) => v(label(x), x)) },
    { weight: 1, arbitrary: garbageArb },
  );
}
