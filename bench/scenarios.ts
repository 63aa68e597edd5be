import type mysql from 'mysql2/promise';
import { startEdge } from '../src/edge/nginx-runner.js';
import { encodeCursor } from '../src/services/lab-fields.service.js';
import { BENCH_FIELDS } from './bench-fields.js';
import type { DatasetInfo } from './dataset.js';
import { type HttpCall, interleaved, median, percentile, type SequentialClient, throughput } from './load.js';
import { patients } from './patients-scenario.js';
import { type Child, freePort, rssMb } from './processes.js';
import { result, type ScenarioResult } from './report.js';
import { countCaptureStatements } from './statements.js';
import { summary } from './summary-scenario.js';

/**
 * How long and how often each scenario measures. Many short interleaved rounds beat a few long ones on
 * a noisy machine: the median of the per-round ratios shrugs off the rounds a neighbour's burst hit.
 * The quick profile keeps the whole run under 3 minutes.
 */
export interface Settings {
  rounds: number;
  /** Seconds of each autocannon sample, and of the warm-up before the first. */
  seconds: number;
  warmUpSeconds: number;
  connections: number;
  /** Sequential calls per latency sample. */
  latencyCalls: number;
  /** Sequential captures per timed sample. */
  captures: number;
  /** Sequential 5,000-id PATCHes per timed sample. */
  bulkPatches: number;
  rssLoadSeconds: number;
  rssSettleSeconds: number;
}

export const SETTINGS: Readonly<Record<'full' | 'quick', Settings>> = {
  full: {
    rounds: 10,
    seconds: 3,
    warmUpSeconds: 3,
    connections: 8,
    latencyCalls: 200,
    captures: 40,
    bulkPatches: 2,
    rssLoadSeconds: 60,
    rssSettleSeconds: 30,
  },
  quick: {
    rounds: 5,
    seconds: 1,
    warmUpSeconds: 1,
    connections: 8,
    latencyCalls: 80,
    captures: 15,
    bulkPatches: 1,
    rssLoadSeconds: 15,
    rssSettleSeconds: 8,
  },
};

export interface BenchEnv {
  settings: Settings;
  dataset: DatasetInfo;
  databaseUrl: string;
  /** The benchmark's own connections, for set-up and checks (never timed). */
  pool: mysql.Pool;
  serviceUrl: string;
  baselineUrl: string;
  py3Url: string;
  /** Bearer header of a lab user of the large lab. */
  auth: Record<string, string>;
  /** Bearer header of the same user in another lab (the labs of the writing scenarios). */
  authFor(labId: number): Promise<Record<string, string>>;
  userId: number;
  client: SequentialClient;
  /** Starts a fresh service process (the memory scenario wants one that served nothing yet). */
  startService(): Promise<{ url: string; child: Child }>;
  log(line: string): void;
}

type Spec = Pick<ScenarioResult, 'name' | 'goal' | 'unit' | 'better'>;

export interface Scenario {
  name: string;
  /** Which service process it measures: the run's shared one, one it starts itself, or none (in-process). */
  service: 'shared' | 'own' | 'none';
  specs: Spec[];
  run(env: BenchEnv): Promise<ScenarioResult[]>;
}

const LIST_PATH = '/api-v3/account/missing-details/lab-fields';
const fmt = (n: number, digits = 2) => n.toFixed(digits);
const ratios = (rounds: Array<{ a: number; b: number }>) => rounds.map((r) => r.a / r.b);
const roundsText = (values: number[]) => values.map((v) => fmt(v)).join(', ');

function listCall(env: BenchEnv, query = ''): HttpCall {
  return { url: `${env.serviceUrl}${LIST_PATH}${query}`, headers: env.auth };
}

function baselineListCall(env: BenchEnv, query = ''): HttpCall {
  return { url: `${env.baselineUrl}/lab-fields?lab_id=${env.dataset.largeLabId}${query}` };
}

function trpcListCall(env: BenchEnv): HttpCall {
  const input = encodeURIComponent(JSON.stringify({ limit: 50 }));
  return { url: `${env.serviceUrl}/trpc/labFields.list?input=${input}`, headers: env.auth };
}

