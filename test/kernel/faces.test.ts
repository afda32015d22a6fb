// Item 9 of issue 11: the kernel's rules live in src/kernel; the C facade and the idiomatic API are
// two parallel faces over them (the API takes no rule from the facade), and src/kernel has no
// import loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createKernel, WPAR_NOTIFY_HOOK, EPERM } from '../../src/index.ts';

const SRC = resolve(import.meta.dirname, '../../src');

/** Relative imports of a module (type-only ones too), as paths under src. */
function importsOf(dir: string, file: string): { from: string; names: string }[] {
  const text = readFileSync(join(SRC, dir, file), 'utf8');
  return [...text.matchAll(/^(?:import|export)\s+(?:type\s+)?(\{[^}]*\}|\*|[\w$]+)?[^'";]*from\s+'(\.[^']+)'/gm)]
    .map((m) => ({ names: m[1] ?? '', from: join(dir, m[2]!) }));
}

test('src/kernel has no import loop, type-only imports included', () => {
  const files = readdirSync(join(SRC, 'kernel')).filter((f) => f.endsWith('.ts'));
  const graph = new Map(files.map((f) => [`kernel/${f}`, importsOf('kernel', f).map((i) => i.from).filter((p) => p.startsWith('kernel/'))]));
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (node: string, path: string[]): void => {
    if (state.get(node) === 'done') return;
    assert.notEqual(state.get(node), 'visiting', `import loop: ${[...path, node].join(' → ')}`);
    state.set(node, 'visiting');
    for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
    state.set(node, 'done');
  };
  for (const node of graph.keys()) visit(node, []);
});

test('the idiomatic API takes no rule from the C facade (only the facade object itself)', () => {
  for (const f of readdirSync(join(SRC, 'api')).filter((x) => x.endsWith('.ts'))) {
    for (const i of importsOf('api', f).filter((x) => x.from.startsWith('facade/'))) {
      assert.match(i.names, /^\{\s*servicesFor,\s*type KernelServices\s*\}$/, `api/${f} imports ${i.names} from ${i.from}`);
    }
  }
  assert.doesNotMatch(readFileSync(join(SRC, 'api/owner.ts'), 'utf8'), /kwpar_reghook\(1,/, 'no bare hook type');
});

test('both faces act through the same rules: a closed owner is refused by each, in its own terms', () => {
  const kernel = createKernel({ maxHooks: 1 });
  const ext = kernel.extension('x');
  const hook = { current_hiwater: -1, configp: () => 0 };
  const key = ext.kwpar_reghook(WPAR_NOTIFY_HOOK, hook);
  assert.equal(key, 1);
  const y = kernel.extension('y');
  assert.throws(() => y.watch({}), { code: 'EAGAIN' });
  ext.close();
  assert.equal(ext.kwpar_unreghook(key), EPERM);
  assert.throws(() => ext.watch({}), { code: 'EPERM' });
  const handle = y.watch({}); // the closed owner's hook was released (K13)
  assert.equal(handle.hiwater, 0);
});
