import { readFileSync } from 'node:fs';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeader, newLabId, startTestApp, type TestApp } from '../support/fixtures.js';
import {
  labChecksum,
  routeTable,
  type SeededLab,
  seedLab,
  trpcProcedures,
  trpcRequest,
} from '../support/reliability-fixtures.js';

type Scope = 'own' | 'other' | 'nonexistent';
/** The ids a case is asked about: the caller's lab's, another lab's, or ids nobody has. */
interface Ids {
  patientIds: number[];
  billIds: number[];
  labFieldIds: number[];
  entityCreationIds: number[];
  labId: number;
}
interface Case {
  /** Scoped cases take ids; unscoped ones read or write only the caller's lab. */
  scoped: boolean;
  request(ids: Ids): InjectOptions;
}

/** The operation each case is, as the contract's permission table names it. */
const OPERATION_OF: Record<string, string> = {
  'trpc:configs.save': 'config_write',
  'trpc:entityCreations.retry': 'entity_retry',
  'trpc:labFields.resolve': 'resolve',
  'trpc:capture.patient': 'capture',
  'trpc:capture.bill': 'capture',
  'POST /api-v3/registration/patients/lab-missing-details-config': 'config_write',
  'PATCH /api-v3/account/missing-details/lab-fields': 'resolve',
  'trpc:settings.update': 'settings_write',
  'PUT /api-v3/account/missing-details/settings': 'settings_write',
  'trpc:labFields.assign': 'assign',
  'PATCH /api-v3/account/missing-details/lab-fields/assignment': 'assign',
};
const operationOf = (name: string) => OPERATION_OF[name] ?? 'read';

/** The permission table of docs/legacy-contract.md: operation → principal kinds allowed. */
function permissionTable(): Map<string, Set<string>> {
  const text = readFileSync(new URL('../../docs/legacy-contract.md', import.meta.url), 'utf8');
  const section = text.slice(text.indexOf('### Permission table'));
  const rows = section.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| ---'));
  const [header, ...body] = rows.map((row) =>
    row
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim()),
  );
  const kinds = header!.slice(2);
  return new Map(body.map((cells) => [cells[0]!, new Set(kinds.filter((_, i) => cells[i + 2] === 'yes'))]));
}

const BASE = '/api-v3';
const LAB_FIELDS = `${BASE}/account/missing-details/lab-fields`;
const CONFIGS = `${BASE}/registration/patients/lab-missing-details-config`;

const trpc = (path: string, input: (ids: Ids) => unknown, scoped = true): Case => ({
  scoped,
  request: (ids) => trpcRequest(path, trpcProcedures().get(path) ?? 'query', input(ids)),
});

