import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Profiles of the service process, summarized for bench/results.profile.md: `--cpu-prof` for the scenarios
 * that measure time, `--heap-prof` for the memory one. Both are written when the process exits.
 */

export const cpuProfile = (dir: string) => ['--cpu-prof', `--cpu-prof-dir=${dir}`];
export const heapProfile = (dir: string) => ['--heap-prof', `--heap-prof-dir=${dir}`];

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

/** The parts of a V8 .cpuprofile the summary reads. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  /** Microseconds on the monotonic clock, the one `process.hrtime` reads in every process. */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The parts of a V8 .heapprofile (sampling heap profiler: allocations still live at exit) the summary reads. */
interface HeapProfileNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapProfileNode[];
}

export interface ProfileSummary {
  kind: 'cpu' | 'heap';
  /** CPU: sampled milliseconds the process was not idle. Heap: sampled live bytes. */
  total: number;
  /** Self time (or bytes) by where the code lives: a package, the service's own files, Node internals, GC. */
  byOwner: Array<{ key: string; share: number }>;
  byFunction: Array<{ key: string; share: number }>;
}

/** Who a frame belongs to: `fastify`, `@mikro-orm/knex`, `service src/services/…`, `node:internal`, `(garbage collector)`. */
function ownerOf({ url, functionName }: CallFrame): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const nested = url.lastIndexOf('node_modules/');
  if (nested >= 0) return /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url.slice(nested))?.[1] ?? url;
  if (url.startsWith('node:')) return 'node:internal';
  const own = /\/(src|routers|legacy-bridge|migrations|bench)\/(.*)$/.exec(url);
  return own ? `service ${own[1]}/${own[2]}` : url;
}

function functionOf({ url, functionName, lineNumber }: CallFrame): string {
  if (!url) return functionName;
  const short = url
    .replace(/^file:\/\/.*?node_modules\//, '')
    .replace(/^file:\/\/.*?\/(src|routers|bench)\//, '$1/');
  return `${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`;
}

class Tally {
  readonly owners = new Map<string, number>();
  readonly functions = new Map<string, number>();
  total = 0;

  add(frame: CallFrame, amount: number): void {
    this.total += amount;
    const owner = ownerOf(frame);
    this.owners.set(owner, (this.owners.get(owner) ?? 0) + amount);
    const name = functionOf(frame);
    this.functions.set(name, (this.functions.get(name) ?? 0) + amount);
  }

  summary(kind: ProfileSummary['kind'], top = 12): ProfileSummary {
    const ranked = (map: Map<string, number>) =>
      [...map.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([key, amount]) => ({ key, share: this.total === 0 ? 0 : amount / this.total }));
    return { kind, total: this.total, byOwner: ranked(this.owners), byFunction: ranked(this.functions) };
  }
}

/** Monotonic-clock microseconds, comparable with a .cpuprofile's timestamps. */
export const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);

/** Self time per frame, from `fromMicros` on (start-up and set-up excluded). */
export function summarizeCpuProfile(profile: CpuProfile, fromMicros = 0): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const tally = new Tally();
  let at = profile.startTime;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    at += delta;
    const node = byId.get(id);
    if (at >= fromMicros && node && node.callFrame.functionName !== '(idle)')
      tally.add(node.callFrame, delta);
  });
  const summary = tally.summary('cpu');
  return { ...summary, total: summary.total / 1000 };
}

export function summarizeHeapProfile(head: HeapProfileNode): ProfileSummary {
  const tally = new Tally();
  const stack = [head];
  for (let node = stack.pop(); node; node = stack.pop()) {
    if (node.selfSize > 0) tally.add(node.callFrame, node.selfSize);
    stack.push(...node.children);
  }
  return tally.summary('heap');
}

/**
 * Reads and summarizes the profile the main thread of a process wrote into `dir` (named
 * `CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile`; thread 0 is the main one, others are the module
 * loader's).
 */
export async function readProfile(dir: string, fromMicros = 0): Promise<ProfileSummary> {
  const files = (await readdir(dir)).filter((f) => /\.\d+\.0\.\d+\.(cpuprofile|heapprofile)$/.test(f));
  const file = files[0];
  if (!file) throw new Error(`no profile of a main thread in ${dir}`);
  const parsed: unknown = JSON.parse(await readFile(join(dir, file), 'utf8'));
  return file.endsWith('.cpuprofile')
    ? summarizeCpuProfile(parsed as CpuProfile, fromMicros)
    : summarizeHeapProfile((parsed as { head: HeapProfileNode }).head);
}

export function profileMarkdown(scenario: string, summary: ProfileSummary): string {
  const pct = (share: number) => `${(share * 100).toFixed(1)}%`;
  const what =
    summary.kind === 'cpu'
      ? `${Math.round(summary.total).toLocaleString('en-US')} ms of CPU sampled in the service process (idle excluded); self time`
      : `${(summary.total / 1024 / 1024).toFixed(1)} MB of sampled allocations still live when the service process exited; bytes`;
  return [
    `### ${scenario}`,
    '',
    `${what}:`,
    '',
    '| where | share |',
    '| --- | ---: |',
    ...summary.byOwner.map((o) => `| ${o.key} | ${pct(o.share)} |`),
    '',
    '| function | share |',
    '| --- | ---: |',
    ...summary.byFunction.map((f) => `| \`${f.key.replace(/\|/g, '\\|')}\` | ${pct(f.share)} |`),
    '',
  ].join('\n');
}