/** Throughput of A over B, interleaved; the median of the per-round ratios. */
async function throughputRatio(env: BenchEnv, label: string, a: HttpCall, b: HttpCall) {
  const options = { connections: env.settings.connections, seconds: env.settings.seconds };
  const warmUp = { connections: env.settings.connections, seconds: env.settings.warmUpSeconds };
  const rounds = await interleaved(
    env.settings.rounds,
    async () => (await throughput(a, options)).requestsPerSecond,
    async () => (await throughput(b, options)).requestsPerSecond,
    (round, x, y) => env.log(`  ${label} round ${round}: ${fmt(x, 0)} vs ${fmt(y, 0)} req/s`),
    { a: () => throughput(a, warmUp), b: () => throughput(b, warmUp) },
  );
  const perRound = ratios(rounds);
  return {
    value: median(perRound),
    detail: `${fmt(median(rounds.map((r) => r.a)), 0)} vs ${fmt(median(rounds.map((r) => r.b)), 0)} req/s; rounds ${roundsText(perRound)}`,
  };
}

/** Same answer from the service and the baseline, or the comparison means nothing. */
async function sameListAnswer(env: BenchEnv): Promise<void> {
  const service = await env.client.json<{ results: Array<{ id: number }>; next_cursor: string | null }>(
    listCall(env),
  );
  const baseline = await env.client.json<{ results: Array<{ id: number }>; next_cursor: string | null }>(
    baselineListCall(env),
  );
  if (service.results.length !== 50 || JSON.stringify(service) !== JSON.stringify(baseline)) {
    throw new Error(
      `the service's first page (${service.results.length} rows) differs from the baseline's (${baseline.results.length} rows)`,
    );
  }
}

export const restList: Scenario = {
  name: 'rest-list',
  service: 'shared',
  specs: [{ name: 'rest-list', goal: 0.9, unit: 'ratio', better: 'higher' }],
  async run(env) {
    await sameListAnswer(env);
    const { value, detail } = await throughputRatio(env, 'rest-list', listCall(env), baselineListCall(env));
    return [result(this.specs[0]!, value, detail)];
  },
};

export const trpcList: Scenario = {
  name: 'trpc-list',
  service: 'shared',
  specs: [{ name: 'trpc-list', goal: 0.8, unit: 'ratio', better: 'higher' }],
  async run(env) {
    const page = await env.client.json<{ result: { data: { results: unknown[] } } }>(trpcListCall(env));
    if (page.result.data.results.length !== 50) throw new Error('labFields.list did not return a page of 50');
    const { value, detail } = await throughputRatio(
      env,
      'trpc-list',
      trpcListCall(env),
      baselineListCall(env),
    );
    return [result(this.specs[0]!, value, detail)];
  },
};

/** The cursor that starts the resolved list `depth` rows deep, as the previous page would hand it out. */
async function cursorAt(env: BenchEnv, depth: number): Promise<string> {
  const [rows] = (await env.pool.query(
    `SELECT DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f') AS created_at, id FROM LabMissingDetails
     WHERE lab_id = ? AND is_resolved = 1 ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?`,
    [env.dataset.largeLabId, depth - 1],
  )) as unknown as [Array<{ created_at: string; id: number }>];
  const row = rows[0];
  if (!row) throw new Error(`the large lab's resolved list is not ${depth} rows deep`);
  return encodeCursor({ createdAt: row.created_at, id: Number(row.id) });
}

