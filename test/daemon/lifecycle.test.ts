// The WPAR lifecycle table (src/daemon/lifecycle.ts), pure: every state × event cell, the refusals'
// errnos and words, the one checked place a state changes, and the AIX letters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WparError } from '../../src/index.ts';
import {
  decide, enter, LIFECYCLE_EVENTS, letterOf, refusal, STATE_KINDS, TRANSITIONS, type Cell, type LifecycleEvent, type StateKind,
} from '../../src/daemon/lifecycle.ts';

// The expected table, written out independently of the module: `-` cannot happen, `!why` refused,
// `~` ignored (arrived after the WPAR moved on), `=` joins the same request under way, `a|b` goes to.
const EXPECTED = `
state         start            started  start-failed stop      exit      stopped        checkpoint move      release  remove       removed remove-failed  lost
defined       starting         -        -            !idle     -         -              !idle      !idle     ~        removing     -       -              broken
broken        starting         -        -            !idle     -         -              !idle      !idle     ~        removing     -       -              broken
starting      !busy            active   broken       !busy     stopping  -              !busy      !busy     ~        !stop-first  -       -              ~
active        !already-active  -        -            stopping  stopping  -              checkpointing moving ~        !stop-first  -       -              ~
checkpointing !busy            -        -            !busy     stopping  -              !busy      !busy     active   !stop-first  -       -              ~
moving        !busy            -        -            !busy     stopping  -              !busy      !busy     active   !stop-first  -       -              ~
stopping      !busy            ~        ~            =         ~         defined|broken !busy      !busy     ~        !stop-first  -       -              ~
removing      !busy            -        -            !busy     -         -              !busy      !busy     ~        =            gone    defined|broken ~
`;

function parse(text: string): Map<string, string> {
  const rows = text.trim().split('\n').map((l) => l.trim().split(/\s+/));
  const [header, ...body] = rows;
  const events = header!.slice(1);
  const cells = new Map<string, string>();
  for (const row of body) {
    assert.equal(row.length, events.length + 1, `row ${row[0]} has a cell for every event`);
    row.slice(1).forEach((c, i) => cells.set(`${row[0]} ${events[i]}`, c));
  }
  return cells;
}

function show(cell: Cell | undefined): string {
  if (cell === undefined) return '-';
  if ('to' in cell) return cell.to.join('|');
  if ('join' in cell) return '=';
  if ('ignore' in cell) return '~';
  return `!${cell.refuse === 'not-active' ? 'idle' : cell.refuse}`;
}

const REFUSED: readonly LifecycleEvent[] = ['start', 'stop', 'checkpoint', 'move', 'remove'];
const VERB: Partial<Record<LifecycleEvent, string>> = { start: 'start', stop: 'stop', checkpoint: 'checkpoint', move: 'move', remove: 'remove' };

test('every state × event cell of the table is the documented one', () => {
  const expected = parse(EXPECTED);
  assert.equal(expected.size, STATE_KINDS.length * LIFECYCLE_EVENTS.length, 'the expected table covers every cell');
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...STATE_KINDS].sort());
  for (const kind of STATE_KINDS) {
    for (const event of LIFECYCLE_EVENTS) {
      assert.equal(show(decide(kind, event)), expected.get(`${kind} ${event}`), `${kind} × ${event}`);
    }
  }
});

test('only requests are ever refused, and an internal event is never refused', () => {
  for (const kind of STATE_KINDS) {
    for (const event of LIFECYCLE_EVENTS) {
      const cell = decide(kind, event);
      if (cell && 'refuse' in cell) assert.ok(REFUSED.includes(event), `${kind} × ${event} refuses`);
      if (cell && 'join' in cell) assert.ok(event === 'stop' || event === 'remove', `${kind} × ${event} joins`);
    }
  }
});

