import type { Principal } from '../src/auth/principal.js';
import { openFieldsQuery, patientGroupsQuery } from '../src/repositories/work-queue.repository.js';
import { type HttpCall, interleaved, median, percentile } from './load.js';
import { result } from './report.js';
import type { BenchEnv, Scenario } from './scenarios.js';

const fmt = (n: number, digits = 1) => n.toFixed(digits);
const PATH = '/api-v3/account/missing-details/patients';

/**
 * The worklist's two statements sent by hand from the benchmark's own mysql2 pool: the page of
 * patient groups, then their open fields. No HTTP, auth, validation or ORM.
 */
async function bySql(env: BenchEnv, sort: 'oldest' | 'most', count: number): Promise<number[]> {
  const principal: Principal = {
    labId: env.dataset.largeLabId,
    userId: env.userId,
    role: 'lab_user',
    orgId: null,
    via: 'jwt',
  };
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const groups = patientGroupsQuery(principal, sort, 50, undefined);
    const [rows] = (await env.pool.query(groups.sql, groups.params)) as unknown as [
      Array<{ user_details_id: number }>,
    ];
    const fields = openFieldsQuery(
      principal,
      rows.map((row) => row.user_details_id),
    );
    await env.pool.query(fields.sql, fields.params);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

/**
 * The worklist by patient on the large lab (every open row grouped: on the full profile about 40,000),
 * both sorts: its latency, and how it compares with its own two statements sent by hand.
 */
export const patients: Scenario = {
  name: 'patients',
  service: 'shared',
  specs: [
    { name: 'patients', goal: 2.0, unit: 'ratio', better: 'lower' },
    { name: 'patients-p50-ms', goal: 200, unit: 'ms', better: 'lower' },
  ],
  async run(env) {
    const calls = Math.max(10, Math.round(env.settings.latencyCalls / 10));
    const details: string[] = [];
    const perSort: Array<{ ratio: number; p50: number }> = [];
    for (const sort of ['oldest', 'most'] as const) {
      const call: HttpCall = { url: `${env.serviceUrl}${PATH}?sort=${sort}`, headers: env.auth };
      const page = await env.client.json<{ results: Array<{ open_count: number }> }>(call);
      if (page.results.length !== 50)
        throw new Error(`the large lab's worklist has ${page.results.length} patients`);
      const rounds = await interleaved(
        env.settings.rounds,
        async () => percentile(await env.client.latencies(call, calls), 50),
        async () => percentile(await bySql(env, sort, calls), 50),
        (round, a, b) =>
          env.log(`  patients ${sort} round ${round}: p50 ${fmt(a)} ms vs ${fmt(b)} ms by hand`),
      );
      const ratio = median(rounds.map((r) => r.a / r.b));
      const p50 = median(rounds.map((r) => r.a));
      perSort.push({ ratio, p50 });
      details.push(`sort=${sort}: p50 ${fmt(p50)} ms vs ${fmt(median(rounds.map((r) => r.b)))} ms by hand`);
    }
    const worst = (pick: (s: { ratio: number; p50: number }) => number) => Math.max(...perSort.map(pick));
    return [
      result(
        this.specs[0]!,
        worst((s) => s.ratio),
        `the worse of the two sorts; ${details.join('; ')}`,
      ),
      result(
        this.specs[1]!,
        worst((s) => s.p50),
        `p50 of GET ${PATH}, first page of 50 patients; ${details.join('; ')}`,
      ),
    ];
  },
};
