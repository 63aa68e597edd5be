import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

/**
 * A simulated legacy system that follows docs/legacy-contract.md: the PY-3 app (sessions,
 * patients, bills, reports, and an echo route for passthrough checks) and the PY-2 entity
 * controller. Used by the tests over real HTTP and by `npm run dev`. Faults are set on `state`.
 */

export interface SessionInfo {
  lab_id: number;
  user_id: number;
  is_doctor: boolean;
  org_id: number | null;
}

export interface Fault {
  /** Only requests whose path starts with this prefix (all when absent). */
  pathPrefix?: string;
  /** Answer with this status and a JSON error body. */
  status?: number;
  /** Wait this long before answering (or forever with Infinity). */
  delayMs?: number;
  /** Destroy the socket instead of answering. */
  reset?: boolean;
  /** How many requests it applies to before it is spent (all when absent). */
  times?: number;
}

export interface Py2Call {
  idempotencyKey: string | undefined;
  authorization: string | undefined;
  /** The W3C trace context the caller sent, when it traces (docs/tracing.md). */
  traceparent: string | undefined;
  body: Record<string, unknown>;
  at: number;
}

export interface SimulatorState {
  sessions: Map<string, SessionInfo>;
  patients: Map<number, Record<string, unknown>>;
  bills: Map<number, Record<string, unknown>>;
  reports: Map<number, { report_id: number; user_details_id: number; [key: string]: unknown }>;
  py3Faults: Fault[];
  py3Requests: Array<{ method: string; url: string; headers: Record<string, unknown> }>;
  py2Faults: Fault[];
  py2Calls: Py2Call[];
  /** object_id already handed out for an Idempotency-Key. */
  py2Objects: Map<string, number>;
  /** Deliveries of one key that were in flight at the same time, at most (1 when never concurrent). */
  py2MaxConcurrentPerKey: number;
  py2Inflight: Map<string, number>;
  nextUserDetailsId: number;
  nextObjectId: number;
  /** Legacy's answers to the shim's GET paths (by path, query ignored), for shadow mode; 404 when unset. */
  shadowFixtures: Map<string, unknown>;
}

export interface LegacySimulator {
  py3Url: string;
  py2Url: string;
  state: SimulatorState;
  py3: FastifyInstance;
  py2: FastifyInstance;
  /** Stops PY-2 from accepting connections (refused), keeping its state. */
  stopPy2(): Promise<void>;
  /** Starts PY-2 again on the same port. */
  startPy2(): Promise<void>;
  close(): Promise<void>;
}

export interface SimulatorOptions {
  py3Port?: number;
  py2Port?: number;
  host?: string;
  py2Token?: string;
}

function newState(): SimulatorState {
  return {
    sessions: new Map(),
    patients: new Map(),
    bills: new Map(),
    reports: new Map(),
    py3Faults: [],
    py3Requests: [],
    py2Faults: [],
    py2Calls: [],
    py2Objects: new Map(),
    py2MaxConcurrentPerKey: 0,
    py2Inflight: new Map(),
    nextUserDetailsId: 1000,
    nextObjectId: 900,
    shadowFixtures: new Map(),
  };
}

async function applyFault(faults: Fault[], request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
  const index = faults.findIndex((f) => !f.pathPrefix || request.url.startsWith(f.pathPrefix));
  if (index < 0) return false;
  const fault = faults[index]!;
  if (fault.times !== undefined) {
    fault.times -= 1;
    if (fault.times <= 0) faults.splice(index, 1);
  }
  if (fault.delayMs) {
    if (fault.delayMs === Number.POSITIVE_INFINITY) {
      await new Promise<void>((resolve) => request.raw.socket.once('close', () => resolve()));
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
  }
  if (fault.reset) {
    request.raw.socket.destroy();
    return true;
  }
  if (fault.status) {
    await reply.code(fault.status).send({ error: `simulated failure ${fault.status}` });
    return true;
  }
  return false;
}

function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name) cookies.set(name, rest.join('='));
  }
  return cookies;
}

function entityId(value: unknown): number | null {
  if (value && typeof value === 'object' && 'id' in value) {
    const id = Number((value as { id: unknown }).id);
    return Number.isInteger(id) && id > 0 ? id : null;
  }
  return null;
}

