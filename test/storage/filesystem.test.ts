import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FilesystemDriver } from '../../src/storage/filesystem/driver.js';
import { PathNotFoundError } from '../../src/storage/driver.js';
import { tempDir } from '../helpers/keyport.js';
import { driverConformance } from './driver-suite.js';

driverConformance('filesystem', async () => {
  const root = tempDir('fsdriver');
  return {
    driver: new FilesystemDriver({ root, fsync: true }),
    second: async () => new FilesystemDriver({ root, fsync: true }),
  };
});

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

test('filesystem: everything stays under the root and no temporary files are left behind', async () => {
  const parent = tempDir('fsroot');
  const root = path.join(parent, 'root');
  const d = new FilesystemDriver({ root, fsync: true });
  await d.putContent('/a/b', Buffer.from('x'));
  await Promise.all(Array.from({ length: 20 }, (_, i) => d.putContent('/race', Buffer.from(String(i)))));
  const w = await d.writer('/up/data', false);
  await w.write(Buffer.from('y'));
  await w.commit();
  await d.move('/up/data', '/final/data');
  await assert.rejects(d.putContent('/../outside', Buffer.from('x')));
  assert.deepEqual(fs.readdirSync(parent), ['root'], 'nothing written next to the root');
  const files = walk(root).map((f) => path.relative(root, f)).sort();
  assert.deepEqual(files, ['a/b', 'final/data', 'race']);
});

test('filesystem: a putContent interrupted before its rename leaves the old content intact', async () => {
  const root = tempDir('fscrash');
  const d = new FilesystemDriver({ root, fsync: true });
  await d.putContent('/m/link', Buffer.from('old'));
  // A writer killed mid-way leaves only a temporary file, which readers never see.
  fs.writeFileSync(path.join(root, 'm', '.tmp-deadbeef'), 'half-writ');
  assert.equal((await d.getContent('/m/link')).toString(), 'old');
  assert.deepEqual(await d.list('/m'), ['/m/link']);
});

test('filesystem: pruneEmpty removes only directories without objects, never an object', async () => {
  const root = tempDir('fs-prune');
  const d = new FilesystemDriver({ root, fsync: true });
  await d.putContent('/repo/_uploads/live/startedat', Buffer.from('now'));
  await d.putContent('/repo/_layers/sha256/aa/link', Buffer.from('sha256:aa'));
  await d.delete('/repo/_layers/sha256/aa');
  await d.putContent('/repo/_manifests/tags/t/current/link', Buffer.from('x'));
  await d.delete('/repo/_manifests/tags/t/current/link');
  await d.pruneEmpty('/repo');
  assert.deepEqual(await d.list('/repo'), ['/repo/_uploads'], 'the upload session stays; the empty trees went');
  assert.equal((await d.getContent('/repo/_uploads/live/startedat')).toString(), 'now');
  await d.delete('/repo/_uploads/live/startedat');
  await d.pruneEmpty('/repo');
  assert.equal(fs.existsSync(path.join(root, 'repo')), false, 'nothing left: the repository directory itself goes');
  await d.pruneEmpty('/repo');
});

test('filesystem: getContent returns every size whole, on both sides of the one-read limit', async () => {
  const d = new FilesystemDriver({ root: tempDir('fs-sizes'), fsync: false });
  for (const size of [0, 1, 8191, 8192, 8193, 100_000]) {
    const content = Buffer.alloc(size, size % 251);
    await d.putContent(`/sizes/${size}`, content);
    assert.deepEqual(await d.getContent(`/sizes/${size}`), content, `${size} bytes`);
  }
  await assert.rejects(d.getContent('/sizes'), PathNotFoundError, 'a directory is not content');
});
