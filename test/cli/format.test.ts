// What the commands print: lswpar's table and long form, event lines, summaries.
process.env.TZ = 'UTC';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkpointSummary, clock, commandLine, dateTime, denialLine, eventLine, exitLine, formatBytes, formatDuration, lswparLong, lswparTable,
} from '../../src/cli/format.ts';
import { renderEvent } from '../../src/cli/commands/events.ts';
import { wparInfo } from './helpers.ts';

const T = Date.UTC(2025, 0, 2, 10, 2, 11, 345); // 2025-01-02 10:02:11.345 UTC

describe('lswpar table', () => {
  test('columns Name, State, CID, Phase, Denials (count, the oldest\'s owner and reason), Command, aligned under a dashed rule', () => {
    const out = lswparTable([
      wparInfo({ name: 'web', state: 'A', cid: 3, phase: 'normal', denials: [{ owner: 'agent:web/4711', reason: 'batch', since: T }, { owner: 'x', reason: 'y', since: T }] }),
      wparInfo({
        name: 'batch-processor', definition: { ...wparInfo().definition, name: 'batch-processor', argv: ['sh', '-c', 'echo $(date); sleep 1', "it's"] },
      }),
    ]);
    assert.equal(out, [
      'Name             State  CID  Phase   Denials                             Command',
      '-'.repeat(112),
      'web              A      3    normal  2: agent:web/4711 "batch", +1 more  node server.js',
      "batch-processor  D      -    -       0                                   sh -c 'echo $(date); sleep 1' 'it'\\''s'",
      '',
    ].join('\n'));
  });

  test('a WPAR moving shows the peer with its state (M3.6)', () => {
    const out = lswparTable([wparInfo({ name: 'web', state: 'M', cid: 3, phase: 'checkpointing', movingTo: 'b' })]);
    assert.match(out.split('\n')[2]!, /^web +M to b +3 +checkpointing +0 +node server\.js$/);
  });

  test('no WPARs: the header only', () => {
    assert.equal(lswparTable([]), `Name  State  CID  Phase  Denials  Command\n${'-'.repeat(41)}\n`);
  });
});

describe('lswpar -L', () => {
  test('an active WPAR with a denial', () => {
    const out = lswparLong([wparInfo({
      name: 'web', state: 'A', cid: 3, phase: 'pending', checkpointable: true, autostart: true,
      definition: {
        name: 'web', argv: ['node', 'server.js', '--greeting=hello world'], env: { LOG: 'debug', MODE: 'a b' }, hostname: 'web.example',
        checkpointable: true, limits: { memoryBytes: 256 * 2 ** 20, cpuPercent: 50 }, autostart: true,
        network: { mode: 'bridge', address: '10.80.0.2', prefix: 24, gateway: '10.80.0.1', bridge: 'corral0' },
      },
      isolation: 'sealed: user (uid 0 = host 134217728), mount (host read-only), pid, uts, ipc, cgroup, net; cgroup v2',
      isolationMissing: ['networks: ip (apt-get install iproute2) not found: mkwpar -N address=... cannot start'],
      unenforcedLimits: ['cpuPercent'],
      pid: 4711,
      startedAt: T - 3600_000,
      lastExit: { code: 0, signal: null, at: T - 7200_000, reason: 'exited with status 0' },
      denials: [{ owner: 'agent:web/4711', reason: 'writing batch 12', since: T }],
    })]);
    assert.equal(out, `=================================================================
web - Active
=================================================================
GENERAL
Name:               web
State:              A (Active)
CID:                3
Checkpointable:     yes
Auto start:         yes
Failover:           no
Transient:          no
Hostname:           web.example
Command:            node server.js '--greeting=hello world'
Environment:        LOG=debug
                    MODE=a b
Resource limits:    memory=256M,cpu=50
Network:            10.80.0.2/24 via 10.80.0.1 on corral0
Root:               /home/u/.local/state/corral/wpars/web/root

RUNTIME
Isolation:          sealed: user (uid 0 = host 134217728), mount (host read-only), pid, uts, ipc, cgroup, net; cgroup v2
Not in force:       networks: ip (apt-get install iproute2) not found: mkwpar -N address=... cannot start
Unenforced limits:  cpuPercent
PID:                4711
Started:            2025-01-02 09:02:11
Checkpoint phase:   pending
Last exit:          status 0 (exited with status 0) at 2025-01-02 08:02:11

DENIALS
agent:web/4711 "writing batch 12" since 10:02:11
`);
  });

  test('a defined WPAR: dashes, the name as hostname, no denials; WPARs separated by a blank line', () => {
    const out = lswparLong([wparInfo({ name: 'a', lastExit: { code: null, signal: 'SIGKILL', at: T, reason: 'killed by the memory limit' } }), wparInfo({ name: 'b', state: 'B' })]);
    assert.match(out, /^a - Defined$/m);
    assert.match(out, /^Hostname: {11}a$/m);
    assert.match(out, /^CID: {16}-$/m);
    assert.match(out, /^Environment: {8}-$/m);
    assert.match(out, /^Resource limits: {4}none$/m);
    assert.match(out, /^Network: {12}host$/m);
    assert.match(out, /^Not in force: {7}none$/m);
    assert.match(out, /^Unenforced limits: {2}none$/m);
    assert.match(out, /^Last exit: {10}signal SIGKILL \(killed by the memory limit\) at 2025-01-02 10:02:11$/m);
    assert.match(out, /DENIALS\nnone\n\n=+\nb - Broken\n/);
  });
});

