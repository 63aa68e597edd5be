import type { Principal } from '../src/auth/principal.js';
import { openByFieldQuery, resolvedWindowQuery } from '../src/repositories/summary.repository.js';
import { type HttpCall, interleaved, median, percentile } from './load.js';
import { result } from './report.js';
import type { BenchEnv, Scenario } from './scenarios.js';

/** A year of the dataset (it ends on 2026-01-01): the longest window the summary accepts. */
const WINDOW = { from: '2025-01-01', to: '2025-12-31' };
const fmt = (n: number, digits = 1) => n.toFixed(digits);

/**
 * The two statements of the summary, sent by hand from the benchmark's own mysql2 pool: no HTTP, auth,
 * validation or ORM. What the service adds on top is its overhead.
 */
async function bySql(env: BenchEnv, count: number): Promise<number[]> {
  const principal: Principal = {
    labId: env.dataset.largeLabId,
    userId: env.userId,
    role: 'lab_user',
    orgId: null,
    via: 'jwt',
  };
  const [tracking] = (await env.pool.query(
    "SELECT DATE_FORMAT(started_at, '%Y-%m-%d %H:%i:%s.%f') AS started FROM md_resolution_tracking WHERE id = 1",
  )) as unknown as [Array<{ started: string }>];
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const open = openByFieldQuery(principal, new Date());
    const window = resolvedWindowQuery(
      principal,
      `${WINDOW.from} 00:00:00.000000`,
      `${WINDOW.to} 23:59:59.999999`,
      tracking[0]?.started ?? null,
    );
    const started = performance.now();
    await Promise.all([env.pool.query(open.sql, open.params), env.pool.query(window.sql, window.params)]);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

/**
 * The summary on the large lab over the longest window it accepts (a year: on the full profile about 40,000
 * open rows and 80,000 resolutions to rank), so the default 30-day window is well inside the goal: its
 * latency, and how it compares with its own SQL sent by hand.
 */
export const summary: Scenario = {
  name: 'summary',
  service: 'shared',
  specs: [
    { name: 'summary', goal: 1.5, unit: 'ratio', better: 'lower' },
    { name: 'summary-p50-ms', goal: 400, unit: 'ms', better: 'lower' },
  ],
  async run(env) {
    const call: HttpCall = {
      url: `${env.serviceUrl}/api-v3/account/missing-details/summary?resolved_from=${WINDOW.from}&resolved_to=${WINDOW.to}`,
      headers: env.auth,
    };
    const answer = await env.client.json<{ open: { total: number }; resolved: { total: number } }>(call);
    if (!(answer.open.total > 0) || !(answer.resolved.total > 0)) {
      throw new Error(`the large lab's summary is empty: ${JSON.stringify(answer).slice(0, 200)}`);
    }
    // A summary reads every open row and the window's resolutions: a tenth of the list's sample is plenty.
    const calls = Math.max(10, Math.round(env.settings.latencyCalls / 10));
    const rounds = await interleaved(
      env.settings.rounds,
      async () => percentile(await env.client.latencies(call, calls), 50),
      async () => percentile(await bySql(env, calls), 50),
      (round, a, b) => env.log(`  summary round ${round}: p50 ${fmt(a)} ms vs ${fmt(b)} ms by hand`),
    );
    const perRound = rounds.map((r) => r.a / r.b);
    const p50 = median(rounds.map((r) => r.a));
    const detail = `${answer.open.total.toLocaleString('en-US')} open rows, ${answer.resolved.total.toLocaleString('en-US')} resolved in ${WINDOW.from}..${WINDOW.to}`;
    return [
      result(
        this.specs[0]!,
        median(perRound),
        `p50 ${fmt(p50)} ms vs ${fmt(median(rounds.map((r) => r.b)))} ms for its two statements by hand; ${detail}; rounds ${perRound.map((v) => fmt(v, 2)).join(', ')}`,
      ),
      result(
        this.specs[1]!,
        p50,
        `p50 of GET /api-v3/account/missing-details/summary over ${calls} calls a round; ${detail}`,
      ),
    ];
  },
};
