import { writeFile } from 'node:fs/promises';

/** One figure of the benchmark, as bench/results.json lists it. */
export interface ScenarioResult {
  name: string;
  /** Null when the scenario could not be measured (see `error`). */
  value: number | null;
  goal: number;
  unit: 'ratio' | 'ms' | 'MB' | 'statements';
  /** Whether the goal is a floor (throughput) or a ceiling (time, latency, memory). */
  better: 'higher' | 'lower';
  met: boolean;
  /** What was measured, in a few words: the per-round figures, the absolute numbers behind a ratio. */
  detail: string;
  error?: string;
}

export function result(
  spec: Pick<ScenarioResult, 'name' | 'goal' | 'unit' | 'better'>,
  value: number,
  detail: string,
): ScenarioResult {
  const rounded = Math.round(value * 1000) / 1000;
  const met = spec.better === 'higher' ? rounded >= spec.goal : rounded <= spec.goal;
  return { ...spec, value: rounded, met, detail };
}

export function failed(
  spec: Pick<ScenarioResult, 'name' | 'goal' | 'unit' | 'better'>,
  error: unknown,
): ScenarioResult {
  const message = error instanceof Error ? error.message : String(error);
  return {
    ...spec,
    value: null,
    met: false,
    detail: 'not measured',
    error: message.split('\n')[0]!.slice(0, 300),
  };
}

export interface RunInfo {
  profile: string;
  startedAt: string;
  seconds: number;
  node: string;
  cpus: number;
  dataset: string;
}

/** 196.6, 2.47, 0.393: three significant digits, at most one decimal from 100 up. */
const figure = (value: number) =>
  Math.abs(value) >= 100 ? value.toFixed(1) : String(Number(value.toPrecision(3)));
const goalText = (r: ScenarioResult) => `${r.better === 'higher' ? '≥' : '≤'} ${r.goal}`;
const valueText = (r: ScenarioResult) => (r.value === null ? 'error' : figure(r.value));
const verdict = (r: ScenarioResult) => (r.value === null ? 'ERROR' : r.met ? 'met' : 'NOT MET');

export function textTable(results: readonly ScenarioResult[]): string {
  const rows = [
    ['scenario', 'value', 'goal', 'unit', 'result', 'detail'],
    ...results.map((r) => [r.name, valueText(r), goalText(r), r.unit, verdict(r), r.error ?? r.detail]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]) =>
    row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function markdownTable(results: readonly ScenarioResult[]): string {
  const escapePipes = (text: string) => text.replace(/\|/g, '\\|');
  return [
    '| scenario | value | goal | unit | result | detail |',
    '| --- | ---: | ---: | --- | --- | --- |',
    ...results.map(
      (r) =>
        `| ${r.name} | ${valueText(r)} | ${goalText(r)} | ${r.unit} | ${verdict(r)} | ${escapePipes(r.error ?? r.detail)} |`,
    ),
  ].join('\n');
}

export function markdown(results: readonly ScenarioResult[], info: RunInfo): string {
  return [
    '# Benchmark results',
    '',
    `Profile \`${info.profile}\` (${info.dataset}), ${info.cpus} cores, Node ${info.node}, ` +
      `run ${info.startedAt} in ${Math.round(info.seconds)} s. Every ratio is the service against its baseline ` +
      'measured in the same run, interleaved; see bench/README.md for what each scenario does.',
    '',
    '![Benchmark: value against goal](results.svg)',
    '',
    markdownTable(results),
    '',
    'Goals not met: see results.profile.md for where the time goes (`npm run bench -- --quick --profile`).',
    '',
  ].join('\n');
}

/**
 * A bar per scenario on its own scale (units differ): the bar is the value, the tick the goal; green
 * when the goal is met, red when not, grey when the scenario failed.
 */
export function svgChart(results: readonly ScenarioResult[], info: RunInfo): string {
  const rowHeight = 34;
  const left = 190;
  const barWidth = 440;
  const width = left + barWidth + 210;
  const top = 48;
  const height = top + results.length * rowHeight + 30;
  const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const rows = results.map((r, i) => {
    const y = top + i * rowHeight;
    const scale = Math.max(r.goal, r.value ?? 0) * 1.25 || 1;
    const barLength = r.value === null ? 0 : Math.max(1, (r.value / scale) * barWidth);
    const goalX = left + (r.goal / scale) * barWidth;
    const color = r.value === null ? '#9e9e9e' : r.met ? '#2e7d32' : '#c62828';
    const unit = r.unit === 'ratio' ? '' : ` ${r.unit}`;
    const label =
      r.value === null ? 'not measured' : `${figure(r.value)}${unit} (goal ${goalText(r)}${unit})`;
    return [
      `<text x="${left - 10}" y="${y + 17}" text-anchor="end">${esc(r.name)}</text>`,
      `<rect x="${left}" y="${y + 4}" width="${barWidth}" height="20" fill="#f2f2f2"/>`,
      `<rect x="${left}" y="${y + 4}" width="${barLength.toFixed(1)}" height="20" fill="${color}"/>`,
      `<line x1="${goalX.toFixed(1)}" y1="${y}" x2="${goalX.toFixed(1)}" y2="${y + 28}" stroke="#000" stroke-width="2"/>`,
      `<text x="${left + barWidth + 10}" y="${y + 17}">${esc(label)}</text>`,
    ].join('\n  ');
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="10" y="22" font-size="15" font-weight="bold">Missing Details service: value against goal (${esc(info.profile)} profile)</text>
  <text x="10" y="40" fill="#555">bar = measured value, black tick = goal; green met, red not met. Each row has its own scale.</text>
  ${rows.join('\n  ')}
  <text x="10" y="${height - 10}" fill="#555">${esc(`${info.dataset}; ${info.cpus} cores; Node ${info.node}; ${info.startedAt}`)}</text>
</svg>
`;
}

export async function writeResults(
  dir: string,
  results: readonly ScenarioResult[],
  info: RunInfo,
): Promise<void> {
  const json = {
    ...info,
    scenarios: results.map((r) => ({
      name: r.name,
      value: r.value,
      goal: r.goal,
      unit: r.unit,
      better: r.better,
      met: r.met,
      detail: r.detail,
      ...(r.error ? { error: r.error } : {}),
    })),
  };
  await writeFile(`${dir}/results.json`, `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(`${dir}/results.md`, markdown(results, info));
  await writeFile(`${dir}/results.svg`, svgChart(results, info));
}
