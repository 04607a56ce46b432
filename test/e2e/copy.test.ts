/**
 * keyport copy against the real parts: Docker Distribution 2.8 as an open upstream
 * registry on TLS (its own CA), a real Keyport (token server and registry) and Keystone
 * users. Imports into a project's candidates/ repository after a --check, promotion to
 * stable/ by cross-repository mounts, refusals by the policy, multi-platform indexes,
 * referrers, and failures that leave nothing tagged.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ensureCertificates } from '../../src/tls/certificates.js';
import { certDir, must, run } from '../helpers/clients.js';
import { anonymousTls, DistributionProcess } from '../helpers/distribution.js';
import { request } from '../helpers/http.js';
import { makeTestImage, type TestImage } from '../helpers/image.js';
import { CLI, KeyportProcess, tempDir } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { makeMultiPlatformImage, type MultiPlatformImage } from '../helpers/multi-platform.js';
import { RegistryClient, sha256 } from '../helpers/registry.js';
import { keystone, keystoneEnv } from '../helpers/services.js';
import { TokenMinter } from '../helpers/tokens.js';

const sfx = KeystoneAdmin.suffix();
const project = `cp${sfx}`;
let kp: KeyportProcess;
let dist: DistributionProcess;
let distCa: string;
let alice: TestUser; // member of the project: pulls and pushes there
let bob: TestUser; // reader of the project: pulls only
let app: TestImage;
let multi: MultiPlatformImage;
let minter: TokenMinter;
let api: RegistryClient;
let ready = false;

before(async (t) => {
  const ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  if (!DistributionProcess.available()) {
    if (process.env.CI) throw new Error('docker-registry is not installed');
    return;
  }
  const admin = new KeystoneAdmin(ks);
  const projectId = await admin.createProject(project);
  alice = await makeUser(admin, `alice-${sfx}`);
  bob = await makeUser(admin, `bob-${sfx}`);
  await admin.grant(projectId, alice.id, 'member');
  await admin.grant(projectId, bob.id, 'reader');
  kp = await new KeyportProcess({ command: 'start', env: keystoneEnv(ks) }).start();
  minter = new TokenMinter(kp.certsDir);
  api = new RegistryClient(kp);

  // The upstream has its own CA, which nothing trusts unless told.
  const upstreamCerts = tempDir('upstream-certs');
  ensureCertificates({ certsDir: upstreamCerts, names: [], tokenKeyType: 'ec' });
  distCa = path.join(upstreamCerts, 'ca.crt');
  dist = await new DistributionProcess(anonymousTls(upstreamCerts)).start();
  const trust = certDir(fs.readFileSync(distCa));
  const push = (args: string[]) => must(run('skopeo', ['copy', '--dest-cert-dir', trust, ...args]), `skopeo copy ${args.join(' ')}`);
  app = makeTestImage(tempDir('app'), 'app:1', { marker: `app-${sfx}` });
  push([`oci:${app.ociDir}:latest`, `docker://127.0.0.1:${dist.port}/library/app:1`]);
  multi = makeMultiPlatformImage(tempDir('multi'), ['linux/amd64', 'linux/arm64'], sfx);
  push(['--all', `oci:${multi.ociDir}:latest`, `docker://127.0.0.1:${dist.port}/library/multi:1`]);
  ready = true;
});

after(async () => {
  await dist?.stop();
  await kp?.stop();
});

interface CopyRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The --json line, when there is one. */
  result: any;
}

/** Runs `keyport copy` as a user would, with the registry's configuration in the environment. */
function copy(args: string[], user: TestUser | undefined, env: Record<string, string> = {}): Promise<CopyRun> {
  const childEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    KEYPORT_PUBLIC_HOST: '127.0.0.1',
    KEYPORT_REGISTRY_PORT: String(kp.registryPort),
    KEYPORT_TOKEN_PORT: String(kp.tokenPort),
    KEYPORT_CERTS_DIR: kp.certsDir,
    ...(user ? { KEYPORT_USERNAME: user.name, KEYPORT_PASSWORD: user.password } : {}),
    ...env,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'copy', ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => {
      let result: unknown;
      try {
        result = stdout.trim() ? JSON.parse(stdout.trim().split('\n').pop()!) : undefined;
      } catch {
        result = undefined;
      }
      resolve({ code, stdout, stderr, result });
    });
  });
}

