import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The repository root: children run from here so `--import tsx` and relative paths resolve. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A free loopback port (the tiny race until the child binds it is acceptable for a benchmark). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  /** The last lines the child printed, for error messages. */
  output(): string;
  /** Resolves with the first stdout line that parses as JSON. */
  firstJsonLine<T>(timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

/** Runs `node <args…>` in a process of its own, from the repository root. */
export function startChild(name: string, args: readonly string[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, [...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  const tail: string[] = [];
  const jsonWaiters: Array<(line: unknown) => void> = [];
  let exited: number | null = null;
  const remember = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (line.startsWith('{') && jsonWaiters.length > 0) {
        try {
          const parsed: unknown = JSON.parse(line);
          for (const waiter of jsonWaiters.splice(0)) waiter(parsed);
        } catch {
          // a log line that only looks like JSON
        }
      }
    }
  };
  child.stdout?.on('data', remember);
  child.stderr?.on('data', remember);
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code ?? -1;
      resolve();
    }),
  );
  return {
    name,
    process: child,
    pid: child.pid,
    output: () => tail.join('\n'),
    firstJsonLine<T>(timeoutMs = 30_000) {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${name} printed no JSON line in ${timeoutMs} ms:\n${tail.join('\n')}`)),
          timeoutMs,
        );
        jsonWaiters.push((line) => {
          clearTimeout(timer);
          resolve(line as T);
        });
        void exit.then(() => reject(new Error(`${name} exited (${exited}):\n${tail.join('\n')}`)));
      });
    },
    async stop() {
      if (exited !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exit;
      clearTimeout(killer);
    },
  };
}

/** `node --import tsx …`: a TypeScript entry point as the development scripts run it. */
export const withTsx = (...args: string[]) => ['--import', 'tsx', ...args];

/** Polls `url` until it answers 200, or fails naming the child and what it printed. */
export async function waitUntilReady(child: Child, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) throw new Error(`${child.name} exited:\n${child.output()}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (response.status === 200) return;
      last = `status ${response.status}`;
      await response.body?.cancel();
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(
    `${child.name} was not ready at ${url} within ${timeoutMs} ms (${last}):\n${child.output()}`,
  );
}

/** Resident set size of a process in MiB, from /proc (Linux). */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}
