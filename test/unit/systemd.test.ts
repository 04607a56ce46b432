import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'systemd');

function directives(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of fs.readFileSync(path.join(dir, unit), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

for (const [unit, command, paths] of [
  ['keyport-token.service', 'token', ['/etc/keyport/certs']],
  ['keyport-registry.service', 'registry', ['/etc/keyport/certs', '/var/lib/keyport']],
] as const) {
  test(`${unit}: host process under its own user, restarted on failure, hardened`, () => {
    const d = directives(unit);
    assert.deepEqual(d.get('User'), ['keyport']);
    assert.deepEqual(d.get('EnvironmentFile'), ['/etc/keyport/keyport.env']);
    assert.match(d.get('ExecStart')![0]!, new RegExp(`cli\\.js ${command}$`));
    assert.deepEqual(d.get('Restart'), ['on-failure']);
    assert.deepEqual(d.get('RestartPreventExitStatus'), ['78'], 'configuration errors are not retried');
    for (const k of ['NoNewPrivileges', 'PrivateTmp', 'ProtectHome', 'PrivateDevices']) assert.deepEqual(d.get(k), ['yes'], k);
    assert.deepEqual(d.get('ProtectSystem'), ['strict']);
    assert.deepEqual(d.get('ReadWritePaths')![0]!.split(' '), [...paths]);
    assert.deepEqual(d.get('PartOf'), ['keyport.target']);
  });
}

test('keyport.target groups both units; systemd accepts all three files', (t) => {
  const d = directives('keyport.target');
  assert.deepEqual(d.get('Wants')![0]!.split(' ').sort(), ['keyport-registry.service', 'keyport-token.service']);
  const probe = spawnSync('systemd-analyze', ['--version']);
  if (probe.status !== 0) return t.diagnostic('systemd-analyze not installed; directive checks only');
  const r = spawnSync('systemd-analyze', ['verify', 'keyport-token.service', 'keyport-registry.service', 'keyport.target'], {
    cwd: dir,
    env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:` },
    encoding: 'utf8',
  });
  const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /keyport/.test(l));
  assert.deepEqual(complaints, []);
});
