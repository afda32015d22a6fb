/**
 * Makes each command executable (`dist/cli/bin/NAME.js`, built by tsc) a single file: a command is
 * mostly start-up, and loading its ~20 modules one by one was about a fifth of `lswpar`'s run
 * (issue 11, item 19; measured in `npm run bench -- commands`, see docs/performance.md). Only
 * Corral's own modules are bundled: packages stay imports from node_modules, and so does
 * `src/node-check.ts`, the version check every executable imports first, so that it is evaluated
 * before any bundled code. The target is Node 18's syntax, so that an older Node parses the bundle
 * and reaches that check instead of failing with a SyntaxError.
 * Run by `npm run build` after tsc.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { build, type Plugin } from 'esbuild';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'dist', 'cli', 'bin');
/** The executables: one per `src/cli/bin/NAME.ts` (not whatever else an earlier build left in dist). */
const NAMES = readdirSync(join(ROOT, 'src', 'cli', 'bin')).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));

/** Leaves `import '../../node-check.js'` as an import (a module evaluated before the bundle's code). */
const keepVersionCheck: Plugin = {
  name: 'keep-version-check',
  setup(b) {
    b.onResolve({ filter: /\/node-check\.js$/ }, (args) => ({ path: args.path, external: true }));
  },
};

const result = await build({
  entryPoints: NAMES.map((n) => join(BIN, `${n}.js`)),
  outdir: BIN,
  allowOverwrite: true,
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node18',
  plugins: [keepVersionCheck],
  logLevel: 'warning',
  metafile: true,
});
const sizes = Object.entries(result.metafile.outputs).map(([file, o]) => `${file.split('/').pop()} ${(o.bytes / 1024).toFixed(0)} KiB`);
console.log(`bundled ${sizes.length} commands: ${sizes.join(', ')}`);
