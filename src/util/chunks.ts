import type { Readable } from 'node:stream';

/** Bytes taken from each stream through chunksOf, for the access log's bytesIn. */
const consumed = new WeakMap<Readable, number>();

/**
 * The chunks of a stream, for `for await`. Unlike the stream's own iterator, leaving the
 * loop early (an error while storing a chunk, a size limit) does not destroy the
 * stream. For a server request, destroying it destroys the connection before the error
 * can be answered, and Node then sets `req.socket` to null under every listener that
 * still reads it. The caller decides what becomes of the rest: the HTTP layer discards
 * it once the answer is sent (see src/http/app.ts).
 */
export async function* chunksOf(stream: Readable): AsyncIterable<Buffer> {
  for await (const chunk of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    consumed.set(stream, (consumed.get(stream) ?? 0) + chunk.length);
    yield chunk;
  }
}

/** How many bytes of `stream` were read through chunksOf; undefined when none were. */
export function bytesConsumed(stream: Readable): number | undefined {
  return consumed.get(stream);
}