export const deepPage: Scenario = {
  name: 'deep-page',
  service: 'shared',
  specs: [{ name: 'deep-page', goal: 2.0, unit: 'ratio', better: 'lower' }],
  async run(env) {
    const depth = env.dataset.deepPageDepth;
    const cursor = await cursorAt(env, depth);
    const first = listCall(env, '?is_resolved=true');
    const deep = listCall(env, `?is_resolved=true&cursor=${cursor}`);
    const page = await env.client.json<{ results: unknown[] }>(deep);
    if (page.results.length !== 50)
      throw new Error(`the page ${depth} rows deep has ${page.results.length} rows`);
    const calls = env.settings.latencyCalls;
    const rounds = await interleaved(
      env.settings.rounds,
      async () => percentile(await env.client.latencies(deep, calls), 50),
      async () => percentile(await env.client.latencies(first, calls), 50),
      (round, a, b) => env.log(`  deep-page round ${round}: p50 ${fmt(a)} ms vs ${fmt(b)} ms`),
    );
    const perRound = ratios(rounds);
    return [
      result(
        this.specs[0]!,
        median(perRound),
        `p50 ${fmt(median(rounds.map((r) => r.a)))} ms at ${depth.toLocaleString('en-US')} rows deep vs ${fmt(median(rounds.map((r) => r.b)))} ms first page; rounds ${roundsText(perRound)}`,
      ),
    ];
  },
};

/** A lab of its own for a scenario that writes, configured with the first `fields` bench templates. */
export async function benchLab(env: BenchEnv, fields: number): Promise<number> {
  const labId = 2_000_000 + Math.floor(Math.random() * 1_000_000_000);
  const now = new Date();
  await env.pool.query(
    `INSERT INTO LabMissingDetailsConfiguration (lab_id, field_id, field_name, field_value, field_module, field_category,
       is_disabled, created_at, updated_at) VALUES ?`,
    [
      BENCH_FIELDS.slice(0, fields).map((f) => [
        labId,
        f.id,
        f.name,
        f.placeholder,
        'patient',
        'text',
        0,
        now,
        now,
      ]),
    ],
  );
  return labId;
}

/** Opens `fields` rows for each patient, as an earlier capture would have. */
async function openRows(env: BenchEnv, labId: number, patients: number[], fields: number): Promise<void> {
  const [configs] = (await env.pool.query(
    'SELECT id, field_id FROM LabMissingDetailsConfiguration WHERE lab_id = ? ORDER BY field_id',
    [labId],
  )) as unknown as [Array<{ id: number; field_id: number }>];
  const now = new Date();
  const rows = patients.flatMap((patient) =>
    BENCH_FIELDS.slice(0, fields).map((f) => {
      const configId = configs.find((c) => c.field_id === f.id)?.id ?? null;
      return [labId, null, patient, null, f.id, configId, f.name, f.placeholder, 'patient', 0, now, now];
    }),
  );
  await env.pool.query(
    `INSERT INTO LabMissingDetails (lab_id, org_id, user_details_id, bill_id, field_id, config_id, field_name,
       field_value, field_module, is_resolved, created_at, updated_at) VALUES ?`,
    [rows],
  );
}

/** Ten fields: the first five were open and now get real values, the next five arrive as placeholders. */
function tenFieldValues(): Record<string, string> {
  return Object.fromEntries(
    BENCH_FIELDS.slice(0, 10).map((f, i) => [f.name, i < 5 ? `real value ${i + 1}` : f.placeholder]),
  );
}

