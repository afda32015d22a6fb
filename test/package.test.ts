// The published package: a separate project installs the `npm pack` tarball and imports it,
// from plain JavaScript and from TypeScript (so the .d.ts files and the exports map are checked too;
// a TypeScript consumer on Node has @types/node, which provides AbortSignal in our signatures).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const run = (cmd: string, args: string[], cwd: string): string =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('a consumer project installs the packed tarball and imports corral', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-consumer-'));
  try {
    run('npm', ['pack', '--silent', '--pack-destination', dir], root);
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack made a tarball');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `./${tarball}`], dir);

    writeFileSync(join(dir, 'consumer.js'), `
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
    assert.equal(run(process.execPath, ['consumer.js'], dir).trim(), 'ok 1');

    writeFileSync(join(dir, 'consumer.ts'), `
      import { createKernel, type wpar_config_hook_t, type WparStatus, WPAR_NOTIFY_HOOK } from 'corral';
      const hook: wpar_config_hook_t = { current_hiwater: 0, configp: (flags, cid, corralp) => (corralp.name.length > 0 && cid > 0 && flags > 0 ? 0 : 1) };
      const key: number = createKernel().services.kwpar_reghook(WPAR_NOTIFY_HOOK, hook);
      const s: WparStatus | undefined = createKernel().status(key);
      export { s };
    `);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2023', lib: ['es2024', 'esnext.disposable'], typeRoots: [join(root, 'node_modules/@types')], types: ['node'], noEmit: true, skipLibCheck: false },
      files: ['consumer.ts'],
    }));
    run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
