import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createContextInner } from '../../routers/context.js';
import { authedProcedure, router } from '../../routers/trpc.js';
import { buildApp } from '../../src/app.js';
import type { AppDeps } from '../../src/app-deps.js';
import { Database } from '../../src/db/database.js';
import { initOrm } from '../../src/db/orm.js';
import { trpcHttp } from '../../src/trpc/trpc-http.plugin.js';
import { authHeader, newLabId, seedOpenEmailRows, testConfig } from '../support/fixtures.js';

/** How the body is framed (and which request it was) may differ; every other header must not. */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'date', 'connection', 'x-request-id']);

/** What a client can see of an answer: the fast path must not change any of it. */
function visible(res: LightMyRequestResponse) {
  return {
    headers: Object.keys(res.headers)
      .filter((name) => !FRAMING.has(name))
      .sort(),
    status: res.statusCode,
    contentType: res.headers['content-type'],
    vary: res.headers.vary,
    allow: res.headers.allow,
    body: res.body,
  };
}

async function expectSameAnswers(
  fast: FastifyInstance,
  standard: FastifyInstance,
  requests: InjectOptions[],
) {
  for (const request of requests) {
    const [a, b] = [await fast.inject(request), await standard.inject(request)];
    expect(visible(a), `${request.method ?? 'GET'} ${String(request.url)}`).toEqual(visible(b));
  }
}

