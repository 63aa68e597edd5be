import type { FastifyRequest } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { UnauthorizedError } from '../errors.js';
import type { Principal } from './principal.js';

const memo = new WeakMap<FastifyRequest, Promise<Principal | null>>();

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join('; ') : value;
}

/** The request's principal, resolved at most once per request; `null` when there is none. */
export function principalOf(deps: AppDeps, request: FastifyRequest): Promise<Principal | null> {
  let pending = memo.get(request);
  if (!pending) {
    pending = deps.principals.resolve({
      authorization: headerValue(request.headers.authorization),
      cookie: headerValue(request.headers.cookie),
      requestId: request.id,
    });
    memo.set(request, pending);
  }
  return pending;
}

/** The request's principal, or a 401. */
export async function requirePrincipal(deps: AppDeps, request: FastifyRequest): Promise<Principal> {
  const principal = await principalOf(deps, request);
  if (!principal) throw new UnauthorizedError();
  return principal;
}