describe('small formats', () => {
  test('times, sizes, durations, command lines', () => {
    assert.equal(clock(T), '10:02:11');
    assert.equal(dateTime(T), '2025-01-02 10:02:11');
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(12 * 2 ** 20), '12.0 MiB');
    assert.equal(formatDuration(250), '250 ms');
    assert.equal(formatDuration(1234), '1.2 s');
    assert.equal(commandLine(['a', '', 'b c', '$x', 'ok=1,2']), "a '' 'b c' '$x' ok=1,2");
    assert.equal(denialLine({ owner: 'agent:web/4711', reason: 'say "hi"', since: T }), 'agent:web/4711 "say \\"hi\\"" since 10:02:11');
    assert.equal(exitLine({ code: null, signal: null, at: T, reason: 'lost (daemon crashed)' }), 'unknown status (lost (daemon crashed)) at 2025-01-02 10:02:11');
  });

  test('checkpoint summary', () => {
    assert.equal(
      checkpointSummary({ name: 'web', dir: '/img/web', bytes: 3 * 2 ** 20, frozenMs: 120, totalMs: 1500, agents: ['db', 'cache'], killed: false }),
      'Checkpointed web into /img/web: 3.0 MiB, frozen 120 ms, total 1.5 s, agents db, cache',
    );
    assert.equal(
      checkpointSummary({ name: 'web', dir: '/i', bytes: 10, frozenMs: 5, totalMs: 9, agents: [], killed: true }),
      'Checkpointed web into /i: 10 B, frozen 5 ms, total 9 ms, no agents; the WPAR was stopped',
    );
  });
});

describe('event lines', () => {
  test('time, type, WPAR and the other fields', () => {
    assert.equal(
      eventLine({ type: 'deny', time: T, cid: 3, name: 'web', owner: 'agent:web/4711', reason: 'writing batch 12', since: T - 1000 }),
      '10:02:11.345  deny              web  cid=3 owner=agent:web/4711 reason="writing batch 12" since=10:02:10',
    );
    assert.equal(eventLine({ type: 'owner.open', time: T, owner: 'quota' }), '10:02:11.345  owner.open        -  owner=quota');
    assert.equal(
      eventLine({ type: 'runtime.exited', time: T, name: 'job', code: null, signal: 'SIGTERM', reason: 'stopped by stopwpar', broken: false }),
      '10:02:11.345  runtime.exited    job  code=null signal=SIGTERM reason="stopped by stopwpar" broken=false',
    );
    assert.equal(eventLine({ type: 'runtime.removed', time: T, name: 'job' }), '10:02:11.345  runtime.removed   job');
  });

  test('--json passes lines through; a line that is not an event is shown as it came', () => {
    const line = JSON.stringify({ type: 'wpar.active', time: T, cid: 1, name: 'w' });
    assert.equal(renderEvent(line, true), line);
    assert.equal(renderEvent(line, false), '10:02:11.345  wpar.active       w  cid=1');
    assert.equal(renderEvent('not json', false), 'not json');
    assert.equal(renderEvent('', false), undefined);
  });
});
