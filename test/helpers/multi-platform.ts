import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface MultiPlatformImage {
  /** OCI layout whose tag "latest" is the index: skopeo copy --all oci:<dir>:latest ... */
  ociDir: string;
  indexDigest: string;
  /** Image manifest digest per platform ("linux/amd64", "linux/arm64"). */
  images: Record<string, string>;
  /** Every blob digest (configs and layers) of every platform. */
  blobs: string[];
}

const sha = (b: Buffer) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

/**
 * An image index with one small image per platform, built offline as an OCI layout:
 * each image has its own gzip layer (a text file naming the platform) and config.
 */
export function makeMultiPlatformImage(dir: string, platforms: string[] = ['linux/amd64', 'linux/arm64'], marker = ''): MultiPlatformImage {
  fs.rmSync(dir, { recursive: true, force: true });
  const oci = path.join(dir, 'oci');
  const blobDir = path.join(oci, 'blobs', 'sha256');
  fs.mkdirSync(blobDir, { recursive: true });
  const put = (b: Buffer) => {
    const d = sha(b);
    fs.writeFileSync(path.join(blobDir, d.slice(7)), b);
    return d;
  };
  const images: Record<string, string> = {};
  const blobs: string[] = [];
  const entries = platforms.map((p) => {
    const [os, architecture] = p.split('/') as [string, string];
    const rootfs = path.join(dir, `rootfs-${architecture}`);
    fs.mkdirSync(rootfs, { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'platform.txt'), `${p} ${marker}\n`);
    const tar = execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', rootfs, '-cf', '-', '.']);
    const gz = execFileSync('gzip', ['-n', '-c'], { input: tar });
    const config = Buffer.from(JSON.stringify({ architecture, os, created: '1970-01-01T00:00:00Z', config: {}, rootfs: { type: 'layers', diff_ids: [sha(tar)] } }));
    const layerDigest = put(gz);
    const configDigest = put(config);
    blobs.push(configDigest, layerDigest);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: gz.length }],
      }),
    );
    images[p] = put(manifest);
    fs.rmSync(rootfs, { recursive: true, force: true });
    return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: images[p], size: manifest.length, platform: { os, architecture } };
  });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries }));
  const indexDigest = put(index);
  fs.writeFileSync(
    path.join(oci, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    }),
  );
  fs.writeFileSync(path.join(oci, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return { ociDir: oci, indexDigest, images, blobs };
}
