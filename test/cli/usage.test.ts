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

test('each executable: a shebang, the version check imported first, then its own command only', () => {
  for (const name of ['wpar', 'mkwpar', 'startwpar', 'stopwpar', 'rmwpar', 'lswpar', 'wparexec', 'chkptwpar', 'restartwpar', 'movewpar']) {
    const text = readFileSync(new URL(`../../src/cli/bin/${name}.ts`, import.meta.url), 'utf8');
    assert.ok(text.startsWith('#!/usr/bin/env node\n'), name);
    const imports = [...text.matchAll(/^import .*'(.+)';$/gm)].map((m) => m[1]);
    assert.equal(imports[0], '../../node-check.ts', `${name}: the version check comes first`);
    if (name === 'wpar') assert.ok(text.includes('await mainWpar();'), name);
    else {
      assert.ok(commandNamed(name), name);
      assert.deepEqual(imports.slice(1), [`../commands/${name}.ts`, '../main.ts'], name);
      assert.ok(text.includes(`await main(${name});`), name);
    }
  }
});
