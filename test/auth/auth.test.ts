import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { DEVELOPMENT_JWT_SECRET } from '../../src/config.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

const TEMPLATES = '/api-v3/registration/patients/missing-details-templates';
const TRPC_TEMPLATES = '/trpc/templates.list';
const CONFIGS = '/api-v3/registration/patients/lab-missing-details-config';

type Headers = Record<string, string>;

/** The status of the same call on the REST shim and on tRPC. */
async function statuses(app: FastifyInstance, headers: Headers): Promise<[number, number]> {
  const rest = await app.inject({ url: TEMPLATES, headers });
  const trpc = await app.inject({ url: TRPC_TEMPLATES, headers });
  return [rest.statusCode, trpc.statusCode];
}

const now = () => Math.floor(Date.now() / 1000);

function validClaims(labId = newLabId()): JWTPayload {
  return { lab_id: labId, user_id: 7, role: 'lab_user', exp: now() + 600 };
}

/** Signs any claims, also ill-typed ones: the service must refuse those itself. */
async function hs256(claims: Record<string, unknown>, secret = DEVELOPMENT_JWT_SECRET): Promise<string> {
  return new SignJWT(claims as JWTPayload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(secret));
}

const bearer = (token: string): Headers => ({ authorization: `Bearer ${token}` });

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

let simulator: LegacySimulator;
let t: TestApp;

beforeAll(async () => {
  simulator = await startLegacySimulator();
  t = await startTestApp({ LEGACY_PY3_URL: simulator.py3Url, LEGACY_PY2_URL: simulator.py2Url });
});

afterAll(async () => {
  await t?.close();
  if (simulator) {
    // close() waits for connections that never sent a request, and undici opens some ahead of use.
    simulator.py3.server.closeAllConnections();
    simulator.py2.server.closeAllConnections();
    await simulator.close();
  }
});

