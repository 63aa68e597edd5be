import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';
import { routeTable, trpcProcedures, trpcRequest } from '../support/reliability-fixtures.js';

const SEED = Number(process.env.PROPERTY_SEED ?? 20260101);
/** Generated malformed or boundary inputs per route or procedure; ~20 of them make 10,000+. */
const MALFORMED_RUNS = 520;
const VALID_RUNS = 25;

const TEMPLATES = '/api-v3/registration/patients/missing-details-templates';
const CONFIGS = '/api-v3/registration/patients/lab-missing-details-config';
const LAB_FIELDS = '/api-v3/account/missing-details/lab-fields';
const EXPORT = `${LAB_FIELDS}/export.csv`;
const SUMMARY = '/api-v3/account/missing-details/summary';
const ASSIGNMENT = `${LAB_FIELDS}/assignment`;
const CHECK = '/api-v3/account/missing-details/placeholder-check';
const SETTINGS = '/api-v3/account/missing-details/settings';
const PATIENTS = '/api-v3/account/missing-details/patients';
const FIELD_NAMES = ['email', 'mobile', 'dob', 'address', 'insurance', 'group', 'sample_collector'];

const LIST_KEYS = [
  'is_resolved',
  'user_details_id',
  'bill_id',
  'field_id',
  'field_module',
  'created_from',
  'created_to',
  'limit',
  'cursor',
  'assignee_user_id',
  'overdue',
];
const QUERY_KEYS: Record<string, string[]> = {
  [TEMPLATES]: ['module', 'include_inactive'],
  [CONFIGS]: ['module', 'include_disabled'],
  [LAB_FIELDS]: LIST_KEYS,
  [EXPORT]: LIST_KEYS,
  [SUMMARY]: ['resolved_from', 'resolved_to'],
  [PATIENTS]: ['is_resolved', 'sort', 'limit', 'cursor'],
  [SETTINGS]: [],
};

const boundaryNumber = fc.constantFrom(
  0,
  -1,
  1,
  200,
  201,
  5000,
  5001,
  2_147_483_647,
  2_147_483_648,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  1e308,
  -1e308,
  0.5,
  -0,
);
const oddString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    'null',
    'undefined',
    'NaN',
    'Infinity',
    '1e309',
    '0x10',
    '2026-02-30',
    '2026-01-01T25:00:00Z',
    '../../etc/passwd',
    '%00',
    "' OR 1=1 --",
    '\u0000',
    'x'.repeat(300),
  ),
  boundaryNumber.map(String),
);
const scalar = fc.oneof(oddString, boundaryNumber, fc.boolean(), fc.constant(null), fc.double());
const junk = fc.oneof(fc.jsonValue({ maxDepth: 3 }), scalar);
const idsLike = fc.oneof(fc.array(fc.oneof(boundaryNumber, scalar), { maxLength: 8 }), junk);
const configItem = fc.dictionary(
  fc.constantFrom(
    'field_id',
    'field_value',
    'is_disabled',
    'fieldId',
    'fieldValue',
    'isDisabled',
    'lab_id',
    'x',
  ),
  fc.oneof(boundaryNumber, scalar),
  { maxKeys: 4 },
);

function queryArb(path: string) {
  const key = fc.oneof(
    fc.constantFrom(...(QUERY_KEYS[path] ?? []), 'lab_id', 'org_id'),
    fc.string({ maxLength: 8 }),
  );
  return fc
    .array(fc.tuple(key, oddString), { maxLength: 4 })
    .map((pairs) => new URLSearchParams(pairs).toString());
}

