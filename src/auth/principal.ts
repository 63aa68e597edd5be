import { createHash } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, errors, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { BadGatewayError, GatewayTimeoutError } from '../errors.js';
import { REQUEST_ID_HEADER } from '../observability/request-id.js';

export type Role = 'lab_user' | 'doctor';

/** Who is calling. `labId` and `orgId` only ever come from here, never from a request's query or body. */
export interface Principal {
  readonly labId: number;
  readonly userId: number;
  readonly role: Role;
  /** When set, the caller may only see this organization's patients. */
  readonly orgId: number | null;
  readonly via: 'jwt' | 'session';
}

/** Ids are `int` columns: a larger claim could never match a row and would fail on insert. */
const positiveInt = z.number().int().positive().max(2_147_483_647);

const jwtClaims = z.object({
  lab_id: positiveInt,
  user_id: positiveInt,
  role: z.enum(['lab_user', 'doctor']),
  exp: z.number(),
  org_id: positiveInt.nullish(),
});

const sessionAnswer = z.object({
  lab_id: positiveInt,
  user_id: positiveInt,
  is_doctor: z.boolean().nullish(),
  org_id: positiveInt.nullish(),
});

export interface PrincipalResolverOptions {
  jwtSecret?: string | undefined;
  jwksUrl?: string | undefined;
  /** A local key set instead of a URL, for tests and air-gapped setups. */
  jwks?: Parameters<typeof createLocalJWKSet>[0];
  legacyPy3Url: string;
  legacyTimeoutMs: number;
  sessionCacheTtlMs: number;
  /** When set, a token must name this issuer (`iss`) and audience (`aud`). */
  jwtIssuer?: string | undefined;
  jwtAudience?: string | undefined;
  clockToleranceSeconds?: number;
  /** The most session answers kept (least recently used go first); 10 000 when absent. */
  sessionCacheMaxEntries?: number;
  /** The most verified bearer tokens kept (least recently used go first); 10 000 when absent. */
  tokenCacheMaxEntries?: number;
}

export interface RequestCredentials {
  authorization?: string | undefined;
  cookie?: string | undefined;
  /** Sent to PY-3 with a session check, to follow the request across systems. */
  requestId?: string | undefined;
}

const VERIFIED_TOKEN_TTL_MS = 60_000;
const DEFAULT_CACHE_MAX_ENTRIES = 10_000;

/** lru-cache holds objects, not null: a session PY-3 refused is remembered as `{ principal: null }`. */
type CachedSession = { principal: Principal | null };

/**
 * Resolves the principal of a request: a bearer JWT (HS256 with the shared secret, or RS256/ES256
 * from the JWKS), else the legacy session cookie as PY-3 answers for it. `null` means no principal.
 */
export class PrincipalResolver {
  readonly #secret: Uint8Array | undefined;
  readonly #jwks: JWTVerifyGetKey | undefined;
  /** PY-3's answers per cookie hash for SESSION_CACHE_TTL_MS, bounded (LRU). */
  readonly #sessionCache: LRUCache<string, CachedSession> | undefined;
  readonly #inflight = new Map<string, Promise<Principal | null>>();
  /** Tokens already verified, until their `exp` (at most a minute): a signature check per request is the list's biggest cost. */
  readonly #verifiedTokens: LRUCache<string, { principal: Principal; expiresAtMs: number }>;

