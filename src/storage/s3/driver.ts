import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import type { S3Settings } from './settings.js';
import type { Logger } from '../../log/logger.js';
import {
  checkDirPath,
  checkPath,
  ConditionalWriteUnsupportedError,
  InvalidOffsetError,
  PathNotFoundError,
  StorageError,
  StorageUnavailableError,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
} from '../driver.js';
import { isNotFound, mapS3Error, statusOf } from './errors.js';
import { abortUpload, MIN_PART, S3Writer, STATE_META, type Part, type S3WriterContext, type UploadState } from './writer.js';
import { createAgents, destroyAgents, type Agents } from '../transport.js';

export interface S3DriverOptions extends S3Settings {
  /** Objects above this size are moved with a multipart copy (S3 copies at most 5 GiB at once). */
  multipartCopyThreshold?: number;
  /** Part size of multipart copies. */
  multipartCopyPartSize?: number;
}

const GiB = 1024 * 1024 * 1024;
/** First path component of the upload-state namespace; '~' never occurs in driver paths. */
const STATE_DIR = '~uploads';

interface Head {
  size: number;
  modTime: Date;
  metadata: Record<string, string>;
}

/**
 * Stores everything in one S3 bucket (AWS, or any S3 API such as Swift's s3api, Ceph
 * RGW or MinIO) through the AWS SDK, which does the Signature V4 signing, retries and
 * presigning. Small objects are single PUTs; large ones multipart uploads whose progress
 * lives in the bucket (see S3Writer), so several registry processes can share it.
 */
export class S3Driver implements StorageDriver {
  readonly name = 's3';
  readonly client: S3Client;
  private readonly agents: Agents;
  private readonly root: string;
  private readonly ctx: S3WriterContext;