/** A malformed or boundary request for each route and procedure of the service. */
const MALFORMED: Record<string, fc.Arbitrary<InjectOptions>> = {
  [`GET ${TEMPLATES}`]: queryArb(TEMPLATES).map((q) => ({ method: 'GET', url: `${TEMPLATES}?${q}` })),
  [`GET ${CONFIGS}`]: queryArb(CONFIGS).map((q) => ({ method: 'GET', url: `${CONFIGS}?${q}` })),
  [`GET ${LAB_FIELDS}`]: queryArb(LAB_FIELDS).map((q) => ({ method: 'GET', url: `${LAB_FIELDS}?${q}` })),
  [`GET ${EXPORT}`]: queryArb(EXPORT).map((q) => ({ method: 'GET', url: `${EXPORT}?${q}` })),
  [`GET ${SUMMARY}`]: queryArb(SUMMARY).map((q) => ({ method: 'GET', url: `${SUMMARY}?${q}` })),
  [`POST ${CONFIGS}`]: fc
    .oneof(
      fc.record({ configs: fc.oneof(fc.array(configItem, { maxLength: 55 }), junk) }, { requiredKeys: [] }),
      junk,
    )
    .map((payload) => ({ method: 'POST', url: CONFIGS, payload: JSON.stringify(payload) })),
  [`PATCH ${LAB_FIELDS}`]: fc
    .oneof(
      fc.record({ ids: idsLike, is_resolved: scalar, extra: scalar }, { requiredKeys: [] }),
      fc.record({ ids: fc.array(boundaryNumber, { minLength: 1, maxLength: 6 }), is_resolved: fc.boolean() }),
      junk,
    )
    .map((payload) => ({ method: 'PATCH', url: LAB_FIELDS, payload: JSON.stringify(payload) })),
  [`GET ${PATIENTS}`]: queryArb(PATIENTS).map((q) => ({ method: 'GET', url: `${PATIENTS}?${q}` })),
  [`GET ${SETTINGS}`]: queryArb(SETTINGS).map((q) => ({ method: 'GET', url: `${SETTINGS}?${q}` })),
  [`PUT ${SETTINGS}`]: fc
    .oneof(
      fc.record(
        {
          junk_detection: scalar,
          extra_junk_values: fc.oneof(fc.dictionary(fc.constantFrom(...FIELD_NAMES, 'x'), junk), junk),
        },
        { requiredKeys: [] },
      ),
      junk,
    )
    .map((payload) => ({ method: 'PUT', url: SETTINGS, payload: JSON.stringify(payload) })),
  [`POST ${CHECK}`]: fc
    .oneof(
      fc.record(
        {
          values: fc.oneof(
            fc.array(
              fc.record(
                { field_name: fc.oneof(fc.constantFrom(...FIELD_NAMES), scalar), value: junk },
                { requiredKeys: [] },
              ),
              { maxLength: 105 },
            ),
            junk,
          ),
        },
        { requiredKeys: [] },
      ),
      junk,
    )
    .map((payload) => ({ method: 'POST', url: CHECK, payload: JSON.stringify(payload) })),
  [`PATCH ${ASSIGNMENT}`]: fc
    .oneof(
      fc.record({ ids: idsLike, assignee_user_id: fc.oneof(boundaryNumber, scalar) }, { requiredKeys: [] }),
      junk,
    )
    .map((payload) => ({ method: 'PATCH', url: ASSIGNMENT, payload: JSON.stringify(payload) })),
};

const TRPC_SHAPES: Record<string, fc.Arbitrary<unknown>> = {
  'configs.save': fc.record(
    { configs: fc.oneof(fc.array(configItem, { maxLength: 55 }), junk), idempotencyKey: scalar },
    { requiredKeys: [] },
  ),
  'labFields.resolve': fc.record({ ids: idsLike, isResolved: scalar }, { requiredKeys: [] }),
  'labFields.list': fc.dictionary(
    fc.constantFrom('limit', 'cursor', 'userDetailsId', 'fieldId', 'isResolved'),
    scalar,
  ),
  'entityCreations.retry': fc.record({ ids: idsLike }, { requiredKeys: [] }),
  'flags.patients': fc.record({ ids: idsLike }, { requiredKeys: [] }),
  'flags.bills': fc.record({ ids: idsLike }, { requiredKeys: [] }),
  'labFields.assign': fc.record(
    { ids: idsLike, assigneeUserId: fc.oneof(boundaryNumber, scalar) },
    { requiredKeys: [] },
  ),
  'labFields.byPatient': fc.record({ sort: scalar, limit: scalar, cursor: oddString }, { requiredKeys: [] }),
  'placeholders.check': fc.record(
    {
      values: fc.oneof(
        fc.array(fc.record({ fieldName: fc.oneof(fc.constantFrom(...FIELD_NAMES), scalar), value: junk }), {
          maxLength: 105,
        }),
        junk,
      ),
    },
    { requiredKeys: [] },
  ),
  'settings.update': fc.record({ junkDetection: scalar, extraJunkValues: junk }, { requiredKeys: [] }),
  'capture.patient': fc.record(
    { userDetailsId: fc.oneof(boundaryNumber, scalar), orgId: scalar, values: junk },
    { requiredKeys: [] },
  ),
  'capture.bill': fc.record(
    {
      userDetailsId: fc.oneof(boundaryNumber, scalar),
      billId: fc.oneof(boundaryNumber, scalar),
      values: junk,
    },
    { requiredKeys: [] },
  ),
};

