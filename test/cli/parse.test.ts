// Parsing of every command: good input, and bad input that fails before the daemon is asked.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkDefinition } from '../../src/definition/rules.ts';
import { HELP } from '../../src/cli/args.ts';
import { parseChkptwpar } from '../../src/cli/commands/chkptwpar.ts';
import { parseEvents } from '../../src/cli/commands/events.ts';
import { listPath, parseLswpar } from '../../src/cli/commands/lswpar.ts';
import { logsPath, parseLogs } from '../../src/cli/commands/logs.ts';
import { parseMkwpar, type MkwparOptions } from '../../src/cli/commands/mkwpar.ts';
import { parseRestartwpar } from '../../src/cli/commands/restartwpar.ts';
import { parseRmwpar } from '../../src/cli/commands/rmwpar.ts';
import { parseStartwpar } from '../../src/cli/commands/startwpar.ts';
import { parseStopwpar } from '../../src/cli/commands/stopwpar.ts';
import { parseWparexec, type WparexecOptions } from '../../src/cli/commands/wparexec.ts';
import { CliError, errorLine } from '../../src/cli/errors.ts';

const io = { env: { WPAR_HOME: '/srv/corral' }, cwd: '/work/dir' };

/** The one error line `fn` fails with, and its exit status. */
function failure(prefix: string, fn: () => unknown): { line: string; status: number } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CliError, `expected a CliError, got ${String(err)}`);
    return { line: errorLine(prefix, err), status: err.exitStatus };
  }
  assert.fail('expected a usage error');
}

function mk(...argv: string[]): MkwparOptions {
  const o = parseMkwpar(argv, io);
  assert.notEqual(o, HELP);
  return o as MkwparOptions;
}

