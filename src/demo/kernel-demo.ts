/**
 * A short, readable demonstration of the kernel on the console: two extensions register hooks, WPARs
 * start and stop with their callouts in order, a denial holds a TRY until its ALLOW, a TRY times out
 * naming the denial, and a restart is cleared. Every line under a heading is a kernel event.
 * @module
 */
import {
  createKernel, WPAR_CHECKPOINT_ALLOW, WPAR_CHECKPOINT_CLEAR, WPAR_CHECKPOINT_DENY, WPAR_CHECKPOINT_TRY,
  WPAR_NOTIFY_HOOK, WPAR_RESTART_CLEAR, WPARSTART, errnoName, type KernelEvent,
} from '../index.ts';
import { clockTime } from '../api/errors.ts';

/** Runs the demonstration, writing to `out` (default: stdout). */
export async function kernelDemo(out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<void> {
  const kernel = createKernel();
  const t0 = Date.now();
  const stamp = (): string => `+${String(Date.now() - t0).padStart(4)} ms`;
  kernel.subscribe((e) => out(`  ${stamp()}  ${describe(e)}`));
  const heading = (s: string): void => out(`\n${s}`);
  const result = (what: string, errno: number): void => out(`  ${stamp()}  → ${what} returned ${errno === 0 ? '0' : `${errnoName(errno)} (${errno})`}`);

  heading('1. Two kernel extensions register WPAR_NOTIFY_HOOKs');
  const acct = kernel.extension('accounting');
  const slots: number[] = [];
  const acctHook = {
    current_hiwater: 0,
    configp: (flags: number, cid: number) => { if (flags === WPARSTART) slots[cid] = 0; return 0; },
  };
  acct.kwpar_reghook(WPAR_NOTIFY_HOOK, acctHook);
  out(`  accounting sized its table from current_hiwater = ${acctHook.current_hiwater}`);
  const dev = kernel.extension('devices');
  dev.kwpar_reghook(WPAR_NOTIFY_HOOK, { current_hiwater: 0, configp: async () => 0 });

  heading('2. WPARs start and stop: WPARSTART in registration order, WPARSTOP in reverse');
  const web = await kernel.activate({ name: 'web' });
  const batch = await kernel.activate({ name: 'batch' });
  await kernel.deactivate(batch);

  heading('3. A denial holds a checkpoint (TRY) until its ALLOW');
  result('DENY', dev.kwpar_checkpoint_status(web, WPAR_CHECKPOINT_DENY, 'device open in an interim state'));
  const attempt = kernel.services.kwpar_checkpoint_status(web, WPAR_CHECKPOINT_TRY, 30);
  setTimeout(() => result('ALLOW', dev.kwpar_checkpoint_status(web, WPAR_CHECKPOINT_ALLOW)), 200);
  result('TRY', await attempt);
  result('CLEAR', kernel.services.kwpar_checkpoint_status(web, WPAR_CHECKPOINT_CLEAR));

  heading('4. A TRY that times out names the denial\'s owner and reason');
  using _denial = dev.deny(web, 'writing batch 12');
  try {
    await kernel.services.tryCheckpoint(web, { timeoutMs: 1000 });
  } catch (err) {
    out(`  ${stamp()}  → ${(err as Error).message}`);
  }
  _denial.allow();

  heading('5. A WPAR re-created on an arrival system is restarting until RESTART_CLEAR');
  const moved = await kernel.activate({ name: 'moved' }, { restart: true });
  result('TRY while restarting', await kernel.services.kwpar_checkpoint_status(moved, WPAR_CHECKPOINT_TRY, 0));
  result('RESTART_CLEAR', kernel.services.kwpar_checkpoint_status(moved, WPAR_RESTART_CLEAR));

  heading('6. Shutting down');
  for (const w of kernel.list()) await kernel.deactivate(w.cid);
  out(`  hiwater = ${kernel.hiwater}; WPARs left: ${kernel.list().length}`);
}

function describe(e: KernelEvent): string {
  switch (e.type) {
    case 'owner.open': case 'owner.close': return `${e.type} ${e.owner}`;
    case 'hook.register': return `hook.register key ${e.key} by ${e.owner} (current_hiwater ${e.hiwater})`;
    case 'hook.unregister': return `hook.unregister key ${e.key} by ${e.owner}`;
    case 'wpar.activating': return `activate "${e.name}" → cid ${e.cid}${e.restart ? ' (restart)' : ''}`;
    case 'wpar.active': case 'wpar.stopping': case 'wpar.stopped': return `${e.type.slice(5)} "${e.name}" (cid ${e.cid})`;
    case 'wpar.failed': return `activation of "${e.name}" failed: ${e.code}`;
    case 'callout': return `  ${e.flags} → hook ${e.key} of ${e.owner}: ${e.outcome}${e.detail ? ` (${e.detail})` : ''}`;
    case 'subsystem': return `  subsystem ${e.subsystem} ${e.step}: ${e.ok ? 'ok' : e.detail}`;
    case 'deny': return `deny "${e.name}" by ${e.owner}: "${e.reason}" since ${clockTime(e.since)}`;
    case 'allow': return `allow "${e.name}" by ${e.owner} (${e.cause}): "${e.reason}"`;
    case 'try.wait': return `TRY on "${e.name}" waits up to ${e.timeoutMs / 1000} s for ${e.denials} denial(s)`;
    case 'try.done': return `TRY on "${e.name}": ${e.result} after ${Math.round(e.waitedMs)} ms`;
    case 'checkpoint.clear': case 'restart.clear': return `${e.type} "${e.name}" by ${e.owner}`;
  }
}
