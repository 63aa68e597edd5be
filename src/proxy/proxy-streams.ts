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

export type ReadAnswer =
  | { complete: true; bytes: Buffer }
  | { complete: false; reason: 'answer_too_large' | 'buffer_budget'; stream: Readable };

/**
 * Memory for buffered legacy answers, shared by every request of the process: an answer is only
 * held for flagging while its bytes fit in what is left.
 */
export class BufferBudget {
  #left: number;

  constructor(readonly totalBytes: number) {
    this.#left = totalBytes;
  }

  take(bytes: number): boolean {
    if (bytes > this.#left) return false;
    this.#left -= bytes;
    return true;
  }

  give(bytes: number): void {
    this.#left = Math.min(this.totalBytes, this.#left + bytes);
  }
}

/**
 * Reads a legacy answer into memory up to `limit` bytes, taking each chunk from `budget`. A longer
 * answer, or one the budget cannot hold, comes back as a stream that replays what was read and
 * continues with the rest, so it can still pass through untouched. A complete answer keeps its
 * bytes taken from the budget: the caller gives them back once the answer is sent.
 */
export async function readAnswer(stream: Readable, limit: number, budget: BufferBudget): Promise<ReadAnswer> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return { complete: true, bytes: Buffer.concat(chunks, size) };
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    chunks.push(chunk);
    const reason =
      size + chunk.length > limit
        ? 'answer_too_large'
        : budget.take(chunk.length)
          ? undefined
          : 'buffer_budget';
    if (reason) {
      budget.give(size);
      return {
        complete: false,
        reason,
        stream: Readable.from(replay(chunks, iterator), { objectMode: false }),
      };
    }
    size += chunk.length;
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
