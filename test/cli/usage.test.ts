// Every command answers --help / -? with its usage, and every executable is a shim with a shebang.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { runCommand } from '../../src/cli/command.ts';
import { COMMANDS, commandForVerb, commandNamed } from '../../src/cli/commands/index.ts';
import { testIo } from './helpers.ts';

test('--help and -? print the usage and exit 0, touching no daemon', async () => {
  for (const command of COMMANDS) {
    for (const flag of ['--help', '-?']) {
      const t = testIo({ WPAR_HOME: '/nonexistent' });
      assert.equal(await runCommand(command, [flag], t.io), 0);
      assert.ok(t.stdout().startsWith(`Usage: ${command.name} `), t.stdout());
      assert.equal(t.stderr(), '');
      for (const line of t.stdout().split('\n')) assert.ok(line.length <= 100, `${command.name}: long line ${line}`);
    }
  }
});

test('verbs: short and full names', () => {
  const pairs: [string, string][] = [
    ['mk', 'mkwpar'], ['mkwpar', 'mkwpar'], ['start', 'startwpar'], ['stop', 'stopwpar'], ['rm', 'rmwpar'], ['ls', 'lswpar'],
    ['exec', 'wparexec'], ['wparexec', 'wparexec'], ['chkpt', 'chkptwpar'], ['restart', 'restartwpar'], ['logs', 'logs'], ['events', 'events'],
  ];
  for (const [verb, name] of pairs) assert.equal(commandForVerb(verb)?.name, name, verb);
  assert.equal(commandForVerb('frob'), undefined);
});

test('each executable is a shebang shim over main()', () => {
  for (const name of ['wpar', 'mkwpar', 'startwpar', 'stopwpar', 'rmwpar', 'lswpar', 'wparexec', 'chkptwpar', 'restartwpar']) {
    const text = readFileSync(new URL(`../../src/cli/bin/${name}.ts`, import.meta.url), 'utf8');
    assert.ok(text.startsWith('#!/usr/bin/env node\n'), name);
    assert.ok(text.includes(`await main('${name}');`), name);
    if (name !== 'wpar') assert.ok(commandNamed(name), name);
  }
});