for (const [path, kind] of trpcProcedures()) {
  if (kind === 'subscription') continue;
  const input = fc.oneof(TRPC_SHAPES[path] ?? junk, junk);
  MALFORMED[`trpc:${path}`] = fc.oneof(
    input.map((value) => trpcRequest(path, kind, value)),
    // Not JSON at all.
    oddString.map((raw) =>
      kind === 'mutation'
        ? {
            method: 'POST',
            url: `/trpc/${path}`,
            payload: raw,
            headers: { 'content-type': 'application/json' },
          }
        : { method: 'GET', url: `/trpc/${path}?input=${encodeURIComponent(raw)}` },
    ),
  ) as fc.Arbitrary<InjectOptions>;
}

const positiveId = fc.integer({ min: 1, max: 2_147_483_647 });
const fieldId = fc.integer({ min: 1, max: 9 });
const placeholderText = fc.string({ minLength: 1, maxLength: 60 }).filter((s) => s.trim().length > 0);
const captureValuesArb = fc.dictionary(
  fc.constantFrom(
    'email',
    'mobile',
    'dob',
    'address',
    'sample_collector',
    'insurance',
    'group',
    'referral_doctor',
  ),
  fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constant(null),
    fc.record({ id: positiveId, name: fc.string({ maxLength: 30 }) }),
  ),
);

/** Inputs the contract accepts: they may be answered 200 or a domain 4xx, never a 5xx. */
const VALID: Record<string, fc.Arbitrary<InjectOptions>> = {
  [`GET ${TEMPLATES}`]: fc
    .record(
      { module: fc.constantFrom('patient', 'bill'), include_inactive: fc.constantFrom('true', '0') },
      { requiredKeys: [] },
    )
    .map((q) => ({ method: 'GET', url: `${TEMPLATES}?${new URLSearchParams(q)}` })),
  [`GET ${LAB_FIELDS}`]: fc
    .record(
      {
        limit: fc.integer({ min: 1, max: 200 }).map(String),
        is_resolved: fc.constantFrom('true', 'false', '1', '0'),
        field_id: fc.uniqueArray(fieldId, { minLength: 1, maxLength: 3 }).map((ids) => ids.join(',')),
        user_details_id: positiveId.map(String),
        created_from: fc.constantFrom('2026-01-01', '2020-02-29T00:00:00Z'),
      },
      { requiredKeys: [] },
    )
    .map((q) => ({ method: 'GET', url: `${LAB_FIELDS}?${new URLSearchParams(q)}` })),
  [`POST ${CONFIGS}`]: fc
    .uniqueArray(fc.record({ field_id: fieldId, field_value: placeholderText }), {
      minLength: 1,
      maxLength: 9,
      selector: (item) => item.field_id,
    })
    .map((configs) => ({ method: 'POST', url: CONFIGS, payload: { configs } })),
  [`PATCH ${LAB_FIELDS}`]: fc
    .record({ ids: fc.uniqueArray(positiveId, { minLength: 1, maxLength: 50 }), is_resolved: fc.boolean() })
    .map((payload) => ({ method: 'PATCH', url: LAB_FIELDS, payload })),
  [`POST ${CHECK}`]: fc
    .array(
      fc.record({
        field_name: fc.constantFrom(...FIELD_NAMES),
        value: fc.oneof(placeholderText, fc.integer(), fc.record({ id: positiveId, name: placeholderText })),
      }),
      { minLength: 1, maxLength: 100 },
    )
    .map((values) => ({ method: 'POST', url: CHECK, payload: { values } })),
  [`PATCH ${ASSIGNMENT}`]: fc
    .record({
      ids: fc.uniqueArray(positiveId, { minLength: 1, maxLength: 50 }),
      assignee_user_id: fc.oneof(positiveId, fc.constant(null)),
    })
    .map((payload) => ({ method: 'PATCH', url: ASSIGNMENT, payload })),
  [`GET ${PATIENTS}`]: fc
    .record(
      { sort: fc.constantFrom('oldest', 'most'), limit: fc.integer({ min: 1, max: 200 }).map(String) },
      { requiredKeys: [] },
    )
    .map((q) => ({ method: 'GET', url: `${PATIENTS}?${new URLSearchParams(q)}` })),
  [`PUT ${SETTINGS}`]: fc
    .record(
      {
        junk_detection: fc.boolean(),
        extra_junk_values: fc.dictionary(
          fc.constantFrom(...FIELD_NAMES),
          fc.array(placeholderText, { maxLength: 20 }),
        ),
      },
      { requiredKeys: ['junk_detection'] },
    )
    .map((payload) => ({ method: 'PUT', url: SETTINGS, payload })),
  'trpc:capture.patient': fc
    .record({ userDetailsId: positiveId, values: captureValuesArb })
    .map((input) => trpcRequest('capture.patient', 'mutation', input)),
  'trpc:capture.bill': fc
    .record({ userDetailsId: positiveId, billId: positiveId, values: captureValuesArb })
    .map((input) => trpcRequest('capture.bill', 'mutation', input)),
  'trpc:flags.patients': fc
    .uniqueArray(positiveId, { minLength: 1, maxLength: 100 })
    .map((ids) => trpcRequest('flags.patients', 'query', { ids })),
  'trpc:labFields.resolve': fc
    .record({ ids: fc.uniqueArray(positiveId, { minLength: 1, maxLength: 50 }), isResolved: fc.boolean() })
    .map((input) => trpcRequest('labFields.resolve', 'mutation', input)),
};