describe('mkwpar', () => {
  test('every flag', () => {
    const o = mk('-n', 'web', '-c', '-h', 'web.example', '-e', 'A=1', '-e', 'B=x=y', '-R', 'memory=256M,cpu=50', '-R', 'procs=64', '-A', '-s', '--json', '--', 'node', 'server.js');
    assert.equal(o.home, '/srv/corral');
    assert.equal(o.json, true);
    assert.deepEqual(o.request, {
      definition: {
        name: 'web', argv: ['node', 'server.js'], env: { A: '1', B: 'x=y' }, hostname: 'web.example', checkpointable: true,
        limits: { memoryBytes: 256 * 2 ** 20, cpuPercent: 50, procs: 64 }, autostart: true,
      },
      start: true,
    });
  });

  test('defaults: no hostname, no limits, not started', () => {
    const o = mk('-n', 'web', '--', 'sleep', '60');
    assert.deepEqual(o.request, {
      definition: { name: 'web', argv: ['sleep', '60'], env: {}, hostname: null, checkpointable: false, limits: {}, autostart: false },
    });
    assert.equal(o.json, false);
  });

  test('--failover is stored only when given (C4); the daemon checks it as a boolean', () => {
    assert.equal(mk('-n', 'web', '--failover', '--', 'sleep', '60').request.definition.failover, true);
    assert.equal('failover' in mk('-n', 'web', '--', 'sleep', '60').request.definition, false);
    const base = { name: 'web', argv: ['sleep', '60'], checkpointable: false, autostart: false };
    assert.equal(checkDefinition({ ...base, failover: true }).failover, true);
    assert.equal('failover' in checkDefinition({ ...base, failover: false }), false);
    assert.throws(() => checkDefinition({ ...base, failover: 'yes' }), /web: failover must be true or false$/);
  });

  test('the command starts at "--" or at the first operand; later flags belong to it', () => {
    assert.deepEqual(mk('-n', 'web', 'node', 'app.js', '-c', '--port', '80').request.definition.argv, ['node', 'app.js', '-c', '--port', '80']);
    assert.equal(mk('-n', 'web', 'node', 'app.js', '-c').request.definition.checkpointable, false);
    assert.deepEqual(mk('-n', 'web', '--', 'weird', '--', '-x').request.definition.argv, ['weird', '--', '-x']);
    assert.deepEqual(mk('-cnweb', 'ls').request.definition, mk('-c', '-n', 'web', 'ls').request.definition);
    assert.deepEqual(mk('--name=web', '-eK=V', 'ls').request.definition.env, { K: 'V' });
  });

  test('shell syntax in the command is kept literally', () => {
    const argv = ['sh', '-c', 'echo $(id -u); rm -rf "$HOME"', "it's", '`uname`', '&&', '|', '>out', '*'];
    assert.deepEqual(mk('-n', 'web', '--', ...argv).request.definition.argv, argv);
    assert.deepEqual(mk('-n', 'web', '-e', 'X=$(whoami);"q"', '--', 'env').request.definition.env, { X: '$(whoami);"q"' });
  });

  test('--home beats WPAR_HOME; relative homes are made absolute', () => {
    assert.equal(mk('--home', 'h2', '-n', 'w', 'ls').home, '/work/dir/h2');
    assert.equal((parseMkwpar(['-n', 'w', 'ls'], { env: { XDG_STATE_HOME: '/x' }, cwd: '/' }) as MkwparOptions).home, '/x/corral');
  });

  test('--help and -? return HELP', () => {
    assert.equal(parseMkwpar(['--help'], io), HELP);
    assert.equal(parseMkwpar(['-?'], io), HELP);
    // after "--" it is the command's own flag
    assert.equal(mk('-n', 'w', '--', 'ls', '--help').request.definition.argv[1], '--help');
  });

  const bad: [string[], string, number][] = [
    [['-n', '../x', '--', 'ls'], `mkwpar: bad WPAR name "../x": 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit (EINVAL)`, 2],
    [['-n', 'a b', '--', 'ls'], 'mkwpar: bad WPAR name "a b": 1 to 64', 2],
    [['-n', 'a'.repeat(65), '--', 'ls'], `mkwpar: bad WPAR name "${'a'.repeat(65)}" (65 characters): 1 to 64`, 2],
    [['-n', '', '--', 'ls'], 'mkwpar: bad WPAR name "": ', 2],
    [['-n', '-x', '--', 'ls'], "mkwpar: option '-n' argument is ambiguous; for a value starting with a dash use '--name=-XYZ' or '-n-XYZ'", 2],
    [['--', 'ls'], "mkwpar: missing -n NAME; see 'mkwpar --help'", 2],
    [['-n', 'web', '-e', 'FOO', '--', 'ls'], 'mkwpar: web: bad environment variable "FOO": expected -e NAME=VALUE (EINVAL)', 2],
    [['-n', 'web', '-e', '=x', '--', 'ls'], 'mkwpar: web: bad environment variable name "": ', 2],
    [['-n', 'web', '-e', '1X=x', '--', 'ls'], 'mkwpar: web: bad environment variable name "1X": ', 2],
    [['-n', 'web', '-e', 'A-B=x', '--', 'ls'], 'mkwpar: web: bad environment variable name "A-B": ', 2],
    [['-n', 'web', '-e', 'WPAR_CID=7', '--', 'ls'], 'mkwpar: web: WPAR_CID is set by the runtime and cannot be defined (EINVAL)', 2],
    [['-n', 'web', '--'], `mkwpar: web: no command given; put it after "--", e.g. mkwpar -n web -- sleep 60; see 'mkwpar --help'`, 2],
    [['-n', 'web'], 'mkwpar: web: no command given', 2],
    [['-n', 'web', '--', ''], 'mkwpar: web: the command name is empty (EINVAL)', 2],
    [['-n', 'web', '-R', 'cpu=abc', '--', 'ls'], 'mkwpar: web: bad resource limit "cpu=abc": cpu must be an integer percentage', 2],
    [['-n', 'web', '-R', 'disk=1G', '--', 'ls'], 'mkwpar: web: bad resource limit "disk=1G": unknown limit "disk"', 2],
    [['-n', 'web', '-R', 'procs=1', '-R', 'procs=2', '--', 'ls'], 'mkwpar: web: bad resource limit "procs=2": procs is given more than once (EINVAL)', 2],
    [['-n', 'web', '-h', 'a b', '--', 'ls'], 'mkwpar: web: bad hostname "a b": ', 2],
    [['-n', 'web', '-h', 'h'.repeat(65), '--', 'ls'], 'mkwpar: web: bad hostname', 2],
    // Item 7 of issue 11: what the daemon or the runtime would refuse, mkwpar refuses first.
    [['-n', 'web', '--', '-weird'], 'mkwpar: web: bad command "-weird": it must not start with "-" (EINVAL)', 2],
    [['-n', 'web', '-R', 'memory=1000', '--', 'ls'], 'mkwpar: web: bad resource limit "memory=1000": memory must be a number of bytes with an optional unit K, M, G or T, at least 1M', 2],
    [['-n', 'web', '-x', '--', 'ls'], "mkwpar: unknown option '-x'; see 'mkwpar --help'", 2],
    [['-n', 'web', '--json=1', '--', 'ls'], "mkwpar: option '--json' does not take an argument", 2],
    [['-n', 'web', '-n'], "mkwpar: option '-n, --name <value>' argument missing; see 'mkwpar --help'", 2],
  ];
  for (const [argv, line, status] of bad) {
    test(`rejects ${JSON.stringify(argv).slice(0, 60)}`, () => {
      const f = failure('mkwpar', () => parseMkwpar(argv, io));
      assert.ok(f.line.startsWith(line), `${f.line}\n  does not start with\n${line}`);
      assert.equal(f.line.includes('\n'), false);
      assert.equal(f.status, status);
    });
  }
});

