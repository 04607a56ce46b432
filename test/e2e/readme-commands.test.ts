/**
 * The README's client commands, run as written against a real Keyport and the real
 * Keystone: the certificate-trust lines for containers/image and every skopeo line of
 * "Pushing and pulling". Only `registry.example:9001` is replaced by the test
 * registry's address; the user is a Keystone user literally named `alice`.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, it, type TestContext } from 'node:test';
import { KeyportProcess, tempDir } from '../helpers/keyport.js';
import { KeystoneAdmin } from '../helpers/keystone-admin.js';
import { readmeCommands } from '../helpers/readme.js';
import { keystone, keystoneEnv } from '../helpers/services.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let kp: KeyportProcess | undefined;
let trustDir: string | undefined;

after(async () => {
  await kp?.stop();
  if (trustDir) fs.rmSync(trustDir, { recursive: true, force: true });
});

/** Runs one README line with bash in `cwd`; returns its exit code and output. */
function sh(line: string, cwd: string, env: Record<string, string>) {
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', line], { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

it("the README's trust and skopeo lines work as typed", { timeout: 240_000 }, async (t) => {
  const ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  const password = `pw-${crypto.randomBytes(8).toString('hex')}`;
  await new KeystoneAdmin(ks).resetUser('alice', password);
  kp = await new KeyportProcess({ command: 'start', env: keystoneEnv(ks) }).start();
  const reg = `127.0.0.1:${kp.registryPort}`;
  const here = (l: string) => l.replaceAll('registry.example:9001', reg);

  // A directory like an operator's: certs/ca.crt from Keyport and a docker archive to push.
  const cwd = tempDir('readme');
  fs.symlinkSync(kp.certsDir, path.join(cwd, 'certs'));
  const img = tempDir('readme-img');
  execFileSync(path.join(root, 'scripts', 'demo-image.sh'), [img, `${reg}/alice/myapp:1`]);
  fs.copyFileSync(path.join(img, 'image.tar'), path.join(cwd, 'myapp.tar'));

  const trust = readmeCommands('trust').filter((l) => l.includes('/etc/containers/'));
  assert.equal(trust.length, 2, 'the README shows how to trust the CA for containers/image');
  trustDir = `/etc/containers/certs.d/${reg}`;
  for (const l of trust) {
    const r = sh(here(l), cwd, {});
    assert.equal(r.code, 0, `${l}\n${r.out}`);
  }

  const skopeo = readmeCommands('clients').filter((l) => /(^|\| )skopeo /.test(l));
  assert.ok(skopeo.length >= 4, `the README shows skopeo lines: ${skopeo.join('\n')}`);
  for (const l of skopeo) {
    const r = sh(here(l), cwd, { PW: password });
    assert.equal(r.code, 0, `${l}\n${r.out}`);
    if (l.includes('skopeo inspect')) assert.match(r.out, /"Digest": "sha256:[0-9a-f]{64}"/);
    if (l.includes('list-tags')) assert.deepEqual(JSON.parse(r.out).Tags, ['1']);
  }
  // The last line deleted the image.
  const gone = sh(here(`skopeo inspect --creds alice:"$PW" docker://registry.example:9001/alice/myapp:1`), cwd, { PW: password });
  assert.notEqual(gone.code, 0, 'the image is gone after the README delete line');
  assert.match(gone.out, /manifest unknown|not found/i);
});