/** A 4xx of the service is structured: the REST envelope, or tRPC's error with a code in `data`. */
function isStructuredError(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as {
      error?: { code?: unknown; message?: unknown; data?: { code?: unknown } };
    };
    const error = parsed.error;
    if (!error || typeof error.message !== 'string') return false;
    return typeof error.code === 'string' || typeof error.data?.code === 'string';
  } catch {
    return false;
  }
}

let t: TestApp;
let headers: Record<string, string>;
let generated = 0;
beforeAll(async () => {
  t = await startTestApp();
  headers = await authHeader({ labId: newLabId(), userId: 7 });
});
afterAll(async () => {
  await t.close();
});

async function send(request: InjectOptions) {
  generated++;
  return t.app.inject({ ...request, headers: { ...headers, ...(request.headers as object) } });
}

describe('generated inputs', () => {
  it('cover every route and procedure of the service', () => {
    const routes = routeTable(t.app)
      .filter((r) => r.path.startsWith('/api-v3/') && r.path !== '/api-v3/openapi.json')
      .flatMap((r) => r.methods.map((m) => `${m} ${r.path}`));
    const procedures = [...trpcProcedures()]
      .filter(([, kind]) => kind !== 'subscription')
      .map(([p]) => `trpc:${p}`);
    for (const key of procedures) expect(MALFORMED[key], key).toBeDefined();
    // Routes the table holds but no generator covers must be the shim's 405 answers.
    const uncovered = routes.filter((r) => !MALFORMED[r] && !r.startsWith('HEAD '));
    return Promise.all(
      uncovered.map(async (r) => {
        const [method, url] = r.split(' ');
        expect((await t.app.inject({ method: method as 'GET', url: url!, headers })).statusCode, r).toBe(405);
      }),
    );
  });

  for (const [name, arbitrary] of Object.entries(MALFORMED)) {
    it(`answers malformed and boundary inputs to ${name} with a structured 4xx or a success, never a 5xx`, async () => {
      await fc.assert(
        fc.asyncProperty(arbitrary, async (request) => {
          const res = await send(request);
          expect(res.statusCode, `${res.statusCode} ${res.body}`).toBeLessThan(500);
          if (res.statusCode >= 400) expect(isStructuredError(res.body), res.body).toBe(true);
        }),
        { numRuns: MALFORMED_RUNS, seed: SEED },
      );
    });
  }

  for (const [name, arbitrary] of Object.entries(VALID)) {
    it(`answers valid inputs to ${name} without a 5xx`, async () => {
      await fc.assert(
        fc.asyncProperty(arbitrary, async (request) => {
          const res = await send(request);
          expect(res.statusCode, `${res.statusCode} ${res.body}`).toBeLessThan(500);
        }),
        { numRuns: VALID_RUNS, seed: SEED },
      );
    });
  }

  it('sent at least 10,000 generated inputs', () => {
    expect(generated).toBeGreaterThanOrEqual(10_000);
  });
});
