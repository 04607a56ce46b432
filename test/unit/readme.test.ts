import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { markdownReference } from '../../src/config/reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('the README documents every setting with its variable and default (npm run docs)', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = /<!-- config:start -->\n([\s\S]*)\n<!-- config:end -->/.exec(readme)?.[1];
  assert.equal(section, markdownReference());
});

test('the cloud-storage examples in the README are valid configurations', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Cloud storage'), readme.indexOf('### Health and metrics'));
  const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 3, 'Swift (Keystone), Swift (v1 auth) and S3 examples');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyport-readme-'));
  const drivers = blocks.map((json, i) => {
    const file = path.join(dir, `example-${i}.json`);
    fs.writeFileSync(file, json);
    // Strict: an unknown key or a bad value in an example would throw here.
    const config = loadConfig({ file, env: {} });
    return config.storage.driver;
  });
  assert.deepEqual(drivers, ['swift', 'swift', 's3']);

  const envBlock = /```sh\n(KEYPORT_STORAGE_DRIVER=swift[\s\S]*?)```/.exec(section)?.[1];
  assert.ok(envBlock, 'the environment-variable form of the Swift example');
  const env = Object.fromEntries(envBlock.trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
  assert.equal(loadConfig({ env }).storage.swift.tenant, 'registry-project');
});
