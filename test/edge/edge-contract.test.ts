import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { type EdgeProcess, startEdge } from '../../src/edge/nginx-runner.js';
import { testDatabaseUrl } from '../support/env.js';
import { authHeader, newLabId } from '../support/fixtures.js';
import { type RawAnswer, rawRequest } from '../support/raw-http.js';
import {
  eventually,
  freePort,
  PROCESS_TEST_TIMEOUT_MS,
  type ServiceProcess,
  startServiceProcess,
  statusOf,
} from '../support/service-process.js';

/**
 * Through the edge a client sees what it sees through one service instance: two real instances
 * (src/server.ts processes), the simulator as legacy, Debian's nginx running the generated edge.
 */

const LAB_FIELDS = '/api-v3/account/missing-details/lab-fields';
const TEMPLATES = '/api-v3/registration/patients/missing-details-templates';

let sim: LegacySimulator;
const instances: ServiceProcess[] = [];
const edges: EdgeProcess[] = [];

async function startInstance(port?: number): Promise<ServiceProcess> {
  const instance = await startServiceProcess(
    {
      DATABASE_URL: testDatabaseUrl(),
      LEGACY_PY3_URL: sim.py3Url,
      LEGACY_PY2_URL: sim.py2Url,
      TRUST_PROXY: '127.0.0.1',
      LOG_LEVEL: 'warn',
    },
    { port },
  );
  instances.push(instance);
  await eventually(
    'the instance to be ready',
    async () => ((await statusOf(`${instance.url}/health`)) === 200 ? true : undefined),
    instance,
  );
  return instance;
}

async function edgeOver(
  services: string[],
  options: { timeoutSeconds?: number; failTimeoutSeconds?: number } = {},
) {
  const edge = await startEdge({ services, legacy: sim.py3Url, ...options, port: await freePort() });
  edges.push(edge);
  return edge;
}

let a: ServiceProcess;
let b: ServiceProcess;
let edge: EdgeProcess;
beforeAll(async () => {
  sim = await startLegacySimulator();
  [a, b] = await Promise.all([startInstance(), startInstance()]);
  edge = await edgeOver([a.url, b.url], { failTimeoutSeconds: 1 });
}, PROCESS_TEST_TIMEOUT_MS);
afterAll(async () => {
  for (const e of edges) await e.stop();
  for (const instance of instances) instance.kill();
  await sim?.close();
});

const cookies = (answer: RawAnswer) => answer.headers['set-cookie'];