export const capture: Scenario = {
  name: 'capture',
  service: 'shared',
  specs: [{ name: 'capture', goal: 1.2, unit: 'ratio', better: 'lower' }],
  async run(env) {
    const labId = await benchLab(env, 10);
    const headers = await env.authFor(labId);
    const values = tenFieldValues();
    let nextPatient = 1;
    const timedCaptures = async (send: (patient: number) => HttpCall) => {
      const patients = Array.from({ length: env.settings.captures }, () => nextPatient++);
      await openRows(env, labId, patients, 5);
      const started = performance.now();
      for (const patient of patients) {
        const answer = await env.client.json<{
          opened?: number;
          resolved?: number;
          result?: { data: { opened: number; resolved: number } };
        }>(send(patient));
        const outcome = answer.result?.data ?? answer;
        if (outcome.opened !== 5 || outcome.resolved !== 5) {
          throw new Error(
            `a capture opened ${outcome.opened} and resolved ${outcome.resolved} rows, not 5 and 5`,
          );
        }
      }
      return (performance.now() - started) / patients.length;
    };
    const service = (patient: number): HttpCall => ({
      url: `${env.serviceUrl}/trpc/capture.patient`,
      method: 'POST',
      headers,
      body: JSON.stringify({ userDetailsId: patient, values }),
    });
    const baseline = (patient: number): HttpCall => ({
      url: `${env.baselineUrl}/capture-patient`,
      method: 'POST',
      body: JSON.stringify({
        lab_id: labId,
        user_id: env.userId,
        user_details_id: patient,
        org_id: null,
        values,
      }),
    });
    const rounds = await interleaved(
      env.settings.rounds,
      () => timedCaptures(service),
      () => timedCaptures(baseline),
      (round, a, b) => env.log(`  capture round ${round}: ${fmt(a)} ms vs ${fmt(b)} ms per capture`),
    );
    const perRound = ratios(rounds);
    return [
      result(
        this.specs[0]!,
        median(perRound),
        `${fmt(median(rounds.map((r) => r.a)))} ms vs ${fmt(median(rounds.map((r) => r.b)))} ms per capture of 10 fields (5 opened, 5 resolved); rounds ${roundsText(perRound)}`,
      ),
    ];
  },
};

export const captureStatements: Scenario = {
  name: 'capture-statements',
  service: 'none',
  specs: [{ name: 'capture-statements', goal: 1, unit: 'ratio', better: 'lower' }],
  async run(env) {
    const counts = await countCaptureStatements(env.databaseUrl, [1, 10, 100], (fields) =>
      benchLab(env, fields),
    );
    const totals = counts.map((c) => c.opening + c.resolving);
    const detail = counts
      .map((c) => `${c.fields} fields: ${c.opening} opening + ${c.resolving} resolving`)
      .join('; ');
    return [
      result(this.specs[0]!, Math.max(...totals) / Math.min(...totals), `statements per capture, ${detail}`),
    ];
  },
};

export const bulkResolve: Scenario = {
  name: 'bulk-resolve',
  service: 'shared',
  specs: [{ name: 'bulk-resolve', goal: 1.15, unit: 'ratio', better: 'lower' }],
  async run(env) {
    const [rows] = (await env.pool.query(
      `SELECT id FROM LabMissingDetails WHERE lab_id = ? AND is_resolved = 1
       ORDER BY created_at DESC, id DESC LIMIT 5000`,
      [env.dataset.largeLabId],
    )) as unknown as [Array<{ id: number }>];
    const ids = rows.map((row) => Number(row.id));
    if (ids.length !== 5000) throw new Error(`the large lab has ${ids.length} resolved rows, not 5,000`);
    const service: HttpCall = {
      url: `${env.serviceUrl}${LIST_PATH}`,
      method: 'PATCH',
      headers: env.auth,
      body: JSON.stringify({ ids, is_resolved: true }),
    };
    const baseline: HttpCall = {
      url: `${env.baselineUrl}/lab-fields`,
      method: 'PATCH',
      body: JSON.stringify({ lab_id: env.dataset.largeLabId, user_id: env.userId, ids }),
    };
    const timed = async (call: HttpCall) => {
      const started = performance.now();
      for (let i = 0; i < env.settings.bulkPatches; i++) {
        const answer = await env.client.json<{ updated_count: number }>(call);
        if (answer.updated_count !== 5000)
          throw new Error(`a PATCH updated ${answer.updated_count} rows, not 5,000`);
      }
      return (performance.now() - started) / env.settings.bulkPatches;
    };
    const rounds = await interleaved(
      env.settings.rounds,
      () => timed(service),
      () => timed(baseline),
      (round, a, b) => env.log(`  bulk-resolve round ${round}: ${fmt(a, 0)} ms vs ${fmt(b, 0)} ms`),
    );
    const perRound = ratios(rounds);
    return [
      result(
        this.specs[0]!,
        median(perRound),
        `${fmt(median(rounds.map((r) => r.a)), 0)} ms vs ${fmt(median(rounds.map((r) => r.b)), 0)} ms per 5,000-id PATCH; rounds ${roundsText(perRound)}`,
      ),
    ];
  },
};

