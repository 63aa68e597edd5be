/**
 * A TypeScript frontend's client of the service's tRPC API. `AppRouter` comes from the package's
 * `missing-details-service/client` export, which holds types only: nothing of the server reaches
 * a browser bundle (`import type` is erased at build time).
 *
 * Try it against `npm run dev`: `MD_URL=http://127.0.0.1:3000 MD_TOKEN=$(npm run -s token -- --lab 1 --user 7) npx tsx examples/trpc-client.ts`
 */
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from 'missing-details-service/client';

export type MissingDetailsClient = ReturnType<typeof createMissingDetailsClient>;

export function createMissingDetailsClient(options: { baseUrl: string; token: string }) {
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: `${options.baseUrl}/trpc`,
        headers: () => ({ authorization: `Bearer ${options.token}` }),
      }),
    ],
  });
}

/** Listing: the names of the active patient templates, in the order the UI shows them. */
export async function patientTemplateNames(client: MissingDetailsClient): Promise<string[]> {
  const { templates } = await client.templates.list.query({ module: 'patient' });
  return templates.map((template) => template.name);
}

/**
 * Listing and resolving: every open missing detail of one field, page by page, marked resolved.
 * Returns how many rows the service counted.
 */
export async function resolveOpenFieldsNamed(
  client: MissingDetailsClient,
  fieldName: string,
): Promise<number> {
  const ids: number[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.labFields.list.query({ isResolved: false, limit: 200, cursor });
    ids.push(...page.results.filter((row) => row.fieldName === fieldName).map((row) => row.id));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  if (ids.length === 0) return 0;
  const { updatedCount } = await client.labFields.resolve.mutate({ ids, isResolved: true });
  return updatedCount;
}

export type SaveOutcome =
  | { ok: true; activeConfigs: number }
  | { ok: false; code: string; problems: string[] };

/**
 * Error handling: a save the service refuses comes back as a TRPCClientError whose `data` holds the
 * code and, for invalid input, one issue per problem (`configs.0.fieldValue: …`).
 */
export async function savePlaceholder(
  client: MissingDetailsClient,
  fieldId: number,
  fieldValue: string,
): Promise<SaveOutcome> {
  try {
    const { configs } = await client.configs.save.mutate({ configs: [{ fieldId, fieldValue }] });
    return { ok: true, activeConfigs: configs.length };
  } catch (error) {
    if (!(error instanceof TRPCClientError)) throw error;
    const { data } = error as TRPCClientError<AppRouter>;
    return {
      ok: false,
      code: data?.code ?? 'UNKNOWN',
      problems: (data?.issues ?? []).map((issue) => `${issue.path}: ${issue.message}`),
    };
  }
}

async function main(): Promise<void> {
  const baseUrl = process.env.MD_URL ?? 'http://127.0.0.1:3000';
  const token = process.env.MD_TOKEN;
  if (!token) throw new Error('set MD_TOKEN to a bearer token (npm run token)');
  const client = createMissingDetailsClient({ baseUrl, token });
  process.stdout.write(`patient templates: ${(await patientTemplateNames(client)).join(', ')}\n`);
  process.stdout.write(`an empty placeholder: ${JSON.stringify(await savePlaceholder(client, 1, ' '))}\n`);
  process.stdout.write(`resolved email rows: ${await resolveOpenFieldsNamed(client, 'email')}\n`);
}

if (process.argv[1] === new URL(import.meta.url).pathname) await main();
