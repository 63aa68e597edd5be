import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EdgeOptions, edgeConfig } from './edge-config.js';

/** Debian's nginx (`.ci/run` installs it when missing). */
export const NGINX = '/usr/sbin/nginx';

export interface EdgeProcess {
  port: number;
  url: string;
  config: string;
  stop: () => Promise<void>;
  errorLog: () => Promise<string>;
}

/**
 * Runs the generated edge in a local nginx on a free loopback port: for the edge tests and the
 * benchmark, never in production (there nginx runs the generated file itself, docs/edge.md).
 */
/** What a local edge needs: the upstreams and a free loopback port to listen on. */
export type LocalEdgeOptions = Omit<EdgeOptions, 'listen' | 'prefix'> & { port: number };

export async function startEdge({ port, ...options }: LocalEdgeOptions): Promise<EdgeProcess> {
  const prefix = await mkdtemp(join(tmpdir(), 'md-edge-'));
  // nginx's workers run as nobody when the master is root: they must reach the temp folders.
  await chmod(prefix, 0o755);
  const config = edgeConfig({ ...options, listen: `127.0.0.1:${port}`, prefix });
  await writeFile(join(prefix, 'nginx.conf'), config);
  const child = spawn(
    NGINX,
    ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', join(prefix, 'nginx.conf')],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForListener(port, child, () => output);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    config,
    errorLog: () => readFile(join(prefix, 'error.log'), 'utf8').catch(() => ''),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await rm(prefix, { recursive: true, force: true });
    },
  };
}

async function waitForListener(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${output()}`);
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (accepted) return;
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}: ${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
