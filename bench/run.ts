/**
 * `npm run bench [-- kernel|daemon|start|console|commands|move|cluster|replicate|checkpoint]`: every measure (or one group) beside a baseline taken in
 * the same run, as ratios. Re-runs itself with --expose-gc so heap measures are exact.
 */
import { spawnSync } from 'node:child_process';
import { commandsBench } from './commands.ts';
import { consoleBench } from './console.ts';
import { checkpointBench, daemonBench, startBench } from './daemon.ts';
import { kernelBench } from './kernel.ts';
import { moveBench } from './move.ts';
import { clusterBench } from './cluster.ts';
import { replicationBench } from './replicate.ts';
import { printTable } from './measure.ts';

if (!(globalThis as { gc?: unknown }).gc) {
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const only = process.argv[2];
if (only !== undefined && !['kernel', 'daemon', 'start', 'console', 'commands', 'move', 'cluster', 'replicate', 'checkpoint'].includes(only)) {
  console.error(`bench: unknown group ${JSON.stringify(only)} (kernel, daemon, start, console, commands, move, cluster, replicate, checkpoint)`);
  process.exit(2);
}
console.log(`corral bench — node ${process.version}, ${process.platform}/${process.arch}`);
if (only === undefined || only === 'kernel') printTable('Kernel (issue #2)', await kernelBench());
if (only === undefined || only === 'daemon') printTable('Runtime and checkpoint (issues #3, #4), through a real wpard', await daemonBench());
if (only === undefined || only === 'console') printTable('Web console and metrics (issue 10)', await consoleBench());
if (only === undefined || only === 'commands') printTable('Command start-up (issue 11, item 19)', await commandsBench());
if (only === undefined || only === 'move') printTable('Live moves between test hosts (issue 8)', await moveBench());
if (only === undefined || only === 'cluster') printTable('Clusters on etcd (issue 9)', await clusterBench());
if (only === undefined || only === 'cluster' || only === 'replicate') printTable('Replicated checkpoints and failover (issue 9, C5, C6)', await replicationBench());
if (only === 'start') printTable('WPAR start latency', await startBench());
if (only === 'checkpoint') printTable('Checkpoint and restart (issues #4, #8 M5), through real wpards', await checkpointBench());
