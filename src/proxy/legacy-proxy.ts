import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import type { Principal } from '../auth/principal.js';
import { principalOf } from '../auth/request-principal.js';
import { BadGatewayError, GatewayTimeoutError } from '../errors.js';
import { captureRoutes } from './capture-routes.js';
import { flagRoutes } from './flag-routes.js';
import { headersForLegacy, withoutHeaders, withoutHopByHop } from './forwarding.js';
import { withFlag, withItemFlags, withScannedItemFlags } from './json-flags.js';
import { isPlainObject, type LegacyAugmentation } from './legacy-augmentation.js';
import { LegacySlots } from './legacy-slots.js';
import { proxyUntouchedAnswers, proxyUpstreamFailures, type UntouchedReason } from './proxy-metrics.js';
import { BufferBudget, type RequestBodyRecorder, readAnswer, recordBody } from './proxy-streams.js';

/** A captured write's body is kept for the engine up to this size; larger ones are only forwarded. */
const CAPTURE_BODY_LIMIT_BYTES = 1024 * 1024;

const AUGMENTATIONS: readonly LegacyAugmentation[] = [...captureRoutes, ...flagRoutes];

/**
 * Dropped upstream where the answer is rewritten: a compressed, partial or 304 answer could not be
 * read, and the client would keep a stale `has_missing_fields`.
 */
const PREVENTS_REWRITE = ['accept-encoding', 'range', 'if-range', 'if-none-match', 'if-modified-since'];

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'FST_REPLY_FROM_TIMEOUT',
  'FST_REPLY_FROM_GATEWAY_TIMEOUT',
]);

type FastifyReplyFromHooks = NonNullable<FastifyHttpProxyOptions['replyOptions']>;

/**
 * The compatibility proxy (contract: "Proxied legacy paths"): every request no route of the
 * service claims goes to legacy PY-3 unchanged and is sent once. The two legacy writes are
 * captured and four reads are flagged on the way back. Register it last.
 */
export const legacyProxy =
  (deps: AppDeps): FastifyPluginAsync =>
  async (app) => {
    const { legacyTimeoutMs: timeoutMs, legacyMaxConnections } = deps.config;
    const trusted = new Set(deps.config.trustedProxies);
    const slots = new LegacySlots(legacyMaxConnections);
    const budget = new BufferBudget(deps.config.legacyBufferBudgetBytes);
    await app.register(httpProxy, {
      upstream: deps.config.legacyPy3Url,
      undici: {
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        connectTimeout: timeoutMs,
        // As many as there are slots: a request never waits in undici's queue, only for a slot.
        connections: legacyMaxConnections,
      },
      destroyAgent: true,
      disableRequestLogging: true,
      internalRewriteLocationHeader: false,
      replyOptions: {
        // reply-from retries a GET that got a 503 by default; legacy's 503 must reach the client.
        retryDelay: () => null,
        rewriteRequestHeaders: (request, headers) => headersForLegacy(request, headers, trusted),
        rewriteHeaders: (headers) => withoutHopByHop(headers),
        onError: (reply, { error }) => {
          failUpstream(reply, error);
        },
      },
      handler: async (request, reply, dest, options) => {
        if (!(await takeSlot(slots, request, reply, timeoutMs))) return reply;
        const route = AUGMENTATIONS.find((r) => r.method === request.method && r.path.test(dest));
        if (!route) return reply.from(dest, options);
        const params = route.path.exec(dest)?.slice(1) ?? [];
        return proxyAugmented({ deps, route, params, request, reply, budget }, dest, options);
      },
    });
  };

interface LegacyResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  stream: Readable;
}

/** The part of a reply the failure path needs (reply-from hands out replies of any raw server type). */
interface RelayReply {
  readonly request: { readonly log: FastifyRequest['log'] };
  send(payload: unknown): unknown;
}

interface Exchange {
  deps: AppDeps;
  route: LegacyAugmentation;
  params: readonly string[];
  request: FastifyRequest;
  reply: FastifyReply;
  budget: BufferBudget;
}

/**
 * Waits for a PY-3 connection slot, at most LEGACY_TIMEOUT_MS; the slot goes back when the answer
 * is done. False means the client already has its 504 (or is gone) and nothing was sent to legacy.
 */
async function takeSlot(
  slots: LegacySlots,
  request: FastifyRequest,
  reply: FastifyReply,
  waitMs: number,
): Promise<boolean> {
  const gone = new AbortController();
  const onClose = () => gone.abort();
  reply.raw.once('close', onClose);
  const granted = await slots.take(waitMs, gone.signal);
  reply.raw.off('close', onClose);
  if (!granted) {
    if (!gone.signal.aborted) {
      proxyUpstreamFailures.inc({ kind: 'gateway_timeout' });
      request.log.warn({ waiting: slots.waiting }, 'no PY-3 connection became free in time');
      reply.send(new GatewayTimeoutError('No connection to legacy PY-3 became free in time'));
    }
    return false;
  }
  reply.raw.once('close', () => slots.give());
  return true;
}