describe('wparexec', () => {
  const ex = (...argv: string[]): WparexecOptions => parseWparexec(argv, io) as WparexecOptions;

  test('a transient WPAR (started once its log is followed)', () => {
    const o = ex('-n', 'job', '-c', '-e', 'K=V', '-R', 'procs=8', '--', 'sh', '-c', 'exit 3');
    assert.deepEqual(o.request, {
      definition: { name: 'job', argv: ['sh', '-c', 'exit 3'], env: { K: 'V' }, hostname: null, checkpointable: true, limits: { procs: 8 }, autostart: false },
      transient: true,
    });
  });

  test('without -n the WPAR is named after the command', () => {
    assert.equal(ex('--', '/usr/bin/sleep', '1').request.definition.name, 'sleep');
    assert.equal(ex('node', 'x.js').request.definition.name, 'node');
  });

  test('bad input', () => {
    assert.match(failure('wparexec', () => ex('-n', 'job', '--')).line, /^wparexec: job: no command given; put it after "--", e.g. wparexec -n job -- sleep 60/);
    assert.match(failure('wparexec', () => ex()).line, /^wparexec: no command given/);
    assert.match(failure('wparexec', () => ex('--', '.hidden')).line, /^wparexec: cannot name the WPAR after "\.hidden": give -n NAME/);
    assert.match(failure('wparexec', () => ex('-n', 'a b', 'ls')).line, /^wparexec: bad WPAR name "a b"/);
    assert.equal(failure('wparexec', () => ex('-A', '--', 'ls')).line, "wparexec: unknown option '-A'; see 'wparexec --help'");
    assert.equal(failure('wparexec', () => ex('-n', 'j', '-e', 'NOEQ', 'ls')).status, 2);
  });
});

describe('startwpar, stopwpar, rmwpar', () => {
  test('good input', () => {
    assert.deepEqual(parseStartwpar(['web'], io), { home: '/srv/corral', json: false, names: ['web'] });
    assert.deepEqual(parseStartwpar(['--json', '--home', '/h', 'web'], io), { home: '/h', json: true, names: ['web'] });
    // Item 19 of issue 11: several names in one command.
    assert.deepEqual(parseStartwpar(['a', 'b', 'c'], io), { home: '/srv/corral', json: false, names: ['a', 'b', 'c'] });
    assert.deepEqual(parseStopwpar(['web'], io), { home: '/srv/corral', json: false, names: ['web'], request: {} });
    assert.deepEqual(parseStopwpar(['-F', '-t', '2.5', 'web'], io), { home: '/srv/corral', json: false, names: ['web'], request: { force: true, timeoutSec: 2.5 } });
    assert.deepEqual(parseStopwpar(['-t0', 'web', 'db'], io), { home: '/srv/corral', json: false, names: ['web', 'db'], request: { timeoutSec: 0 } });
    assert.deepEqual(parseRmwpar(['web'], io), { home: '/srv/corral', name: 'web', force: false });
    assert.deepEqual(parseRmwpar(['-F', 'web'], io), { home: '/srv/corral', name: 'web', force: true });
    assert.equal(parseRmwpar(['-?'], io), HELP);
  });

  test('bad input', () => {
    assert.equal(failure('startwpar', () => parseStartwpar([], io)).line, "startwpar: missing the WPAR name (WparName); see 'startwpar --help'");
    assert.match(failure('startwpar', () => parseStartwpar(['a', '../x'], io)).line, /^startwpar: bad WPAR name "\.\.\/x": .* \(EINVAL\)$/);
    assert.equal(failure('stopwpar', () => parseStopwpar(['-t', '-1', 'web'], io)).status, 2);
    assert.equal(failure('stopwpar', () => parseStopwpar(['-t', 'soon', 'web'], io)).line, 'stopwpar: web: bad -t value "soon": expected a number of seconds (EINVAL)');
    assert.equal(failure('rmwpar', () => parseRmwpar(['--json', 'web'], io)).line, "rmwpar: unknown option '--json'; see 'rmwpar --help'");
  });
});

