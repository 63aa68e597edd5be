import type { FastifyBaseLogger } from 'fastify';
import type { AppDeps } from '../src/app-deps.js';
import type { Principal } from '../src/auth/principal.js';

export interface Context {
  readonly deps: AppDeps;
  readonly log: FastifyBaseLogger;
  /** Resolved once per request, on first use; rejects with a typed error when legacy cannot answer. */
  readonly principal: () => Promise<Principal | null>;
}

export interface InnerContextOptions {
  deps: AppDeps;
  log?: FastifyBaseLogger;
  principal: Principal | null | (() => Promise<Principal | null>);
}

/** Builds a context without HTTP: for tests, scripts and the Fastify adapter alike. */
export function createContextInner({ deps, log, principal }: InnerContextOptions): Context {
  let memo: Promise<Principal | null> | undefined;
  const resolve = typeof principal === 'function' ? principal : () => Promise.resolve(principal);
  return {
    deps,
    log: log ?? deps.logger,
    principal: () => {
      memo ??= resolve();
      return memo;
    },
  };
}
