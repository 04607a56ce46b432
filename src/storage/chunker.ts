/**
 * Cuts a stream of writes into fixed-size chunks for an object store (Swift segments,
 * S3 parts) and uploads them one at a time in the background: while chunk N travels,
 * chunk N+1 fills. write() waits only when both are busy, so memory stays at about two
 * chunks per upload whatever the object size, and the caller feels backpressure.
 */
export class ChunkPipeline {
  private parts: Buffer[] = [];
  private length = 0;
  private inflight: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly chunkSize: number,
    private readonly upload: (chunk: Buffer) => Promise<void>,
  ) {}

  /** Bytes accepted but not yet handed to upload(). */
  get buffered(): number {
    return this.length;
  }

  async write(data: Buffer): Promise<void> {
    this.check();
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(this.chunkSize - this.length, data.length - offset);
      // Copied: callers may reuse their buffer as soon as write() resolves.
      this.parts.push(Buffer.from(data.subarray(offset, offset + take)));
      this.length += take;
      offset += take;
      if (this.length === this.chunkSize) await this.cut();
    }
  }

  /** Waits for the upload in flight and returns what is left over (less than a chunk). */
  async drain(): Promise<Buffer> {
    await this.settle();
    this.check();
    const rest = Buffer.concat(this.parts, this.length);
    this.parts = [];
    this.length = 0;
    return rest;
  }

  /** Waits for the upload in flight, ignoring its outcome (used when cancelling). */
  async settle(): Promise<void> {
    if (this.inflight) await this.inflight;
  }

  private async cut(): Promise<void> {
    const chunk = Buffer.concat(this.parts, this.length);
    this.parts = [];
    this.length = 0;
    await this.settle();
    this.check();
    this.inflight = this.upload(chunk).catch((e: unknown) => {
      this.failure = e;
    });
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