/** A plain legacy path (the simulator's echo route), neither captured nor flagged. */
const PLAIN_LEGACY_PATH = '/api-v3/inventory/items?page=1';

/** Throughput of plain legacy GETs through a relay against legacy directly, and the p50 latency it adds. */
async function relayResults(env: BenchEnv, specs: readonly Spec[], relayUrl: string, relayName: string) {
  const viaRelay: HttpCall = { url: `${relayUrl}${PLAIN_LEGACY_PATH}` };
  const direct: HttpCall = { url: `${env.py3Url}${PLAIN_LEGACY_PATH}` };
  await env.client.json(viaRelay);
  const ratio = await throughputRatio(env, specs[0]!.name, viaRelay, direct);
  const calls = env.settings.latencyCalls;
  const rounds = await interleaved(
    env.settings.rounds,
    async () => percentile(await env.client.latencies(viaRelay, calls), 50),
    async () => percentile(await env.client.latencies(direct, calls), 50),
    (round, a, b) => env.log(`  ${specs[1]!.name} round ${round}: p50 ${fmt(a, 3)} ms vs ${fmt(b, 3)} ms`),
  );
  const added = rounds.map((r) => r.a - r.b);
  return [
    result(specs[0]!, ratio.value, ratio.detail),
    result(
      specs[1]!,
      median(added),
      `p50 ${fmt(median(rounds.map((r) => r.a)), 3)} ms through ${relayName} vs ${fmt(median(rounds.map((r) => r.b)), 3)} ms direct, one connection; rounds ${roundsText(added)}`,
    ),
  ];
}

/** The service alone relaying legacy's plain paths (no edge in front). */
export const proxy: Scenario = {
  name: 'proxy',
  service: 'shared',
  specs: [
    { name: 'proxy', goal: 0.4, unit: 'ratio', better: 'higher' },
    { name: 'proxy-added-p50-ms', goal: 0.5, unit: 'ms', better: 'lower' },
  ],
  run(env) {
    return relayResults(env, this.specs, env.serviceUrl, 'the service');
  },
};

/** Production's topology: the generated nginx edge sends plain legacy paths straight to legacy. */
export const edgeProxy: Scenario = {
  name: 'edge-proxy',
  service: 'shared',
  specs: [
    { name: 'edge-proxy', goal: 0.45, unit: 'ratio', better: 'higher' },
    { name: 'edge-added-p50-ms', goal: 0.2, unit: 'ms', better: 'lower' },
  ],
  async run(env) {
    const edge = await startEdge({ services: [env.serviceUrl], legacy: env.py3Url, port: await freePort() });
    try {
      return await relayResults(env, this.specs, edge.url, 'the edge');
    } finally {
      await edge.stop();
    }
  },
};

export const flags: Scenario = {
  name: 'flags',
  service: 'shared',
  specs: [{ name: 'flags', goal: 0.7, unit: 'ratio', better: 'higher' }],
  async run(env) {
    const flagged: HttpCall = { url: `${env.serviceUrl}/api-v3/reports`, headers: env.auth };
    // Without a principal the proxy hands legacy's answer back untouched (contract: no capture, no flag).
    const untouched: HttpCall = { url: `${env.serviceUrl}/api-v3/reports` };
    const withFlags = await env.client.json<{ results: Array<{ has_missing_fields?: boolean }> }>(flagged);
    const plain = await env.client.json<{ results: Array<{ has_missing_fields?: boolean }> }>(untouched);
    const flaggedCount = withFlags.results.filter((r) => r.has_missing_fields === true).length;
    if (
      withFlags.results.length !== 200 ||
      withFlags.results.some((r) => r.has_missing_fields === undefined)
    ) {
      throw new Error('the report list did not come back with 200 flagged items');
    }
    if (plain.results.some((r) => r.has_missing_fields !== undefined))
      throw new Error('the untouched list was flagged');
    const { value, detail } = await throughputRatio(env, 'flags', flagged, untouched);
    return [result(this.specs[0]!, value, `${detail}; ${flaggedCount} of 200 patients flagged`)];
  },
};

