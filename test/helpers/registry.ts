import crypto from 'node:crypto';
import { request, type RequestOptions, type Response } from './http.js';
import { KeyportProcess } from './keyport.js';
import { TokenMinter } from './tokens.js';

/**
 * Storage settings for registry processes under test. KEYPORT_TEST_STORAGE_ENV (JSON)
 * lets the same registry suite run on another driver (Swift, S3).
 */
export function storageEnv(): Record<string, string> {
  const raw = process.env.KEYPORT_TEST_STORAGE_ENV;
  return raw ? (JSON.parse(raw) as Record<string, string>) : {};
}

/** A suite name with the driver under test, so a failure says which driver it happened on. */
export function onDriver(name: string): string {
  const driver = storageEnv().KEYPORT_STORAGE_DRIVER;
  return driver && driver !== 'filesystem' ? `${name} [${driver}]` : name;
}

export async function startRegistry(env: Record<string, string> = {}): Promise<{ kp: KeyportProcess; minter: TokenMinter; client: RegistryClient }> {
  const kp = await new KeyportProcess({ command: 'registry', env: { ...storageEnv(), ...env } }).start();
  const minter = new TokenMinter(kp.certsDir, env.KEYPORT_ISSUER ?? 'keyport', env.KEYPORT_SERVICE ?? 'keyport-registry');
  return { kp, minter, client: new RegistryClient(kp) };
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + crypto.createHash('sha256').update(data).digest('hex');
}

export class RegistryClient {
  constructor(readonly kp: KeyportProcess) {}

  api(method: string, path: string, token: string | undefined, opts: Omit<RequestOptions, 'method' | 'ca'> = {}): Promise<Response> {
    const headers: Record<string, string | number | string[]> = { ...(opts.headers ?? {}) };
    if (token) headers.authorization = `Bearer ${token}`;
    return request(path.startsWith('http') ? path : `${this.kp.registryUrl}${path}`, { ...opts, method, headers, ca: this.kp.ca });
  }

  /** Monolithic upload: POST ?digest= with the bytes. */
  async pushBlob(repo: string, token: string, data: Buffer): Promise<string> {
    const digest = sha256(data);
    const r = await this.api('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, token, {
      body: data,
      headers: { 'content-type': 'application/octet-stream', 'content-length': data.length },
    });
    if (r.status !== 201) throw new Error(`push blob ${repo}: ${r.status} ${r.text}`);
    return digest;
  }

  /** A small image (config + one layer) and its OCI manifest; returns the manifest digest. */
  async pushImage(repo: string, tag: string, token: string, opts: { layer?: Buffer; extra?: Record<string, unknown>; mediaType?: string } = {}): Promise<{ digest: string; body: Buffer; config: string; layer: string }> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, tag }));
    const layer = opts.layer ?? crypto.randomBytes(1024);
    const cd = await this.pushBlob(repo, token, config);
    const ld = await this.pushBlob(repo, token, layer);
    const mediaType = opts.mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
    const docker = mediaType.includes('docker');
    const manifest = {
      schemaVersion: 2,
      mediaType,
      config: { mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', digest: cd, size: config.length },
      layers: [{ mediaType: docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip', digest: ld, size: layer.length }],
      ...(opts.extra ?? {}),
    };
    const body = Buffer.from(JSON.stringify(manifest));
    const r = await this.api('PUT', `/v2/${repo}/manifests/${tag}`, token, { body, headers: { 'content-type': mediaType } });
    if (r.status !== 201) throw new Error(`push manifest ${repo}:${tag}: ${r.status} ${r.text}`);
    return { digest: String(r.headers['docker-content-digest']), body, config: cd, layer: ld };
  }
}

/** The OCI error codes of a response body. */
export function codes(r: Response): string[] {
  try {
    return (r.json().errors as Array<{ code: string }>).map((e) => e.code);
  } catch {
    return [`(not JSON: ${r.status} ${r.text.slice(0, 80)})`];
  }
}

/** Scrapes a Prometheus endpoint; `value(name, labels)` sums the matching samples. */
export async function scrapeMetrics(url: string, ca: Buffer): Promise<{ text: string; value: (name: string, labels?: Record<string, string>) => number }> {
  const r = await request(url, { ca });
  if (r.status !== 200) throw new Error(`metrics: ${r.status} ${r.text}`);
  const samples = r.text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(l);
      if (!m) return undefined;
      const labels: Record<string, string> = {};
      for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
      return { name: m[1]!, labels, value: Number(m[3]) };
    })
    .filter((s) => s !== undefined);
  return {
    text: r.text,
    value: (name, labels = {}) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0),
  };
}
