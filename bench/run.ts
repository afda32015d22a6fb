/**
 * `npm run bench`: every measure beside a baseline taken in the same run, as ratios.
 * Re-runs itself with --expose-gc so heap measures are exact.
 */
import { spawnSync } from 'node:child_process';
import { daemonBench } from './daemon.ts';
import { kernelBench } from './kernel.ts';
import { printTable } from './measure.ts';

if (!(globalThis as { gc?: unknown }).gc) {
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

console.log(`corral bench — node ${process.version}, ${process.platform}/${process.arch}`);
printTable('Kernel (issue #2)', await kernelBench());
printTable('Runtime and checkpoint (issues #3, #4), through a real wpard', await daemonBench());
