import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { canonicalPath, hasDotSegments } from '../../src/http/canonical-path.js';
import { AUGMENTED_PATHS, ownerOf, SHIM_PATHS } from '../../src/http/route-table.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';
import { spellingsOf } from '../support/path-spellings.js';
import { rawRequest } from '../support/raw-http.js';

const SAMPLE_IDS: Record<string, string> = { '(\\d+)': '424242' };
function concrete(pattern: RegExp): string {
  let path = pattern.source.replace(/^\^/, '').replace(/\$$/, '').replaceAll('\\/', '/');
  for (const [group, id] of Object.entries(SAMPLE_IDS)) path = path.replaceAll(group, id);
  return path;
}

describe('the canonical path', () => {
  const owned = [
    ...SHIM_PATHS.map((shim) => ({ path: shim.path, method: shim.methods[0]!, owner: 'service' })),
    { path: '/trpc/templates.list', method: 'GET', owner: 'service' },
    { path: '/api-v3/openapi.json', method: 'GET', owner: 'service' },
    ...AUGMENTED_PATHS.map((route) => ({
      path: concrete(route.path),
      method: route.method,
      owner: route.kind,
    })),
  ];

  for (const { path, method, owner } of owned) {
    it(`reads every spelling of ${method} ${path} as the path itself (${owner})`, () => {
      for (const spelling of spellingsOf(path)) {
        expect(canonicalPath(spelling), spelling).toBe(path);
        expect(ownerOf(canonicalPath(spelling), method), spelling).toBe(owner);
      }
    });
  }

  it('keeps the query out of the path, and an invalid escape as typed', () => {
    expect(canonicalPath('/api-v3/reports/?page=%2F')).toBe('/api-v3/reports');
    expect(canonicalPath('/api-v3/100%zz/x%')).toBe('/api-v3/100%zz/x%');
    expect(canonicalPath('/')).toBe('/');
    expect(canonicalPath('//')).toBe('/');
  });

  it('finds dot segments, also encoded', () => {
    expect(hasDotSegments('/api-v3/%2e%2e/trpc')).toBe(true);
    expect(hasDotSegments('/api-v3/./reports')).toBe(true);
    expect(hasDotSegments('/api-v3/reports/..%2f')).toBe(true);
    expect(hasDotSegments('/api-v3/reports/a..b/.c')).toBe(false);
  });
});

describe('odd spellings over real HTTP', () => {
  let sim: LegacySimulator;
  let t: TestApp;
  let port: number;

  beforeAll(async () => {
    sim = await startLegacySimulator();
    t = await startTestApp({ LEGACY_PY3_URL: sim.py3Url });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await t.close();
    await sim.close();
  });

  const legacyRequestsSince = (seen: number) =>
    sim.state.py3Requests.slice(seen).filter((r) => !r.url.startsWith('/api-v3/account/session'));

  it("serves every spelling of the shim's GET paths itself and never sends one to legacy", async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    for (const shim of SHIM_PATHS.filter((s) => s.methods.includes('GET'))) {
      for (const spelling of spellingsOf(shim.path)) {
        const seen = sim.state.py3Requests.length;
        const res = await rawRequest(port, 'GET', spelling, headers);
        expect(res.status, `${spelling}: ${res.body.slice(0, 200)}`).toBe(200);
        expect(legacyRequestsSince(seen), spelling).toEqual([]);
      }
    }
  });

  it("answers a shim path's other methods with 405 in every spelling", async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    for (const spelling of spellingsOf('/api-v3/account/missing-details/summary')) {
      const res = await rawRequest(port, 'DELETE', spelling, headers);
      expect(res.status, spelling).toBe(405);
    }
  });

  it('captures a patient save in every spelling: legacy gets the canonical path and the answer is flagged', async () => {
    const headers = {
      ...(await authHeader({ labId: newLabId(), userId: 7 })),
      'content-type': 'application/json',
    };
    for (const spelling of spellingsOf('/api-v3/registration/patients/new')) {
      const seen = sim.state.py3Requests.length;
      const res = await rawRequest(port, 'POST', spelling, headers, JSON.stringify({ full_name: 'A' }));
      expect(res.status, spelling).toBe(200);
      expect(JSON.parse(res.body), spelling).toHaveProperty('has_missing_fields');
      expect(legacyRequestsSince(seen).map((r) => r.url)).toEqual(['/api-v3/registration/patients/new']);
    }
  });

  it('flags a patient read in every spelling, also with an encoded digit', async () => {
    const headers = await authHeader({ labId: newLabId(), userId: 7 });
    sim.state.patients.set(424242, { user_details_id: 424242, org_id: null });
    for (const spelling of spellingsOf('/api-v3/registration/patients/424242')) {
      const res = await rawRequest(port, 'GET', spelling, headers);
      expect(res.status, spelling).toBe(200);
      expect(JSON.parse(res.body), spelling).toHaveProperty('has_missing_fields', false);
    }
  });

  it('refuses dot segments with a 400 before anything reaches legacy', async () => {
    const seen = sim.state.py3Requests.length;
    const res = await rawRequest(port, 'POST', '/api-v3/registration/patients/x/%2e%2e/new', {
      'content-type': 'application/json',
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error.message).toContain('segments');
    expect(legacyRequestsSince(seen)).toEqual([]);
  });

  it('sends a plain legacy path in any spelling exactly as the client wrote it', async () => {
    const seen = sim.state.py3Requests.length;
    const res = await rawRequest(port, 'GET', '/api-v3//other%2Fthing/');
    expect(res.status).toBe(200);
    expect(legacyRequestsSince(seen).map((r) => r.url)).toEqual(['/api-v3//other%2Fthing/']);
  });
});
