/**
 * The OCI distribution-spec conformance suite (v1.1.1, all four workflows: pull, push,
 * content discovery, content management) against a real `keyport start`: the suite
 * follows the registry's Bearer challenge to the token server and logs in there with a
 * real Keystone user, exactly as a client would.
 *
 * The suite is a prebuilt binary (`go test -c` of its conformance package), found
 * through KEYPORT_OCI_CONFORMANCE, else ../shared/tools/oci-conformance-v1.1.1 next to
 * the checkout, else /work/shared/tools/oci-conformance-v1.1.1. Under CI a missing
 * binary is a failure.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it, type TestContext } from 'node:test';
import { KeyportProcess, tempDir } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { keystone, keystoneEnv, servicesFile } from '../helpers/services.js';

/** Specs the suite runs with every workflow on (79 in total; 5 are skipped by design). */
const EXPECTED_SPECS = 74;
/** The suite's top-level container: every spec's name starts with it (report nodes do not). */
const SUITE_TITLE = 'OCI Distribution Conformance Tests ';
const BINARY = 'oci-conformance-v1.1.1';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function findSuite(): { path: string } | { missing: string } {
  const fromEnv = process.env.KEYPORT_OCI_CONFORMANCE;
  const candidates = fromEnv ? [fromEnv] : [path.resolve(root, '..', 'shared', 'tools', BINARY), path.join('/work/shared/tools', BINARY)];
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return { path: c };
    } catch {
      /* try the next one */
    }
  }
  return { missing: `the OCI conformance suite was not found (looked at ${candidates.join(', ')}; set KEYPORT_OCI_CONFORMANCE)` };
}

interface SpecResult {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  message: string;
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|quot|apos|amp|#x[0-9a-fA-F]+|#\d+);/g, (_m, e: string) => {
    switch (e) {
      case 'lt': return '<';
      case 'gt': return '>';
      case 'quot': return '"';
      case 'apos': return "'";
      case 'amp': return '&';
      default: return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [, k, v] of tag.matchAll(/([\w:-]+)="([^"]*)"/g)) out[k!] = unescapeXml(v!);
  return out;
}

/**
 * The test cases of a JUnit report as ginkgo writes it: `<testcase name= status=>` with
 * an optional `<failure message=>` (or `<error>`) or `<skipped>` child. Only this flat,
 * attribute-quoted shape is read; anything else in the file is ignored.
 */
function parseJUnit(xml: string): SpecResult[] {
  const out: SpecResult[] = [];
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const attrs = attributes(m[1]!);
    const body = m[3] ?? '';
    const failure = /<(failure|error)\b([^>]*?)(?:\/>|>([\s\S]*?)<\/\1>)/.exec(body);
    let status: SpecResult['status'];
    let message = '';
    if (failure) {
      status = 'failed';
      const fa = attributes(failure[2]!);
      // The body has the message and where the spec failed; the attribute only the message.
      message = unescapeXml(failure[3] ?? '').trim() || fa.message || failure[1]!;
    } else if (/<skipped\b/.test(body) || attrs.status === 'skipped' || attrs.status === 'pending') {
      status = 'skipped';
    } else if (attrs.status && attrs.status !== 'passed') {
      status = 'failed';
      message = `status ${attrs.status}`;
    } else {
      status = 'passed';
    }
    out.push({ name: attrs.name ?? '(unnamed)', status, message });
  }
  return out;
}

function runSuite(bin: string, env: Record<string, string>, cwd: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['-ginkgo.no-color'], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd, ...env } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const timer = setTimeout(() => {
      out += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

let kp: KeyportProcess | undefined;
let user: TestUser;
let suite: string | undefined;
let unavailable = 'Keystone is unavailable';

before(async (t) => {
  const found = findSuite();
  if ('missing' in found) {
    if (servicesFile().ci || process.env.CI) throw new Error(`${found.missing} (CI is set, so this is a failure)`);
    unavailable = found.missing;
    return;
  }
  const ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  const admin = new KeystoneAdmin(ks);
  user = await makeUser(admin, `oci-${KeystoneAdmin.suffix()}`);
  kp = await new KeyportProcess({ command: 'start', env: { ...keystoneEnv(ks), KEYPORT_LOG_LEVEL: 'info' } }).start();
  suite = found.path;
});

after(async () => kp?.stop());

describe('OCI distribution-spec conformance v1.1.1', () => {
  it(`passes all ${EXPECTED_SPECS} specs of the pull, push, content discovery and content management workflows`, async (t) => {
    if (!suite || !kp) return t.skip(unavailable);
    const work = tempDir('oci-conformance');
    const reportDir = path.join(work, 'report');
    const r = await runSuite(
      suite,
      {
        OCI_ROOT_URL: kp.registryUrl,
        OCI_NAMESPACE: `${user.name}/conformance`,
        OCI_CROSSMOUNT_NAMESPACE: `${user.name}/conformance-mount`,
        OCI_USERNAME: user.name,
        OCI_PASSWORD: user.password,
        OCI_TEST_PULL: '1',
        OCI_TEST_PUSH: '1',
        OCI_TEST_CONTENT_DISCOVERY: '1',
        OCI_TEST_CONTENT_MANAGEMENT: '1',
        OCI_HIDE_SKIPPED_WORKFLOWS: '0',
        OCI_DEBUG: '0',
        OCI_REPORT_DIR: reportDir,
      },
      work,
      300_000,
    );
    const junit = path.join(reportDir, 'junit.xml');
    assert.ok(fs.existsSync(junit), `the suite wrote no ${junit} (exit ${r.code}):\n${r.out.slice(-4000)}`);
    const specs = parseJUnit(fs.readFileSync(junit, 'utf8'));
    const failed = specs.filter((s) => s.status === 'failed');
    const passed = specs.filter((s) => s.status === 'passed' && s.name.startsWith(SUITE_TITLE));
    const summary = /Ran \d+ of \d+ Specs[^\n]*\n[^\n]*/.exec(r.out)?.[0] ?? '(no ginkgo summary)';
    const failures = failed.map((s) => `- ${s.name}\n    ${s.message.replace(/\n/g, '\n    ')}`).join('\n');
    assert.equal(failed.length, 0, `${failed.length} conformance specs failed (${summary}); report in ${reportDir}:\n${failures}`);
    assert.equal(passed.length, EXPECTED_SPECS, `specs passed (${summary})`);
    assert.equal(r.code, 0, `suite exit code:\n${r.out.slice(-2000)}`);
  });
});
