/**
 * Model-based test of the WPAR kernel services (kernel-services.md K1–K17): random programs of
 * activations, deactivations, hook (un)registrations, checkpoint commands, clock advances and owner
 * closes run against the kernel and against an independent reference model (test/support/model/),
 * and everything observable is compared after every step.
 *
 * Reading a counterexample: owners are K (kernel.services), A, B, C (extensions ext-a..c); X' is the
 * previously closed Owner object of X (after a reopen), else X itself. cps(cid, CMD, varp) is
 * kwpar_checkpoint_status. Hooks are numbered in registration order (hook 0, 1, ...) in the callout log.
 * The fake clock fires the kernel's timers exactly when due; the model expects TRY and callout
 * timeouts exactly at their deadline (the spec allows up to 100 ms later; this kernel is exact).
 * Scale the run count with CORRAL_MODEL_SCALE (e.g. 0.1 quick, 10 soak).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import * as corral from '../../src/index.ts';
import {
  Activate, Advance, Checkpoint, Deactivate, Reghook, Release, SameTick, WallJump, commandArbitraries, type Cmd, type CommandsConfig,
} from '../support/model/commands.ts';
import { Model } from '../support/model/model.ts';
import { Real } from '../support/model/real.ts';
import { ALLOW, DENY, ETIMEDOUT, SPEC, TRY } from '../support/model/spec.ts';

/** Scale with CORRAL_MODEL_SCALE (e.g. 0.1 for a quick run, 10 for a soak). */
const SCALE = Number(process.env.CORRAL_MODEL_SCALE ?? '1') || 1;

const OWNERS = ['kernel', 'ext-a', 'ext-b', 'ext-c'] as const;

interface Suite {
  readonly title: string;
  readonly runs: number;
  readonly maxCommands: number;
  readonly kernel: { maxWpars: number; maxHooks: number; calloutTimeoutMs: number };
  readonly commands: Omit<CommandsConfig, 'maxWpars' | 'owners'>;
}

const SUITES: readonly Suite[] = [
  {
    title: 'everything mixed: small tables (maxWpars 3, maxHooks 3), gated subsystems, hanging callouts',
    runs: 5000, maxCommands: 60,
    kernel: { maxWpars: 3, maxHooks: 3, calloutTimeoutMs: 1500 },
    commands: { checkpointWeight: 1, lifecycleWeight: 1 },
  },
  {
    title: 'checkpoint-heavy: DENY/ALLOW/TRY/CLEAR races with timeouts and owner closes',
    runs: 3500, maxCommands: 60,
    kernel: { maxWpars: 3, maxHooks: 3, calloutTimeoutMs: 2000 },
    commands: { checkpointWeight: 3, lifecycleWeight: 0.5 },
  },
  {
    title: 'lifecycle-heavy: activation/deactivation interleavings, rollbacks, capacity',
    runs: 1500, maxCommands: 60,
    kernel: { maxWpars: 2, maxHooks: 3, calloutTimeoutMs: 1000 },
    commands: { checkpointWeight: 0.5, lifecycleWeight: 2 },
  },
];

test('the package exports the contract\'s names and values (§2)', () => {
  for (const [name, value] of Object.entries(SPEC)) {
    assert.equal((corral as Record<string, unknown>)[name], value, name);
  }
  const e = new corral.WparError('ETIMEDOUT', 'x');
  assert.ok(e instanceof Error);
  assert.equal(e.code, 'ETIMEDOUT');
  assert.equal(e.errno, 78);
});

let sequences = 0;
const coverage = new Map<string, number>();

for (const suite of SUITES) {
  test(`model: ${suite.title}`, async () => {
    const cfg = {
      ...suite.kernel,
      epoch: 1_700_000_000_000,
      ownerNames: OWNERS,
    };
    const arbs = commandArbitraries({ ...suite.commands, maxWpars: suite.kernel.maxWpars, owners: OWNERS.length });
    await fc.assert(
      fc.asyncProperty(fc.commands(arbs, { maxCommands: suite.maxCommands, size: 'max' }), async (cmds) => {
        sequences++;
        const model = new Model(cfg);
        try {
          await fc.asyncModelRun(() => ({ model, real: new Real(cfg) }), cmds);
        } finally {
          for (const [k, n] of model.stats) coverage.set(k, (coverage.get(k) ?? 0) + n);
        }
      }),
      { numRuns: Math.max(1, Math.round(suite.runs * SCALE)) },
    );
  });
}

/** Events the generated programs must keep reaching, or the test has gone blind somewhere. */
const MUST_COVER = [
  'activated', 'activated (restart)', 'no free cid', 'hook table full', 'unregister another owner\'s hook',
  'activation failed: ECANCELED (callout)', 'activation failed: ETIMEDOUT (callout)', 'activation failed: ECANCELED (subsystem)',
  'deactivate() of a starting WPAR', 'deactivate() of a stopping WPAR', 'deactivate() of a WPAR whose activation failed',
  'WPARSTART callout timed out', 'WPARSTOP callout timed out', 'rollback waits for a WPARSTOP callout', 'checkpoint call on a WPAR rolling back',
  'DENY (normal)', 'DENY (pending)', 'DENY (restarting)', 'DENY (starting)',
  'TRY waits', 'waiting TRY succeeds', 'waiting TRY times out', 'waiting TRY ends with its WPAR', 'close releases denials',
];

