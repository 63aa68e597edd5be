import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { buildApp, loggerOptions } from '../../src/app.js';
import { Database } from '../../src/db/database.js';
import { initOrm } from '../../src/db/orm.js';
import {
  authHeader,
  newLabId,
  startTestApp,
  type TestApp,
  testConfig,
  tokenFor,
} from '../support/fixtures.js';

const CONFIGS = '/api-v3/registration/patients/lab-missing-details-config';
const LAB_FIELDS = '/api-v3/account/missing-details/lab-fields';
const ONE_MIB = 1024 * 1024;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.close();
});

/** What an error answer must never show a client: stack frames, source paths, internal addresses. */
function expectNoInternals(res: LightMyRequestResponse): void {
  expect(res.body).not.toMatch(/\bat .+:\d+:\d+/);
  expect(res.body).not.toMatch(/node_modules|\/work\/|\/src\/|\.ts\b/);
  expect(res.body).not.toMatch(/127\.0\.0\.1|localhost|3306|ECONNREFUSED/);
  expect(res.body).not.toMatch(/"stack"/);
}

function expectEnvelope(res: LightMyRequestResponse, status: number, code: string): void {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.json()).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
  expectNoInternals(res);
}

async function post(
  app: FastifyInstance,
  url: string,
  payload: string | Buffer,
  contentType: string | undefined = 'application/json',
): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = await authHeader({ labId: newLabId(), userId: 7 });
  if (contentType) headers['content-type'] = contentType;
  return app.inject({ method: 'POST', url, headers, payload });
}

describe('the REST shim', () => {
  it('answers malformed JSON with a 400 BAD_REQUEST envelope', async () => {
    for (const body of ['{"configs": [', '{configs: []}', 'null x', '\u0000']) {
      const res = await post(t.app, CONFIGS, body);
      expectEnvelope(res, 400, 'BAD_REQUEST');
    }
  });

  it('answers an empty JSON body with a 400 naming the body', async () => {
    const res = await post(t.app, CONFIGS, '');
    expectEnvelope(res, 400, 'BAD_REQUEST');
  });

  it('answers a body over 1 MiB with 413 PAYLOAD_TOO_LARGE and saves nothing', async () => {
    const labId = newLabId();
    const headers = { ...(await authHeader({ labId, userId: 7 })), 'content-type': 'application/json' };
    const payload = JSON.stringify({
      configs: [{ field_id: 1, field_value: 'x'.repeat(ONE_MIB) }],
    });
    const res = await t.app.inject({ method: 'POST', url: CONFIGS, headers, payload });
    expectEnvelope(res, 413, 'PAYLOAD_TOO_LARGE');
    const list = await t.app.inject({ url: CONFIGS, headers: await authHeader({ labId, userId: 7 }) });
    expect(list.json()).toEqual({ configs: [] });
  });

  it('accepts a body just under 1 MiB as far as the size goes', async () => {
    const filler = 'x'.repeat(ONE_MIB - 200);
    const res = await post(t.app, CONFIGS, JSON.stringify({ configs: [], filler }));
    // Rejected for its content (unknown field, empty list), not for its size.
    expectEnvelope(res, 400, 'BAD_REQUEST');
  });

  it.each([
    'text/plain',
    'application/xml',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
  ])('answers a %s body on a JSON route with 415 UNSUPPORTED_MEDIA_TYPE', async (contentType) => {
    const res = await post(t.app, CONFIGS, '{"configs":[{"field_id":1,"field_value":"a"}]}', contentType);
    expectEnvelope(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a JSON body that is not an object with a 400 naming the problem', async () => {
    for (const body of ['[]', '"configs"', '42', 'null']) {
      const res = await post(t.app, CONFIGS, body);
      expectEnvelope(res, 400, 'BAD_REQUEST');
    }
  });

  it('answers bad query values with 400, never 500', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    for (const query of [
      'limit=abc',
      'limit=0',
      'limit=201',
      'limit=1e3',
      'cursor=%00%00',
      'cursor=not-a-cursor',
      'created_from=yesterday',
      'field_id=1,abc',
      'is_resolved=maybe',
      'user_details_id=-1',
      'limit=1&limit=2',
    ]) {
      const res = await t.app.inject({ url: `${LAB_FIELDS}?${query}`, headers });
      expect(res.statusCode, query).toBe(400);
      expectEnvelope(res, 400, 'BAD_REQUEST');
    }
  });
});

