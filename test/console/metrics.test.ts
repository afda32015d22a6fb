// `/metrics` (issue 10, W4): Prometheus text, parsed with a real parser, agreeing with lswpar --json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parse, { type Family } from 'parse-prometheus-text-format';
import { subscribe, waitForOutput } from '../e2e/harness.ts';
import { http, startConsoleSystem } from './helpers.ts';

const HOLDER = join(import.meta.dirname, '../e2e/fixtures/holder.ts');

/** The value of `name{labels}` (a gauge or counter sample), or undefined. */
function value(families: readonly Family[], name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.find((f) => f.name === name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample?.value === undefined ? undefined : Number(sample.value);
}

test('/metrics parses as Prometheus text and its numbers match lswpar --json', { timeout: 120_000 }, async () => {
  await using c = await startConsoleSystem();
  const img = mkdtempSync(join(tmpdir(), 'corral-metrics-img-'));
  try {
    await c.sys.ok('mkwpar', ['-n', 'held', '-c', '-R', 'memory=128M,procs=32', '--', process.execPath, HOLDER]);
    await c.sys.ok('mkwpar', ['-n', 'loop', '-c', '-s', '--', 'sh', '-c', 'while true; do echo x; sleep 1; done']);
    await c.sys.ok('mkwpar', ['-n', 'idle', '--', 'true']);
    const denied = await subscribe(c.sys, (e) => e.type === 'deny' && e.name === 'held');
    await c.sys.ok('startwpar', ['held']);
    await denied.event;
    await waitForOutput(c.sys, 'held', /denied/);
    const refused = await c.sys.run('chkptwpar', ['-d', img, '-w', '0', 'held']);
    assert.match(refused.stderr, /ETIMEDOUT/);
    await c.sys.ok('chkptwpar', ['-d', img, 'loop']);

    const res = await http(`${c.origin}/metrics`, { headers: { authorization: `Bearer ${c.token}` } });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const families = parse(res.body);
    const wpars = await c.sys.list();

    for (const f of families) assert.match(f.name, /^corral_/, 'every name is prefixed corral_');
    for (const state of ['D', 'T', 'A', 'F', 'B']) {
      assert.equal(value(families, 'corral_wpars', { state }), wpars.filter((w) => w.state === state).length, `WPARs in state ${state}`);
    }
    for (const w of wpars) {
      assert.equal(value(families, 'corral_wpar_state', { wpar: w.name, state: w.state }), 1, `${w.name} is ${w.state}`);
      assert.equal(value(families, 'corral_wpar_denials', { wpar: w.name }), w.denials.length, `${w.name}'s denials`);
      assert.equal(value(families, 'corral_wpar_cid', { wpar: w.name }), w.cid ?? undefined, `${w.name}'s cid`);
      if (w.state === 'A') {
        assert.ok(value(families, 'corral_wpar_memory_bytes', { wpar: w.name })! > 0, `${w.name} uses memory`);
        assert.ok(value(families, 'corral_wpar_processes', { wpar: w.name })! >= 2, `${w.name} has processes`);
        assert.ok(value(families, 'corral_wpar_cpu_seconds', { wpar: w.name })! >= 0);
      } else {
        assert.equal(value(families, 'corral_wpar_memory_bytes', { wpar: w.name }), undefined, `${w.name} is not running`);
      }
    }
    assert.equal(value(families, 'corral_wpar_memory_limit_bytes', { wpar: 'held' }), 128 * 1024 * 1024);
    assert.equal(value(families, 'corral_wpar_processes_limit', { wpar: 'held' }), 32);
    assert.equal(wpars.find((w) => w.name === 'held')!.denials.length, 1);
    assert.equal(value(families, 'corral_denials_total', { wpar: 'held' }), 1);
    assert.equal(value(families, 'corral_checkpoints_total', { result: 'ok' }), 1);
    assert.equal(value(families, 'corral_checkpoints_total', { result: 'failed' }), 1);
    assert.equal(value(families, 'corral_checkpoint_failures_total', { errno: 'ETIMEDOUT' }), 1);
    for (const name of ['corral_checkpoint_duration_seconds', 'corral_checkpoint_frozen_seconds']) {
      const h = families.find((f) => f.name === name)!;
      assert.equal(h.type, 'HISTOGRAM');
      assert.equal(Number(h.metrics[0]!.count), 1, `${name} has the one checkpoint`);
      assert.ok(Number(h.metrics[0]!.sum) > 0);
    }
    assert.ok(value(families, 'corral_uptime_seconds')! > 0);
    assert.ok(value(families, 'corral_event_loop_lag_seconds', { stat: 'p99' })! >= 0);
    assert.equal(families.find((f) => f.name === 'corral_callout_duration_seconds')?.type, 'HISTOGRAM');
  } finally {
    rmSync(img, { recursive: true, force: true });
  }
});