test('at least 10,000 random sequences ran, reaching every interesting state', { skip: SCALE < 1 }, (t) => {
  assert.ok(sequences >= 10_000, `${sequences} sequences`);
  t.diagnostic(`${sequences} sequences; ${[...coverage].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}`);
  for (const k of MUST_COVER) assert.ok((coverage.get(k) ?? 0) > 0, `never reached: ${k}`);
});

/** Fixed programs through the same harness: each step is still compared with the model. */
async function scenario(steps: readonly Cmd[], cfg: Partial<typeof BASE> = {}): Promise<{ m: Model; r: Real }> {
  const c = { ...BASE, ...cfg };
  const m = new Model(c);
  const r = new Real(c);
  for (const s of steps) await s.run(m, r);
  return { m, r };
}

const BASE = { maxWpars: 3, maxHooks: 3, calloutTimeoutMs: 1500, epoch: 1_700_000_000_000, ownerNames: OWNERS };
const [K, A, B, C] = [0, 1, 2, 3];

test('scenario K11 †: ALLOW of the last denial and a DENY in the same tick: the DENY is EBUSY, the TRY resolves 0', async () => {
  const { r } = await scenario([
    new Activate('w0', false, 'none'),
    new Checkpoint(A, false, 1, DENY, 'r1'),
    new Checkpoint(B, false, 1, TRY, 5),
    new SameTick([new Checkpoint(A, false, 1, ALLOW, undefined), new Checkpoint(C, false, 1, DENY, 'late')], undefined),
  ]);
  assert.equal(r.kernel.status(1)?.phase, 'checkpointing');
  assert.deepStrictEqual([...r.tries.values()], [{ s: 'resolved', v: 0 }]);
});

test('scenario K12: a waiting TRY times out at its deadline, not before, whatever the wall clock does', async () => {
  const { m, r } = await scenario([
    new Activate('w0', false, 'none'),
    new Checkpoint(A, false, 1, DENY, 'r1'),
    new Checkpoint(B, false, 1, TRY, 2),
    new WallJump(-3_600_000),
    new Advance(1999),
  ]);
  assert.deepStrictEqual([...r.tries.values()], [{ s: 'pending' }]);
  await new Advance(1).run(m, r);
  assert.deepStrictEqual([...r.tries.values()], [{ s: 'resolved', v: ETIMEDOUT }]);
  assert.equal(r.kernel.status(1)?.phase, 'normal');
  assert.deepStrictEqual(r.kernel.status(1)?.denials.map((d) => [d.owner, d.reason, d.since]), [['ext-a', 'r1', BASE.epoch]]);
});

test('scenario K15: a hanging WPARSTART times out: ETIMEDOUT naming owner and key, WPARSTOP in reverse to the others', async () => {
  const { r } = await scenario([
    new Reghook(K, false, 1, 'ok', 'ok'),
    new Reghook(A, false, 1, 'ok', 'async'),
    new Reghook(B, false, 1, 'ok', 'hang'),
    new Activate('w0', false, 'none'),
    new Advance(1499),
    new Advance(1),
  ]);
  const calls = r.log.map((e) => e.t === 'callout' ? `${e.flags === 1 ? 'START' : 'STOP'}:${e.hook}` : `${e.sub}.${e.op}`);
  assert.deepStrictEqual(calls, ['START:0', 'START:1', 'START:2', 'STOP:1', 'STOP:0']);
  assert.deepStrictEqual(r.kernel.list(), []);
});

test('scenario K16.1: deactivate() of a starting WPAR stops it once its activation settles', async () => {
  const { r } = await scenario([
    new Reghook(A, false, 1, 'ok', 'ok'),
    new Activate('w0', false, 'start'),
    new Deactivate(1),
    new Deactivate(1),
    new Release(0, false),
  ]);
  const calls = r.log.map((e) => e.t === 'callout' ? `${e.flags === 1 ? 'START' : 'STOP'}:${e.hook}` : `${e.sub}.${e.op}`);
  assert.deepStrictEqual(calls, ['START:0', 'sysA.start', 'gate.start', 'gate.stop', 'sysA.stop', 'STOP:0']);
  assert.deepStrictEqual([...r.deacts.values()].map((s) => s.s), ['resolved', 'resolved']);
});

test('scenario K7/K14.3/K17: a hook registered inside a WPARSTART callout misses that WPARSTART, gets the WPARSTOP', async () => {
  const { r } = await scenario([
    new Reghook(A, false, 1, 'ok', 'reg'),
    new Activate('w0', false, 'none'),
    new Deactivate(1),
  ]);
  const calls = r.log.flatMap((e) => e.t === 'callout' ? [`${e.flags === 1 ? 'START' : 'STOP'}:${e.hook}`] : []);
  assert.deepStrictEqual(calls, ['START:0', 'STOP:1', 'STOP:0']);
});