describe('tRPC', () => {
  async function trpc(
    method: 'GET' | 'POST',
    url: string,
    payload?: string,
    contentType = 'application/json',
  ) {
    const headers: Record<string, string> = await authHeader({ labId: newLabId(), userId: 7 });
    if (payload !== undefined) headers['content-type'] = contentType;
    const res = await t.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
    expectNoInternals(res);
    return res;
  }

  it('answers bad JSON in ?input= with a 4xx', async () => {
    const res = await trpc('GET', '/trpc/templates.list?input=%7Bnot-json');
    expect(res.statusCode).toBe(400);
    expect(res.json().error.data.code).toMatch(/PARSE_ERROR|BAD_REQUEST/);
  });

  it('answers a malformed JSON body with a 4xx', async () => {
    const res = await trpc('POST', '/trpc/configs.save', '{"configs": [');
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
  });

  it('answers an unknown procedure with 404 NOT_FOUND', async () => {
    const res = await trpc('GET', '/trpc/templates.nothingHere');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.data.code).toBe('NOT_FOUND');
  });

  it('answers a mutation called with GET, and a query called with POST, with 405 METHOD_NOT_SUPPORTED', async () => {
    const mutation = await trpc('GET', '/trpc/configs.save');
    expect(mutation.statusCode).toBe(405);
    expect(mutation.json().error.data.code).toBe('METHOD_NOT_SUPPORTED');
    const query = await trpc('POST', '/trpc/templates.list', '{}');
    expect(query.statusCode).toBe(405);
  });

  it('answers a body over 1 MiB with 413', async () => {
    const body = JSON.stringify({ configs: [{ fieldId: 1, fieldValue: 'x'.repeat(ONE_MIB) }] });
    const res = await trpc('POST', '/trpc/configs.save', body);
    expect(res.statusCode).toBe(413);
  });

  it('answers inputs of the wrong shape with BAD_REQUEST and issues, never 500', async () => {
    for (const input of ['[]', '"x"', 'null', '{"configs":"all"}', '{"configs":[{"fieldId":"1"}]}']) {
      const res = await trpc('POST', '/trpc/configs.save', input);
      expect(res.statusCode, input).toBe(400);
      expect(res.json().error.data.code).toBe('BAD_REQUEST');
    }
  });

  it('answers a batch with one bad call per call, never 500', async () => {
    const input = encodeURIComponent(JSON.stringify({ 0: { module: 'bill' }, 1: { module: 'lab' } }));
    const res = await trpc('GET', `/trpc/templates.list,templates.list?batch=1&input=${input}`);
    expect(res.statusCode).toBeLessThan(500);
    const [ok, bad] = res.json();
    expect(ok.result.data.templates.length).toBeGreaterThan(0);
    expect(bad.error.data.code).toBe('BAD_REQUEST');
  });
});

describe('legacy failures and unexpected errors', () => {
  it('answers 503 with the envelope while the database is not attached, not 500', async () => {
    const app = await buildApp({ config: testConfig(), db: new Database() });
    try {
      const res = await app.inject({
        url: '/api-v3/registration/patients/missing-details-templates',
        headers: await authHeader({ labId: newLabId(), userId: 7 }),
      });
      expectEnvelope(res, 503, 'SERVICE_UNAVAILABLE');
      const trpc = await app.inject({
        url: '/trpc/templates.list',
        headers: await authHeader({ labId: newLabId(), userId: 7 }),
      });
      expect(trpc.statusCode).toBe(503);
      expectNoInternals(trpc);
    } finally {
      await app.close();
    }
  });

  it('answers an unexpected failure with a bare 500 that names nothing internal', async () => {
    const app = await buildApp({ config: testConfig(), db: new Database() });
    app.get('/boom-for-test', async () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:3306 at /work/main/src/secret.ts:1:1');
    });
    try {
      const res = await app.inject({ url: '/boom-for-test' });
      expect(res.json()).toEqual({
        error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' },
      });
      expectNoInternals(res);
    } finally {
      await app.close();
    }
  });

  it('maps a library error that carries a gateway status to that status with a safe message', async () => {
    const app = await buildApp({ config: testConfig(), db: new Database() });
    for (const statusCode of [502, 503, 504]) {
      app.get(`/gateway-${statusCode}-for-test`, async () => {
        throw Object.assign(new Error(`upstream http://10.0.0.7:8000 failed (${statusCode})`), {
          statusCode,
        });
      });
    }
    try {
      const expected = { 502: 'BAD_GATEWAY', 503: 'SERVICE_UNAVAILABLE', 504: 'GATEWAY_TIMEOUT' } as const;
      for (const statusCode of [502, 503, 504] as const) {
        const res = await app.inject({ url: `/gateway-${statusCode}-for-test` });
        expectEnvelope(res, statusCode, expected[statusCode]);
        expect(res.body).not.toContain('10.0.0.7');
      }
    } finally {
      await app.close();
    }
  });
});

