import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { compileRetention } from '../../src/config/retention.js';
import { ruleFor } from '../../src/gc/retention.js';

const fromEnv = (v: string) => loadConfig({ env: { KEYPORT_STORAGE_GC_RETENTION: v } }).storage.gc.retention;

test('retention: off by default; a list from the variable or the file; first matching rule applies', () => {
  assert.deepEqual(loadConfig({ env: {} }).storage.gc.retention, []);
  const list = [
    { repositories: '^demo/ci-', keepLast: 10, keepTags: '^v', untaggedOlderThan: '72h' },
    { repositories: '^demo/', notPulledFor: '720h' },
  ];
  assert.deepEqual(fromEnv(JSON.stringify(list)), list);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'keyport-retention-')), 'gc.yaml');
  fs.writeFileSync(file, 'storage:\n  gc:\n    retention:\n      - repositories: "^a/"\n        keepLast: 3\n');
  assert.deepEqual(loadConfig({ file, env: {} }).storage.gc.retention, [{ repositories: '^a/', keepLast: 3 }]);
  const rules = compileRetention(list);
  assert.equal(rules[0]!.untaggedOlderThanMs, 72 * 3600_000);
  assert.equal(ruleFor(rules, 'demo/ci-web')?.index, 0);
  assert.equal(ruleFor(rules, 'demo/web')?.index, 1);
  assert.equal(ruleFor(rules, 'other/web'), undefined);
});

test('retention: a bad rule is refused with its index and field', () => {
  const cases: Array<[unknown, RegExp]> = [
    ['[{', /not valid JSON/],
    [[{ keepLast: 1 }], /retention rule 0: repositories must be a regular expression/],
    [[{ repositories: '^a/', keepLast: 1 }, { repositories: '(', keepLast: 1 }], /retention rule 1: repositories is not a valid regular expression/],
    [[{ repositories: '^a/', keepLast: -1 }], /retention rule 0: keepLast must be a whole number/],
    [[{ repositories: '^a/', keepLast: 1, keepTags: '[' }], /retention rule 0: keepTags is not a valid regular expression/],
    [[{ repositories: '^a/', untaggedOlderThan: '3 days' }], /retention rule 0: untaggedOlderThan must be a duration/],
    [[{ repositories: '^a/', notPulledFor: 5 }], /retention rule 0: notPulledFor must be a duration/],
    [[{ repositories: '^a/', keepTags: '^v' }], /retention rule 0: give at least one of/],
    [[{ repositories: '^a/', keepLast: 1, keep: 2 }], /retention rule 0: unknown key keep/],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => fromEnv(typeof value === 'string' ? value : JSON.stringify(value)), message, JSON.stringify(value));
  }
});
