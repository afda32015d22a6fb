/**
 * Compares the kernel (through its public API) with the reference model after each step.
 * @module
 */
import assert from 'node:assert/strict';
import { WparError, type WparStatus } from '../../../src/index.ts';
import type { Expect, Model, MWpar } from './model.ts';
import type { Real, Settled } from './real.ts';
import { SPEC } from './spec.ts';

interface View {
  cid: number;
  name: string;
  state: string;
  phase: string;
  denials: { owner: string; reason: string; since: number }[];
}

function viewReal(s: WparStatus): View {
  return {
    cid: s.cid, name: s.name, state: s.state, phase: s.phase,
    denials: s.denials.map((d) => ({ owner: d.owner, reason: d.reason, since: d.since })),
  };
}

/** The model's view; fields the spec leaves open are copied from the kernel's answer. */
function viewModel(w: MWpar, real: View | undefined): View {
  if (w.limbo) {
    const ok = real !== undefined && (real.state === 'starting' || real.state === 'stopping');
    return {
      cid: w.cid, name: w.name, state: ok ? real.state : 'starting|stopping (failed activation rolling back)',
      phase: real?.phase ?? '?', denials: real?.denials ?? [],
    };
  }
  return {
    cid: w.cid, name: w.name, state: w.state,
    // The phase of a stopping WPAR is not specified.
    phase: w.state === 'stopping' ? (real?.phase ?? '?') : w.phase,
    denials: w.denials.map((d) => ({ ...d })),
  };
}

export function describeSettled(s: Settled | undefined): string {
  if (s === undefined) return 'never made';
  if (s.s === 'pending') return 'pending';
  if (s.s === 'resolved') return `resolved ${String(s.v)}`;
  const e = s.err;
  return e instanceof WparError ? `rejected ${e.code} (${e.message})` : `rejected non-WparError ${String(e)}`;
}

function describeExpect(e: Expect): string {
  switch (e.s) {
    case 'pending': return 'pending';
    case 'resolved': return `resolved ${String(e.v)}`;
    case 'rejected': return `rejected ${e.code}${e.mentions ? ` naming ${e.mentions.join(', ')}` : ''}`;
    case 'oneOf': return `resolved one of ${e.vs.join('|')}`;
    case 'gone': return 'settled (resolved, or rejected ENOENT)';
  }
}

export function matches(real: Settled | undefined, e: Expect): boolean {
  if (real === undefined) return false;
  switch (e.s) {
    case 'pending':
      return real.s === 'pending';
    case 'resolved':
      return real.s === 'resolved' && Object.is(real.v, e.v);
    case 'oneOf':
      return real.s === 'resolved' && e.vs.includes(real.v);
    case 'gone':
      return (real.s === 'resolved' && real.v === undefined) || isWparError(real, 'ENOENT');
    case 'rejected': {
      if (!isWparError(real, e.code)) return false;
      const err = (real as { err: WparError }).err;
      if (err.errno !== SPEC[e.code]) return false;
      return (e.mentions ?? []).every((m) => err.message.includes(m));
    }
  }
}

function isWparError(real: Settled, code: string): boolean {
  return real.s === 'rejected' && real.err instanceof WparError && real.err.code === code;
}

function compareOutcomes(kind: string, real: Map<number, Settled>, model: Map<number, Expect>, ctx: string): void {
  for (const [id, e] of model) {
    const r = real.get(id);
    if (!matches(r, e)) {
      assert.fail(`${ctx}: ${kind} #${id} should be ${describeExpect(e)}, but is ${describeSettled(r)}`);
    }
  }
}

/** Everything observable must agree with the model. */
export function expectSame(m: Model, r: Real, ctx: string): void {
  if (r.problems.length > 0) assert.fail(`${ctx}: ${r.problems.join('; ')}`);
  assert.equal(r.kernel.hiwater, m.hiwater, `${ctx}: hiwater (K2)`);
  const listed = r.kernel.list();
  const real = listed.map(viewReal);
  // status()/list() hand out snapshots: changing one must not change the kernel (checked on the next read).
  for (const s of listed) {
    s.state = 'active';
    s.phase = 'normal';
    s.denials.push({ owner: 'forged', reason: 'forged', since: 0 });
  }
  const byCid = new Map(real.map((v) => [v.cid, v]));
  const model = [...m.wpars.values()].sort((a, b) => a.cid - b.cid).map((w) => viewModel(w, byCid.get(w.cid)));
  assert.deepStrictEqual(real, model, `${ctx}: kernel.list()`);
  for (let cid = 0; cid <= m.cfg.maxWpars + 1; cid++) {
    const s = r.kernel.status(cid);
    const expected = model.find((v) => v.cid === cid);
    assert.deepStrictEqual(s === undefined ? undefined : viewReal(s), expected, `${ctx}: kernel.status(${cid})`);
  }
  assert.deepStrictEqual(r.log, m.log, `${ctx}: callout/subsystem log`);
  assert.deepStrictEqual([...r.gates.keys()].sort(), m.gateKeys(), `${ctx}: subsystem steps under way (held gates)`);
  compareOutcomes('activate()', r.acts, m.acts, ctx);
  compareOutcomes('deactivate()', r.deacts, m.deacts, ctx);
  compareOutcomes('TRY', r.tries, m.tries, ctx);
}
