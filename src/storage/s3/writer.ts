import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ChunkPipeline } from '../chunker.js';
import { StorageError, type FileWriter } from '../driver.js';
import { isNotFound, mapS3Error } from './errors.js';

/** S3 refuses multipart parts below this size, except the last one. */
export const MIN_PART = 5 * 1024 * 1024;

export interface Part {
  PartNumber: number;
  ETag: string;
  Size: number;
}

/**
 * What a closed writer left in the store, kept in one small "upload state" object next
 * to the data: the multipart upload id, how many of its parts count, and as its body the
 * tail that was too small to be a part. Any process can resume from it.
 */
export interface UploadState {
  uploadId: string | undefined;
  parts: Part[];
  tail: Buffer;
}

export interface S3WriterContext {
  client: S3Client;
  bucket: string;
  chunkSize: number;
}

export const STATE_META = { uploadId: 'keyport-upload-id', parts: 'keyport-parts', size: 'keyport-size' } as const;

/**
 * Streams an object into S3 as a multipart upload: parts of chunkSize bytes are uploaded
 * while data arrives. close() saves the upload state so another writer (in any process)
 * can append; commit() completes the upload, or for small objects makes one plain PUT.
 */
export class S3Writer implements FileWriter {
  private readonly pipeline: ChunkPipeline;
  private uploadId: string | undefined;
  private readonly parts: Part[];
  private written: number;
  private finished = false;
  private ready: Promise<void>;

  constructor(
    private readonly ctx: S3WriterContext,
    private readonly key: string,
    private readonly stateKey: string,
    state: UploadState,
  ) {
    this.uploadId = state.uploadId;
    this.parts = [...state.parts];
    this.written = this.parts.reduce((n, p) => n + p.Size, 0) + state.tail.length;
    this.pipeline = new ChunkPipeline(ctx.chunkSize, (chunk) => this.uploadPart(chunk));
    // The saved tail is always smaller than a part: it only refills the buffer.
    this.ready = this.pipeline.write(state.tail);
  }

  get size(): number {
    return this.written;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.finished) throw new StorageError('writer already closed');
    await this.ready;
    await this.pipeline.write(chunk);
    this.written += chunk.length;
  }

  async close(): Promise<void> {
    this.end();
    await this.ready;
    let rest = await this.pipeline.drain();
    if (rest.length >= MIN_PART) {
      await this.uploadPart(rest);
      rest = Buffer.alloc(0);
    }
    const { client, bucket } = this.ctx;
    try {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: this.stateKey,
          Body: rest,
          ContentLength: rest.length,
          Metadata: {
            [STATE_META.uploadId]: this.uploadId ?? '',
            [STATE_META.parts]: String(this.parts.length),
            [STATE_META.size]: String(this.written),
          },
        }),
      );
    } catch (e) {
      throw mapS3Error('save upload state', this.key, e);
    }
  }

  async commit(): Promise<void> {
    this.end();
    await this.ready;
    const rest = await this.pipeline.drain();
    const { client, bucket } = this.ctx;
    try {
      if (!this.uploadId) {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: this.key, Body: rest, ContentLength: rest.length }));
      } else {
        if (rest.length > 0 || this.parts.length === 0) await this.uploadPart(rest);
        await client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: this.key,
            UploadId: this.uploadId,
            MultipartUpload: { Parts: this.parts.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag })) },
          }),
        );
      }
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.stateKey }));
    } catch (e) {
      throw mapS3Error('commit', this.key, e);
    }
  }

  async cancel(): Promise<void> {
    this.finished = true;
    await this.ready.catch(() => undefined);
    await this.pipeline.settle();
    await abortUpload(this.ctx, this.key, this.uploadId);
    const { client, bucket } = this.ctx;
    try {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.stateKey }));
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.key }));
    } catch (e) {
      throw mapS3Error('cancel', this.key, e);
    }
  }

  private end(): void {
    if (this.finished) throw new StorageError('writer already closed');
    this.finished = true;
  }

  private async uploadPart(chunk: Buffer): Promise<void> {
    const { client, bucket } = this.ctx;
    const number = this.parts.length + 1;
    try {
      if (!this.uploadId) {
        const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: this.key }));
        if (!created.UploadId) throw new StorageError('s3 returned no upload id');
        this.uploadId = created.UploadId;
      }
      const res = await client.send(
        new UploadPartCommand({ Bucket: bucket, Key: this.key, UploadId: this.uploadId, PartNumber: number, Body: chunk, ContentLength: chunk.length }),
      );
      if (!res.ETag) throw new StorageError(`s3 returned no ETag for part ${number}`);
      this.parts.push({ PartNumber: number, ETag: res.ETag, Size: chunk.length });
    } catch (e) {
      throw mapS3Error('upload part', this.key, e);
    }
  }
}

/** Aborts a multipart upload; one that is already gone is fine. */
export async function abortUpload(ctx: S3WriterContext, key: string, uploadId: string | undefined): Promise<void> {
  if (!uploadId) return;
  try {
    await ctx.client.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId }));
  } catch (e) {
    if (!isNotFound(e)) throw mapS3Error('abort upload', key, e);
  }
}
