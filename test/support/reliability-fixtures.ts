import type { FastifyInstance, InjectOptions } from 'fastify';
import { appRouter } from '../../routers/app.router.js';
import type { Database } from '../../src/db/database.js';
import { authHeader, FIELD } from './fixtures.js';

/** Every tRPC procedure of the router, as `area.name`, with its kind. */
export function trpcProcedures(): Map<string, 'query' | 'mutation' | 'subscription'> {
  const procedures = appRouter._def.procedures as unknown as Record<string, { _def: { type: string } }>;
  return new Map(
    Object.entries(procedures).map(([path, p]) => [
      path,
      p._def.type as 'query' | 'mutation' | 'subscription',
    ]),
  );
}

/** Every (path, methods) of the route table, read from fastify's tree (`printRoutes`). */
export function routeTable(app: FastifyInstance): { path: string; methods: string[] }[] {
  const lines = app.printRoutes({ commonPrefix: false }).split('\n').filter(Boolean);
  const stack: string[] = [];
  const routes: { path: string; methods: string[] }[] = [];
  for (const line of lines) {
    const at = line.indexOf('── ');
    if (at === -1) continue;
    const depth = Math.floor(at / 4);
    const match = /^(.*?)(?: \(([^)]*)\))?$/.exec(line.slice(at + 3));
    if (!match) continue;
    const segment = match[1] ?? '';
    stack.length = depth;
    const path = (stack[depth - 1] ?? '') + segment;
    stack[depth] = path;
    if (match[2]) routes.push({ path, methods: match[2].split(', ').map((m) => m.trim()) });
  }
  return routes;
}

/** A tRPC call as an inject request: queries by GET with `input`, mutations by POST. */
export function trpcRequest(path: string, kind: string, input: unknown): InjectOptions {
  if (kind === 'mutation') return { method: 'POST', url: `/trpc/${path}`, payload: input as object };
  const query = input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`;
  return { method: 'GET', url: `/trpc/${path}${query}` };
}

/**
 * A fingerprint of every row a lab owns, across all tables with a `lab_id`: any write that
 * reaches the lab changes it.
 */
export async function labChecksum(db: Database, labId: number): Promise<string> {
  const em = db.em();
  const columns = await em.execute<{ table_name: string; column_name: string }[]>(
    `SELECT table_name AS table_name, column_name AS column_name FROM information_schema.columns
     WHERE table_schema = DATABASE() AND table_name IN (
       SELECT table_name FROM information_schema.columns WHERE table_schema = DATABASE() AND column_name = 'lab_id')
     ORDER BY table_name, ordinal_position`,
  );
  const byTable = new Map<string, string[]>();
  for (const c of columns) byTable.set(c.table_name, [...(byTable.get(c.table_name) ?? []), c.column_name]);
  const parts: string[] = [];
  for (const [table, cols] of [...byTable].sort(([a], [b]) => a.localeCompare(b))) {
    const row = cols.map((c) => `IFNULL(CAST(\`${c}\` AS CHAR), '~')`).join(', ');
    const [sum] = await em.execute<{ n: number; x: string; s: string }[]>(
      `SELECT COUNT(*) AS n, BIT_XOR(CRC32(CONCAT_WS('|', ${row}))) AS x, SUM(CRC32(CONCAT_WS('|', ${row}))) AS s
       FROM \`${table}\` WHERE lab_id = ?`,
      [labId],
    );
    parts.push(`${table}:${sum?.n}:${sum?.x}:${sum?.s}`);
  }
  return parts.join(';');
}

export interface SeededLab {
  labId: number;
  /** A text unique to this lab in every placeholder it stores. */
  marker: string;
  patientIds: number[];
  billIds: number[];
  labFieldIds: number[];
  entityCreationIds: number[];
}

async function call(app: FastifyInstance, headers: Record<string, string>, request: InjectOptions) {
  const res = await app.inject({ ...request, headers: { ...headers, ...(request.headers as object) } });
  if (res.statusCode >= 300) throw new Error(`seed ${request.url} failed: ${res.statusCode} ${res.body}`);
  return res.json();
}

/**
 * Gives a lab configs (text, local entity and a queued PY-2 entity), open patient and bill rows in
 * two organizations, through the public API as the lab's own user would.
 */
export async function seedLab(app: FastifyInstance, labId: number, base: number): Promise<SeededLab> {
  const marker = `lab-${labId}-marker`;
  const headers = await authHeader({ labId, userId: 3 });
  await call(app, headers, {
    method: 'POST',
    url: '/api-v3/registration/patients/lab-missing-details-config',
    payload: {
      configs: [
        { field_id: FIELD.email, field_value: `${marker}@lab.in` },
        { field_id: FIELD.sample_collector, field_value: `${marker} collector` },
        { field_id: FIELD.referral_doctor, field_value: `Dr. ${marker}` },
      ],
    },
  });
  const patientIds = [base + 1, base + 2];
  const billIds = [base + 11, base + 12];
  for (const [i, orgId] of [9, 10].entries()) {
    await call(
      app,
      headers,
      trpcRequest('capture.patient', 'mutation', {
        userDetailsId: patientIds[i],
        orgId,
        values: { email: `${marker}@lab.in` },
      }),
    );
    await call(
      app,
      headers,
      trpcRequest('capture.bill', 'mutation', {
        userDetailsId: patientIds[i],
        billId: billIds[i],
        orgId,
        values: { sample_collector: `${marker} collector` },
      }),
    );
  }
  const list = await call(app, headers, {
    method: 'GET',
    url: '/api-v3/account/missing-details/lab-fields?limit=200',
  });
  const creations = await call(app, headers, trpcRequest('entityCreations.list', 'query', {}));
  return {
    labId,
    marker,
    patientIds,
    billIds,
    labFieldIds: list.results.map((r: { id: number }) => r.id),
    entityCreationIds: creations.result.data.items.map((c: { id: number }) => c.id),
  };
}