/** Every procedure and route of the service, by `trpc:<path>` and `<METHOD> <url>`. */
const CASES: Record<string, Case> = {
  'trpc:templates.list': trpc('templates.list', () => ({}), false),
  'trpc:configs.list': trpc('configs.list', () => ({ includeDisabled: true }), false),
  'trpc:configs.save': trpc('configs.save', (ids) => ({
    configs: [{ fieldId: 4, fieldValue: 'own address placeholder' }],
    ...(ids.labId ? { labId: ids.labId } : {}),
  })),
  'trpc:labFields.list': trpc('labFields.list', (ids) => ({ userDetailsId: ids.patientIds[0] })),
  'trpc:labFields.resolve': trpc('labFields.resolve', (ids) => ({ ids: ids.labFieldIds, isResolved: true })),
  'trpc:labFields.summary': trpc('labFields.summary', () => ({}), false),
  'trpc:entityCreations.list': trpc('entityCreations.list', () => ({}), false),
  'trpc:entityCreations.retry': trpc('entityCreations.retry', (ids) => ({ ids: ids.entityCreationIds })),
  'trpc:capture.patient': trpc('capture.patient', (ids) => ({
    userDetailsId: ids.patientIds[0],
    values: { email: 'real.person@example.com' },
  })),
  'trpc:capture.bill': trpc('capture.bill', (ids) => ({
    userDetailsId: ids.patientIds[0],
    billId: ids.billIds[0],
    values: { sample_collector: 'Ravi' },
  })),
  'trpc:flags.patients': trpc('flags.patients', (ids) => ({ ids: ids.patientIds })),
  'trpc:flags.bills': trpc('flags.bills', (ids) => ({ ids: ids.billIds })),
  'trpc:labFields.assign': trpc('labFields.assign', (ids) => ({ ids: ids.labFieldIds, assigneeUserId: 21 })),
  'trpc:labFields.byPatient': trpc('labFields.byPatient', () => ({}), false),
  'trpc:placeholders.check': trpc(
    'placeholders.check',
    () => ({ values: [{ fieldName: 'email', value: 'noemail@lab.in' }] }),
    false,
  ),
  'trpc:settings.get': trpc('settings.get', () => undefined, false),
  'trpc:settings.update': trpc('settings.update', () => ({ junkDetection: false }), false),
  [`PATCH ${LAB_FIELDS}/assignment`]: {
    scoped: true,
    request: (ids) => ({
      method: 'PATCH',
      url: `${LAB_FIELDS}/assignment`,
      payload: { ids: ids.labFieldIds, assignee_user_id: 21 },
    }),
  },
  [`POST ${BASE}/account/missing-details/placeholder-check`]: {
    scoped: false,
    request: () => ({
      method: 'POST',
      url: `${BASE}/account/missing-details/placeholder-check`,
      payload: { values: [{ field_name: 'email', value: 'noemail@lab.in' }] },
    }),
  },
  [`GET ${BASE}/account/missing-details/settings`]: {
    scoped: false,
    request: () => ({ method: 'GET', url: `${BASE}/account/missing-details/settings` }),
  },
  [`PUT ${BASE}/account/missing-details/settings`]: {
    scoped: false,
    request: () => ({
      method: 'PUT',
      url: `${BASE}/account/missing-details/settings`,
      payload: { junk_detection: false },
    }),
  },
  [`GET ${BASE}/account/missing-details/patients`]: {
    scoped: false,
    request: () => ({ method: 'GET', url: `${BASE}/account/missing-details/patients` }),
  },
  [`GET ${BASE}/registration/patients/missing-details-templates`]: {
    scoped: false,
    request: () => ({ method: 'GET', url: `${BASE}/registration/patients/missing-details-templates` }),
  },
  [`GET ${CONFIGS}`]: {
    scoped: false,
    request: () => ({ method: 'GET', url: `${CONFIGS}?include_disabled=true` }),
  },
  [`POST ${CONFIGS}`]: {
    scoped: true,
    request: (ids) => ({
      method: 'POST',
      url: CONFIGS,
      payload: {
        configs: [{ field_id: 4, field_value: 'own address placeholder' }],
        ...(ids.labId ? { lab_id: ids.labId } : {}),
      },
    }),
  },
  [`GET ${LAB_FIELDS}`]: {
    scoped: true,
    request: (ids) => ({ method: 'GET', url: `${LAB_FIELDS}?user_details_id=${ids.patientIds[0]}` }),
  },
  [`PATCH ${LAB_FIELDS}`]: {
    scoped: true,
    request: (ids) => ({
      method: 'PATCH',
      url: LAB_FIELDS,
      payload: { ids: ids.labFieldIds, is_resolved: true },
    }),
  },
  [`GET ${LAB_FIELDS}/export.csv`]: {
    scoped: true,
    request: (ids) => ({
      method: 'GET',
      url: `${LAB_FIELDS}/export.csv?user_details_id=${ids.patientIds[0]}`,
    }),
  },
  [`GET ${BASE}/account/missing-details/summary`]: {
    scoped: false,
    request: () => ({ method: 'GET', url: `${BASE}/account/missing-details/summary` }),
  },
};

/** Reached by everyone on purpose: they hold no lab's data. */
const PUBLIC_ROUTES = [
  /^\/$/,
  /^\*$/,
  /^\/\*$/,
  /^\/health/,
  /^\/metrics$/,
  /^\/docs/,
  /^\/api-v3\/openapi\.json$/,
];
/** Covered by test/live-counts.test.ts: an SSE stream does not end within an inject. */
const STREAMS = new Set(['labFields.onChange']);

