import { Agent, request as httpRequest } from 'node:http';
import autocannon from 'autocannon';

/** One HTTP call the load tools make: a full URL, and what to send. */
export interface HttpCall {
  url: string;
  method?: 'GET' | 'POST' | 'PATCH';
  headers?: Record<string, string>;
  body?: string;
  /** Under load: a fresh body for every request (autocannon otherwise repeats `body`). */
  nextBody?: () => string;
}

export interface ThroughputSample {
  requestsPerSecond: number;
  requests: number;
}

/**
 * Requests per second with autocannon over loopback: `connections` keep-alive connections for
 * `seconds`. Any non-2xx answer or socket error fails the measurement (a fast error is no result).
 */
export async function throughput(
  call: HttpCall | HttpCall[],
  options: { connections: number; seconds: number },
): Promise<ThroughputSample> {
  const calls = Array.isArray(call) ? call : [call];
  const first = calls[0]!;
  const origin = new URL(first.url).origin;
  const result = await autocannon({
    url: origin,
    connections: options.connections,
    duration: options.seconds,
    requests: calls.map((c) => {
      const target = new URL(c.url);
      return {
        method: c.method ?? 'GET',
        path: `${target.pathname}${target.search}`,
        headers: { ...(c.body ? { 'content-type': 'application/json' } : {}), ...c.headers },
        ...(c.body ? { body: c.body } : {}),
        ...(c.nextBody
          ? { setupRequest: (req: autocannon.Request) => ({ ...req, body: c.nextBody!() }) }
          : {}),
      };
    }),
  });
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${first.method ?? 'GET'} ${first.url}: ${result.non2xx} non-2xx answers, ${result.errors} errors, ` +
        `${result.timeouts} timeouts out of ${result.requests.total}`,
    );
  }
  return { requestsPerSecond: result.requests.total / options.seconds, requests: result.requests.total };
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** A keep-alive HTTP client with one socket: sequential calls measure latency without connection setup. */
export class SequentialClient {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1 });

  send(call: HttpCall): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const body = call.body === undefined ? undefined : Buffer.from(call.body);
      const req = httpRequest(
        call.url,
        {
          method: call.method ?? 'GET',
          agent: this.#agent,
          headers: {
            ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
            ...call.headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Sends and checks for a 2xx answer, returning the parsed JSON. */
  async json<T = unknown>(call: HttpCall): Promise<T> {
    const answer = await this.send(call);
    if (answer.status < 200 || answer.status >= 300) {
      throw new Error(
        `${call.method ?? 'GET'} ${call.url} answered ${answer.status}: ${answer.body.slice(0, 500)}`,
      );
    }
    return JSON.parse(answer.body) as T;
  }

  /** Milliseconds of each of `count` sequential calls (each must answer 2xx). */
  async latencies(call: HttpCall, count: number): Promise<number[]> {
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const answer = await this.send(call);
      samples.push(performance.now() - started);
      if (answer.status < 200 || answer.status >= 300) {
        throw new Error(
          `${call.method ?? 'GET'} ${call.url} answered ${answer.status}: ${answer.body.slice(0, 300)}`,
        );
      }
    }
    return samples;
  }

  close(): void {
    this.#agent.destroy();
  }
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * Measures A (the service) and B (its baseline) interleaved, A B A B …, after one warm-up of each
 * (`warmUp`, or a measurement whose figure is dropped), so that both see the same machine noise.
 * Returns each round's A/B figures.
 */
export async function interleaved(
  rounds: number,
  measureA: () => Promise<number>,
  measureB: () => Promise<number>,
  onRound?: (round: number, a: number, b: number) => void,
  warmUp?: { a: () => Promise<unknown>; b: () => Promise<unknown> },
): Promise<Array<{ a: number; b: number }>> {
  await (warmUp?.a ?? measureA)();
  await (warmUp?.b ?? measureB)();
  const results: Array<{ a: number; b: number }> = [];
  for (let round = 1; round <= rounds; round++) {
    const a = await measureA();
    const b = await measureB();
    results.push({ a, b });
    onRound?.(round, a, b);
  }
  return results;
}