function buildPy3(state: SimulatorState): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024, forceCloseConnections: true });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.addHook('onRequest', async (request, reply) => {
    state.py3Requests.push({ method: request.method, url: request.url, headers: { ...request.headers } });
    if (await applyFault(state.py3Faults, request, reply)) return reply;
  });

  app.get('/api-v3/account/session', async (request, reply) => {
    const sessionId = parseCookies(request.headers.cookie).get('sessionid');
    const session = sessionId ? state.sessions.get(sessionId) : undefined;
    if (!session) return reply.code(401).send({ detail: 'Authentication credentials were not provided.' });
    return session;
  });

  app.post('/api-v3/registration/patients/new', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const requested = Number(body.user_details_id);
    const userDetailsId =
      Number.isInteger(requested) && requested > 0 ? requested : state.nextUserDetailsId++;
    const orgId = entityId(body.organization);
    state.patients.set(userDetailsId, {
      ...state.patients.get(userDetailsId),
      ...body,
      user_details_id: userDetailsId,
      org_id: orgId,
    });
    reply.header('set-cookie', ['csrftoken=sim-csrf; Path=/', `last_patient=${userDetailsId}; Path=/`]);
    return { status: 'success', user_details_id: userDetailsId, org_id: orgId };
  });

  app.post<{ Params: { labBillId: string } }>(
    '/api-v3/finance/bill/:labBillId/update',
    async (request, reply) => {
      const billId = Number(request.params.labBillId);
      const body = (request.body ?? {}) as Record<string, unknown>;
      const userDetailsId = Number(body.user_details_id);
      if (
        !Number.isInteger(billId) ||
        billId <= 0 ||
        !Number.isInteger(userDetailsId) ||
        userDetailsId <= 0
      ) {
        return reply
          .code(400)
          .send({ status: 'error', message: 'user_details_id and a numeric bill id are required' });
      }
      const orgId = (state.patients.get(userDetailsId)?.org_id as number | null | undefined) ?? null;
      state.bills.set(billId, {
        ...state.bills.get(billId),
        ...body,
        bill_id: billId,
        user_details_id: userDetailsId,
      });
      return { status: 'success', bill_id: billId, user_details_id: userDetailsId, org_id: orgId };
    },
  );

  app.get<{ Params: { id: string } }>('/api-v3/registration/patients/:id', async (request, reply) => {
    const patient = state.patients.get(Number(request.params.id));
    if (!patient) return reply.code(404).send({ detail: 'Not found.' });
    return patient;
  });

  app.get<{ Params: { id: string } }>('/api-v3/finance/bill/:id', async (request, reply) => {
    const bill = state.bills.get(Number(request.params.id));
    if (!bill) return reply.code(404).send({ detail: 'Not found.' });
    return bill;
  });

  app.get('/api-v3/reports', async () => ({ results: [...state.reports.values()] }));

  app.get<{ Params: { id: string } }>('/api-v3/reports/:id', async (request, reply) => {
    const report = state.reports.get(Number(request.params.id));
    if (!report) return reply.code(404).send({ detail: 'Not found.' });
    return report;
  });

  // The REST shim's reads as legacy answers them (the service serves these itself; shadow mode compares).
  for (const path of [
    '/api-v3/registration/patients/missing-details-templates',
    '/api-v3/registration/patients/lab-missing-details-config',
    '/api-v3/account/missing-details/lab-fields',
  ]) {
    app.get(path, async (_request, reply) => {
      const fixture = state.shadowFixtures.get(path);
      if (fixture === undefined) return reply.code(404).send({ detail: 'Not found.' });
      return fixture;
    });
  }

  // Everything else: echo what arrived, so passthrough can be checked byte for byte.
  app.all('/*', async (request, reply) => {
    const url = new URL(request.url, 'http://sim');
    const status = Number(url.searchParams.get('status') ?? 200);
    reply.header('set-cookie', ['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
    reply.header('x-legacy', 'py3');
    const body = Buffer.isBuffer(request.body)
      ? request.body
      : Buffer.from(request.body ? JSON.stringify(request.body) : '');
    return reply.code(status >= 100 && status < 600 ? status : 200).send({
      method: request.method,
      url: request.url,
      headers: request.headers,
      body_base64: body.toString('base64'),
    });
  });
  return app;
}

function buildPy2(state: SimulatorState, token: string): FastifyInstance {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.post('/registration/api/missing-field-entity', async (request, reply) => {
    const key = request.headers['idempotency-key'] as string | undefined;
    const body = (request.body ?? {}) as Record<string, unknown>;
    state.py2Calls.push({
      idempotencyKey: key,
      authorization: request.headers.authorization,
      traceparent: request.headers.traceparent as string | undefined,
      body,
      at: Date.now(),
    });
    const inflightKey = key ?? '';
    const inflight = (state.py2Inflight.get(inflightKey) ?? 0) + 1;
    state.py2Inflight.set(inflightKey, inflight);
    state.py2MaxConcurrentPerKey = Math.max(state.py2MaxConcurrentPerKey, inflight);
    try {
      if (await applyFault(state.py2Faults, request, reply)) return reply;
      if (request.headers.authorization !== `Bearer ${token}`)
        return reply.code(401).send({ error: 'bad token' });
      if (!key) return reply.code(400).send({ error: 'Idempotency-Key is required' });
      const known = ['referral_doctor', 'organization', 'insurance', 'group'];
      if (
        !Number.isInteger(body.lab_id) ||
        typeof body.name !== 'string' ||
        !known.includes(String(body.entity_type))
      ) {
        return reply.code(400).send({ error: 'lab_id, name and a known entity_type are required' });
      }
      const existing = state.py2Objects.get(key);
      if (existing !== undefined) return reply.code(200).send({ object_id: existing });
      const objectId = state.nextObjectId++;
      state.py2Objects.set(key, objectId);
      return reply.code(201).send({ object_id: objectId });
    } finally {
      state.py2Inflight.set(inflightKey, (state.py2Inflight.get(inflightKey) ?? 1) - 1);
    }
  });
  return app;
}

export async function startLegacySimulator(options: SimulatorOptions = {}): Promise<LegacySimulator> {
  const host = options.host ?? '127.0.0.1';
  const state = newState();
  const py2Token = options.py2Token ?? 'development-py2-token';
  const py3 = buildPy3(state);
  let py2 = buildPy2(state, py2Token);
  await py3.listen({ host, port: options.py3Port ?? 0 });
  await py2.listen({ host, port: options.py2Port ?? 0 });
  const py3Port = (py3.server.address() as AddressInfo).port;
  const py2Port = (py2.server.address() as AddressInfo).port;
  let py2Running = true;
  const simulator: LegacySimulator = {
    py3Url: `http://${host}:${py3Port}`,
    py2Url: `http://${host}:${py2Port}`,
    state,
    py3,
    get py2() {
      return py2;
    },
    async stopPy2() {
      if (!py2Running) return;
      py2Running = false;
      await py2.close();
    },
    async startPy2() {
      if (py2Running) return;
      py2 = buildPy2(state, py2Token);
      await py2.listen({ host, port: py2Port });
      py2Running = true;
    },
    async close() {
      await Promise.all([py3.close(), py2Running ? py2.close() : undefined]);
    },
  };
  return simulator;
}
