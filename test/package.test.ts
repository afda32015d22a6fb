// The published package, made the way a newcomer would make it: from a fresh checkout (the tracked
// files only — no node_modules, no dist), `npm pack`, then a separate project installs the tarball and
// imports it from plain JavaScript and from TypeScript (so the .d.ts files and the exports map are
// checked too; a TypeScript consumer on Node has @types/node, which provides AbortSignal in our
// signatures), and every installed executable is run on Node 24 and on an older Node.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const run = (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string =>
  execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });

/** A fresh checkout of this working tree: its tracked (and new, not ignored) files, copied. */
function freshCheckout(into: string): string {
  const files = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], root).split('\0').filter((f) => f !== '' && existsSync(join(root, f)));
  for (const f of files) {
    mkdirSync(dirname(join(into, f)), { recursive: true });
    cpSync(join(root, f), join(into, f));
  }
  return into;
}

/** An older Node on this machine (the system's), if there is one. */
const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => {
  if (!existsSync(p)) return false;
  const v = spawnSync(p, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  return Number(v.split('.')[0]) < 24;
});

let work = '';
let consumer = '';

before(() => {
  work = mkdtempSync(join(tmpdir(), 'corral-package-'));
  const checkout = freshCheckout(join(work, 'checkout'));
  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  // A fresh checkout has no node_modules: the prepack script installs and builds before packing.
  run('npm', ['pack', '--silent', '--pack-destination', consumer], checkout);
  const tarball = readdirSync(consumer).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack made a tarball');
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `./${tarball}`], consumer);
});

after(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

test('a consumer project installs the packed tarball and imports corral', () => {
  writeFileSync(join(consumer, 'consumer.js'), `
    import { createKernel, WparError, WPAR_CHECKPOINT_TRY, WPAR_CHECKPOINT_DENY, WPAR_NOTIFY_HOOK, BADREGKEY, ETIMEDOUT } from 'corral';
    const kernel = createKernel();
    const ext = kernel.extension('acct');
    const hook = { current_hiwater: -1, configp: () => 0 };
    if (ext.kwpar_reghook(WPAR_NOTIFY_HOOK, hook) !== 1 || hook.current_hiwater !== 0) throw new Error('reghook');
    const cid = await kernel.activate({ name: 'web' });
    ext.kwpar_checkpoint_status(cid, WPAR_CHECKPOINT_DENY, 'busy');
    if (await kernel.services.kwpar_checkpoint_status(cid, WPAR_CHECKPOINT_TRY, 0) !== ETIMEDOUT) throw new Error('try');
    if (!(new WparError('EINVAL', 'x') instanceof Error) || BADREGKEY !== -1) throw new Error('exports');
    console.log('ok', cid);
  `);
  assert.equal(run(process.execPath, ['consumer.js'], consumer).trim(), 'ok 1');

  writeFileSync(join(consumer, 'consumer.ts'), `
    import { createKernel, type wpar_config_hook_t, type WparStatus, WPAR_NOTIFY_HOOK } from 'corral';
    const hook: wpar_config_hook_t = { current_hiwater: 0, configp: (flags, cid, corralp) => (corralp.name.length > 0 && cid > 0 && flags > 0 ? 0 : 1) };
    const key: number = createKernel().services.kwpar_reghook(WPAR_NOTIFY_HOOK, hook);
    const s: WparStatus | undefined = createKernel().status(key);
    export { s };
  `);
  writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2023', lib: ['es2024', 'esnext.disposable'], typeRoots: [join(root, 'node_modules/@types')], types: ['node'], noEmit: true, skipLibCheck: false },
    files: ['consumer.ts'],
  }));
  run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', consumer], consumer);
});

/** The installed executables (package.json's `bin`), each a path inside the consumer's node_modules. */
function installedBins(): [string, string][] {
  const pkg = join(consumer, 'node_modules/corral');
  const bins = (JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin;
  return Object.entries(bins).map(([name, file]) => [name, join(pkg, file)]);
}

test('every installed executable answers --help on Node 24', () => {
  const bins = installedBins();
  assert.ok(bins.length >= 10, 'wpard and the nine commands');
  for (const [name, file] of bins) {
    const r = spawnSync(process.execPath, [file, '--help'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, `${name} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: ${name} `), name);
  }
});

test('on an older Node every installed executable says, in one line, that it needs Node 24', { skip: oldNode === undefined && 'no Node older than 24 on this machine' }, () => {
  const version = spawnSync(oldNode!, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  for (const [name, file] of installedBins()) {
    const r = spawnSync(oldNode!, [file, '--help'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, `${name} on Node ${version}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `${name}: corral needs Node.js 24 or later; this is ${version}\n`);
  }
});

test('npm run demo:kernel works on a fresh checkout', () => {
  const checkout = freshCheckout(join(work, 'demo'));
  // What `npm` puts first on PATH decides the Node the demo runs on; a fresh checkout has none of its own yet.
  const out = run('npm', ['run', '--silent', 'demo:kernel'], checkout);
  assert.match(out, /WPARs left: 0/);
});
