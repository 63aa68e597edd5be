import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

/** Real processes of the service (src/server.ts) and the standalone worker, over real HTTP. */

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Starting through tsx compiles the app on the fly: seconds when idle, far more on a busy CI runner. */
export const PROCESS_TEST_TIMEOUT_MS = 150_000;

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  port: number;
  /** Everything the process printed, for failure messages. */
  output: () => string;
  exited: Promise<number | null>;
  /** SIGKILL unless it has exited already. */
  kill: () => void;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Starts `entry` (src/server.ts or legacy-bridge/main.ts) through tsx; `preload` modules are
 * imported first, as production's `node --import ./dist/src/tracing.js` does.
 */
export async function startServiceProcess(
  env: Record<string, string>,
  options: { entry?: string; preload?: string[]; portVariable?: string; port?: number } = {},
): Promise<ServiceProcess> {
  const port = options.port ?? (await freePort());
  const preloads = (options.preload ?? []).flatMap((module) => ['--import', module]);
  const child = spawn(process.execPath, ['--import', 'tsx', ...preloads, options.entry ?? 'src/server.ts'], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      BRIDGE_WORKER_ENABLED: 'false',
      SHUTDOWN_GRACE_MS: '0',
      [options.portVariable ?? 'PORT']: String(port),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Polls `probe` until it gives a value; fails with the process's output when it exits or time runs out. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  service: ServiceProcess,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    const exited = service.child.exitCode !== null || service.child.signalCode !== null;
    if (exited || Date.now() > deadline)
      throw new Error(
        `${exited ? 'exited' : 'timed out'} waiting for ${what}; process said:\n${service.output()}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function statusOf(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
  await res.body?.cancel();
  return res.status;
}
