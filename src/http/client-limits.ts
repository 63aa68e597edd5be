import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppConfig } from '../config.js';
import { AppError } from '../errors.js';
import { frontDoorRejections } from '../observability/http-metrics.js';

/** Node's http server settings from the front-door timeouts (Fastify's `http` and top-level options). */
export function serverTimeouts(http: AppConfig['http']) {
  return {
    requestTimeout: http.requestTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    http: {
      headersTimeout: http.headersTimeoutMs,
      requestTimeout: http.requestTimeoutMs,
      keepAliveTimeout: http.keepAliveTimeoutMs,
      // Node checks the header and request timers on this beat (30 s by default, far coarser than them).
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(http.headersTimeoutMs / 4))),
    },
  };
}

function carriesBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

const bodyWatched = new WeakSet<Socket>();

/**
 * Arms a socket-idle timer while a request body is coming in: a client that stops sending its body
 * loses the connection after `bodyIdleTimeoutMs` of silence. The timer is off again once the body
 * is in, so a slow legacy answer is bounded by LEGACY_TIMEOUT_MS, not by this.
 */
function watchBody(request: FastifyRequest, bodyIdleTimeoutMs: number): void {
  const socket = request.raw.socket;
  if (!bodyWatched.has(socket)) {
    bodyWatched.add(socket);
    socket.on('timeout', () => socket.destroy());
  }
  socket.setTimeout(bodyIdleTimeoutMs);
  // Only a body that arrived whole turns it off: one answered early (a 401) but never finished
  // still holds the connection, and is cut like any other.
  request.raw.once('end', () => socket.setTimeout(0));
}

/**
 * The front door's bounds per client: at most `clientMaxOpenRequests` requests open at once from one
 * address (the next gets a 429 and its connection is closed), and a body-idle timeout on every body.
 * Registered first, so the bound holds before any parsing, principal or database work.
 */
export function installClientLimits(app: FastifyInstance, http: AppConfig['http']): void {
  const open = new Map<string, number>();
  const retryAfter = '1';
  app.addHook('onRequest', (request, reply, done) => {
    // app.inject's stand-in socket is no client: nothing to bound or time out.
    if (typeof request.raw.socket?.setTimeout !== 'function') return done();
    // The client's address; behind a trusted edge (TRUST_PROXY) the one it forwarded.
    const address = request.ip ?? 'unknown';
    const count = (open.get(address) ?? 0) + 1;
    if (count > http.clientMaxOpenRequests) {
      frontDoorRejections.inc({ reason: 'client_open_requests' });
      reply.header('connection', 'close');
      return done(
        new AppError(
          'TOO_MANY_REQUESTS',
          `Too many open requests from one client (at most ${http.clientMaxOpenRequests}); retry in ${retryAfter} s`,
          { headers: { 'retry-after': retryAfter } },
        ),
      );
    }
    open.set(address, count);
    reply.raw.once('close', () => release(open, address));
    if (carriesBody(request)) watchBody(request, http.bodyIdleTimeoutMs);
    done();
  });
  // An answer given before the body arrived whole (a 401, a 413) ends the connection: Node would
  // otherwise keep it alive, waiting on the rest of a body nobody reads.
  app.addHook('onSend', (request, reply, payload, done) => {
    const realClient = typeof request.raw.socket?.setTimeout === 'function';
    if (realClient && carriesBody(request) && !request.raw.complete) reply.header('connection', 'close');
    done(null, payload);
  });
}

function release(open: Map<string, number>, address: string): void {
  const left = (open.get(address) ?? 1) - 1;
  if (left <= 0) open.delete(address);
  else open.set(address, left);
}
