import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../../simulator/legacy-simulator.js';
import { openBridgeDatabase, seedCreations } from '../support/bridge-fixtures.js';
import { testDatabaseUrl } from '../support/env.js';
import { newLabId } from '../support/fixtures.js';
import { type ReceivedSpan, startOtlpReceiver } from '../support/otlp-receiver.js';
import {
  eventually,
  PROCESS_TEST_TIMEOUT_MS,
  type ServiceProcess,
  startServiceProcess,
  statusOf,
} from '../support/service-process.js';

/** The service process with the tracing preload, exporting to an in-process OTLP/HTTP receiver. */

let simulator: LegacySimulator;
let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
let service: ServiceProcess;

beforeAll(async () => {
  simulator = await startLegacySimulator();
  receiver = await startOtlpReceiver();
  service = await startServiceProcess(
    {
      DATABASE_URL: testDatabaseUrl(),
      LEGACY_PY3_URL: simulator.py3Url,
      LEGACY_PY2_URL: simulator.py2Url,
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_SERVICE_NAME: 'missing-details-test',
    },
    { preload: ['./src/tracing.ts'] },
  );
  await eventually(
    'readiness',
    async () => ((await statusOf(`${service.url}/health`)) === 200 ? true : undefined),
    service,
  );
}, PROCESS_TEST_TIMEOUT_MS);

afterAll(async () => {
  service?.kill();
  await receiver?.close();
  await simulator?.close();
});

async function configurePlaceholder(labId: number): Promise<void> {
  const connection = await mysql.createConnection(testDatabaseUrl().replace(/^mariadb:/, 'mysql:'));
  try {
    await connection.execute(
      `INSERT INTO LabMissingDetailsConfiguration
         (lab_id, field_id, field_name, field_value, field_module, field_category, is_disabled, created_at, updated_at)
       VALUES (?, 1, 'email', 'noemail@lab.in', 'patient', 'text', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`,
      [labId],
    );
  } finally {
    await connection.end();
  }
}

const isSql = (span: ReceivedSpan) =>
  typeof span.attributes['db.statement'] === 'string' || typeof span.attributes['db.query.text'] === 'string';
const sqlOf = (span: ReceivedSpan) =>
  String(span.attributes['db.statement'] ?? span.attributes['db.query.text']);

describe('tracing (OTEL_* configured)', () => {
  it(
    'exports one trace for a captured patient save: the inbound request, the legacy call and the capture SQL',
    async () => {
      const labId = newLabId();
      const patientId = newLabId();
      await configurePlaceholder(labId);
      simulator.state.sessions.set(`trace-${labId}`, {
        lab_id: labId,
        user_id: 7,
        is_doctor: false,
        org_id: null,
      });
      simulator.state.py3Requests.length = 0;

      const res = await fetch(`${service.url}/api-v3/registration/patients/new`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: `sessionid=trace-${labId}` },
        body: JSON.stringify({ user_details_id: patientId, full_name: 'Asha Rao', email: 'noemail@lab.in' }),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ has_missing_fields: true });

      const inbound = await eventually(
        'the inbound request span',
        async () =>
          receiver.spans.find(
            (span) =>
              span.kind === 2 &&
              String(span.attributes['url.path'] ?? span.attributes['http.target']).includes('/patients/new'),
          ),
        service,
      );
      const trace = await eventually(
        'the capture SQL span in the same trace',
        async () => {
          const spans = receiver.spans.filter((span) => span.traceId === inbound.traceId);
          return spans.some((span) => isSql(span) && /LabMissingDetails/.test(sqlOf(span)))
            ? spans
            : undefined;
        },
        service,
      );
      const legacyCalls = trace.filter((span) => span.kind === 3 && !isSql(span));
      expect(legacyCalls.length, trace.map((s) => s.name).join(', ')).toBeGreaterThanOrEqual(2); // session check + proxied save
      expect(
        trace.some(
          (span) => isSql(span) && /INSERT/i.test(sqlOf(span)) && /LabMissingDetails/.test(sqlOf(span)),
        ),
      ).toBe(true);

      // No patient value leaves in a span: statements are masked.
      expect(JSON.stringify(trace)).not.toContain(String(patientId));
      expect(JSON.stringify(trace)).not.toContain('noemail@lab.in');

      const seenByLegacy = simulator.state.py3Requests.map((request) =>
        String(request.headers.traceparent ?? ''),
      );
      expect(seenByLegacy.length).toBeGreaterThanOrEqual(2);
      for (const traceparent of seenByLegacy)
        expect(traceparent).toMatch(new RegExp(`^00-${inbound.traceId}-[0-9a-f]{16}-0[01]$`));
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'keeps query values out of spans, inbound and proxied alike: names stay, values become REDACTED',
    async () => {
      const res = await fetch(`${service.url}/api-v3/legacy-search?name=Asha%20Rao&page=2`);
      await res.body?.cancel();
      const spans = await eventually(
        'the proxied search spans',
        async () => {
          const inbound = receiver.spans.find(
            (span) => span.kind === 2 && span.attributes['url.path'] === '/api-v3/legacy-search',
          );
          const outbound =
            inbound && receiver.spans.find((span) => span.traceId === inbound.traceId && span.kind === 3);
          return inbound && outbound ? [inbound, outbound] : undefined;
        },
        service,
      );
      for (const span of spans) expect(span.attributes['url.query']).toBe('name=REDACTED&page=REDACTED');
      expect(JSON.stringify(receiver.spans)).not.toContain('Asha');
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'the standalone worker sends PY-2 a traceparent of the delivery span it exports',
    async () => {
      const { url, db } = await openBridgeDatabase('tracing');
      const worker = await startServiceProcess(
        {
          DATABASE_URL: url,
          LEGACY_PY2_URL: simulator.py2Url,
          BRIDGE_POLL_INTERVAL_MS: '50',
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_BSP_SCHEDULE_DELAY: '100',
        },
        { entry: 'legacy-bridge/main.ts', portVariable: 'WORKER_PORT', preload: ['./src/tracing.ts'] },
      );
      try {
        const [creation] = await seedCreations(db, { count: 1 });
        const call = await eventually(
          'the PY-2 call',
          async () => simulator.state.py2Calls.find((c) => c.idempotencyKey === creation?.idempotencyKey),
          worker,
        );
        const [, traceId, spanId] = String(call.traceparent).split('-');
        expect(call.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
        const exported = await eventually(
          'the PY-2 client span',
          async () => receiver.spans.find((span) => span.traceId === traceId && span.spanId === spanId),
          worker,
        );
        expect(exported).toMatchObject({ kind: 3, name: 'POST' });
      } finally {
        worker.kill();
        await db.close();
      }
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
