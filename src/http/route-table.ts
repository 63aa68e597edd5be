/**
 * Where every path belongs, as plain data: the service's own paths (the REST shim, /trpc, the API
 * docs, health and metrics), the legacy paths the service captures or flags on their way through,
 * and everything else, which is legacy's. The front door, the 405 answers, the rate-limit
 * exemptions, the proxy's capture and flags, shadow mode and the generated nginx edge all read this
 * table; decisions are taken on the canonical path (src/http/canonical-path.ts).
 */

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ShimPath {
  readonly path: string;
  /** The methods the shim serves; HEAD follows GET, OPTIONS goes to legacy, the rest are 405s. */
  readonly methods: readonly HttpMethod[];
  /** Whether legacy PY-3 answers the same path too (shadow mode compares those). */
  readonly legacyCounterpart: boolean;
}

const BASE = '/api-v3/account/missing-details';

export const SHIM_PATHS: readonly ShimPath[] = [
  {
    path: '/api-v3/registration/patients/missing-details-templates',
    methods: ['GET'],
    legacyCounterpart: true,
  },
  {
    path: '/api-v3/registration/patients/lab-missing-details-config',
    methods: ['GET', 'POST'],
    legacyCounterpart: true,
  },
  { path: `${BASE}/lab-fields`, methods: ['GET', 'PATCH'], legacyCounterpart: true },
  { path: `${BASE}/summary`, methods: ['GET'], legacyCounterpart: false },
  { path: `${BASE}/lab-fields/export.csv`, methods: ['GET'], legacyCounterpart: false },
  { path: `${BASE}/lab-fields/assignment`, methods: ['PATCH'], legacyCounterpart: false },
  { path: `${BASE}/placeholder-check`, methods: ['POST'], legacyCounterpart: false },
  { path: `${BASE}/settings`, methods: ['GET', 'PUT'], legacyCounterpart: false },
  { path: `${BASE}/patients`, methods: ['GET'], legacyCounterpart: false },
];

export const OPENAPI_PATH = '/api-v3/openapi.json';
export const DOCS_PREFIX = '/docs';
export const TRPC_PREFIX = '/trpc';
/** Prometheus' scrape path: served by each instance, never through the edge. */
export const METRICS_PATH = '/metrics';

/** The service's paths outside the shim: probes, metrics and the OpenAPI document. */
export const SERVICE_PATHS: readonly string[] = ['/health', '/health/live', METRICS_PATH, OPENAPI_PATH];
/** Everything below these is the service's. */
export const SERVICE_PREFIXES: readonly string[] = [TRPC_PREFIX, DOCS_PREFIX];

export type AugmentedName =
  | 'patient_save'
  | 'bill_update'
  | 'patient_read'
  | 'bill_read'
  | 'reports_list'
  | 'report_read';

export interface AugmentedPath {
  readonly name: AugmentedName;
  readonly kind: 'captured' | 'flagged';
  readonly method: 'GET' | 'POST';
  /** Matched against the canonical path; capture groups are the ids the augmentation reads. */
  readonly path: RegExp;
}

/** The legacy paths the service adds to (contract: "Proxied legacy paths"). */
export const AUGMENTED_PATHS: readonly AugmentedPath[] = [
  { name: 'patient_save', kind: 'captured', method: 'POST', path: /^\/api-v3\/registration\/patients\/new$/ },
  { name: 'bill_update', kind: 'captured', method: 'POST', path: /^\/api-v3\/finance\/bill\/(\d+)\/update$/ },
  { name: 'patient_read', kind: 'flagged', method: 'GET', path: /^\/api-v3\/registration\/patients\/(\d+)$/ },
  { name: 'bill_read', kind: 'flagged', method: 'GET', path: /^\/api-v3\/finance\/bill\/(\d+)$/ },
  { name: 'reports_list', kind: 'flagged', method: 'GET', path: /^\/api-v3\/reports$/ },
  { name: 'report_read', kind: 'flagged', method: 'GET', path: /^\/api-v3\/reports\/(\d+)$/ },
];

export function augmentedPath(name: AugmentedName): AugmentedPath {
  const found = AUGMENTED_PATHS.find((route) => route.name === name);
  if (!found) throw new Error(`no augmented path named ${name}`);
  return found;
}

export type PathOwner = 'service' | 'captured' | 'flagged' | 'legacy';

export function isServicePath(canonical: string): boolean {
  if (SERVICE_PATHS.includes(canonical)) return true;
  if (SHIM_PATHS.some((shim) => shim.path === canonical)) return true;
  return SERVICE_PREFIXES.some((prefix) => canonical === prefix || canonical.startsWith(`${prefix}/`));
}

/** Who answers a request for this canonical path and method. */
export function ownerOf(canonical: string, method: string): PathOwner {
  if (isServicePath(canonical)) return 'service';
  const augmented = AUGMENTED_PATHS.find((route) => route.method === method && route.path.test(canonical));
  return augmented ? augmented.kind : 'legacy';
}