describe('the same contract through the edge', () => {
  it('answers the shim, capture, flags and plain legacy paths with the same status, body bytes and cookies as an instance alone', async () => {
    const labId = newLabId();
    const token = await authHeader({ labId, userId: 7 });
    sim.state.sessions.set(`edge-${labId}`, { lab_id: labId, user_id: 7, is_doctor: false, org_id: null });
    const session = { cookie: `sessionid=edge-${labId}`, 'content-type': 'application/json' };
    const save = JSON.stringify({ user_details_id: 880_000 + labId, email: 'real@lab.in' });
    const requests: Array<[string, string, Record<string, string>, string?]> = [
      ['GET', TEMPLATES, token],
      ['GET', `${LAB_FIELDS}?limit=5`, token],
      ['GET', LAB_FIELDS, {}],
      ['GET', `${LAB_FIELDS}?limit=0`, token],
      ['PUT', LAB_FIELDS, token],
      ['POST', '/api-v3/registration/patients/new', session, save],
      ['GET', `/api-v3/registration/patients/${880_000 + labId}`, session],
      ['GET', '/api-v3/reports', session],
    ];
    for (const [method, path, headers, body] of requests) {
      const alone = await rawRequest(a.port, method, path, headers, body);
      const through = await rawRequest(edge.port, method, path, headers, body);
      expect(
        { status: through.status, body: through.body, cookies: cookies(through) },
        `${method} ${path}`,
      ).toEqual({
        status: alone.status,
        body: alone.body,
        cookies: cookies(alone),
      });
    }
    const plain = await rawRequest(edge.port, 'GET', '/api-v3/plain/read?x=1', session);
    expect(plain.status).toBe(200);
    expect(cookies(plain)).toEqual(['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
  });

  it('sets X-Forwarded-* and the request id, keeping a sane one the client sent', async () => {
    const echoed = async (headers: Record<string, string>) => {
      const answer = await rawRequest(edge.port, 'GET', '/api-v3/plain/echo', {
        host: 'lab.example',
        ...headers,
      });
      return { answer, seen: JSON.parse(answer.body).headers as Record<string, string> };
    };
    const given = await echoed({ 'x-request-id': 'desk-42.a', 'x-forwarded-for': '203.0.113.9' });
    expect(given.seen['x-request-id']).toBe('desk-42.a');
    expect(given.seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(given.seen['x-forwarded-proto']).toBe('http');
    expect(given.seen['x-forwarded-host']).toBe('lab.example');
    const invented = await echoed({ 'x-request-id': 'not a token' });
    expect(invented.seen['x-request-id']).toMatch(/^[0-9a-f]{32}$/);

    // Through an instance, the id it answers with is the one the edge chose.
    const shim = await rawRequest(edge.port, 'GET', LAB_FIELDS, { 'x-request-id': 'desk-43' });
    expect(shim.headers['x-request-id']).toBe('desk-43');
  });

  it('does not expose /metrics', async () => {
    expect((await rawRequest(edge.port, 'GET', '/metrics')).status).toBe(404);
    expect((await rawRequest(a.port, 'GET', '/metrics')).status).toBe(200);
  });
});

describe('when upstreams fail', () => {
  it('answers owned paths with the 502 envelope when every instance is down, and plain legacy paths keep working', async () => {
    const down = await edgeOver([
      `http://127.0.0.1:${await freePort()}`,
      `http://127.0.0.1:${await freePort()}`,
    ]);
    const token = await authHeader({ labId: newLabId(), userId: 7 });
    for (const [method, path] of [
      ['GET', LAB_FIELDS],
      ['POST', '/trpc/labFields.resolve'],
      ['GET', '/api-v3/registration/patients/5'],
    ] as const) {
      const answer = await rawRequest(down.port, method, path, token);
      expect(answer.status, path).toBe(502);
      expect(JSON.parse(answer.body)).toEqual({
        error: { code: 'BAD_GATEWAY', message: 'The upstream could not be reached' },
      });
      expect(answer.body).not.toMatch(/127\.0\.0\.1|nginx/);
      expect(answer.headers['content-type']).toBe('application/json');
    }
    expect((await rawRequest(down.port, 'GET', '/api-v3/plain/read')).status).toBe(200);
  });

  it('answers the 504 envelope when legacy does not answer in time', async () => {
    const impatient = await edgeOver([a.url], { timeoutSeconds: 1 });
    sim.state.py3Faults.push({ pathPrefix: '/api-v3/slow', delayMs: 2_500, times: 1 });
    const answer = await rawRequest(impatient.port, 'GET', '/api-v3/slow/read');
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.body)).toEqual({
      error: { code: 'GATEWAY_TIMEOUT', message: 'The upstream did not answer in time' },
    });
  });

  it(
    'loses no idempotent request and sends no POST twice when an instance is killed under load, and takes it back when it returns',
    async () => {
      const labId = newLabId();
      const token = await authHeader({ labId, userId: 7 });
      sim.state.sessions.set(`kill-${labId}`, { lab_id: labId, user_id: 7, is_doctor: false, org_id: null });
      const cookie = { cookie: `sessionid=kill-${labId}` };
      const session = { ...cookie, 'content-type': 'application/json' };
      const outcomes: Array<{ method: string; status: number }> = [];
      let sent = 0;
      const worker = async () => {
        while (sent < 400) {
          const n = sent++;
          const kind = n % 3;
          const answer =
            kind === 0
              ? await rawRequest(edge.port, 'GET', `${LAB_FIELDS}?limit=5`, token)
              : kind === 1
                ? await rawRequest(edge.port, 'GET', `/api-v3/reports?n=${n}`, cookie)
                : await rawRequest(
                    edge.port,
                    'POST',
                    `/api-v3/registration/patients/new?save=${labId}-${n}`,
                    session,
                    '{}',
                  );
          outcomes.push({ method: kind === 2 ? 'POST' : 'GET', status: answer.status });
          if (n === 120) a.kill();
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));

      const failedGets = outcomes.filter((o) => o.method === 'GET' && o.status !== 200);
      expect(failedGets).toEqual([]);
      const posts = sim.state.py3Requests.filter(
        (r) => r.method === 'POST' && r.url.includes(`save=${labId}-`),
      );
      const perSave = new Map<string, number>();
      for (const post of posts) perSave.set(post.url, (perSave.get(post.url) ?? 0) + 1);
      expect([...perSave.values()].filter((count) => count > 1)).toEqual([]);
      // A POST that an instance received before it died may fail (502); it is never repeated.
      const postStatuses = outcomes.filter((o) => o.method === 'POST').map((o) => o.status);
      expect(postStatuses.every((status) => status === 200 || status === 502)).toBe(true);
      console.info(
        `edge failover: ${outcomes.length} requests, ${postStatuses.filter((s) => s === 502).length} POSTs lost with the killed instance, ${posts.length} POSTs reached legacy once each`,
      );

      // The instance comes back on its port: the edge sends it requests again.
      a = await startInstance(a.port);
      const servedBy = async () => {
        const text = await (await fetch(`${a.url}/metrics`)).text();
        return text
          .split('\n')
          .filter((line) => line.startsWith('md_http_requests_total{') && line.includes('lab-fields'))
          .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
      };
      const before = await servedBy();
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      for (let i = 0; i < 20; i++)
        expect((await rawRequest(edge.port, 'GET', LAB_FIELDS, token)).status).toBe(200);
      expect(await servedBy()).toBeGreaterThan(before);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
