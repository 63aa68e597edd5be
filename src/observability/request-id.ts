import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The header that carries the request id, both ways. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** A request id the caller may choose (the nginx edge applies the same rule). */
export const CALLER_REQUEST_ID = /^[\w.-]{1,128}$/;

/** The caller's request id when it is a sane token (to follow a request across systems), else a new one. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && CALLER_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}