const upstream = (ref: string) => `docker://127.0.0.1:${dist.port}/${ref}`;
const fromUpstream = () => ['--src-ca-file', distCa];

async function manifestOf(repo: string, ref: string): Promise<{ status: number; digest?: string; body: Buffer }> {
  const token = await minter.mint([{ name: repo, actions: ['pull'] }]);
  const r = await api.api('GET', `/v2/${repo}/manifests/${ref}`, token, {
    headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  return { status: r.status, body: r.body, ...(r.headers['docker-content-digest'] ? { digest: String(r.headers['docker-content-digest']) } : {}) };
}

/** The registry's request lines for one repository. */
function requestsFor(repo: string): Array<{ method: string; path: string; status: number }> {
  return kp.logLines().filter((l) => l.msg === 'request' && typeof l.path === 'string' && l.path.startsWith(`/v2/${repo}/`));
}

describe('keyport copy', () => {
  it('a failing --check tags nothing and shows what the check said', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const dest = `${project}/candidates/app`;
    const r = await copy([upstream('library/app:1'), `${dest}:1`, ...fromUpstream(), '--json', '--check', 'echo "found CVE-0000-0001 in $KEYPORT_SOURCE"; exit 3'], alice);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /found CVE-0000-0001 in 127\.0\.0\.1:\d+\/library\/app@sha256:/);
    assert.match(r.stderr, /the check failed \(exit status 3\); nothing was copied/);
    assert.equal(r.result.check.exitCode, 3);
    assert.match(r.result.check.output, /found CVE-0000-0001/);
    // The copy itself made no request to the destination; the test's own GET below is a read.
    assert.deepEqual(requestsFor(dest), [], 'the copy never touched the destination repository');
    assert.equal((await manifestOf(dest, '1')).status, 404, 'the tag is not there');
  });

  it('imports after a passing --check, then promotes candidates to stable by mounting every blob', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const candidates = `${project}/candidates/app`;
    const stable = `${project}/stable/app`;
    const seen = path.join(tempDir('check'), 'env');
    const check = `env > ${seen}`;
    const imported = await copy([upstream('library/app:1'), `${candidates}:1`, ...fromUpstream(), '--json', '--check', check], alice);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(imported.result.digest, app.manifestDigest, 'the digest is the upstream one');
    assert.deepEqual(imported.result.blobs, { copied: 2, mounted: 0, present: 0 });
    assert.equal(imported.result.check.exitCode, 0);
    const env = Object.fromEntries(
      fs
        .readFileSync(seen, 'utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    assert.equal(env.KEYPORT_SOURCE, `127.0.0.1:${dist.port}/library/app@${app.manifestDigest}`);
    assert.equal(env.KEYPORT_DIGEST, app.manifestDigest);
    assert.equal(env.KEYPORT_DEST, `127.0.0.1:${kp.registryPort}/${candidates}:1`);
    assert.equal(env.KEYPORT_PASSWORD, undefined, 'the check never sees the password');
    assert.equal((await manifestOf(candidates, '1')).digest, app.manifestDigest);

    const promoted = await copy([`${candidates}:1`, `${stable}:1`, '--json'], alice);
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.equal(promoted.result.digest, app.manifestDigest, 'promotion keeps the digest');
    assert.deepEqual(promoted.result.blobs, { copied: 0, mounted: 2, present: 0 });
    assert.equal(promoted.stderr, '', 'no progress output without a terminal');
    assert.equal((await manifestOf(stable, '1')).digest, app.manifestDigest);
    const writes = requestsFor(stable).filter((l) => l.path.includes('/blobs/uploads'));
    assert.equal(writes.length, 2, 'one mount request per blob');
    for (const w of writes) assert.deepEqual([w.method, w.status], ['POST', 201], 'a mount, never an upload session');
    const pulled = requestsFor(candidates).filter((l) => l.method === 'GET' && l.path.includes('/blobs/'));
    assert.deepEqual(pulled, [], 'no blob bytes were read for the promotion');

    // The promoted image pulls like any other.
    const trust = certDir(kp.ca);
    const out = must(run('skopeo', ['inspect', '--cert-dir', trust, '--creds', `${alice.name}:${alice.password}`, `docker://127.0.0.1:${kp.registryPort}/${stable}:1`]), 'skopeo inspect');
    assert.equal(JSON.parse(out).Digest, app.manifestDigest);
  });

  it('shows its progress on a terminal', async (t) => {
    if (!ready) return t.skip('services unavailable');
    // script(1) gives the command a pseudo-terminal, as a user's shell would.
    const line = [process.execPath, CLI, 'copy', `${project}/candidates/app:1`, `${project}/stable/tty:1`].map((a) => `'${a}'`).join(' ');
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('script', ['-qec', line, '/dev/null'], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          TERM: 'xterm',
          KEYPORT_PUBLIC_HOST: '127.0.0.1',
          KEYPORT_REGISTRY_PORT: String(kp.registryPort),
          KEYPORT_CERTS_DIR: kp.certsDir,
          KEYPORT_USERNAME: alice.name,
          KEYPORT_PASSWORD: alice.password,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c));
      child.stderr.on('data', (c: Buffer) => (out += c));
      child.once('close', (code) => resolve({ code, out }));
    });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`blob ${app.layerDigest.slice(0, 19)} mounted`));
    assert.match(r.out, new RegExp(`${project}/stable/tty:1 tagged ${app.manifestDigest}`));
    assert.match(r.out, new RegExp(`127\\.0\\.0\\.1:${kp.registryPort}/${project}/stable/tty:1 ${app.manifestDigest} \\(blobs: 0 copied, 2 mounted, 0 already there\\)`));
  });

  it('refuses a user without push on the destination, before anything is read or run', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const marker = path.join(tempDir('check'), 'ran');
    const dest = `${project}/stable/bob`;
    const r = await copy([upstream('library/app:1'), `${dest}:1`, ...fromUpstream(), '--check', `touch ${marker}`], bob);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${bob.name} may not push to ${dest} on 127\\.0\\.0\\.1:\\d+ \\(granted: pull\\); nothing was copied`));
    assert.equal(fs.existsSync(marker), false, 'the check did not run');
    assert.equal((await manifestOf(dest, '1')).status, 404);
    const other = await copy([upstream('library/app:1'), `${alice.name}/app:1`, ...fromUpstream()], bob);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /may not push to .*granted: nothing/);
  });

  it('copies the host platform of an index by default, one chosen with --platform, or all of it with --all-platforms', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const arm = await copy([upstream('library/multi:1'), `${project}/candidates/multi:arm64`, ...fromUpstream(), '--platform', 'linux/arm64', '--json'], alice);
    assert.equal(arm.code, 0, arm.stderr);
    assert.equal(arm.result.digest, multi.images['linux/arm64']);
    assert.deepEqual(arm.result.platforms, ['linux/arm64']);

    const host = process.arch === 'arm64' ? 'linux/arm64' : 'linux/amd64';
    const def = await copy([upstream('library/multi:1'), `${project}/candidates/multi:host`, ...fromUpstream(), '--json'], alice);
    assert.equal(def.code, 0, def.stderr);
    assert.equal(def.result.digest, multi.images[host]);

    const all = await copy([upstream('library/multi:1'), `${project}/candidates/multi:1`, ...fromUpstream(), '--all-platforms', '--json'], alice);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.result.digest, multi.indexDigest, 'the index is copied byte for byte');
    assert.deepEqual(all.result.platforms, ['linux/amd64', 'linux/arm64']);
    for (const d of Object.values(multi.images)) assert.equal((await manifestOf(`${project}/candidates/multi`, d)).status, 200);
    // Blobs the repository got from the single-platform copies are not sent again.
    assert.deepEqual(all.result.blobs, { copied: 0, mounted: 0, present: 4 });

    const none = await copy([upstream('library/multi:1'), `${project}/candidates/multi:s390x`, ...fromUpstream(), '--platform', 'linux/s390x'], alice);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /has no linux\/s390x image \(it has linux\/amd64, linux\/arm64\)/);
  });

  it('--referrers copies the artifacts that refer to the image', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const repo = `${project}/candidates/signed`;
    const token = await minter.all(repo);
    const image = await api.pushImage(repo, '1', token);
    const empty = await api.pushBlob(repo, token, Buffer.from('{}'));
    const signature = Buffer.from('a signature');
    const sigDigest = await api.pushBlob(repo, token, signature);
    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.example.signature',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
        layers: [{ mediaType: 'application/octet-stream', digest: sigDigest, size: signature.length }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.digest, size: image.body.length },
      }),
    );
    const put = await api.api('PUT', `/v2/${repo}/manifests/${sha256(referrer)}`, token, { body: referrer, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(put.status, 201, put.text);

    const dest = `${project}/stable/signed`;
    const r = await copy([`${repo}:1`, `${dest}:1`, '--referrers', '--json'], alice);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.referrers, 1);
    assert.deepEqual(r.result.blobs, { copied: 0, mounted: 4, present: 0 });
    const pull = await minter.mint([{ name: dest, actions: ['pull'] }]);
    const listed = await api.api('GET', `/v2/${dest}/referrers/${image.digest}`, pull);
    assert.deepEqual(
      listed.json().manifests.map((m: { digest: string; artifactType: string }) => [m.digest, m.artifactType]),
      [[sha256(referrer), 'application/vnd.example.signature']],
    );
  });

  it('a copy that fails half-way (a blob gone upstream) leaves no tag', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const broken = makeTestImage(tempDir('broken'), 'broken:1', { marker: `broken-${sfx}` });
    const trust = certDir(fs.readFileSync(distCa));
    must(run('skopeo', ['copy', '--dest-cert-dir', trust, `oci:${broken.ociDir}:latest`, `docker://127.0.0.1:${dist.port}/library/broken:1`]), 'skopeo copy');
    const del = await request(`${dist.url}/v2/library/broken/blobs/${broken.layerDigest}`, { method: 'DELETE', ca: fs.readFileSync(distCa) });
    assert.equal(del.status, 202, del.text);
    const dest = `${project}/candidates/broken`;
    const r = await copy([upstream('library/broken:1'), `${dest}:1`, ...fromUpstream(), '--json'], alice);
    assert.equal(r.code, 1);
    assert.match(r.result.error, new RegExp(`blob library/broken@${broken.layerDigest}: 404 BLOB_UNKNOWN`));
    assert.equal((await manifestOf(dest, '1')).status, 404, 'no tag');
  });

  it('refuses an upstream it cannot trust, and a wrong password, with a clear message', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const untrusted = await copy([upstream('library/app:1'), `${project}/candidates/app:untrusted`], alice);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, new RegExp(`the TLS certificate of 127\\.0\\.0\\.1:${dist.port} is not trusted`));
    const wrong = await copy([`${project}/candidates/app:1`, `${project}/stable/app:2`], { ...alice, password: 'not-the-password' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, new RegExp(`login as ${alice.name} at 127\\.0\\.0\\.1:\\d+ failed: 401`));
    const none = await copy([`${project}/candidates/app:1`, `${project}/stable/app:2`], undefined);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no credentials: give --username and --password-stdin, or set KEYPORT_USERNAME and KEYPORT_PASSWORD/);
  });
});