test('refusals say what was asked of which WPAR and why not, with their errno (as lswpar users saw them)', () => {
  const ctx = { name: 'web', cid: 3, letter: 'A' as const };
  const cases: [Parameters<typeof refusal>[0], StateKind, string, string, string][] = [
    ['busy', 'starting', 'start', 'EBUSY', 'web: cannot start while starting'],
    ['busy', 'checkpointing', 'stop', 'EBUSY', 'web: cannot stop while checkpointing'],
    ['busy', 'moving', 'checkpoint', 'EBUSY', 'web: cannot checkpoint while moving'],
    ['already-active', 'active', 'start', 'EBUSY', 'web: already active (cid 3)'],
    ['stop-first', 'active', 'remove', 'EBUSY', 'web: is active; stop it first or use -F'],
  ];
  for (const [why, kind, verb, code, message] of cases) {
    const err = refusal(why, { ...ctx, kind, verb });
    assert.ok(err instanceof WparError);
    assert.equal(err.code, code);
    assert.equal(err.message, message);
  }
  const idle = refusal('not-active', { name: 'web', verb: 'stop', kind: 'broken', cid: null, letter: 'B' });
  assert.equal(idle.code, 'EINVAL');
  assert.equal(idle.message, 'web: not active (state B)');
  // Every refusing cell of the table can be said.
  for (const kind of STATE_KINDS) {
    for (const event of REFUSED) {
      const cell = decide(kind, event);
      if (cell && 'refuse' in cell) assert.match(refusal(cell.refuse, { ...ctx, kind, verb: VERB[event]! }).message, /^web: /);
    }
  }
});

test('enter allows exactly the table\'s targets and names the event and state of anything else', () => {
  const targets: (StateKind | 'gone')[] = [...STATE_KINDS, 'gone'];
  let legal = 0;
  for (const kind of STATE_KINDS) {
    for (const event of LIFECYCLE_EVENTS) {
      const cell = decide(kind, event);
      for (const target of targets) {
        const allowed = cell !== undefined && 'to' in cell && cell.to.includes(target);
        const attempt = (): unknown => target === 'gone' ? enter('web', kind, event, 'gone') : enter('web', kind, event, { kind: target });
        if (allowed) {
          legal++;
          assert.deepEqual(attempt(), target === 'gone' ? 'gone' : { kind: target });
        } else {
          assert.throws(attempt, (e: WparError) => e.code === 'EINVAL' && e.message.startsWith('web: ')
            && e.message.includes(`"${event}"`) && e.message.includes(kind), `${kind} × ${event} → ${target}`);
        }
      }
    }
  }
  assert.equal(legal, 22, 'the number of legal (state, event, target) triples');
});

test('every state is reachable from defined, and every state can get back to defined or be removed', () => {
  const next = (k: StateKind): (StateKind | 'gone')[] => LIFECYCLE_EVENTS.flatMap((e) => {
    const c = decide(k, e);
    return c && 'to' in c ? [...c.to] : [];
  });
  const reach = (from: StateKind): Set<StateKind | 'gone'> => {
    const seen = new Set<StateKind | 'gone'>([from]);
    const todo: StateKind[] = [from];
    while (todo.length > 0) {
      for (const n of next(todo.pop()!)) if (!seen.has(n)) { seen.add(n); if (n !== 'gone') todo.push(n); }
    }
    return seen;
  };
  assert.deepEqual([...reach('defined')].sort(), [...STATE_KINDS, 'gone'].sort());
  for (const kind of STATE_KINDS) {
    const r = reach(kind);
    assert.ok(r.has('defined') && r.has('gone'), `${kind} can end`);
  }
});

test('the letter: M while moving, F while frozen, T while under way, else A, B, D', () => {
  const expected: Record<StateKind, [string, string]> = {
    defined: ['D', 'F'], broken: ['B', 'F'], starting: ['T', 'F'], active: ['A', 'F'],
    checkpointing: ['T', 'F'], moving: ['M', 'M'], stopping: ['T', 'F'], removing: ['T', 'F'],
  };
  for (const kind of STATE_KINDS) {
    assert.equal(letterOf(kind, false), expected[kind][0], `${kind}`);
    assert.equal(letterOf(kind, true), expected[kind][1], `${kind}, frozen`);
  }
});