  /** The claims every token must carry: `exp` always, `iss` and `aud` when they are configured. */
  #claimRules(): { requiredClaims: string[]; issuer?: string; audience?: string; clockTolerance: number } {
    const { jwtIssuer, jwtAudience, clockToleranceSeconds = 0 } = this.options;
    return {
      requiredClaims: ['exp', ...(jwtIssuer ? ['iss'] : []), ...(jwtAudience ? ['aud'] : [])],
      ...(jwtIssuer ? { issuer: jwtIssuer } : {}),
      ...(jwtAudience ? { audience: jwtAudience } : {}),
      clockTolerance: clockToleranceSeconds,
    };
  }

  constructor(private readonly options: PrincipalResolverOptions) {
    this.#sessionCache =
      options.sessionCacheTtlMs > 0
        ? new LRUCache({
            max: options.sessionCacheMaxEntries ?? DEFAULT_CACHE_MAX_ENTRIES,
            ttl: options.sessionCacheTtlMs,
          })
        : undefined;
    this.#verifiedTokens = new LRUCache({
      max: options.tokenCacheMaxEntries ?? DEFAULT_CACHE_MAX_ENTRIES,
      ttl: VERIFIED_TOKEN_TTL_MS,
    });
    this.#secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : undefined;
    if (options.jwks) {
      this.#jwks = createLocalJWKSet(options.jwks);
    } else if (options.jwksUrl) {
      this.#jwks = keySourceFailuresAsGatewayErrors(createRemoteJWKSet(new URL(options.jwksUrl)));
    }
  }

  /**
   * A bearer token decides on its own: a bad one is no principal, even beside a valid cookie. Any
   * other Authorization scheme (a Basic header added by a proxy) is not ours, so the cookie decides.
   */
  async resolve(credentials: RequestCredentials): Promise<Principal | null> {
    const [scheme, ...rest] = credentials.authorization?.trim().split(/\s+/) ?? [];
    if (scheme?.toLowerCase() === 'bearer') {
      return rest.length === 1 && rest[0] ? this.fromJwt(rest[0]) : null;
    }
    if (credentials.cookie) return this.fromSessionCookie(credentials.cookie, credentials.requestId);
    return null;
  }

  async fromJwt(token: string): Promise<Principal | null> {
    // `exp` is wall-clock time: checked against Date.now(), beside the cache's own (monotonic) TTL.
    const verified = this.#verifiedTokens.get(token);
    if (verified && verified.expiresAtMs > Date.now()) return verified.principal;
    const header = decodeHeader(token);
    if (!header) return null;
    try {
      let payload: unknown;
      if (header.alg === 'HS256' && this.#secret) {
        ({ payload } = await jwtVerify(token, this.#secret, {
          ...this.#claimRules(),
          algorithms: ['HS256'],
        }));
      } else if ((header.alg === 'RS256' || header.alg === 'ES256') && this.#jwks) {
        ({ payload } = await jwtVerify(token, this.#jwks, {
          ...this.#claimRules(),
          algorithms: ['RS256', 'ES256'],
        }));
      } else {
        return null;
      }
      const claims = jwtClaims.safeParse(payload);
      if (!claims.success) return null;
      const principal: Principal = {
        labId: claims.data.lab_id,
        userId: claims.data.user_id,
        role: claims.data.role,
        orgId: claims.data.org_id ?? null,
        via: 'jwt',
      };
      this.#rememberToken(token, principal, claims.data.exp * 1000);
      return principal;
    } catch (error) {
      // The key set could not be fetched: that says nothing about the token, so it is no 401.
      if (error instanceof BadGatewayError || error instanceof GatewayTimeoutError) throw error;
      return null;
    }
  }

  #rememberToken(token: string, principal: Principal, expMs: number): void {
    const ttl = Math.min(expMs - Date.now(), VERIFIED_TOKEN_TTL_MS);
    if (ttl > 0) this.#verifiedTokens.set(token, { principal, expiresAtMs: expMs }, { ttl });
  }

  /** How many entries each cache holds now (for the eviction tests and diagnostics). */
  cacheSizes(): { sessions: number; tokens: number } {
    return { sessions: this.#sessionCache?.size ?? 0, tokens: this.#verifiedTokens.size };
  }

  async fromSessionCookie(cookie: string, requestId?: string): Promise<Principal | null> {
    const key = createHash('sha256').update(cookie).digest('hex');
    const cached = this.#sessionCache?.get(key);
    if (cached) return cached.principal;
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    const lookup = this.#askLegacy(cookie, requestId)
      .then((principal) => {
        this.#remember(key, principal);
        return principal;
      })
      .finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, lookup);
    return lookup;
  }

  #remember(key: string, principal: Principal | null): void {
    this.#sessionCache?.set(key, { principal });
  }

  async #askLegacy(cookie: string, requestId: string | undefined): Promise<Principal | null> {
    let response: Response;
    try {
      response = await fetch(`${this.options.legacyPy3Url}/api-v3/account/session`, {
        headers: {
          cookie,
          accept: 'application/json',
          ...(requestId ? { [REQUEST_ID_HEADER]: requestId } : {}),
        },
        signal: AbortSignal.timeout(this.options.legacyTimeoutMs),
        redirect: 'manual',
      });
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') {
        throw new GatewayTimeoutError('The legacy session check did not answer in time', error);
      }
      throw new BadGatewayError('The legacy session check could not be reached', error);
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new BadGatewayError(`The legacy session check failed (status ${response.status})`);
    }
    const body = sessionAnswer.safeParse(await response.json().catch(() => undefined));
    if (!body.success) throw new BadGatewayError('The legacy session check answered with an unexpected body');
    return {
      labId: body.data.lab_id,
      userId: body.data.user_id,
      role: body.data.is_doctor ? 'doctor' : 'lab_user',
      orgId: body.data.org_id ?? null,
      via: 'session',
    };
  }
}

/**
 * The remote key set, with a failure to fetch it (unreachable, slow, not a key set) turned into a
 * 502/504 instead of looking like a badly signed token. Unknown keys and bad signatures stay as they are.
 */
function keySourceFailuresAsGatewayErrors(getKey: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSTimeout) {
        throw new GatewayTimeoutError('The signing keys (AUTH_JWKS_URL) did not answer in time', error);
      }
      const keySetFailure =
        !(error instanceof errors.JOSEError) ||
        error.code === 'ERR_JOSE_GENERIC' ||
        error instanceof errors.JWKSInvalid;
      if (keySetFailure) {
        throw new BadGatewayError('The signing keys (AUTH_JWKS_URL) could not be fetched', error);
      }
      throw error;
    }
  };
}

function decodeHeader(token: string): { alg?: string } | null {
  const [encoded, payload, signature] = token.split('.');
  if (!encoded || !payload || signature === undefined) return null;
  try {
    const header = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as unknown;
    return header && typeof header === 'object' ? (header as { alg?: string }) : null;
  } catch {
    return null;
  }
}
