import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { PrincipalResolver } from '../../src/auth/principal.js';
import { mintToken } from '../../src/auth/token.js';

/** The session and verified-token caches are bounded (least recently used go first) and expire. */

const secret = 'cache-bounds-test-secret';
let simulator: LegacySimulator;

beforeAll(async () => {
  simulator = await startLegacySimulator();
  for (const id of [1, 2, 3]) {
    simulator.state.sessions.set(`cache-${id}`, { lab_id: id, user_id: 7, is_doctor: false, org_id: null });
  }
});
afterAll(async () => {
  await simulator.close();
});
beforeEach(() => {
  simulator.state.py3Requests.length = 0;
});

const resolver = (options: { ttlMs: number; sessions?: number; tokens?: number }) =>
  new PrincipalResolver({
    jwtSecret: secret,
    legacyPy3Url: simulator.py3Url,
    legacyTimeoutMs: 2_000,
    sessionCacheTtlMs: options.ttlMs,
    ...(options.sessions ? { sessionCacheMaxEntries: options.sessions } : {}),
    ...(options.tokens ? { tokenCacheMaxEntries: options.tokens } : {}),
  });

const sessionChecks = () =>
  simulator.state.py3Requests.filter((r) => r.url.includes('/account/session')).length;

describe('the session cache', () => {
  it('holds at most SESSION_CACHE_MAX_ENTRIES sessions: the least recently used is asked of PY-3 again', async () => {
    const principals = resolver({ ttlMs: 60_000, sessions: 2 });
    await principals.fromSessionCookie('sessionid=cache-1');
    await principals.fromSessionCookie('sessionid=cache-2');
    await principals.fromSessionCookie('sessionid=cache-1');
    expect(sessionChecks()).toBe(2);
    await principals.fromSessionCookie('sessionid=cache-3'); // evicts cache-2, the least recently used
    expect(principals.cacheSizes().sessions).toBe(2);
    expect(await principals.fromSessionCookie('sessionid=cache-1')).toMatchObject({ labId: 1 });
    expect(sessionChecks()).toBe(3);
    expect(await principals.fromSessionCookie('sessionid=cache-2')).toMatchObject({ labId: 2 });
    expect(sessionChecks()).toBe(4);
  });

  it('forgets a session after SESSION_CACHE_TTL_MS', async () => {
    const principals = resolver({ ttlMs: 50 });
    await principals.fromSessionCookie('sessionid=cache-1');
    await principals.fromSessionCookie('sessionid=cache-1');
    expect(sessionChecks()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 120));
    await principals.fromSessionCookie('sessionid=cache-1');
    expect(sessionChecks()).toBe(2);
  });
});

describe('the verified-token cache', () => {
  it('holds at most TOKEN_CACHE_MAX_ENTRIES tokens, and evicted ones still verify', async () => {
    const principals = resolver({ ttlMs: 0, tokens: 2 });
    const tokens = await Promise.all([1, 2, 3].map((labId) => mintToken(secret, { labId, userId: 7 })));
    for (const token of tokens) await principals.fromJwt(token);
    expect(principals.cacheSizes().tokens).toBe(2);
    expect(await principals.fromJwt(tokens[0] as string)).toMatchObject({ labId: 1 });
  });
});
