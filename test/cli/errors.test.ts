// The one error line: COMMAND: NAME: what failed and why (ERRNO).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiError } from '../../src/cli/client.ts';
import { CliError, errorLine, exitStatusOf, formatErrorLine, UsageError } from '../../src/cli/errors.ts';

test('the code is appended unless the message names it', () => {
  assert.equal(formatErrorLine('startwpar', 'no such WPAR', { subject: 'web', code: 'ENOENT' }), 'startwpar: web: no such WPAR (ENOENT)');
  assert.equal(
    formatErrorLine('chkptwpar', 'not checkpointed after 30 s (ETIMEDOUT): denied by agent:web/4711 "writing batch 12" since 10:02:11', { subject: 'web', code: 'ETIMEDOUT' }),
    'chkptwpar: web: not checkpointed after 30 s (ETIMEDOUT): denied by agent:web/4711 "writing batch 12" since 10:02:11',
  );
  assert.equal(formatErrorLine('x', 'failed with ETIMEDOUTS', { code: 'ETIMEDOUT' }), 'x: failed with ETIMEDOUTS (ETIMEDOUT)');
  assert.equal(formatErrorLine('lswpar', 'gone'), 'lswpar: gone');
});

test("the daemon's leading 'NAME: ' is not repeated", () => {
  assert.equal(formatErrorLine('startwpar', 'web: no such WPAR', { subject: 'web', code: 'ENOENT' }), 'startwpar: web: no such WPAR (ENOENT)');
  assert.equal(formatErrorLine('startwpar', 'webby: no such WPAR', { subject: 'web', code: 'ENOENT' }), 'startwpar: web: webby: no such WPAR (ENOENT)');
});

test('always one line', () => {
  assert.equal(formatErrorLine('rmwpar', 'first\n  second\r\nthird\n', { subject: 'w', code: 'EIO' }), 'rmwpar: w: first; second; third (EIO)');
});

test("a daemon error answer becomes the daemon's message and code", () => {
  const e = apiError(404, JSON.stringify({ error: { code: 'ENOENT', message: 'web: no such WPAR' } }), 'web');
  assert.equal(errorLine('startwpar', e), 'startwpar: web: no such WPAR (ENOENT)');
  assert.equal(e.exitStatus, 1);
  assert.equal(errorLine('startwpar', apiError(502, '<html>bad gateway</html>', 'web')), 'startwpar: web: wpard answered HTTP 502 without an error message (EIO)');
  assert.equal(errorLine('lswpar', apiError(500, JSON.stringify({ error: { message: 'boom' } }))), 'lswpar: boom (EIO)');
});

test('usage errors exit 2 and point to --help unless they carry an errno', () => {
  const syntax = new UsageError("unknown option '-x'");
  assert.equal(errorLine('wpar mk', syntax), "wpar mk: unknown option '-x'; see 'wpar mk --help'");
  assert.equal(exitStatusOf(syntax), 2);
  const value = new UsageError('bad hostname "a b"', { code: 'EINVAL', subject: 'web' });
  assert.equal(errorLine('mkwpar', value), 'mkwpar: web: bad hostname "a b" (EINVAL)');
  assert.equal(exitStatusOf(value), 2);
});

test('unexpected errors: one line, exit 1, errno code kept when it looks like one', () => {
  assert.equal(errorLine('lswpar', new TypeError('x is not a function')), 'lswpar: unexpected error: x is not a function');
  assert.equal(errorLine('lswpar', Object.assign(new Error('disk full'), { code: 'ENOSPC' })), 'lswpar: unexpected error: disk full (ENOSPC)');
  assert.equal(exitStatusOf(new Error('x')), 1);
  assert.equal(errorLine('x', 'a string'), 'x: unexpected error: a string');
});

test('about() attaches a subject once', () => {
  const e = new CliError('no such WPAR', { code: 'ENOENT' });
  assert.equal(errorLine('startwpar', e.about('web')), 'startwpar: web: no such WPAR (ENOENT)');
  assert.equal(e.about('web').about('other').subject, 'web');
});
