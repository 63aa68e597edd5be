import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER } from '../observability/request-id.js';

/** Headers about one connection, never about the request (RFC 9110 §7.6.1): not forwarded either way. */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
];

/** The hop-by-hop names of these headers: the fixed ones and whatever `Connection` lists. */
function hopByHopOf(headers: IncomingHttpHeaders): string[] {
  const listed = String(headers.connection ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  return [...HOP_BY_HOP, ...listed];
}

export function withoutHeaders<H extends object>(headers: H, names: readonly string[]): H {
  const copy = { ...headers };
  for (const name of names) delete (copy as Record<string, unknown>)[name];
  return copy;
}

export function withoutHopByHop<H extends IncomingHttpHeaders>(headers: H): H {
  return withoutHeaders(headers, hopByHopOf(headers));
}

/**
 * The headers legacy gets: no hop-by-hop ones, the request id, and `X-Forwarded-For/-Proto/-Host`.
 * What a trusted edge (TRUST_PROXY) already wrote is kept and appended to; from anyone else those
 * headers are replaced, so a client cannot pass itself off as another address.
 */
export function headersForLegacy(
  request: Pick<FastifyRequest, 'id'> & { raw: { socket: { remoteAddress?: string | undefined } } },
  headers: IncomingHttpHeaders,
  trustedProxies: ReadonlySet<string>,
): IncomingHttpHeaders {
  const peer = request.raw.socket.remoteAddress ?? '';
  const trusted = trustedProxies.has(peer);
  const forwardedFor =
    trusted && headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${peer}` : peer;
  const encrypted = (request.raw.socket as { encrypted?: unknown }).encrypted === true;
  return {
    ...withoutHopByHop(headers),
    [REQUEST_ID_HEADER]: request.id,
    'x-forwarded-for': forwardedFor,
    'x-forwarded-proto': (trusted && headers['x-forwarded-proto']) || (encrypted ? 'https' : 'http'),
    'x-forwarded-host': (trusted && headers['x-forwarded-host']) || headers.host || '',
  };
}
