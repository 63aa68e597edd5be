import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EdgeProcess, startEdge } from '../../src/edge/nginx-runner.js';
import { canonicalPath, hasDotSegments } from '../../src/http/canonical-path.js';
import {
  AUGMENTED_PATHS,
  METRICS_PATH,
  ownerOf,
  SERVICE_PATHS,
  SHIM_PATHS,
} from '../../src/http/route-table.js';
import { spellingsOf } from '../support/path-spellings.js';
import { rawRequest } from '../support/raw-http.js';
import { freePort } from '../support/service-process.js';

/**
 * The generated edge routes every spelling of every path where the service's own canonical path rule
 * sends it: stand-in upstreams say which of them got each request.
 */

async function probe(name: string): Promise<Server> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(200, { 'x-probe': name }).end(name));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

let serviceProbe: Server;
let legacyProbe: Server;
let edge: EdgeProcess;
beforeAll(async () => {
  serviceProbe = await probe('service');
  legacyProbe = await probe('legacy');
  edge = await startEdge({
    services: [urlOf(serviceProbe)],
    legacy: urlOf(legacyProbe),
    port: await freePort(),
  });
});
afterAll(async () => {
  await edge?.stop();
  serviceProbe?.close();
  legacyProbe?.close();
});

/** Where the service's rule sends a request: its own answer (shim, capture, flags, a refusal) or legacy. */
function expectedRoute(target: string, method: string): 'service' | 'legacy' | 'hidden' {
  if (hasDotSegments(target)) return 'service';
  const canonical = canonicalPath(target);
  if (canonical === METRICS_PATH) return 'hidden';
  return ownerOf(canonical, method) === 'legacy' ? 'legacy' : 'service';
}

const sample = (pattern: RegExp) =>
  pattern.source.slice(1, -1).replaceAll('\\/', '/').replace('(\\d+)', '100');

const OWNED = [
  ...SHIM_PATHS.map((shim) => shim.path),
  ...SERVICE_PATHS,
  '/trpc/labFields.list',
  '/trpc',
  '/docs',
  '/docs/static/index.html',
];
const AUGMENTED = AUGMENTED_PATHS.map((route) => sample(route.path));
const LEGACY = [
  '/',
  '/api-v3/plain/read',
  '/api-v3/registration/patients/newer',
  '/api-v3/registration/patients/100/edit',
  '/api-v3/registration/patients/abc',
  '/api-v3/reportsx',
  '/api-v3/finance/bill/100/updates',
  '/trpcx/labFields.list',
  '/docsx',
  '/metricsx',
  '/api-v3/account/missing-details/lab-fields-other',
  '/API-V3/reports',
];
const DOTTED = [
  '/api-v3/registration/patients/./new',
  '/api-v3/registration/x/../patients/new',
  '/api-v3/plain/%2e%2E/read',
  '/api-v3/plain/.%2e/read',
  '/api-v3/plain%2f..%2fread',
  '/trpc/./labFields.list',
  '/api-v3/reports/.',
];
const METHODS = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'HEAD'];

/** Spellings of a path in origin form (a target that does not start with `/` is no path: nginx refuses it). */
const spellings = (path: string) =>
  (path === '/' ? [path] : [path, ...spellingsOf(path)]).filter((s) => s.startsWith('/'));
const CASES = [...OWNED, ...AUGMENTED, ...LEGACY].flatMap(spellings);

describe('the edge routes like the service', () => {
  it(`agrees with the canonical path rule for ${CASES.length + DOTTED.length} spellings × ${METHODS.length} methods`, async () => {
    const disagreements: string[] = [];
    let checked = 0;
    for (const target of [...CASES, ...DOTTED]) {
      for (const method of METHODS) {
        for (const query of ['', '?page=2&x=%2F']) {
          const answer = await rawRequest(edge.port, method, `${target}${query}`);
          const routed = answer.status === 404 ? 'hidden' : String(answer.headers['x-probe']);
          const expected = expectedRoute(target, method);
          checked++;
          if (routed !== expected)
            disagreements.push(`${method} ${target}${query}: edge ${routed}, service rule ${expected}`);
        }
      }
    }
    expect(disagreements).toEqual([]);
    expect(checked).toBeGreaterThan(1000);
  });

  it('covers every owned, captured and flagged path of the route table', () => {
    expect(OWNED).toEqual(expect.arrayContaining(SHIM_PATHS.map((shim) => shim.path)));
    for (const route of AUGMENTED_PATHS) expect(ownerOf(sample(route.path), route.method)).toBe(route.kind);
  });

  it('hands the upstream the request target exactly as the client sent it', async () => {
    let seen = '';
    legacyProbe.once('request', (request) => {
      seen = request.url ?? '';
    });
    await rawRequest(edge.port, 'GET', '/api-v3//plain/re%61d/?q=%2F&r=a+b');
    expect(seen).toBe('/api-v3//plain/re%61d/?q=%2F&r=a+b');
  });

  it('refuses a target that is not a path with a 400 of its own', async () => {
    for (const target of ['%2Fhealth', '%2ftrpc/labFields.list', 'api-v3/reports']) {
      expect((await rawRequest(edge.port, 'GET', target)).status, target).toBe(400);
    }
  });

  it('never serves /metrics, however it is spelled', async () => {
    for (const target of spellings(METRICS_PATH)) {
      expect((await rawRequest(edge.port, 'GET', target)).status, target).toBe(404);
    }
  });
});