describe('lswpar', () => {
  test('formats and names', () => {
    assert.deepEqual(parseLswpar([], io), { home: '/srv/corral', format: 'table', names: [] });
    assert.deepEqual(parseLswpar(['-L', 'a', 'b'], io), { home: '/srv/corral', format: 'long', names: ['a', 'b'] });
    assert.deepEqual(parseLswpar(['--json', '-L'], io), { home: '/srv/corral', format: 'json', names: [] });
    assert.equal(listPath([]), '/v1/wpars');
    assert.equal(listPath(['a', 'b.c']), '/v1/wpars?name=a&name=b.c');
  });

  test('bad names', () => {
    assert.match(failure('lswpar', () => parseLswpar(['ok', 'a b'], io)).line, /^lswpar: bad WPAR name "a b"/);
  });
});

describe('chkptwpar, restartwpar', () => {
  test('directories are made absolute against the working directory', () => {
    assert.deepEqual(parseChkptwpar(['-d', 'img', 'web'], io), { home: '/srv/corral', json: false, name: 'web', request: { dir: '/work/dir/img' } });
    assert.deepEqual(parseChkptwpar(['-d', '/abs/img', '-k', '-w', '5', '--json', 'web'], io), {
      home: '/srv/corral', json: true, name: 'web', request: { dir: '/abs/img', kill: true, waitSec: 5 },
    });
    assert.deepEqual(parseRestartwpar(['-d', '../img', 'web'], io), { home: '/srv/corral', json: false, request: { dir: '/work/img', name: 'web' } });
    assert.deepEqual(parseRestartwpar(['-d', 'img', '-n', 'web2', 'web'], io), { home: '/srv/corral', json: false, request: { dir: '/work/dir/img', name: 'web', newName: 'web2' } });
  });

  test('bad input', () => {
    assert.equal(failure('chkptwpar', () => parseChkptwpar(['web'], io)).line, "chkptwpar: missing -d Directory; see 'chkptwpar --help'");
    assert.equal(failure('chkptwpar', () => parseChkptwpar(['-d', 'x', '-w', 'x', 'web'], io)).line, 'chkptwpar: web: bad -w value "x": expected whole seconds from 0 to 2147483 (EINVAL)');
    assert.equal(failure('chkptwpar', () => parseChkptwpar(['-d', 'x', '-w', '2.5', 'web'], io)).line, 'chkptwpar: web: bad -w value "2.5": expected whole seconds from 0 to 2147483 (EINVAL)');
    assert.match(failure('restartwpar', () => parseRestartwpar(['-d', 'x', '-n', '../y', 'web'], io)).line, /^restartwpar: bad new WPAR name "\.\.\/y"/);
    assert.equal(failure('restartwpar', () => parseRestartwpar(['-d', 'x'], io)).status, 2);
  });
});

describe('wpar logs, wpar events', () => {
  test('logs', () => {
    assert.deepEqual(parseLogs(['web'], io), { home: '/srv/corral', name: 'web', follow: false, json: false, lines: undefined });
    const o = parseLogs(['-f', '-n', '20', '--json', 'web'], io);
    assert.deepEqual(o, { home: '/srv/corral', name: 'web', follow: true, json: true, lines: 20 });
    assert.equal(logsPath(o as { name: string; follow: boolean; lines: number }), '/v1/wpars/web/logs?follow=1&tail=20');
    assert.equal(logsPath({ name: 'web', follow: false, lines: undefined }), '/v1/wpars/web/logs');
    assert.equal(failure('wpar logs', () => parseLogs(['-n', 'x', 'web'], io)).line, 'wpar logs: bad -n value "x": expected a whole number (EINVAL)');
  });

  test('events', () => {
    assert.deepEqual(parseEvents([], io), { home: '/srv/corral', json: false, follow: false, count: undefined });
    assert.deepEqual(parseEvents(['-f', '--json', '-n', '0'], io), { home: '/srv/corral', json: true, follow: true, count: 0 });
    assert.equal(failure('wpar events', () => parseEvents(['web'], io)).line, `wpar events: unexpected argument "web"; see 'wpar events --help'`);
  });
});
