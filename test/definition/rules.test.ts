// Item 7 of issue 11: one source for each definition rule. The command (mkwpar's flags), the daemon
// (the control API's check) and the image reader accept exactly the same definitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDefinition } from '../../src/cli/define.ts';
import { parseWaitSeconds } from '../../src/cli/args.ts';
import { checkDefinition } from '../../src/daemon/definition-check.ts';
import { definitionProblem as imageProblem } from '../../src/image/format/manifest.ts';
import { waitSecondsProblem } from '../../src/definition/rules.ts';
import type { WparDefinition } from '../../src/runtime/definition.ts';

interface Case { readonly what: string; readonly name?: string; readonly hostname?: string; readonly memory?: string; readonly argv?: string[]; readonly env?: string[] }

const cases: readonly Case[] = [
  { what: 'a plain definition' },
  { what: 'a 64-character name', name: 'n'.repeat(64) },
  { what: 'a 65-character name', name: 'n'.repeat(65) },
  { what: 'a 63-character hostname', hostname: 'h'.repeat(63) },
  { what: 'a 64-character hostname', hostname: 'h'.repeat(64) },
  { what: 'a 65-character hostname', hostname: 'h'.repeat(65) },
  { what: 'a hostname with "_"', hostname: 'a_b' },
  { what: '1M of memory', memory: '1M' },
  { what: 'one byte less than 1M', memory: '1048575' },
  { what: 'one byte of memory', memory: '1' },
  { what: 'a command starting with "-"', argv: ['-rf', 'x'] },
  { what: 'an empty command name', argv: ['', 'x'] },
  { what: 'a NUL in an argument', argv: ['echo', 'a\0b'] },
  { what: 'a reserved variable', env: ['WPAR_ROOT=/'] },
  { what: 'a variable name that is not ASCII', env: ['ÜBER=1'] },
];

function fromFlags(c: Case): WparDefinition {
  return buildDefinition({
    name: c.name ?? 'web',
    ...(c.hostname !== undefined && { hostname: c.hostname }),
    ...(c.memory !== undefined && { resources: [`memory=${c.memory}`] }),
    ...(c.env !== undefined && { env: c.env }),
  }, c.argv ?? ['sleep', '60'], { usageName: 'mkwpar' });
}

function raw(c: Case): Record<string, unknown> {
  const memory = c.memory === undefined ? undefined : c.memory === '1M' ? 1 << 20 : Number(c.memory);
  return {
    name: c.name ?? 'web', argv: c.argv ?? ['sleep', '60'],
    env: Object.fromEntries((c.env ?? []).map((e) => e.split('='))),
    hostname: c.hostname ?? null, checkpointable: false, autostart: false,
    limits: memory === undefined ? {} : { memoryBytes: memory },
  };
}

for (const c of cases) {
  test(`the command, the daemon and the image reader agree on ${c.what}`, () => {
    const accepted = (f: () => unknown): boolean => { try { f(); return true; } catch { return false; } };
    const cli = accepted(() => fromFlags(c));
    const daemon = accepted(() => checkDefinition(raw(c)));
    const image = imageProblem(raw(c)) === null;
    assert.deepEqual({ daemon, image }, { daemon: cli, image: cli }, `mkwpar ${cli ? 'accepts' : 'refuses'} it`);
    if (cli) assert.deepEqual(checkDefinition(fromFlags(c)), fromFlags(c), 'what mkwpar sends, the daemon stores unchanged');
  });
}

test('-w: the command and the daemon take whole seconds only', () => {
  for (const [text, ok] of [['0', true], ['30', true], ['2.5', false], ['-1', false], ['2147483', true], ['2147484', false]] as const) {
    const cli = (() => { try { parseWaitSeconds(text); return true; } catch { return false; } })();
    assert.equal(cli, ok, `-w ${text}`);
    assert.equal(waitSecondsProblem(Number(text)) === undefined, ok, `daemon -w ${text}`);
  }
});

test('the commands and the daemon resolve the same home and control socket', async () => {
  const cli = await import('../../src/cli/home.ts');
  const daemon = await import('../../src/daemon/home.ts');
  const cases: [string | undefined, NodeJS.ProcessEnv][] = [
    ['/srv/a', {}], ['rel/home', {}], [undefined, { WPAR_HOME: '/srv/b' }], [undefined, { XDG_STATE_HOME: '/x/state' }], [undefined, { HOME: '/home/u' }],
  ];
  for (const [flag, env] of cases) {
    const home = cli.resolveHome(flag, env);
    assert.equal(daemon.resolveHome(flag, env), home, `${flag} ${JSON.stringify(env)}`);
    assert.equal(new daemon.HomeLayout(home).socket, cli.socketPath(home));
  }
});

// C5: the scheduled checkpoint fields, checked alike by mkwpar's flags and the daemon.
test('--checkpoint-every and --replicas: mkwpar and the daemon agree, with replicas 1 by default', () => {
  const build = (flags: Record<string, string | boolean>): WparDefinition => buildDefinition({ name: 'w', ...flags }, ['sleep', '60'], { usageName: 'mkwpar' });
  const d = build({ checkpointable: true, 'checkpoint-every': '5' });
  assert.equal(d.checkpointEvery, 5);
  assert.equal(d.replicas, 1);
  assert.deepEqual(checkDefinition(d), d);
  assert.equal(build({ checkpointable: true, 'checkpoint-every': '2', replicas: '0' }).replicas, 0);
  assert.equal(checkDefinition({ name: 'w', argv: ['x'], checkpointable: true, checkpointEvery: 3 }).replicas, 1);
  assert.equal(checkDefinition({ name: 'w', argv: ['x'] }).checkpointEvery, undefined);
  for (const [flags, why] of [
    [{ 'checkpoint-every': '5' }, /needs -c/],
    [{ checkpointable: true, 'checkpoint-every': '0' }, /whole seconds from 1 to 86400/],
    [{ checkpointable: true, 'checkpoint-every': '1.5' }, /whole seconds/],
    [{ checkpointable: true, 'checkpoint-every': '86401' }, /whole seconds/],
    [{ checkpointable: true, 'checkpoint-every': '5', replicas: '17' }, /from 0 to 16/],
    [{ checkpointable: true, replicas: '2' }, /goes with --checkpoint-every/],
  ] as const) {
    assert.throws(() => build(flags), why);
  }
  for (const bad of [
    { checkpointable: true, checkpointEvery: 0 }, { checkpointable: false, checkpointEvery: 5 }, { checkpointable: true, checkpointEvery: '5' },
    { checkpointable: true, checkpointEvery: 5, replicas: -1 }, { checkpointable: true, replicas: 1 },
  ]) {
    assert.throws(() => checkDefinition({ name: 'w', argv: ['x'], ...bad }), /EINVAL|checkpoint-every|replicas/);
  }
});
