import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WparError } from '../../src/kernel/errno.ts';
import { formatLimits, parseLimits } from '../../src/runtime/limits.ts';

describe('parseLimits', () => {
  test('reads every key, units binary, plain bytes allowed', () => {
    assert.deepEqual(parseLimits('memory=256M,cpu=50,procs=64', { cpus: 2 }), { memoryBytes: 256 * 2 ** 20, cpuPercent: 50, procs: 64 });
    assert.deepEqual(parseLimits('memory=1048576'), { memoryBytes: 1048576 });
    assert.deepEqual(parseLimits('memory=2048k'), { memoryBytes: 2 * 2 ** 20 });
    assert.deepEqual(parseLimits('memory=1G'), { memoryBytes: 2 ** 30 });
    assert.deepEqual(parseLimits('memory=3T'), { memoryBytes: 3 * 2 ** 40 });
    assert.deepEqual(parseLimits('procs=1,cpu=1', { cpus: 1 }), { procs: 1, cpuPercent: 1 });
  });

  test('an empty spec is no limits', () => {
    assert.deepEqual(parseLimits(''), {});
  });

  test('cpu goes up to 100 per CPU', () => {
    assert.deepEqual(parseLimits('cpu=6400', { cpus: 64 }), { cpuPercent: 6400 });
    assert.throws(() => parseLimits('cpu=201', { cpus: 2 }), /cpu must be an integer percentage from 1 to 200/);
  });

  const bad: [string, RegExp][] = [
    ['cpu=abc', /^bad resource limit "cpu=abc": cpu must be an integer percentage from 1 to 400$/],
    ['cpu=0', /"cpu=0": cpu must be/],
    ['cpu=50%', /"cpu=50%": cpu must be/],
    ['cpu=1.5', /"cpu=1.5": cpu must be/],
    ['cpu=', /"cpu=": cpu must be/],
    ['memory=0', /"memory=0": memory must be a number of bytes .*at least 1M/],
    // The daemon's floor (src/definition/rules.ts): the command no longer accepts what it refuses.
    ['memory=1048575', /"memory=1048575": memory must be .*at least 1M/],
    ['memory=4096', /"memory=4096": memory must be/],
    ['memory=abc', /"memory=abc": memory must be/],
    ['memory=1.5G', /"memory=1.5G": memory must be/],
    ['memory=10P', /"memory=10P": memory must be/],
    ['memory=256MB', /"memory=256MB": memory must be/],
    ['memory=-1', /"memory=-1": memory must be/],
    ['memory=99999999999T', /"memory=99999999999T": memory must be/],
    ['procs=0', /"procs=0": procs must be a positive integer/],
    ['procs=-3', /"procs=-3": procs must be/],
    ['procs=x', /"procs=x": procs must be/],
    ['disk=1G', /"disk=1G": unknown limit "disk" \(known: memory, cpu, procs\)/],
    ['memory=1M,memory=2M', /"memory=2M": memory is given more than once/],
    ['memory', /"memory": expected KEY=VALUE/],
    ['=5', /"=5": expected KEY=VALUE/],
    ['memory=1M,', /"": expected KEY=VALUE/],
    ['memory=1M,,cpu=5', /"": expected KEY=VALUE/],
    [' memory=1M', /unknown limit " memory"/],
  ];
  for (const [spec, message] of bad) {
    test(`rejects ${JSON.stringify(spec)} with EINVAL`, () => {
      assert.throws(() => parseLimits(spec, { cpus: 4 }), (err: unknown) => {
        assert.ok(err instanceof WparError);
        assert.equal(err.code, 'EINVAL');
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe('formatLimits', () => {
  test('writes the -R syntax back, in the largest exact unit', () => {
    assert.equal(formatLimits({ memoryBytes: 256 * 2 ** 20, cpuPercent: 50, procs: 64 }), 'memory=256M,cpu=50,procs=64');
    assert.equal(formatLimits({ memoryBytes: 1536 * 2 ** 20 }), 'memory=1536M');
    assert.equal(formatLimits({ memoryBytes: 1000 }), 'memory=1000');
    assert.equal(formatLimits({ memoryBytes: 2 ** 40 }), 'memory=1T');
    assert.equal(formatLimits({}), '');
  });

  test('round-trips through parseLimits', () => {
    for (const spec of ['memory=1G,cpu=150,procs=2', 'memory=1234567', 'procs=9', '']) {
      assert.equal(formatLimits(parseLimits(spec, { cpus: 2 })), spec);
    }
  });
});