describe('the logs', () => {
  let simulator: LegacySimulator;
  let app: FastifyInstance;
  let db: Database;
  const lines: string[] = [];

  beforeAll(async () => {
    simulator = await startLegacySimulator();
    const config = testConfig({
      LOG_LEVEL: 'trace',
      LEGACY_PY3_URL: simulator.py3Url,
      LEGACY_PY2_URL: simulator.py2Url,
    });
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = pino(loggerOptions(config) as pino.LoggerOptions, stream);
    db = new Database(await initOrm({ databaseUrl: config.databaseUrl, poolSize: 2 }));
    app = await buildApp({ config, db, loggerInstance: logger });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    await db?.close();
    if (simulator) {
      simulator.py3.server.closeAllConnections();
      simulator.py2.server.closeAllConnections();
      await simulator.close();
    }
  });

  it('never contain Authorization or Cookie values, on success, rejection, failure or proxying', async () => {
    const token = await tokenFor({ labId: newLabId(), userId: 7 });
    const badToken = `${token.slice(0, -6)}AAAAAA`;
    const sessionId = `secret-session-${randomUUID()}`;
    simulator.state.sessions.set(sessionId, {
      lab_id: newLabId(),
      user_id: 7,
      is_doctor: false,
      org_id: null,
    });
    const failingSession = `failing-session-${randomUUID()}`;
    const auth = { authorization: `Bearer ${token}` };
    const cookie = { cookie: `sessionid=${sessionId}; csrftoken=csrf-${sessionId}` };

    const calls: InjectOptions[] = [
      { url: '/api-v3/registration/patients/missing-details-templates', headers: auth },
      { url: '/api-v3/registration/patients/missing-details-templates', headers: cookie },
      { url: '/trpc/templates.list', headers: cookie },
      {
        url: '/api-v3/registration/patients/missing-details-templates',
        headers: { authorization: `Bearer ${badToken}` },
      },
      { url: '/api-v3/registration/patients/missing-details-templates?lab_id=1', headers: auth },
      {
        method: 'POST',
        url: CONFIGS,
        headers: { ...auth, 'content-type': 'application/json' },
        payload: '{bad',
      },
      { url: '/api-v3/some/legacy/page?x=1', headers: { ...auth, ...cookie } },
      { method: 'POST', url: '/api-v3/some/legacy/form', headers: { ...auth, ...cookie }, payload: { a: 1 } },
    ];
    for (const call of calls) await app.inject(call);
    simulator.state.py3Faults.push({ pathPrefix: '/api-v3/account/session', status: 500 });
    await app.inject({
      url: '/api-v3/registration/patients/missing-details-templates',
      headers: { cookie: `sessionid=${failingSession}` },
    });
    simulator.state.py3Faults.length = 0;

    const log = lines.join('');
    expect(lines.length).toBeGreaterThan(calls.length);
    expect(log).toContain('/api-v3/registration/patients/missing-details-templates');
    for (const secret of [token, token.split('.')[2]!, badToken, sessionId, failingSession]) {
      expect(log).not.toContain(secret);
    }
  });
});

describe('the JSON-only content types of the service', () => {
  it('leave a text/plain body proxied to legacy byte for byte', async () => {
    const received: Buffer[] = [];
    const legacy = http.createServer((request, response) => {
      request.on('data', (chunk: Buffer) => received.push(chunk));
      request.on('end', () => response.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
    });
    await new Promise<void>((resolve) => legacy.listen(0, '127.0.0.1', resolve));
    const { port } = legacy.address() as AddressInfo;
    const app = await buildApp({
      config: testConfig({ LEGACY_PY3_URL: `http://127.0.0.1:${port}` }),
      db: new Database(),
    });
    try {
      const bytes = Buffer.from([0x68, 0xe9, 0x6c, 0x6c, 0x6f, 0x0a, 0xff, 0x00]);
      const res = await app.inject({
        method: 'POST',
        url: '/api-v3/some/legacy/upload',
        headers: { 'content-type': 'text/plain; charset=latin1' },
        payload: bytes,
      });
      expect(res.statusCode).toBe(200);
      expect(Buffer.concat(received)).toEqual(bytes);
    } finally {
      await app.close();
      legacy.closeAllConnections();
      await new Promise((resolve) => legacy.close(resolve));
    }
  });
});
