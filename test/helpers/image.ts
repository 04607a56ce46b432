import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface TestImage {
  /** OCI image layout directory (tag "latest"): skopeo copy oci:<dir>:latest ... */
  ociDir: string;
  /** docker save / docker load archive with RepoTags [ref]. */
  dockerArchive: string;
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/**
 * Builds a small image offline (no registry, no network): one gzip layer with a text
 * file and, when Debian's busybox-static is installed, /bin/busybox and /bin/sh so the
 * image can run. Written as an OCI layout and as a docker-archive.
 */
export function makeTestImage(dir: string, ref: string, opts: { extraBytes?: number; marker?: string } = {}): TestImage {
  fs.rmSync(dir, { recursive: true, force: true });
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'hello.txt'), `hello from keyport test image ${opts.marker ?? ''}\n`);
  const busybox = '/bin/busybox';
  const hasShell = fs.existsSync(busybox) && execFileSync('file', [busybox]).toString().includes('static');
  if (hasShell) {
    fs.copyFileSync(busybox, path.join(rootfs, 'bin', 'busybox'));
    fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
    fs.symlinkSync('busybox', path.join(rootfs, 'bin', 'sh'));
  }
  if (opts.extraBytes) fs.writeFileSync(path.join(rootfs, 'random.bin'), crypto.randomBytes(opts.extraBytes));
  const layerTar = path.join(dir, 'layer.tar');
  execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', rootfs, '-cf', layerTar, '.']);
  const tarBytes = fs.readFileSync(layerTar);
  const gz = execFileSync('gzip', ['-n', '-1', '-c', layerTar], { maxBuffer: 1 << 30 });
  const diffId = sha(tarBytes);
  const layerDigest = sha(gz);
  const cmd = hasShell ? ['/bin/sh', '-c', 'cat /hello.txt'] : ['/hello'];
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config: { Env: ['PATH=/bin'], Cmd: cmd },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: 'keyport test image' }],
    }),
  );
  const configDigest = sha(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configDigest}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerDigest}`, size: gz.length }],
    }),
  );
  const manifestDigest = sha(manifest);
  const oci = path.join(dir, 'oci');
  const blobs = path.join(oci, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  fs.writeFileSync(path.join(blobs, layerDigest), gz);
  fs.writeFileSync(path.join(blobs, configDigest), config);
  fs.writeFileSync(path.join(blobs, manifestDigest), manifest);
  fs.writeFileSync(
    path.join(oci, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${manifestDigest}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    }),
  );
  fs.writeFileSync(path.join(oci, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const da = path.join(dir, 'da');
  fs.mkdirSync(path.join(da, diffId), { recursive: true });
  fs.copyFileSync(layerTar, path.join(da, diffId, 'layer.tar'));
  fs.writeFileSync(path.join(da, `${configDigest}.json`), config);
  fs.writeFileSync(path.join(da, 'manifest.json'), JSON.stringify([{ Config: `${configDigest}.json`, RepoTags: [ref], Layers: [`${diffId}/layer.tar`] }]));
  const dockerArchive = path.join(dir, 'docker-archive.tar');
  execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', da, '-cf', dockerArchive, '.']);
  fs.rmSync(rootfs, { recursive: true, force: true });
  fs.rmSync(da, { recursive: true, force: true });
  fs.rmSync(layerTar);
  return { ociDir: oci, dockerArchive, manifestDigest: `sha256:${manifestDigest}`, configDigest: `sha256:${configDigest}`, layerDigest: `sha256:${layerDigest}` };
}
