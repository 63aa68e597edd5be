import { readFile } from 'node:fs/promises';
import createClient from 'openapi-fetch';
import type { OpenAPI3 } from 'openapi-typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { paths } from '../../examples/api-v3.js';
import {
  billTemplateNames,
  createShimClient,
  resolveOpenFieldsNamed,
  setPlaceholders,
} from '../../examples/rest-client.js';
import { REST_CLIENT_TYPES_PATH, restClientTypes } from '../../scripts/openapi-types.js';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import {
  listen,
  newLabId,
  seedOpenEmailRows,
  startTestApp,
  type TestApp,
  tokenFor,
} from '../support/fixtures.js';

let sim: LegacySimulator;
let t: TestApp;
let baseUrl: string;

beforeAll(async () => {
  sim = await startLegacySimulator();
  t = await startTestApp({ LEGACY_PY3_URL: sim.py3Url, LEGACY_PY2_URL: sim.py2Url });
  baseUrl = await listen(t);
});
afterAll(async () => {
  await t.close();
  await sim.close();
});

describe('a REST client typed from the served OpenAPI document', () => {
  it('gets from openapi-typescript exactly the checked-in client types (else: npm run openapi:types)', async () => {
    const served = await fetch(`${baseUrl}/api-v3/openapi.json`);
    expect(served.status).toBe(200);
    const generated = await restClientTypes((await served.json()) as OpenAPI3);
    const checkedIn = await readFile(new URL(`../../${REST_CLIENT_TYPES_PATH}`, import.meta.url), 'utf8');
    expect(generated, `${REST_CLIENT_TYPES_PATH} is stale: run npm run openapi:types`).toBe(checkedIn);
  });

  it('lists templates, saves placeholders and resolves missing details through openapi-fetch', async () => {
    const labId = newLabId();
    const client = createShimClient({ baseUrl, auth: { token: await tokenFor({ labId, userId: 7 }) } });

    expect(await billTemplateNames(client)).toEqual(['insurance', 'group', 'sample_collector']);

    const saved = await setPlaceholders(client, [{ field_id: 1, field_value: ' noemail@lab.in ' }], 'rest-1');
    expect(saved.configs).toEqual([
      expect.objectContaining({ field_id: 1, field_name: 'email', field_value: 'noemail@lab.in' }),
    ]);
    expect(saved.entity_creations).toEqual([]);

    await seedOpenEmailRows(t.db, labId, [501, 502, 503]);
    expect(await resolveOpenFieldsNamed(client, 'email')).toBe(3);
    const { data } = await client.GET('/api-v3/account/missing-details/lab-fields', {
      params: { query: { is_resolved: 'true' } },
    });
    expect(data?.results.map((row) => row.user_details_id)).toEqual([503, 502, 501]);
    expect(data?.results.every((row) => row.resolved_by_lab_user_id === 7)).toBe(true);
  });

  it('gets the service’s errors as the typed error envelope', async () => {
    const client = createShimClient({
      baseUrl,
      auth: { token: await tokenFor({ labId: newLabId(), userId: 7 }) },
    });
    const invalid = await client.POST('/api-v3/registration/patients/lab-missing-details-config', {
      body: { configs: [{ field_id: 1, field_value: '   ' }] },
    });
    expect(invalid.response.status).toBe(400);
    expect(invalid.error?.error.code).toBe('BAD_REQUEST');
    expect(invalid.error?.error.issues?.map((issue) => issue.path)).toEqual(['configs.0.field_value']);

    const anonymous = createClient<paths>({ baseUrl });
    const refused = await anonymous.GET('/api-v3/registration/patients/missing-details-templates');
    expect(refused.response.status).toBe(401);
    expect(refused.error?.error.code).toBe('UNAUTHORIZED');
  });

  it('authenticates with the legacy session cookie as well as with a bearer token', async () => {
    const labId = newLabId();
    sim.state.sessions.set(`eco-${labId}`, { lab_id: labId, user_id: 9, is_doctor: false, org_id: null });
    const client = createShimClient({ baseUrl, auth: { sessionId: `eco-${labId}` } });
    await setPlaceholders(client, [{ field_id: 2, field_value: '9999999999' }]);
    const { data } = await client.GET('/api-v3/registration/patients/lab-missing-details-config');
    expect(data?.configs.map((config) => config.field_name)).toEqual(['mobile']);
  });
});