/** V8 heap and off-heap memory of the service, from its /metrics (prom-client default metrics), in MB. */
async function memoryOf(env: BenchEnv, url: string): Promise<string> {
  const answer = await env.client.send({ url: `${url}/metrics` });
  const read = (name: string) => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+]+)$`, 'm').exec(answer.body);
    return match ? `${fmt(Number(match[1]) / 1024 / 1024, 0)}` : '?';
  };
  return `heap ${read('nodejs_heap_size_used_bytes')}/${read('nodejs_heap_size_total_bytes')} MB used/total, external ${read('nodejs_external_memory_bytes')} MB`;
}

export const rss: Scenario = {
  name: 'rss',
  service: 'own',
  specs: [
    { name: 'rss-mb', goal: 200, unit: 'MB', better: 'lower' },
    { name: 'rss-after-load', goal: 1.1, unit: 'ratio', better: 'lower' },
  ],
  async run(env) {
    const { url, child } = await env.startService();
    try {
      const captureLab = await benchLab(env, 10);
      const captureAuth = await env.authFor(captureLab);
      const values = tenFieldValues();
      let patient = 0;
      const mixed: HttpCall[] = [
        { url: `${url}${LIST_PATH}`, headers: env.auth },
        { url: `${url}/trpc/labFields.list?input=${encodeURIComponent('{"limit":50}')}`, headers: env.auth },
        { url: `${url}${LIST_PATH}?is_resolved=true&limit=200`, headers: env.auth },
        { url: `${url}/api-v3/reports`, headers: env.auth },
        { url: `${url}${PLAIN_LEGACY_PATH}` },
        {
          url: `${url}/trpc/capture.patient`,
          method: 'POST',
          headers: captureAuth,
          body: JSON.stringify({ userDetailsId: 1, values }),
          // Every capture saves a new patient: 5 rows opened each time, the table keeps growing.
          nextBody: () => JSON.stringify({ userDetailsId: ++patient, values }),
        },
      ];
      const load = (seconds: number) => throughput(mixed, { connections: env.settings.connections, seconds });
      await load(3);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const before = await rssMb(child.pid);
      const memoryBefore = await memoryOf(env, url);
      let peak = before;
      const sampler = setInterval(() => {
        rssMb(child.pid)
          .then((mb) => {
            peak = Math.max(peak, mb);
          })
          .catch(() => undefined);
      }, 500);
      let served = 0;
      try {
        served = (await load(env.settings.rssLoadSeconds)).requests;
      } finally {
        clearInterval(sampler);
      }
      const atEnd = await rssMb(child.pid);
      peak = Math.max(peak, atEnd);
      await new Promise((resolve) => setTimeout(resolve, env.settings.rssSettleSeconds * 1_000));
      const after = await rssMb(child.pid);
      const memoryAfter = await memoryOf(env, url);
      env.log(
        `  rss: ${fmt(before, 0)} MB before (${memoryBefore}), peak ${fmt(peak, 0)} MB, ${fmt(after, 0)} MB after settling (${memoryAfter})`,
      );
      return [
        result(
          this.specs[0]!,
          peak,
          `peak RSS of a fresh service process over ${env.settings.rssLoadSeconds} s of mixed load (${served.toLocaleString('en-US')} requests, 6 kinds); ${fmt(before, 0)} MB before`,
        ),
        result(
          this.specs[1]!,
          after / before,
          `${fmt(after, 0)} MB ${env.settings.rssSettleSeconds} s after the load (${memoryAfter}) vs ${fmt(before, 0)} MB before it (${memoryBefore})`,
        ),
      ];
    } finally {
      await child.stop();
    }
  },
};

export const SCENARIOS: readonly Scenario[] = [
  restList,
  trpcList,
  deepPage,
  capture,
  captureStatements,
  bulkResolve,
  proxy,
  edgeProxy,
  flags,
  summary,
  patients,
  rss,
];
