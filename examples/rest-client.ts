/**
 * An old REST client's typed access to the /api-v3 shim: `api-v3.d.ts` is generated from the
 * served OpenAPI document (`npm run openapi:types`, or `npx openapi-typescript
 * http://host/api-v3/openapi.json -o api-v3.d.ts` in the client's own repository), and
 * openapi-fetch checks paths, query parameters, bodies and answers against it.
 */
import createClient from 'openapi-fetch';
import type { components, paths } from './api-v3.js';

export type ShimClient = ReturnType<typeof createShimClient>;
export type ShimError = components['schemas']['ErrorEnvelope'];

/** `auth` is a bearer token, or the legacy session cookie's value. */
export function createShimClient(options: {
  baseUrl: string;
  auth: { token: string } | { sessionId: string };
}) {
  const headers =
    'token' in options.auth
      ? { authorization: `Bearer ${options.auth.token}` }
      : { cookie: `sessionid=${options.auth.sessionId}` };
  return createClient<paths>({ baseUrl: options.baseUrl, headers });
}

/** Throws the service's error envelope as an Error naming the code and the first problem. */
function failure(error: ShimError): Error {
  const issue = error.error.issues?.[0];
  return new Error(`${error.error.code}: ${error.error.message}${issue ? ` (${issue.path})` : ''}`);
}

export async function billTemplateNames(client: ShimClient): Promise<string[]> {
  const { data, error } = await client.GET('/api-v3/registration/patients/missing-details-templates', {
    params: { query: { module: 'bill' } },
  });
  if (error) throw failure(error);
  return data.templates.map((template) => template.name);
}

/** Sets placeholders; a retry with the same key returns the first answer instead of saving again. */
export async function setPlaceholders(
  client: ShimClient,
  placeholders: Array<{ field_id: number; field_value: string }>,
  idempotencyKey?: string,
) {
  const { data, error } = await client.POST('/api-v3/registration/patients/lab-missing-details-config', {
    body: { configs: placeholders },
    params: { header: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {} },
  });
  if (error) throw failure(error);
  return data;
}

/** Resolves every open missing detail of one field (newest page first), returns the service's count. */
export async function resolveOpenFieldsNamed(client: ShimClient, fieldName: string): Promise<number> {
  const ids: number[] = [];
  let cursor: string | undefined;
  do {
    const { data, error } = await client.GET('/api-v3/account/missing-details/lab-fields', {
      params: { query: { is_resolved: 'false', limit: '200', ...(cursor ? { cursor } : {}) } },
    });
    if (error) throw failure(error);
    ids.push(...data.results.filter((row) => row.field_name === fieldName).map((row) => row.id));
    cursor = data.next_cursor ?? undefined;
  } while (cursor);
  if (ids.length === 0) return 0;
  const { data, error } = await client.PATCH('/api-v3/account/missing-details/lab-fields', {
    body: { ids, is_resolved: true },
  });
  if (error) throw failure(error);
  return data.updated_count;
}
