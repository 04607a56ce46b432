/**
 * The Debian package end to end, as an administrator uses it: `npm run package` builds
 * keyport_<version>_all.deb, dpkg installs it without any network access, the installed
 * units' ExecStart lines run as user keyport with the installed environment file (edited
 * to name the test Keystone), a Keystone user logs in and pushes with skopeo through
 * them, and `dpkg -r` / `dpkg --purge` remove what they promise to.
 *
 * No systemd runs here or in CI, so the test does what systemd would from the unit
 * file: User=, Group=, UMask=, WorkingDirectory=, EnvironmentFile=, and a notification
 * socket ($NOTIFY_SOCKET) for Type=notify. The package goes to /usr/lib/keyport,
 * /usr/bin/keyport, /lib/systemd/system, /etc/keyport and /var/lib/keyport, which no other
 * test uses; the package is built from the already-built dist/ into a temporary
 * directory, so the checkout other test files run from is only read.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it, type TestContext } from 'node:test';
import { certDir, must, run, type RunResult } from '../helpers/clients.js';
import { request } from '../helpers/http.js';
import { makeTestImage } from '../helpers/image.js';
import { freePort, tempDir } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser } from '../helpers/keystone-admin.js';
import { NotifySocket } from '../helpers/notify-socket.js';
import { keystone, keystoneEnv, servicesFile, type KeystoneService } from '../helpers/services.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
const UNIT_DIR = '/lib/systemd/system';
const ENV_FILE = '/etc/keyport/keyport.env';
const CERTS = '/etc/keyport/certs';
const DATA = '/var/lib/keyport';

let ks: KeystoneService | undefined;
let deb = '';
const children: ChildProcess[] = [];
const sockets: NotifySocket[] = [];

/** dpkg, waiting while another dpkg or apt holds the lock. */
function dpkg(args: string[]): RunResult {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = run('dpkg', args, { env: { DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.code === 0 || !/lock/i.test(r.out) || Date.now() > deadline) return r;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
  }
}

const installed = (pkg: string) => run('dpkg-query', ['-W', '-f=${Status}', pkg]).out.startsWith('install ok installed');
const mode = (f: string) => fs.statSync(f).mode & 0o7777;
const owner = (f: string) => {
  const st = fs.statSync(f);
  return `${name('passwd', st.uid)}:${name('group', st.gid)}`;
};
function name(db: 'passwd' | 'group', id: number): string {
  const r = run('getent', [db, String(id)]);
  return r.code === 0 ? r.out.split(':')[0]! : String(id);
}
const hasUser = () => run('getent', ['passwd', 'keyport']).code === 0;
const hasGroup = () => run('getent', ['group', 'keyport']).code === 0;

/** The [Service] directives of an installed unit, each with all its values. */
function unitDirectives(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of fs.readFileSync(path.join(UNIT_DIR, unit), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}
const one = (d: Map<string, string[]>, k: string) => {
  const v = d.get(k);
  assert.equal(v?.length, 1, `exactly one ${k}=`);
  return v![0]!;
};

/** An environment file as systemd reads it (KEY=VALUE lines, # comments). */
function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const i = line.indexOf('=');
    assert.ok(i > 0, `${file}: not KEY=VALUE: ${line}`);
    env[line.slice(0, i).trim()] = line.slice(i + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return env;
}

/** Sets KEY=value in the environment file, replacing an existing or commented-out line. */
function setEnv(text: string, key: string, value: string): string {
  const re = new RegExp(`^#?\\s*${key}=.*$`, 'm');
  return re.test(text) ? text.replace(re, `${key}=${value}`) : `${text.replace(/\n?$/, '\n')}${key}=${value}\n`;
}

/**
 * Runs an installed unit's ExecStart the way systemd would start it, with a
 * notification socket; resolves with the process and the socket.
 */
async function startUnit(unit: string): Promise<{ child: ChildProcess; notify: NotifySocket; log: () => string }> {
  const d = unitDirectives(unit);
  const exec = one(d, 'ExecStart');
  assert.match(exec, /^\/[^\s"'$%\\;]+( [^\s"'$%\\;]+)*$/, 'a plain command line (no quoting or specifiers to interpret)');
  const user = one(d, 'User');
  const group = one(d, 'Group');
  const umask = one(d, 'UMask');
  const envFile = one(d, 'EnvironmentFile');
  const notify = await new NotifySocket().start();
  sockets.push(notify);
  const logFile = path.join(tempDir('deb-log'), `${unit}.log`);
  const out = fs.openSync(logFile, 'a');
  const home = run('getent', ['passwd', user]).out.split(':')[5]!;
  // umask, then drop to the unit's user and group (with its supplementary groups), then
  // exec ExecStart: the pid of the child is the service's main process.
  const child = spawn(
    '/bin/sh',
    ['-c', 'umask "$0" && exec "$@"', umask, 'setpriv', `--reuid=${user}`, `--regid=${group}`, '--init-groups', '--', ...exec.split(' ')],
    {
      cwd: one(d, 'WorkingDirectory'),
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: home,
        USER: user,
        LOGNAME: user,
        ...readEnvFile(envFile),
        NOTIFY_SOCKET: notify.path,
      },
      stdio: ['ignore', out, out],
    },
  );
  fs.closeSync(out);
  children.push(child);
  return { child, notify, log: () => fs.readFileSync(logFile, 'utf8') };
}

async function stopUnit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const gone = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  child.kill('SIGTERM');
  return gone;
}

before(async (t) => {
  ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  if (process.getuid?.() !== 0) {
    const why = 'installing a Debian package needs root';
    if (servicesFile().ci || process.env.CI) throw new Error(`${why} (CI is set, so this is a failure)`);
    return (t as unknown as TestContext).skip(why);
  }
  // What an interrupted earlier run may have left.
  if (run('dpkg-query', ['-W', 'keyport']).code === 0) must(dpkg(['--purge', 'keyport']), 'purge a leftover keyport');
});

after(async () => {
  for (const c of children) await stopUnit(c);
  for (const s of sockets) s.stop();
  if (run('dpkg-query', ['-W', 'keyport']).code === 0) dpkg(['--purge', 'keyport']);
});

describe('the Debian package', { concurrency: false }, () => {
  const live = (title: string, fn: (t: TestContext) => Promise<void>, timeout = 240_000) =>
    it(title, { timeout }, async (t) => {
      if (!ks || process.getuid?.() !== 0) return t.skip('needs root and the test Keystone');
      await fn(t);
    });

  live('npm run package builds keyport_<version>_all.deb: Node 20 from the system, everything else inside, owned by root', async () => {
    const out = tempDir('deb');
    const r = must(run('npm', ['run', '--silent', 'package', '--', '--prebuilt', '--out', out], { timeoutMs: 300_000 }), 'npm run package');
    deb = path.join(out, `keyport_${version}_all.deb`);
    assert.equal(r.trim().split('\n').pop(), deb);
    const field = (f: string) => must(run('dpkg-deb', ['-f', deb, f]), `dpkg-deb -f ${f}`).trim();
    assert.equal(field('Package'), 'keyport');
    assert.equal(field('Version'), version);
    assert.equal(field('Architecture'), 'all');
    assert.match(field('Depends'), /(^|, )nodejs \(>= 20\)(,|$)/);
    assert.match(field('Maintainer'), /<[^>]+@[^>]+>/);
    const listing = must(run('dpkg-deb', ['-c', deb]), 'dpkg-deb -c').trim().split('\n');
    const entries = new Map(listing.map((l) => {
      const f = l.split(/\s+/);
      return [f[5]!.replace(/^\.\//, '/').replace(/\/$/, ''), { perm: f[0]!, owner: f[1]! }];
    }));
    for (const [p, e] of entries) {
      assert.equal(e.owner, 'root/root', p);
      const expected = p === ENV_FILE ? '-rw-r-----' : p === '/usr/bin/keyport' || e.perm.startsWith('d') ? /^[dl-]rwxr-xr-x$/ : '-rw-r--r--';
      if (typeof expected === 'string') assert.equal(e.perm, expected, p);
      else assert.match(e.perm, expected, p);
    }
    for (const p of [
      '/usr/lib/keyport/dist/cli.js', '/usr/lib/keyport/package.json', '/usr/lib/keyport/config/default.json',
      '/usr/lib/keyport/node_modules/express/package.json', '/usr/bin/keyport', `${UNIT_DIR}/keyport-token.service`,
      `${UNIT_DIR}/keyport-registry.service`, `${UNIT_DIR}/keyport.target`, ENV_FILE, '/usr/share/doc/keyport/README.md',
      '/usr/share/doc/keyport/copyright', '/usr/share/man/man1/keyport.1.gz',
    ]) assert.ok(entries.has(p), `${p} in the package`);
    const paths = [...entries.keys()];
    assert.deepEqual(paths.filter((p) => /\/node_modules\/(typescript|tsx|esbuild|@types)(\/|$)/.test(p)), [], 'no development dependencies');
    assert.deepEqual(paths.filter((p) => p.endsWith('.node')), [], 'no native addons (Architecture: all)');
    const control = tempDir('deb-control');
    must(run('dpkg-deb', ['-e', deb, control]), 'dpkg-deb -e');
    assert.equal(fs.readFileSync(path.join(control, 'conffiles'), 'utf8'), `${ENV_FILE}\n`);
    for (const s of ['postinst', 'prerm', 'postrm']) assert.equal(mode(path.join(control, s)) & 0o777, 0o755, s);
  });

  live('dpkg installs it offline: the keyport user, its directories, the command, the units and their documentation', async (t) => {
    assert.ok(deb, 'the package was built');
    // Depends: nodejs (>= 20) is checked by dpkg only when node is a Debian package; a
    // node installed otherwise (a tarball, nvm) is invisible to dpkg.
    const nodePkg = installed('nodejs');
    if (!nodePkg) t.diagnostic('nodejs is not an installed Debian package here: installing with --force-depends, so dpkg does not check Depends: nodejs (>= 20)');
    else t.diagnostic(`nodejs ${run('dpkg-query', ['-W', '-f=${Version}', 'nodejs']).out} satisfies Depends: nodejs (>= 20)`);
    must(dpkg([...(nodePkg ? [] : ['--force-depends']), '-i', deb]), 'dpkg -i');
    assert.ok(installed('keyport'));
    must(dpkg(['--verify', 'keyport']), 'installed files match the md5sums');

    const pw = run('getent', ['passwd', 'keyport']).out.trim().split(':');
    assert.ok(Number(pw[2]) < 1000, `a system user (uid ${pw[2]})`);
    assert.equal(pw[5], DATA);
    assert.equal(pw[6], '/usr/sbin/nologin');
    assert.ok(hasGroup());
    assert.equal(owner(DATA), 'keyport:keyport');
    assert.equal(mode(DATA), 0o750);
    assert.equal(owner(CERTS), 'keyport:keyport');
    assert.equal(mode(CERTS), 0o755);
    assert.equal(owner(ENV_FILE), 'root:keyport');
    assert.equal(mode(ENV_FILE), 0o640, 'the environment file will hold the service password');

    assert.equal(must(run('keyport', ['--version'], { env: { PATH: '/usr/bin:/bin' } }), 'keyport --version').trim(), `keyport ${version}`);
    assert.match(must(run('man', ['-P', 'cat', 'keyport'], { env: { MANWIDTH: '80' } }), 'man keyport'), /keyport token/);

    for (const unit of ['keyport-token.service', 'keyport-registry.service', 'keyport.target']) {
      const docs = one(unitDirectives(unit), 'Documentation').split(' ');
      assert.deepEqual(docs, ['man:keyport(1)', 'file:///usr/share/doc/keyport/README.md'], unit);
      assert.ok(fs.existsSync(new URL(docs[1]!)), `${unit}: ${docs[1]} is installed`);
    }
    // systemd-analyze also runs `man` for man: links, so this checks the man page too.
    const v = run('systemd-analyze', ['verify', 'keyport-token.service', 'keyport-registry.service', 'keyport.target'], {
      env: { SYSTEMD_UNIT_PATH: `${UNIT_DIR}:` },
    });
    assert.deepEqual(v.out.split('\n').filter((l) => /keyport/.test(l)), [], 'systemd accepts the installed units');
    // Without a running systemd nothing is enabled or started, and postinst still succeeds.
    assert.ok(!fs.existsSync('/etc/systemd/system/multi-user.target.wants/keyport.target'), 'not enabled before keyport.env is edited');
  });

  live('the installed units run as keyport: ready when listening, certificates 0644/0600, a Keystone user logs in and pushes with skopeo', async () => {
    assert.ok(installed('keyport'), 'the package is installed');
    const [tokenPort, registryPort] = [await freePort(), await freePort()];
    let env = fs.readFileSync(ENV_FILE, 'utf8');
    const settings: Record<string, string> = {
      ...keystoneEnv(ks!),
      KEYPORT_BIND: '127.0.0.1',
      KEYPORT_PUBLIC_HOST: '127.0.0.1',
      KEYPORT_SERVICE: `127.0.0.1:${registryPort}`,
      KEYPORT_TOKEN_PORT: String(tokenPort),
      KEYPORT_REGISTRY_PORT: String(registryPort),
      // Readiness with workers (node:cluster) means every worker listens.
      KEYPORT_TOKEN_WORKERS: '2',
      KEYPORT_REGISTRY_WORKERS: '1',
    };
    for (const [k, v] of Object.entries(settings)) env = setEnv(env, k, v);
    fs.writeFileSync(ENV_FILE, env);
    const fileEnv = readEnvFile(ENV_FILE);
    assert.equal(fileEnv.KEYPORT_CERTS_DIR, CERTS, 'the shipped file keeps the packaged paths');
    assert.equal(fileEnv.KEYPORT_STORAGE_ROOT, DATA);

    // Both at once, as keyport.target starts them: they share the certificate generation.
    const [token, registry] = await Promise.all([startUnit('keyport-token.service'), startUnit('keyport-registry.service')]);
    try {
      const ca = () => fs.readFileSync(path.join(CERTS, 'ca.crt'));
      for (const [what, s, port, status] of [
        ['token', token, tokenPort, 'token: 2 workers listening'],
        ['registry', registry, registryPort, 'registry listening'],
      ] as const) {
        const ready = await s.notify.ready(60_000);
        assert.ok(ready, `${what}: READY=1 within 60 s\n${s.log()}`);
        assert.equal(ready.STATUS, status);
        // No retry: once READY=1 is sent, the port answers.
        const r = await request(`https://127.0.0.1:${port}/healthz`, { ca: ca(), agent: false, timeoutMs: 5000 });
        assert.ok(r.status < 500, `${what} answers right after READY=1 (${r.status})`);
      }
      assert.equal(token.log().split('\n').filter((l) => l.includes('"token server listening"')).length, 2, 'both token workers listen');

      for (const f of ['ca.crt', 'server.crt', 'token.crt']) {
        assert.equal(mode(path.join(CERTS, f)), 0o644, f);
        assert.equal(owner(path.join(CERTS, f)), 'keyport:keyport', f);
      }
      for (const f of ['ca.key', 'server.key', 'token.key']) assert.equal(mode(path.join(CERTS, f)), 0o600, f);
      // A Docker Distribution running as its own user can read the token certificate, not the keys.
      const asNobody = (f: string) => run('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'cat', path.join(CERTS, f)]);
      assert.equal(asNobody('token.crt').code, 0, asNobody('token.crt').out);
      assert.notEqual(asNobody('token.key').code, 0);

      const admin = new KeystoneAdmin(ks!);
      const user = await makeUser(admin, `deb-${KeystoneAdmin.suffix()}`);
      const reg = `127.0.0.1:${registryPort}`;
      const certs = certDir(ca());
      const auth = path.join(tempDir('deb-auth'), 'auth.json');
      must(run('skopeo', ['login', '--authfile', auth, '--cert-dir', certs, '--username', user.name, '--password-stdin', reg], { input: user.password }), 'skopeo login');
      const image = makeTestImage(tempDir('deb-img'), `${reg}/${user.name}/hello:1`);
      must(run('skopeo', ['copy', '--dest-authfile', auth, '--dest-cert-dir', certs, `oci:${image.ociDir}:latest`, `docker://${reg}/${user.name}/hello:1`]), 'skopeo copy');
      const inspect = JSON.parse(must(run('skopeo', ['inspect', '--authfile', auth, '--cert-dir', certs, `docker://${reg}/${user.name}/hello:1`]), 'skopeo inspect'));
      assert.equal(inspect.Digest, image.manifestDigest);
      const stored = run('find', [DATA, '-type', 'f', '-size', '+0', '!', '-user', 'keyport']).out.trim();
      assert.equal(stored, '', 'everything in the store belongs to keyport');
      assert.ok(run('find', [DATA, '-type', 'f']).out.trim().split('\n').length >= 3, 'the blobs are stored under /var/lib/keyport');
    } finally {
      assert.equal(await stopUnit(registry.child), 0, 'the registry stops cleanly on SIGTERM');
      assert.equal(await stopUnit(token.child), 0, 'the token server stops cleanly on SIGTERM');
    }
  });

  live('installing it again (an upgrade) keeps the configuration, the certificates and the data', async () => {
    assert.ok(installed('keyport'), 'the package is installed');
    const before = {
      env: fs.readFileSync(ENV_FILE, 'utf8'),
      token: fs.readFileSync(path.join(CERTS, 'token.key')),
      files: run('find', [DATA, '-type', 'f']).out.trim(),
    };
    must(dpkg([...(installed('nodejs') ? [] : ['--force-depends']), '-i', deb]), 'dpkg -i again');
    assert.equal(fs.readFileSync(ENV_FILE, 'utf8'), before.env, 'the edited conffile is kept');
    assert.equal(owner(ENV_FILE), 'root:keyport');
    assert.equal(mode(ENV_FILE), 0o640);
    assert.deepEqual(fs.readFileSync(path.join(CERTS, 'token.key')), before.token);
    assert.equal(run('find', [DATA, '-type', 'f']).out.trim(), before.files);
    assert.equal(owner(DATA), 'keyport:keyport');
    assert.equal(owner(CERTS), 'keyport:keyport');
  });

  live('dpkg -r keeps the data, the certificates, the configuration and the user; dpkg --purge removes them', async () => {
    assert.ok(installed('keyport'), 'the package is installed');
    must(dpkg(['-r', 'keyport']), 'dpkg -r');
    for (const p of ['/usr/lib/keyport', '/usr/bin/keyport', `${UNIT_DIR}/keyport-token.service`, '/usr/share/doc/keyport']) {
      assert.ok(!fs.existsSync(p), `${p} removed`);
    }
    assert.ok(run('find', [DATA, '-type', 'f']).out.trim().split('\n').length >= 3, 'the stored images are kept');
    assert.ok(fs.existsSync(path.join(CERTS, 'ca.key')), 'the certificates are kept');
    assert.ok(fs.existsSync(ENV_FILE), 'the configuration is kept');
    assert.ok(hasUser(), 'the keyport user is kept');

    must(dpkg(['--purge', 'keyport']), 'dpkg --purge');
    for (const p of [DATA, CERTS, '/etc/keyport']) assert.ok(!fs.existsSync(p), `${p} removed on purge`);
    assert.ok(!hasUser(), 'the keyport user is gone');
    assert.ok(!hasGroup(), 'the keyport group is gone');
    assert.notEqual(run('dpkg-query', ['-W', 'keyport']).code, 0, 'dpkg no longer knows the package');
    const state = '/var/lib/systemd/deb-systemd-helper-enabled';
    assert.deepEqual(fs.existsSync(state) ? fs.readdirSync(state).filter((f) => f.includes('keyport')) : [], [], 'no unit state left');
  });
});
