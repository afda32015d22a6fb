/**
 * One deny+allow measurement in a fresh process, so that kernels measured against each other share no
 * JIT history. `node bench/kernel-events.ts never|unsubscribed|listening` prints ns per pair.
 */
import { createKernel, WPAR_CHECKPOINT_ALLOW, WPAR_CHECKPOINT_DENY } from '../src/index.ts';
import { nsPerOp } from './measure.ts';

const mode = process.argv[2];
if (mode === 'never' || mode === 'unsubscribed' || mode === 'listening') {
  const k = createKernel();
  if (mode === 'unsubscribed') k.subscribe(() => {}).unsubscribe();
  if (mode === 'listening') k.subscribe(() => {});
  const cid = await k.activate({ name: 'bench' });
  const s = k.extension('ext').kwpar_checkpoint_status;
  const ns = nsPerOp((n) => { for (let i = 0; i < n; i++) { s(cid, WPAR_CHECKPOINT_DENY, 'r'); s(cid, WPAR_CHECKPOINT_ALLOW); } }, 2_000_000);
  process.stdout.write(`${ns}\n`);
}
