import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';

/** What a recorded request body turned out to be once the client finished sending it. */
export type RecordedBody = { kind: 'complete'; bytes: Buffer } | { kind: 'too_large' } | { kind: 'aborted' };

/**
 * Passes a request body through unchanged while keeping a copy of its first `limit` bytes, so a
 * captured legacy write is forwarded byte for byte and still readable once legacy has answered.
 */
export class RequestBodyRecorder extends Transform {
  readonly recorded: Promise<RecordedBody>;
  #chunks: Buffer[] = [];
  #size = 0;
  #overflow = false;

  constructor(private readonly limit: number) {
    super();
    this.recorded = new Promise((resolve) => {
      this.once('finish', () =>
        resolve(
          this.#overflow
            ? { kind: 'too_large' }
            : { kind: 'complete', bytes: Buffer.concat(this.#chunks, this.#size) },
        ),
      );
      this.once('close', () => resolve({ kind: 'aborted' }));
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.#overflow) {
      this.#size += chunk.length;
      if (this.#size > this.limit) {
        this.#overflow = true;
        this.#chunks = [];
      } else {
        this.#chunks.push(chunk);
      }
    }
    callback(null, chunk);
  }
}

/** Pipes `source` through a recorder; a client that aborts destroys the recorder (recorded: aborted). */
export function recordBody(source: Readable, limit: number): RequestBodyRecorder {
  const recorder = new RequestBodyRecorder(limit);
  pipeline(source, recorder, () => {
    // Errors reach reply-from through the recorder; the recorded promise already says "aborted".
  });
  return recorder;
}

export type ReadAnswer = { complete: true; bytes: Buffer } | { complete: false; stream: Readable };

/**
 * Reads a legacy answer into memory up to `limit` bytes. A longer answer comes back as a stream
 * that replays what was read and continues with the rest, so it can still pass through untouched.
 */
export async function readAnswer(stream: Readable, limit: number): Promise<ReadAnswer> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return { complete: true, bytes: Buffer.concat(chunks, size) };
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) {
      return { complete: false, stream: Readable.from(replay(chunks, iterator), { objectMode: false }) };
    }
  }
}

async function* replay(chunks: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* chunks;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}