const NOBODY = 2_000_000_000;
const nonexistent = (): Ids => ({
  labId: NOBODY,
  patientIds: [NOBODY + 1, NOBODY + 2],
  billIds: [NOBODY + 11, NOBODY + 12],
  labFieldIds: [NOBODY + 21, NOBODY + 22, NOBODY + 23, NOBODY + 24],
  entityCreationIds: [NOBODY + 31],
});

let t: TestApp;
let own: SeededLab;
let other: SeededLab;
beforeAll(async () => {
  t = await startTestApp();
  const ownLab = newLabId();
  const otherLab = newLabId();
  own = await seedLab(t.app, ownLab, 1_500_000_000 + (ownLab % 100_000) * 100);
  other = await seedLab(t.app, otherLab, 1_600_000_000 + (otherLab % 100_000) * 100);
});
afterAll(async () => {
  await t.close();
});

describe('the authorization matrix', () => {
  it('covers every tRPC procedure and every route of the service', async () => {
    const procedures = [...trpcProcedures().keys()].filter((p) => !STREAMS.has(p));
    const uncoveredProcedures = procedures.filter((p) => !CASES[`trpc:${p}`]);
    expect(uncoveredProcedures, 'add these procedures to CASES').toEqual([]);
    const uncoveredRoutes: string[] = [];
    for (const { path, methods } of routeTable(t.app)) {
      if (PUBLIC_ROUTES.some((p) => p.test(path)) || path.startsWith('/trpc')) continue;
      for (const method of methods.filter((m) => m !== 'HEAD' && m !== 'OPTIONS')) {
        if (CASES[`${method} ${path}`]) continue;
        // A method the shim answers with 405 holds no data; without a principal it is a 401 first.
        const anonymous = await t.app.inject({ method: method as 'GET', url: path });
        expect(anonymous.statusCode, `${method} ${path} without a principal`).toBe(401);
        const headers = await authHeader({ labId: own.labId, userId: 21 });
        const res = await t.app.inject({ method: method as 'GET', url: path, headers });
        if (res.statusCode !== 405) uncoveredRoutes.push(`${method} ${path}`);
      }
    }
    expect(uncoveredRoutes, 'add these routes to CASES').toEqual([]);
  });

  it("holds the contract's permission table for every route and procedure and every kind of principal", async () => {
    const table = permissionTable();
    expect([...table.keys()].sort()).toEqual([
      'assign',
      'capture',
      'config_write',
      'entity_retry',
      'read',
      'resolve',
      'settings_write',
    ]);
    const kinds = {
      lab_staff: (labId: number) => authHeader({ labId, userId: 21 }),
      organization_user: (labId: number) => authHeader({ labId, userId: 23, orgId: 9 }),
      doctor: (labId: number) => authHeader({ labId, userId: 22, role: 'doctor' }),
    } as const;
    for (const [name, c] of Object.entries(CASES)) {
      const allowed = table.get(operationOf(name))!;
      for (const [kind, headersFor] of Object.entries(kinds)) {
        const request = c.request(nonexistent());
        const res = await t.app.inject({
          ...request,
          headers: { ...(await headersFor(own.labId)), ...(request.headers as object) },
        });
        if (allowed.has(kind)) expect(res.statusCode, `${name} as ${kind}: ${res.body}`).not.toBe(403);
        else expect(res.statusCode, `${name} as ${kind} is refused`).toBe(403);
      }
    }
  });

  const callers = {
    'a lab user': (labId: number) => authHeader({ labId, userId: 21 }),
    'a doctor': (labId: number) => authHeader({ labId, userId: 22, role: 'doctor' }),
    'an organization user': (labId: number) => authHeader({ labId, userId: 23, orgId: 9 }),
  } as const;

  const idsOf = (scope: Scope): Ids => {
    if (scope === 'nonexistent') return nonexistent();
    const lab = scope === 'own' ? own : other;
    return { ...lab, labId: scope === 'own' ? 0 : lab.labId };
  };

  /** The answer with the ids it was asked about replaced by their position, to compare two answers. */
  const normalized = (body: string, ids: Ids) => {
    let text = body;
    const all = [ids.labId, ...ids.patientIds, ...ids.billIds, ...ids.labFieldIds, ...ids.entityCreationIds];
    all.forEach((id, i) => {
      text = text.replaceAll(new RegExp(`\\b${id}\\b`, 'g'), `#${String.fromCharCode(65 + i)}`);
    });
    return text.replace(/"generated_at":"[^"]*"|"generatedAt":"[^"]*"/g, '');
  };

  it('answers every case without a principal with 401 and no data', async () => {
    for (const [name, c] of Object.entries(CASES)) {
      for (const scope of ['own', 'other', 'nonexistent'] as const) {
        const res = await t.app.inject(c.request(idsOf(scope)));
        expect(res.statusCode, `${name} ${scope}`).toBe(401);
        expect(res.body).not.toContain(other.marker);
        expect(res.body).not.toContain(own.marker);
      }
    }
  });

  for (const [callerName, headersFor] of Object.entries(callers)) {
    it(`lets ${callerName} neither read nor change another lab, and answers its ids like nonexistent ones`, async () => {
      const before = await labChecksum(t.db, other.labId);
      for (const [name, c] of Object.entries(CASES)) {
        const headers = await headersFor(own.labId);
        const answers: Partial<Record<Scope, { status: number; body: string }>> = {};
        for (const scope of c.scoped ? (['other', 'nonexistent', 'own'] as const) : (['own'] as const)) {
          const request = c.request(idsOf(scope));
          const res = await t.app.inject({
            ...request,
            headers: { ...headers, ...(request.headers as object) },
          });
          expect(res.statusCode, `${name} ${scope}: ${res.body}`).toBeLessThan(500);
          expect(res.body, `${name} ${scope} leaks another lab`).not.toContain(other.marker);
          answers[scope] = { status: res.statusCode, body: normalized(res.body, idsOf(scope)) };
        }
        if (c.scoped) {
          expect(answers.other, `${name}: another lab's ids must look nonexistent`).toEqual(
            answers.nonexistent,
          );
        }
      }
      expect(await labChecksum(t.db, other.labId)).toBe(before);
    });
  }

  it("keeps an organization user to its organization's rows", async () => {
    const headers = await authHeader({ labId: own.labId, userId: 24, orgId: 9 });
    const list = await t.app.inject({ url: `${LAB_FIELDS}?limit=200&is_resolved=true`, headers });
    const open = await t.app.inject({ url: `${LAB_FIELDS}?limit=200`, headers });
    const orgs = [...list.json().results, ...open.json().results].map((r: { org_id: number }) => r.org_id);
    expect(new Set(orgs)).toEqual(new Set([9]));
    const before = await labChecksum(t.db, own.labId);
    const ownHeaders = await authHeader({ labId: own.labId, userId: 3 });
    const otherOrgIds: number[] = [];
    for (const resolved of [true, false]) {
      const url = `${LAB_FIELDS}?limit=200&is_resolved=${resolved}&user_details_id=${own.patientIds[1]}`;
      const page = await t.app.inject({ url, headers: ownHeaders });
      otherOrgIds.push(...page.json().results.map((r: { id: number }) => r.id));
    }
    expect(otherOrgIds.length).toBeGreaterThan(0);
    const patch = await t.app.inject({
      method: 'PATCH',
      url: LAB_FIELDS,
      headers,
      payload: { ids: otherOrgIds, is_resolved: true },
    });
    expect(patch.json()).toEqual({ updated_count: 0 });
    // The refused attempt is audited; no row of the other organization changed.
    const withoutAudit = (sum: string) => sum.replace(/ActivityLog:[^;]*;/, '');
    expect(withoutAudit(await labChecksum(t.db, own.labId))).toBe(withoutAudit(before));
  });
});
