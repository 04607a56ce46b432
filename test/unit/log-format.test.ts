/**
 * Log output as operators read it: levels as words in JSON, and the text format as one
 * readable line per entry that still hides secrets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/log/logger.js';
import { formatTextLine } from '../../src/log/text.js';

function capture(format: 'json' | 'text'): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const log = createLogger('debug', { write: (s: string) => void lines.push(s) }, format);
  return { lines, log };
}

test('json logs carry the level as a word', () => {
  const { lines, log } = capture('json');
  log.info({ user: 'alice' }, 'request');
  log.warn('careful');
  const [a, b] = lines.map((l) => JSON.parse(l));
  assert.equal(a.level, 'info');
  assert.equal(a.user, 'alice');
  assert.equal(b.level, 'warn');
});

test('text logs are one line per entry: time, level, component, message, then key=value', () => {
  const { lines, log } = capture('text');
  log.child({ component: 'registry' }).info({ method: 'GET', path: '/v2/', status: 200, note: 'two words', nested: { a: 1 } }, 'request');
  log.error({ err: new Error('it broke\non two lines') }, 'failed');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  registry: request method=GET path=\/v2\/ status=200 note="two words" nested=\{"a":1\}\n$/);
  assert.equal(lines[1]!.split('\n').length, 2, 'a multi-line error stays on one line');
  assert.match(lines[1]!, /ERROR failed err=\{.*it broke\\non two lines/);
});

test('text logs hide secrets as the JSON does', () => {
  const { lines, log } = capture('text');
  log.info({ password: 'hunter2', headers: { authorization: 'Basic abc' } }, 'login');
  assert.doesNotMatch(lines[0]!, /hunter2|Basic abc/);
  assert.match(lines[0]!, /password=\[redacted\]/);
});

test('a line that is not JSON passes through the text formatter unchanged', () => {
  assert.equal(formatTextLine('plain words'), 'plain words\n');
});
