import { afterEach, describe, expect, it, vi } from 'vitest';
import { PrincipalResolver } from '../../src/auth/principal.js';
import { mintToken } from '../../src/auth/token.js';

const secret = 'token-cache-test-secret';
const resolver = () =>
  new PrincipalResolver({
    jwtSecret: secret,
    legacyPy3Url: 'http://127.0.0.1:9',
    legacyTimeoutMs: 1_000,
    sessionCacheTtlMs: 0,
  });

afterEach(() => {
  vi.useRealTimers();
});

describe('verified bearer tokens', () => {
  it('are accepted again from the cache, and refused once their exp has passed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    const principals = resolver();
    const token = await mintToken(secret, { labId: 5, userId: 7, expiresInSeconds: 30 });
    expect(await principals.fromJwt(token)).toMatchObject({ labId: 5, userId: 7, role: 'lab_user' });
    vi.setSystemTime(new Date('2026-01-01T00:00:20Z'));
    expect(await principals.fromJwt(token)).toMatchObject({ labId: 5 });
    vi.setSystemTime(new Date('2026-01-01T00:00:31Z'));
    expect(await principals.fromJwt(token)).toBeNull();
  });

  it('never let a token signed with another secret in, even after a good one was cached', async () => {
    const principals = resolver();
    const good = await mintToken(secret, { labId: 5, userId: 7 });
    const forged = await mintToken('another-secret', { labId: 6, userId: 7 });
    expect(await principals.fromJwt(good)).not.toBeNull();
    expect(await principals.fromJwt(forged)).toBeNull();
  });
});
