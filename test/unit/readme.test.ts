import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { markdownReference } from '../../src/config/reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('the README documents every setting with its variable and default (npm run docs)', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = /<!-- config:start -->\n([\s\S]*)\n<!-- config:end -->/.exec(readme)?.[1];
  assert.equal(section, markdownReference());
});