describe('bearer tokens signed with the shared secret (HS256)', () => {
  it('accept a valid token on the REST shim and on tRPC', async () => {
    expect(await statuses(t.app, bearer(await hs256(validClaims())))).toEqual([200, 200]);
  });

  it('carry lab, user, role and organization into the principal', async () => {
    const labId = newLabId();
    const token = await hs256({ ...validClaims(labId), role: 'doctor', user_id: 12, org_id: 9 });
    expect(await t.app.deps.principals.resolve({ authorization: `Bearer ${token}` })).toEqual({
      labId,
      userId: 12,
      role: 'doctor',
      orgId: 9,
      via: 'jwt',
    });
  });

  it('refuse an expired token with 401 and the error envelope', async () => {
    const token = await hs256({ ...validClaims(), exp: now() - 5 });
    expect(await statuses(t.app, bearer(token))).toEqual([401, 401]);
    const rest = await t.app.inject({ url: TEMPLATES, headers: bearer(token) });
    expect(rest.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
    const trpc = await t.app.inject({ url: TRPC_TEMPLATES, headers: bearer(token) });
    expect(trpc.json().error.data.code).toBe('UNAUTHORIZED');
  });

  it.each(['lab_id', 'user_id', 'role', 'exp'])('refuse a token without the %s claim', async (claim) => {
    const claims = validClaims();
    delete claims[claim];
    expect(await statuses(t.app, bearer(await hs256(claims)))).toEqual([401, 401]);
  });

  it.each<[string, Record<string, unknown>]>([
    ['a role outside lab_user and doctor', { role: 'admin' }],
    ['a lab_id given as a string', { lab_id: '12' }],
    ['a fractional lab_id', { lab_id: 1.5 }],
    ['a zero lab_id', { lab_id: 0 }],
    ['a negative user_id', { user_id: -7 }],
    ['a lab_id beyond the int column', { lab_id: 2 ** 31 }],
    ['an org_id that is not an integer', { org_id: 'City Clinic' }],
    ['an exp that is not a number', { exp: 'tomorrow' }],
  ])('refuse a token with %s', async (_what, override) => {
    expect(await statuses(t.app, bearer(await hs256({ ...validClaims(), ...override })))).toEqual([401, 401]);
  });

  it('refuse an unsigned token (alg none)', async () => {
    const payload = base64url(validClaims());
    for (const token of [
      `${base64url({ alg: 'none', typ: 'JWT' })}.${payload}.`,
      `${base64url({ alg: 'none' })}.${payload}.c2lnbmF0dXJl`,
      `${base64url({ alg: 'NONE' })}.${payload}.`,
    ]) {
      expect(await statuses(t.app, bearer(token))).toEqual([401, 401]);
    }
  });

  it('refuse a token signed with another secret', async () => {
    const token = await hs256(validClaims(), 'someone-elses-secret-of-a-decent-length!');
    expect(await statuses(t.app, bearer(token))).toEqual([401, 401]);
  });

  it('refuse a token whose payload was changed after signing', async () => {
    const [header, , signature] = (await hs256(validClaims())).split('.');
    const forged = `${header}.${base64url({ ...validClaims(), role: 'doctor' })}.${signature}`;
    expect(await statuses(t.app, bearer(forged))).toEqual([401, 401]);
  });

  it.each([
    ['an empty bearer', 'Bearer'],
    ['a bearer with spaces only', 'Bearer    '],
    ['one segment', 'Bearer abc'],
    ['three garbage segments', 'Bearer a.b.c'],
    ['empty segments', 'Bearer ..'],
    ['a header that is not JSON', `Bearer ${Buffer.from('{alg').toString('base64url')}.e30.sig`],
    ['a header that is JSON null', `Bearer ${base64url(null)}.e30.sig`],
    ['a header that is an array', `Bearer ${base64url(['HS256'])}.e30.sig`],
    ['characters outside base64url', 'Bearer %%%.$$$.!!!'],
    ['two tokens', 'Bearer a.b.c d.e.f'],
    ['a very long token', `Bearer ${'a'.repeat(6000)}.${'b'.repeat(6000)}.c`],
  ])('answer 401, never 500, for a malformed token: %s', async (_what, authorization) => {
    expect(await statuses(t.app, { authorization })).toEqual([401, 401]);
  });

  it('do not fall back to the session cookie when the bearer token is bad', async () => {
    const sessionId = `s-${randomUUID()}`;
    simulator.state.sessions.set(sessionId, { lab_id: 5, user_id: 7, is_doctor: false, org_id: null });
    const headers = { authorization: 'Bearer not.a.token', cookie: `sessionid=${sessionId}` };
    expect(await statuses(t.app, headers)).toEqual([401, 401]);
  });
});

describe('bearer tokens signed with keys from AUTH_JWKS_URL (RS256, ES256)', () => {
  let jwksServer: http.Server;
  let jwksRequests = 0;
  let tj: TestApp;
  let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
  let ec: Awaited<ReturnType<typeof generateKeyPair>>;

  beforeAll(async () => {
    rsa = await generateKeyPair('RS256');
    ec = await generateKeyPair('ES256');
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ];
    jwksServer = http.createServer((_req, res) => {
      jwksRequests += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const { port } = jwksServer.address() as AddressInfo;
    tj = await startTestApp({
      AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      LEGACY_PY3_URL: simulator.py3Url,
    });
  });

  afterAll(async () => {
    await tj?.close();
    jwksServer?.closeAllConnections();
    await new Promise((resolve) => jwksServer?.close(resolve));
  });

  async function signWith(
    alg: 'RS256' | 'ES256',
    key: Parameters<SignJWT['sign']>[0],
    kid: string,
    claims = validClaims(),
  ) {
    return new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key);
  }

  it('accept RS256 and ES256 tokens signed by a published key', async () => {
    expect(await statuses(tj.app, bearer(await signWith('RS256', rsa.privateKey, 'rsa-1')))).toEqual([
      200, 200,
    ]);
    expect(await statuses(tj.app, bearer(await signWith('ES256', ec.privateKey, 'ec-1')))).toEqual([
      200, 200,
    ]);
    // The key set is fetched once and reused.
    expect(jwksRequests).toBe(1);
  });

  it('refuse a token signed by a key that is not published', async () => {
    const stranger = await generateKeyPair('RS256');
    expect(await statuses(tj.app, bearer(await signWith('RS256', stranger.privateKey, 'rsa-9')))).toEqual([
      401, 401,
    ]);
    // Same key id as a published key, different key: a bad signature.
    expect(await statuses(tj.app, bearer(await signWith('RS256', stranger.privateKey, 'rsa-1')))).toEqual([
      401, 401,
    ]);
  });

  it('refuse expired tokens and tokens missing a claim, as with HS256', async () => {
    const expired = await signWith('ES256', ec.privateKey, 'ec-1', { ...validClaims(), exp: now() - 5 });
    expect(await statuses(tj.app, bearer(expired))).toEqual([401, 401]);
    const { role: _role, ...noRole } = validClaims();
    expect(await statuses(tj.app, bearer(await signWith('RS256', rsa.privateKey, 'rsa-1', noRole)))).toEqual([
      401, 401,
    ]);
  });

  it('refuse HS256 tokens when only a key set is configured, even ones made with the development secret', async () => {
    expect(await statuses(tj.app, bearer(await hs256(validClaims())))).toEqual([401, 401]);
  });

  it('answer 502, not 401, when the key set cannot be fetched', async () => {
    const deadPort = await new Promise<number>((resolve) => {
      const probe = http.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const broken = await startTestApp({ AUTH_JWKS_URL: `http://127.0.0.1:${deadPort}/jwks.json` });
    try {
      const headers = bearer(await signWith('RS256', rsa.privateKey, 'rsa-1'));
      expect(await statuses(broken.app, headers)).toEqual([502, 502]);
      const rest = await broken.app.inject({ url: TEMPLATES, headers });
      expect(rest.json().error.code).toBe('BAD_GATEWAY');
      expect(rest.body).not.toContain(String(deadPort));
    } finally {
      await broken.close();
    }
  });
});

describe('the legacy session cookie', () => {
  function newSession(isDoctor = false, orgId: number | null = null) {
    const id = `s-${randomUUID()}`;
    const labId = newLabId();
    simulator.state.sessions.set(id, { lab_id: labId, user_id: 7, is_doctor: isDoctor, org_id: orgId });
    return { labId, headers: { cookie: `csrftoken=abc; sessionid=${id}` } };
  }

  function sessionLookups(cookie: string): number {
    return simulator.state.py3Requests.filter(
      (r) => r.url === '/api-v3/account/session' && r.headers.cookie === cookie,
    ).length;
  }

  it('is a principal when legacy knows the session', async () => {
    const { headers } = newSession();
    expect(await statuses(t.app, headers)).toEqual([200, 200]);
  });

  it('is no principal when legacy answers 401 or 403', async () => {
    expect(await statuses(t.app, { cookie: `sessionid=unknown-${randomUUID()}` })).toEqual([401, 401]);
    simulator.state.py3Faults.push({ pathPrefix: '/api-v3/account/session', status: 403, times: 1 });
    expect(await statuses(t.app, { cookie: `sessionid=forbidden-${randomUUID()}` })).toEqual([401, 401]);
  });

  it("maps legacy's is_doctor to the doctor role and keeps its lab and organization", async () => {
    const { labId, headers } = newSession(true, 9);
    expect(await t.app.deps.principals.resolve(headers)).toEqual({
      labId,
      userId: 7,
      role: 'doctor',
      orgId: 9,
      via: 'session',
    });
    const lab = newSession(false);
    expect(await t.app.deps.principals.resolve(lab.headers)).toMatchObject({ role: 'lab_user', orgId: null });
  });

  it('is asked of legacy once for two requests with the same cookie', async () => {
    const { headers } = newSession();
    expect(await statuses(t.app, headers)).toEqual([200, 200]);
    expect(sessionLookups(headers.cookie)).toBe(1);
  });

  it('is used when the Authorization header is not a bearer token', async () => {
    const { headers } = newSession();
    expect(await statuses(t.app, { ...headers, authorization: 'Basic dXNlcjpwYXNz' })).toEqual([200, 200]);
  });

  it('answers 502 with the error body when legacy fails, and asks again next time', async () => {
    const { headers } = newSession();
    simulator.state.py3Faults.push({ pathPrefix: '/api-v3/account/session', status: 500, times: 2 });
    expect(await statuses(t.app, headers)).toEqual([502, 502]);
    const failing = newSession();
    simulator.state.py3Faults.push({ pathPrefix: '/api-v3/account/session', status: 503, times: 2 });
    const rest = await t.app.inject({ url: TEMPLATES, headers: failing.headers });
    expect(rest.statusCode).toBe(502);
    expect(rest.json()).toEqual({ error: { code: 'BAD_GATEWAY', message: expect.any(String) } });
    expect(rest.body).not.toMatch(/127\.0\.0\.1|localhost|:\d{4,5}/);
    const trpc = await t.app.inject({ url: TRPC_TEMPLATES, headers: failing.headers });
    expect(trpc.statusCode).toBe(502);
    expect(trpc.json().error.data.code).toBe('BAD_GATEWAY');
    expect(trpc.body).not.toContain(simulator.py3Url);
    // A failure is not cached: once legacy is back, the same cookie works.
    expect(await statuses(t.app, headers)).toEqual([200, 200]);
  });

  it('answers 502 when legacy answers 200 with something that is not a session', async () => {
    const { headers } = newSession();
    simulator.state.py3Faults.push({ pathPrefix: '/api-v3/account/session', status: 200, times: 1 });
    const rest = await t.app.inject({ url: TEMPLATES, headers });
    expect(rest.statusCode).toBe(502);
  });

  it('answers 502 when legacy is down and 504 when it does not answer in time', async () => {
    const down = await startTestApp({ LEGACY_PY3_URL: 'http://127.0.0.1:9' });
    try {
      const rest = await down.app.inject({ url: TEMPLATES, headers: newSession().headers });
      expect(rest.statusCode).toBe(502);
      expect(rest.json().error.code).toBe('BAD_GATEWAY');
      expect(rest.body).not.toContain('127.0.0.1');
    } finally {
      await down.close();
    }
    const slow = await startTestApp({ LEGACY_PY3_URL: simulator.py3Url, LEGACY_TIMEOUT_MS: '200' });
    try {
      simulator.state.py3Faults.push({ pathPrefix: '/api-v3/account/session', delayMs: 1_000, times: 1 });
      const rest = await slow.app.inject({ url: TEMPLATES, headers: newSession().headers });
      expect(rest.statusCode).toBe(504);
      expect(rest.json().error.code).toBe('GATEWAY_TIMEOUT');
    } finally {
      await slow.close();
    }
  });
});

describe('the lab of the principal', () => {
  it('is never taken from a query parameter', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    const rest = await t.app.inject({ url: `${TEMPLATES}?lab_id=1`, headers });
    expect(rest.statusCode).toBe(400);
    expect(rest.json().error).toMatchObject({ code: 'BAD_REQUEST', issues: [{ path: 'lab_id' }] });
    const configs = await t.app.inject({ url: `${CONFIGS}?lab_id=1&org_id=2`, headers });
    expect(configs.statusCode).toBe(400);
    expect(
      configs
        .json()
        .error.issues.map((i: { path: string }) => i.path)
        .sort(),
    ).toEqual(['lab_id', 'org_id']);
  });

  it('is never taken from a body or a tRPC input', async () => {
    const labId = newLabId();
    const headers = await authHeader({ labId, userId: 7 });
    const rest = await t.app.inject({
      method: 'POST',
      url: CONFIGS,
      headers,
      payload: { lab_id: 1, configs: [{ field_id: 1, field_value: 'noemail@lab.in' }] },
    });
    expect(rest.statusCode).toBe(400);
    expect(rest.json().error.issues).toEqual([expect.objectContaining({ path: 'lab_id' })]);
    const trpc = await t.app.inject({
      method: 'POST',
      url: '/trpc/configs.save',
      headers,
      payload: { labId: 1, configs: [{ fieldId: 1, fieldValue: 'noemail@lab.in' }] },
    });
    expect(trpc.statusCode).toBe(400);
    expect(trpc.json().error.data.code).toBe('BAD_REQUEST');
    // Nothing was saved, for either lab.
    const list = await t.app.inject({ url: CONFIGS, headers });
    expect(list.json()).toEqual({ configs: [] });
  });
});
