import { getErrorShape, getTRPCErrorFromUnknown, TRPCError, transformTRPCResponse } from '@trpc/server';
import { type FastifyHandlerOptions, fastifyRequestHandler } from '@trpc/server/adapters/fastify';
import { getHTTPStatusCode } from '@trpc/server/http';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { AppRouter } from '../../routers/app.router.js';
import type { Context } from '../../routers/context.js';
import { AppError } from '../errors.js';

type HandlerOptions = FastifyHandlerOptions<AppRouter, FastifyRequest, FastifyReply>;
type RequestInfo = Parameters<HandlerOptions['createContext']>[0]['info'];
type ProcedureType = 'query' | 'mutation';

export type TrpcHttpOptions = HandlerOptions & {
  /**
   * Serve single queries and mutations without the standard adapter's Fetch Request/Response round
   * trip (the default). Off, every call goes through @trpc/server's own adapter: the equivalence
   * test compares the two.
   */
  fastPath?: boolean;
};

/** What tRPC answers a query or mutation with; the same headers on a success and an error. */
const VARY = 'trpc-accept, accept';
const JSON_TYPE = 'application/json';

/** Procedure paths that need no URL decoding (tRPC decodes the path Fastify already decoded once). */
const PLAIN_PATH = /^[A-Za-z0-9_.$-]+$/;
/** A query string that WHATWG URL parsing would leave as it is: printable ASCII, no fragment. */
const PLAIN_QUERY = /^[\x21-\x22\x24-\x7e]*$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return !!value && !Array.isArray(value) && typeof value === 'object';
}
function isAsyncIterable(value: unknown): boolean {
  return isObject(value) && Symbol.asyncIterator in value;
}
function isPromise(value: unknown): boolean {
  return (
    (isObject(value) || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function' &&
    typeof (value as { catch?: unknown }).catch === 'function'
  );
}
/** tRPC refuses promises and iterables in a non-streaming answer (its `isDataStream`). */
function isDataStream(value: unknown): boolean {
  if (!isObject(value)) return false;
  if (isAsyncIterable(value)) return true;
  const values = Object.values(value);
  return values.some(isPromise) || values.some(isAsyncIterable);
}

function mediaType(contentType: string | undefined): string | undefined {
  return contentType?.toLowerCase().split(';', 1)[0]?.trim();
}

/**
 * The raw `input` of a plain call, as tRPC's JSON handler reads it (`searchParams.get('input')` or
 * the body), or `false` when the request needs the standard adapter: a batch, other query
 * parameters, a query string URL parsing would rewrite.
 */
function rawInputText(request: FastifyRequest, type: ProcedureType): string | undefined | false {
  const url = request.raw.url ?? '';
  const mark = url.indexOf('?');
  const query = mark === -1 ? '' : url.slice(mark + 1);
  if (type === 'mutation') {
    if (query !== '' || typeof request.body !== 'string') return false;
    return request.body === '' ? undefined : request.body;
  }
  if (query === '') return undefined;
  if (!PLAIN_QUERY.test(query)) return false;
  const params = new URLSearchParams(query);
  if (params.size !== 1 || !params.has('input')) return false;
  const text = params.get('input');
  return text === '' || text === null ? undefined : text;
}

/**
 * Whether the standard adapter would read this request as one JSON call and nothing else: no
 * streaming or SSE accept header, a content type its JSON handler takes, a Host header it can turn
 * into a URL.
 */
function isPlainCall(request: FastifyRequest, type: ProcedureType): boolean {
  const { headers } = request;
  if (headers['trpc-accept'] !== undefined || headers.accept?.includes('application/jsonl')) return false;
  const contentType = mediaType(headers['content-type']);
  if (
    type === 'mutation' ? contentType !== JSON_TYPE : contentType !== undefined && contentType !== JSON_TYPE
  )
    return false;
  const host = headers.host;
  return host === undefined || URL.canParse(`http://${host}`);
}

/**
 * Serves the router at the registration prefix (`/trpc/:path`), in place of `fastifyTRPCPlugin`
 * (Fastify hands the body over as text, as there). A single GET query or POST mutation (what the
 * client's links send for one call) takes a fast path that calls the procedure directly and
 * answers through Fastify: the standard adapter builds a Fetch Request (URL, Headers, three
 * AbortSignals) and streams a Fetch Response back for every call, which cost more than the
 * procedure itself on a short query. The fast path answers as the adapter does (status, body,
 * headers, `onError`), except that the body goes out with a content-length instead of chunked;
 * batches, subscriptions, unknown paths, wrong methods and every other case go through
 * @trpc/server's own adapter.
 */
function carriesBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

export function trpcHttp(options: TrpcHttpOptions): FastifyPluginCallback {
  const { fastPath = true, ...handlerOptions } = options;
  const { router, createContext, onError } = handlerOptions;
  const config = router._def._config;
  const procedures = router._def.procedures as Record<string, unknown>;

  type Procedure = ((opts: {
    path: string;
    getRawInput: () => Promise<unknown>;
    ctx: unknown;
    type: ProcedureType;
    signal: AbortSignal;
    batchIndex: number;
  }) => Promise<unknown>) & { _def: { type: string } };

  function plainProcedure(request: FastifyRequest, path: string): Procedure | undefined {
    if (!PLAIN_PATH.test(path)) return undefined;
    const procedure = Object.hasOwn(procedures, path) ? (procedures[path] as Procedure) : undefined;
    const type = procedure?._def.type;
    if (type === 'query' ? request.method !== 'GET' : type !== 'mutation' || request.method !== 'POST')
      return undefined;
    return isPlainCall(request, type as ProcedureType) ? procedure : undefined;
  }

  async function serveFast(
    request: FastifyRequest,
    reply: FastifyReply,
    path: string,
    procedure: Procedure,
    inputText: string | undefined,
  ): Promise<Buffer> {
    const type = procedure._def.type as ProcedureType;
    // tRPC reads the input lazily (an unauthenticated call never parses it) and once.
    let input: unknown;
    let inputRead: Promise<unknown> | undefined;
    const getRawInput = () => {
      inputRead ??= (async () => {
        try {
          input =
            inputText === undefined ? undefined : config.transformer.input.deserialize(JSON.parse(inputText));
          return input;
        } catch (cause) {
          throw new TRPCError({
            code: 'BAD_REQUEST',
            message: cause instanceof Error ? cause.message : 'Invalid input',
            cause,
          });
        }
      })();
      return inputRead;
    };
    const aborter = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableEnded) aborter.abort();
    });
    const info: RequestInfo = {
      accept: null,
      type,
      isBatchCall: false,
      calls: [{ batchIndex: 0, path, procedure: procedure as never, getRawInput, result: () => input }],
      connectionParams: null,
      signal: aborter.signal,
      url: null,
    };

    let ctx: Context | undefined;
    let error: TRPCError | undefined;
    let data: unknown;
    try {
      ctx = await createContext({ req: request, res: reply, info });
    } catch (cause) {
      error = getTRPCErrorFromUnknown(cause);
    }
    let errorPath: string | undefined = path;
    if (!error) {
      try {
        data = await procedure({ path, getRawInput, ctx, type, signal: aborter.signal, batchIndex: 0 });
      } catch (cause) {
        error = getTRPCErrorFromUnknown(cause);
      }
    }
    if (!error && isDataStream(data)) {
      // tRPC raises this outside the call: the error carries neither path nor input.
      error = new TRPCError({
        code: 'UNSUPPORTED_MEDIA_TYPE',
        message: 'Cannot use stream-like response in non-streaming request - use httpBatchStreamLink',
      });
      errorPath = undefined;
    }
    reply.header('vary', VARY).header('content-type', JSON_TYPE);
    // Bytes, returned rather than sent: Fastify adds a charset to a JSON string (tRPC sends none) and
    // a returned payload needs no wait for the response to finish.
    if (!error) return Buffer.from(JSON.stringify(transformTRPCResponse(config, { result: { data } })));
    const errorInput = errorPath === undefined ? undefined : input;
    onError?.({ error, path: errorPath, input: errorInput, ctx, type, req: request });
    const shape = getErrorShape({ config, error, type, path: errorPath, input: errorInput, ctx });
    const answer = { error: shape };
    reply.code(getHTTPStatusCode([answer] as never, [error]));
    return Buffer.from(JSON.stringify(transformTRPCResponse(config, answer as never)));
  }

  return (app, _opts, done) => {
    // As fastifyTRPCPlugin: tRPC parses the JSON itself (and answers its own errors about it).
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, parsed) => {
      parsed(null, body);
    });
    // JSON only, judged before a byte of the body is read: any other body (multipart, form, text)
    // is a 415, so no content type gets past the 1 MiB limit as a stream.
    app.addHook('onRequest', (request, _reply, done) => {
      const contentType = mediaType(request.headers['content-type']);
      if (contentType === JSON_TYPE || !carriesBody(request)) return done();
      done(
        new AppError(
          'UNSUPPORTED_MEDIA_TYPE',
          `/trpc takes application/json bodies only, not ${contentType ?? 'a body without a content type'}`,
        ),
      );
    });

    app.all<{ Params: { path: string } }>('/:path', async (request, reply) => {
      const { path } = request.params;
      const procedure = fastPath ? plainProcedure(request, path) : undefined;
      const inputText = procedure ? rawInputText(request, procedure._def.type as ProcedureType) : false;
      if (procedure && inputText !== false) return serveFast(request, reply, path, procedure, inputText);
      await fastifyRequestHandler({ ...handlerOptions, req: request, res: reply, path });
    });
    done();
  };
}
