import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';

let sim: LegacySimulator;
let t: TestApp;
beforeAll(async () => {
  sim = await startLegacySimulator();
  t = await startTestApp({ LEGACY_PY3_URL: sim.py3Url });
});
afterAll(async () => {
  await t.close();
  await sim.close();
});

describe('methods the shim does not serve on its own paths', () => {
  it.each([
    ['DELETE', '/api-v3/registration/patients/lab-missing-details-config', 'GET, POST, HEAD, OPTIONS'],
    ['PUT', '/api-v3/account/missing-details/lab-fields', 'GET, PATCH, HEAD, OPTIONS'],
    ['POST', '/api-v3/registration/patients/missing-details-templates', 'GET, HEAD, OPTIONS'],
  ])('answers %s %s with 405 and an Allow header, without asking legacy', async (method, url, allow) => {
    const before = sim.state.py3Requests.length;
    const res = await t.app.inject({
      method: method as 'DELETE',
      url,
      headers: await authHeader({ labId: newLabId(), userId: 7 }),
    });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe(allow);
    expect(res.json().error.code).toBe('METHOD_NOT_ALLOWED');
    expect(sim.state.py3Requests.length).toBe(before);
  });
});
