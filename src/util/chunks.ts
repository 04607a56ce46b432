import type { Readable } from 'node:stream';

/**
 * The chunks of a stream, for `for await`. Unlike the stream's own iterator, leaving the
 * loop early (an error while storing a chunk, a size limit) does not destroy the
 * stream. For a server request, destroying it destroys the connection before the error
 * can be answered, and Node then sets `req.socket` to null under every listener that
 * still reads it. The caller decides what becomes of the rest: the HTTP layer discards
 * it once the answer is sent (see src/http/app.ts).
 */
export function chunksOf(stream: Readable): AsyncIterable<Buffer> {
  return stream.iterator({ destroyOnReturn: false });
}