function proxyAugmented(exchange: Exchange, dest: string, options: FastifyReplyFromHooks): FastifyReply {
  const { deps, route, request, reply } = exchange;
  // Resolve the caller while legacy works; failures are handled when the answer is in.
  principalOf(deps, request).catch(() => undefined);
  let recorder: RequestBodyRecorder | undefined;
  if (route.readsRequestBody && request.body instanceof Readable) {
    recorder = recordBody(request.body, CAPTURE_BODY_LIMIT_BYTES);
    request.body = recorder;
  }
  const forward = options.rewriteRequestHeaders;
  return reply.from(dest, {
    ...options,
    rewriteRequestHeaders: (req, headers) =>
      withoutHeaders(forward ? forward(req, headers) : headers, PREVENTS_REWRITE),
    onResponse: (_request, _reply, res) => {
      // reply-from's types call this a ServerResponse; it hands over the upstream status, headers and body.
      const upstream = res as unknown as LegacyResponse;
      answerAugmented(exchange, upstream, recorder).catch((error: unknown) => {
        request.log.error(
          { err: error, path: route.name },
          'answering a captured or flagged legacy path failed',
        );
        if (!reply.sent) reply.send(new BadGatewayError('The legacy answer could not be relayed'));
      });
    },
  });
}

async function answerAugmented(
  exchange: Exchange,
  { statusCode: status, headers, stream }: LegacyResponse,
  recorder: RequestBodyRecorder | undefined,
): Promise<void> {
  const { deps, route, request, reply, budget } = exchange;
  if (status < 200 || status >= 300 || !isUncompressedJson(headers)) {
    reply.send(stream);
    return;
  }
  let read: Awaited<ReturnType<typeof readAnswer>>;
  try {
    read = await readAnswer(stream, deps.config.legacyAnswerMaxBytes, budget);
  } catch (error) {
    failUpstream(reply, error);
    return;
  }
  const passThrough = (reason?: UntouchedReason, error?: unknown) => {
    if (reason) {
      proxyUntouchedAnswers.inc({ path: route.name, reason });
      request.log.warn(
        { path: route.name, reason, ...(error ? { err: error } : {}) },
        'legacy answer passed through without capture or flag',
      );
    }
    reply.send(read.complete ? read.bytes : read.stream);
  };
  if (!read.complete) return passThrough(read.reason);
  const held = read.bytes.length;
  reply.raw.once('close', () => budget.give(held));

  const text = read.bytes.toString('utf8');
  // The caller comes first: only an answer to be augmented needs reading. An answer that is not
  // JSON is still counted as such before any other reason.
  let principal: Principal | null;
  try {
    principal = await principalOf(deps, request);
  } catch (error) {
    // Legacy has already applied the write; the client gets its answer, only the capture is lost.
    return passThrough(isJson(text) ? 'session_check_failed' : 'not_json', error);
  }
  if (!principal) return passThrough(isJson(text) ? 'no_principal' : 'not_json');

  // A route that can work from the text skips JSON.parse unless its scanner is unsure.
  const scanned = route.fromText?.scan(text);
  let answer: unknown;
  if (scanned === undefined) {
    try {
      answer = JSON.parse(text);
    } catch {
      return passThrough('not_json');
    }
  }

  let requestBody: Record<string, unknown> | undefined;
  if (route.readsRequestBody) {
    const body = await requestBodyOf(recorder);
    if (body === 'too_large') return passThrough('request_body_too_large');
    if (!body) return passThrough('unreadable_request_body');
    requestBody = body;
  }

  const input = { deps, principal, params: exchange.params, requestBody, log: request.log };
  try {
    let flagged: Buffer | string;
    if (scanned !== undefined && route.fromText) {
      const outcome = await route.fromText.augment({ ...input, list: scanned });
      if (outcome.kind === 'untouched') return passThrough(outcome.reason);
      flagged = withScannedItemFlags(read.bytes, text, scanned, outcome.flags);
    } else {
      const outcome = await route.augment({ ...input, answer });
      if (outcome.kind === 'untouched') return passThrough(outcome.reason);
      if (!isPlainObject(answer)) return passThrough('unexpected_answer');
      flagged =
        outcome.kind === 'flag'
          ? withFlag(text, answer, outcome.hasMissingFields)
          : withItemFlags(text, answer, outcome.key, outcome.flags);
    }
    reply.removeHeader('content-length');
    reply.send(flagged);
  } catch (error) {
    passThrough('failed', error);
  }
}

/** Whether a skipped answer is JSON, for its untouched reason (JSON.parse is the cheapest check). */
function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

async function requestBodyOf(
  recorder: RequestBodyRecorder | undefined,
): Promise<Record<string, unknown> | 'too_large' | undefined> {
  if (!recorder) return undefined;
  const recorded = await recorder.recorded;
  if (recorded.kind === 'too_large') return 'too_large';
  if (recorded.kind !== 'complete') return undefined;
  try {
    const body: unknown = JSON.parse(recorded.bytes.toString('utf8'));
    return isPlainObject(body) ? body : undefined;
  } catch {
    return undefined;
  }
}

function isUncompressedJson(headers: IncomingHttpHeaders): boolean {
  const type = String(headers['content-type'] ?? '');
  const encoding = String(headers['content-encoding'] ?? 'identity').toLowerCase();
  return /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type) && encoding === 'identity';
}

/** Legacy refused, reset or timed out: a 502 or 504 with the contract's body, no internal address. */
function failUpstream(reply: RelayReply, error: unknown): void {
  const failure = isTimeout(error)
    ? new GatewayTimeoutError(undefined, error)
    : new BadGatewayError(undefined, error);
  proxyUpstreamFailures.inc({ kind: failure.code === 'GATEWAY_TIMEOUT' ? 'gateway_timeout' : 'bad_gateway' });
  reply.request.log.warn({ err: error }, 'legacy PY-3 did not answer');
  reply.send(failure);
}

function isTimeout(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const { code, statusCode } = current as { code?: unknown; statusCode?: unknown };
    if (statusCode === 504 || (typeof code === 'string' && TIMEOUT_CODES.has(code))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