const list = (input?: unknown) =>
  `/trpc/labFields.list${input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`}`;

describe('the tRPC fast path, against the standard adapter on the same app', () => {
  let db: Database;
  let fast: FastifyInstance;
  let standard: FastifyInstance;
  const labId = newLabId();
  let auth: { authorization: string };

  beforeAll(async () => {
    const config = testConfig();
    db = new Database(await initOrm({ databaseUrl: config.databaseUrl, poolSize: 2 }));
    fast = await buildApp({ config, db });
    standard = await buildApp({ config, db, trpcFastPath: false });
    auth = await authHeader({ labId, userId: 7 });
    await seedOpenEmailRows(db, labId, [501, 502, 503]);
  });
  afterAll(async () => {
    await fast?.close();
    await standard?.close();
    await db?.close();
  });

  it('answers queries with the same status, headers and bytes, in success and in every kind of refusal', async () => {
    const json = { ...auth, 'content-type': 'application/json' };
    await expectSameAnswers(fast, standard, [
      { url: list({ limit: 2 }), headers: auth },
      { url: list(), headers: auth },
      { url: '/trpc/labFields.list?input=', headers: auth },
      { url: list({ limit: 2, isResolved: false }), headers: json },
      { url: '/trpc/labFields.list?input=%7Bnot-json', headers: auth },
      { url: list({ limit: 0 }), headers: auth },
      { url: list({ limit: 2, surprise: true }), headers: auth },
      { url: list({ cursor: 'é+b' }), headers: auth },
      { url: '/trpc/labFields.list?input={"cursor":"a+b"}', headers: auth },
      { url: list({ limit: 2 }) },
      { url: '/trpc/labFields.list?input=%7Bnot-json' },
      { url: `${list({ limit: 2 })}&extra=1`, headers: auth },
      { url: `${list({ limit: 2 })}&input=%7B%7D`, headers: auth },
      { url: list({ limit: 2 }), headers: { ...auth, accept: 'application/jsonl' } },
      { url: list({ limit: 2 }), headers: { ...auth, 'trpc-accept': 'application/jsonl' } },
      { url: list({ limit: 2 }), headers: { ...auth, 'content-type': 'text/csv' } },
      { url: '/trpc/labFields%2Elist', headers: auth },
      { url: '/trpc/labFields.nothing', headers: auth },
      { url: '/trpc/labFields.list,labFields.list?batch=1&input=%7B%7D', headers: auth },
      { method: 'HEAD', url: list({ limit: 2 }), headers: auth },
      { method: 'POST', url: '/trpc/labFields.list', headers: json, payload: '{}' },
    ]);
  });

  it('answers mutations with the same status, headers and bytes, in success and in every kind of refusal', async () => {
    const json = { ...auth, 'content-type': 'application/json' };
    const resolve = '/trpc/labFields.resolve';
    await expectSameAnswers(fast, standard, [
      { method: 'POST', url: resolve, headers: json, payload: '{"ids":[1],"isResolved":true}' },
      {
        method: 'POST',
        url: resolve,
        headers: { ...json, 'content-type': 'Application/JSON; charset=utf-8' },
        payload: '{"ids":[1],"isResolved":true}',
      },
      { method: 'POST', url: resolve, headers: json, payload: '{"ids":[1,1],"isResolved":true}' },
      { method: 'POST', url: resolve, headers: json, payload: '{"ids": [' },
      { method: 'POST', url: resolve, headers: json, payload: '' },
      { method: 'POST', url: resolve, headers: { 'content-type': 'application/json' }, payload: '{"ids": [' },
      { method: 'POST', url: `${resolve}?input=1`, headers: json, payload: '{"ids":[1],"isResolved":true}' },
      { method: 'POST', url: resolve, headers: { ...auth, 'content-type': 'text/plain' }, payload: '{}' },
      { method: 'POST', url: resolve, headers: auth, payload: '{}' },
      { method: 'GET', url: resolve, headers: auth },
    ]);
  });

  it('serves a plain query and a plain mutation on the fast path: sized answers where the adapter streams them', async () => {
    const json = { ...auth, 'content-type': 'application/json' };
    const calls: InjectOptions[] = [
      { url: list({ limit: 2 }), headers: auth },
      {
        method: 'POST',
        url: '/trpc/labFields.resolve',
        headers: json,
        payload: '{"ids":[1],"isResolved":true}',
      },
    ];
    for (const call of calls) {
      const [a, b] = [await fast.inject(call), await standard.inject(call)];
      expect(a.headers['content-length']).toBe(String(Buffer.byteLength(a.body)));
      expect(b.headers['transfer-encoding']).toBe('chunked');
    }
  });

  it('answers 503 the same way while the database is not attached', async () => {
    const config = testConfig();
    const [a, b] = [
      await buildApp({ config, db: new Database() }),
      await buildApp({ config, db: new Database(), trpcFastPath: false }),
    ];
    try {
      await expectSameAnswers(a, b, [{ url: list({ limit: 2 }), headers: auth }]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('the tRPC fast path, on procedures the app does not have (yet)', () => {
  const errors: Array<{ code: string; path: string | undefined; input: unknown }> = [];
  const probes = router({
    boom: authedProcedure.query(() => {
      throw new Error('connect ECONNREFUSED 10.0.0.7:3306');
    }),
    streamy: authedProcedure.query(() => ({ later: Promise.resolve(1) })),
    echo: authedProcedure.input(z.object({ text: z.string() })).mutation(({ input }) => input),
    aborts: authedProcedure.query(({ signal }) => ({ hasSignal: signal instanceof AbortSignal })),
  });

  async function probeApp(fastPath: boolean): Promise<FastifyInstance> {
    const app = Fastify();
    const deps = {} as AppDeps;
    const principal = { labId: 1, userId: 7, role: 'lab_user', orgId: null, via: 'jwt' } as const;
    await app.register(
      trpcHttp({
        router: probes as never,
        maxBatchSize: 10,
        fastPath,
        createContext: () => createContextInner({ deps, log: app.log, principal }),
        onError: ({ error, path, input }) => errors.push({ code: error.code, path, input }),
      }),
      { prefix: '/trpc' },
    );
    return app;
  }

  it('answers an unexpected failure, a streaming answer and an echo as the adapter does, and reports the same errors', async () => {
    const [fast, standard] = [await probeApp(true), await probeApp(false)];
    try {
      const json = { 'content-type': 'application/json' };
      const requests: InjectOptions[] = [
        { url: '/trpc/boom' },
        { url: '/trpc/streamy' },
        { url: '/trpc/aborts' },
        { method: 'POST', url: '/trpc/echo', headers: json, payload: '{"text":"ünïcode"}' },
        { method: 'POST', url: '/trpc/echo', headers: json, payload: '{"text":1}' },
      ];
      for (const request of requests) {
        errors.length = 0;
        const a = visible(await fast.inject(request));
        const fastErrors = errors.splice(0);
        const b = visible(await standard.inject(request));
        expect(a, String(request.url)).toEqual(b);
        expect(fastErrors, String(request.url)).toEqual(errors);
      }
      expect(JSON.parse((await fast.inject({ url: '/trpc/aborts' })).body)).toEqual({
        result: { data: { hasSignal: true } },
      });
    } finally {
      await fast.close();
      await standard.close();
    }
  });
});