  constructor(
    private readonly opts: S3DriverOptions,
    log: Logger,
  ) {
    this.agents = createAgents({ caFile: opts.caFile, insecureSkipVerify: opts.insecureSkipVerify });
    this.client = new S3Client({
      region: opts.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
      endpoint: opts.endpoint || undefined,
      forcePathStyle: opts.forcePathStyle,
      // Empty: the SDK's standard chain (AWS_ACCESS_KEY_ID..., profiles, instance roles).
      credentials: opts.accessKey ? { accessKeyId: opts.accessKey, secretAccessKey: opts.secretKey } : undefined,
      requestHandler: new NodeHttpHandler({
        httpAgent: this.agents.httpAgent,
        httpsAgent: this.agents.httpsAgent,
        connectionTimeout: opts.timeout,
        requestTimeout: opts.timeout,
      }),
      maxAttempts: 3,
      // S3-compatible stores predate the SDK's default CRC32 checksums (and the
      // aws-chunked uploads they bring); send them only where S3 requires one.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.client.middlewareStack.add(contentMd5ForDeletes, { step: 'build', name: 'keyportContentMd5' });
    this.root = opts.rootDirectory.replace(/^\/+|\/+$/g, '');
    this.ctx = { client: this.client, bucket: opts.bucket, chunkSize: opts.chunkSize };
    log.debug({ bucket: opts.bucket, endpoint: opts.endpoint || 'aws', pathStyle: opts.forcePathStyle }, 's3: driver configured');
  }

  private key(path: string): string {
    return this.root ? `${this.root}${path}` : path.slice(1);
  }

  private dirPrefix(path: string): string {
    if (path === '/') return this.root ? `${this.root}/` : '';
    return `${this.key(path)}/`;
  }

  private stateKey(path: string): string {
    return this.root ? `${this.root}/${STATE_DIR}${path}` : `${STATE_DIR}${path}`;
  }

  private pathOf(key: string): string {
    return this.root ? key.slice(this.root.length) : `/${key}`;
  }

  private async head(key: string): Promise<Head | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key: key }));
      return { size: r.ContentLength ?? 0, modTime: r.LastModified ?? new Date(), metadata: r.Metadata ?? {} };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw mapS3Error('head', key, e);
    }
  }

  async getContent(path: string): Promise<Buffer> {
    checkPath(path);
    const key = this.key(path);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(path);
      throw mapS3Error('get', key, e);
    }
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    checkPath(path);
    const key = this.key(path);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.opts.bucket,
          Key: key,
          Body: content,
          ContentLength: content.length,
          ContentMD5: crypto.createHash('md5').update(content).digest('base64'),
        }),
      );
    } catch (e) {
      throw mapS3Error('put', key, e);
    }
  }

  async putExclusive(path: string, content: Buffer): Promise<boolean> {
    checkPath(path);
    const key = this.key(path);
    try {
      // S3's conditional write: 412 when the key exists, 409 when a concurrent
      // conditional write of the same key is in progress (it will win or fail itself).
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.opts.bucket,
          Key: key,
          Body: content,
          ContentLength: content.length,
          ContentMD5: crypto.createHash('md5').update(content).digest('base64'),
          IfNoneMatch: '*',
        }),
      );
      return true;
    } catch (e) {
      const status = statusOf(e);
      if (status === 412 || status === 409) return false;
      // Older S3 APIs (Swift's s3api among them) answer 501 NotImplemented; an
      // unconditional put would break the only-if-absent promise, so say why instead.
      if (status === 501 || (e as { name?: string }).name === 'NotImplemented') {
        throw new ConditionalWriteUnsupportedError(
          `the S3 store at ${this.opts.endpoint || 'AWS'} does not support conditional writes (PutObject with If-None-Match: *)`,
        );
      }
      throw mapS3Error('put', key, e);
    }
  }

  async reader(path: string, offset = 0): Promise<Readable> {
    checkPath(path);
    if (!Number.isInteger(offset) || offset < 0) throw new InvalidOffsetError(path, offset);
    const key = this.key(path);
    try {
      return await this.openRead(key, offset);
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(path);
      if (statusOf(e) === 416) {
        // A range starting at the end is refused; reading there is just empty.
        const h = await this.head(key);
        if (!h) throw new PathNotFoundError(path);
        if (offset === h.size) return Readable.from([]);
        throw new InvalidOffsetError(path, offset);
      }
      throw mapS3Error('get', key, e);
    }
  }

  private async openRead(key: string, offset: number): Promise<Readable> {
    const r = await this.client.send(
      new GetObjectCommand({ Bucket: this.opts.bucket, Key: key, Range: offset > 0 ? `bytes=${offset}-` : undefined }),
    );
    return r.Body as Readable;
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    checkPath(path);
    const key = this.key(path);
    const stateKey = this.stateKey(path);
    if (append) {
      const state = await this.loadState(key, stateKey);
      if (state) return new S3Writer(this.ctx, key, stateKey, state);
    } else {
      await this.dropUpload(key, stateKey);
      try {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: key }));
      } catch (e) {
        if (!isNotFound(e)) throw mapS3Error('delete', key, e);
      }
    }
    return new S3Writer(this.ctx, key, stateKey, { uploadId: undefined, parts: [], tail: Buffer.alloc(0) });
  }

  /** The state a closed writer left, or the committed object turned back into an upload. */
  private async loadState(key: string, stateKey: string): Promise<UploadState | undefined> {
    const saved = await this.savedState(key, stateKey);
    if (saved) return saved;
    const h = await this.head(key);
    if (!h) return undefined;
    return this.reopen(key, h.size);
  }

  private async savedState(key: string, stateKey: string): Promise<UploadState | undefined> {
    let saved: { meta: Record<string, string>; tail: Buffer } | undefined;
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: stateKey }));
      saved = { meta: r.Metadata ?? {}, tail: Buffer.from(await r.Body!.transformToByteArray()) };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw mapS3Error('read upload state', key, e);
    }
    const uploadId = saved.meta[STATE_META.uploadId] || undefined;
    const count = Number(saved.meta[STATE_META.parts] ?? 0);
    const parts = uploadId ? await this.listParts(key, uploadId, count) : [];
    return { uploadId, parts, tail: saved.tail };
  }

  /**
   * The first `count` parts of an upload. Parts past them were sent by a writer that
   * died before closing: they are ignored, and overwritten as the upload goes on.
   */
  private async listParts(key: string, uploadId: string, count: number): Promise<Part[]> {
    const parts: Part[] = [];
    let marker: string | undefined;
    try {
      do {
        const r = await this.client.send(
          new ListPartsCommand({ Bucket: this.opts.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }),
        );
        for (const p of r.Parts ?? []) {
          if (p.PartNumber && p.PartNumber <= count) parts.push({ PartNumber: p.PartNumber, ETag: p.ETag ?? '', Size: p.Size ?? 0 });
        }
        marker = r.IsTruncated ? r.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (e) {
      throw mapS3Error('list parts', key, e);
    }
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    if (parts.length !== count || parts.some((p, i) => p.PartNumber !== i + 1)) {
      throw new StorageError(`upload of ${key} lost parts: expected ${count}, found ${parts.length}`);
    }
    return parts;
  }

  /** Appending to a committed object: small ones come back as the tail, large ones as a copied part. */
  private async reopen(key: string, size: number): Promise<UploadState> {
    if (size < MIN_PART) {
      try {
        const r = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: key }));
        return { uploadId: undefined, parts: [], tail: Buffer.from(await r.Body!.transformToByteArray()) };
      } catch (e) {
        throw mapS3Error('get', key, e);
      }
    }
    try {
      const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.opts.bucket, Key: key }));
      const parts = await this.copyParts(key, key, created.UploadId!, size, this.opts.multipartCopyPartSize ?? GiB);
      return { uploadId: created.UploadId, parts, tail: Buffer.alloc(0) };
    } catch (e) {
      throw mapS3Error('reopen', key, e);
    }
  }

  private async copyParts(src: string, dst: string, uploadId: string, size: number, partSize: number): Promise<Part[]> {
    const parts: Part[] = [];
    for (let start = 0, n = 1; start < size; start += partSize, n++) {
      const end = Math.min(start + partSize, size) - 1;
      const r = await this.client.send(
        new UploadPartCopyCommand({
          Bucket: this.opts.bucket,
          Key: dst,
          UploadId: uploadId,
          PartNumber: n,
          CopySource: copySource(this.opts.bucket, src),
          CopySourceRange: `bytes=${start}-${end}`,
        }),
      );
      parts.push({ PartNumber: n, ETag: r.CopyPartResult?.ETag ?? '', Size: end - start + 1 });
    }
    return parts;
  }

  /** Aborts the multipart upload an upload-state object names, and removes the state. */
  private async dropUpload(key: string, stateKey: string): Promise<boolean> {
    const st = await this.head(stateKey);
    if (!st) return false;
    await abortUpload(this.ctx, key, st.metadata[STATE_META.uploadId] || undefined);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: stateKey }));
    } catch (e) {
      if (!isNotFound(e)) throw mapS3Error('delete', stateKey, e);
    }
    return true;
  }

  async stat(path: string): Promise<FileInfo> {
    checkDirPath(path);
    if (path !== '/') {
      const h = await this.head(this.key(path));
      if (h) return { path, size: h.size, modTime: h.modTime, isDir: false };
      // An upload in progress: what its writers closed is durable.
      const st = await this.head(this.stateKey(path));
      if (st) return { path, size: Number(st.metadata[STATE_META.size] ?? 0), modTime: st.modTime, isDir: false };
    }
    const page = await this.listPage(this.dirPrefix(path), undefined, undefined, 1);
    if ((page.Contents?.length ?? 0) > 0 || (page.CommonPrefixes?.length ?? 0) > 0 || path === '/') {
      return { path, size: 0, modTime: page.Contents?.[0]?.LastModified ?? new Date(), isDir: true };
    }
    throw new PathNotFoundError(path);
  }

  private async listPage(prefix: string, delimiter: string | undefined, token: string | undefined, max?: number): Promise<ListObjectsV2CommandOutput> {
    try {
      return await this.client.send(
        new ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token, MaxKeys: max }),
      );
    } catch (e) {
      throw mapS3Error('list', prefix, e);
    }
  }

  private async *keysUnder(prefix: string): AsyncGenerator<string> {
    let token: string | undefined;
    do {
      const page = await this.listPage(prefix, undefined, token);
      for (const o of page.Contents ?? []) if (o.Key) yield o.Key;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async list(path: string): Promise<string[]> {
    checkDirPath(path);
    const prefix = this.dirPrefix(path);
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.listPage(prefix, '/', token);
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) out.push(this.pathOf(p.Prefix.replace(/\/$/, '')));
      for (const o of page.Contents ?? []) if (o.Key) out.push(this.pathOf(o.Key));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const visible = path === '/' ? out.filter((p) => p !== `/${STATE_DIR}`) : out;
    if (visible.length === 0 && path !== '/') throw new PathNotFoundError(path);
    return visible.sort();
  }

  async move(source: string, dest: string): Promise<void> {
    checkPath(source);
    checkPath(dest);
    const src = this.key(source);
    const dst = this.key(dest);
    const h = await this.head(src);
    if (!h) throw new PathNotFoundError(source);
    if (src === dst) return;
    const threshold = this.opts.multipartCopyThreshold ?? 5 * GiB;
    try {
      if (h.size <= threshold) {
        await this.client.send(new CopyObjectCommand({ Bucket: this.opts.bucket, Key: dst, CopySource: copySource(this.opts.bucket, src) }));
      } else {
        const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.opts.bucket, Key: dst }));
        const parts = await this.copyParts(src, dst, created.UploadId!, h.size, this.opts.multipartCopyPartSize ?? GiB);
        await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.opts.bucket,
            Key: dst,
            UploadId: created.UploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag })) },
          }),
        );
      }
      await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: src }));
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(source);
      throw mapS3Error('move', src, e);
    }
  }

  async delete(path: string): Promise<void> {
    checkDirPath(path);
    const keys: string[] = [];
    if (path !== '/' && (await this.head(this.key(path)))) keys.push(this.key(path));
    for await (const k of this.keysUnder(this.dirPrefix(path))) keys.push(k);
    // Uploads in progress under the path go too, with their multipart uploads.
    let uploads = 0;
    const states: string[] = path === '/' ? [] : [this.stateKey(path)];
    if (path !== '/') for await (const k of this.keysUnder(`${this.stateKey(path)}/`)) states.push(k);
    else for (const k of keys) if (k.startsWith(this.stateKey('/'))) states.push(k);
    for (const s of states) {
      const p = this.pathOf(s).slice(STATE_DIR.length + 1);
      if (await this.dropUpload(this.key(p), s)) uploads++;
    }
    if (keys.length === 0 && uploads === 0) throw new PathNotFoundError(path);
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const r = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.opts.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
        );
        const failed = (r.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
        if (failed.length) throw new StorageError(`s3 delete failed for ${failed.length} keys, e.g. ${failed[0]!.Key}: ${failed[0]!.Code}`);
      } catch (e) {
        throw mapS3Error('delete', path, e);
      }
    }
  }

  async redirectURL(path: string, method: 'GET' | 'HEAD'): Promise<string | undefined> {
    checkPath(path);
    if (!this.opts.redirect) return undefined;
    const input = { Bucket: this.opts.bucket, Key: this.key(path) };
    const command = method === 'GET' ? new GetObjectCommand(input) : new HeadObjectCommand(input);
    return getSignedUrl(this.client, command, { expiresIn: this.opts.redirectExpiry });
  }

  async healthCheck(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.opts.bucket }));
    } catch (e) {
      const mapped = mapS3Error('head bucket', this.opts.bucket, e);
      throw mapped instanceof StorageUnavailableError ? mapped : new StorageUnavailableError(mapped.message);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    destroyAgents(this.agents);
  }
}

function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Multi-object delete must carry Content-MD5 on S3 APIs that predate flexible checksums
 * (Swift's s3api, older Ceph and MinIO); AWS accepts it as well.
 */
const contentMd5ForDeletes = (next: (args: any) => Promise<any>, context: { commandName?: string }) => async (args: any) => {
  const req = args.request as { body?: unknown; headers?: Record<string, string> } | undefined;
  if (context.commandName === 'DeleteObjectsCommand' && req?.headers && typeof req.body === 'string') {
    req.headers['content-md5'] = crypto.createHash('md5').update(req.body).digest('base64');
  }
  return next(args);
};
