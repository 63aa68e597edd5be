import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/service-process.js';

/**
 * The Dockerfile as text (scripts/ci/container-lane.sh builds and runs it with podman): the image starts
 * node the way `npm start` does, and keeps the properties the container lane cannot see drift in.
 */

const dockerfile = readFileSync(`${REPO_ROOT}Dockerfile`, 'utf8');
const packageJson = JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as {
  scripts: Record<string, string>;
  engines: { node: string };
};
/** The instructions of the last stage (the runtime image), continuation lines joined. */
const runtimeStage =
  dockerfile
    .replace(/\\\n/g, ' ')
    .split(/^FROM /m)
    .at(-1) ?? '';

function execForm(instruction: string): string[] {
  const line = runtimeStage.split('\n').find((l) => l.startsWith(`${instruction} `));
  const json = line?.slice(line.indexOf('['));
  return json ? (JSON.parse(json) as string[]) : [];
}

describe('the Dockerfile', () => {
  it('starts node directly with the V8 flags and tracing preload of npm start, no shell in between', () => {
    const npmStart = packageJson.scripts.start?.split('&&').at(-1)?.trim().split(/\s+/);
    expect(execForm('CMD')).toEqual(npmStart);
    expect(runtimeStage).not.toMatch(/^ENTRYPOINT /m);
  });

  it('runs as the unprivileged node user with only production dependencies', () => {
    expect(runtimeStage).toMatch(/^USER node$/m);
    expect(runtimeStage).toMatch(/npm ci --omit=dev/);
    expect(runtimeStage).not.toMatch(/\btsx\b|npm run build/);
  });

  it('checks readiness on /health with node itself (slim images have no curl)', () => {
    const healthcheck = runtimeStage.split('\n').find((l) => l.startsWith('HEALTHCHECK '));
    expect(healthcheck).toBeDefined();
    // HEALTHCHECK [options] CMD ["node", "-e", "…"]: the exec form, run without a shell.
    const [, json] = healthcheck?.split(/ CMD (?=\[)/) ?? [];
    const command = JSON.parse(json ?? '[]') as string[];
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    expect(command[2]).toContain('/health');
  });

  it('never trusts a build machine certificate authority (only the CI stand-in base image does)', () => {
    expect(dockerfile).not.toContain('NODE_EXTRA_CA_CERTS');
  });
});

describe('the supported runtime', () => {
  it('is Node 24 LTS in .nvmrc, engines and every stage of the image', () => {
    expect(readFileSync(`${REPO_ROOT}.nvmrc`, 'utf8').trim()).toBe('24');
    expect(packageJson.engines.node.split('||')[0]?.trim()).toBe('^24.0.0');
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(bases.length).toBeGreaterThan(1);
    for (const base of bases) expect(base).toBe('node:24-bookworm-slim');
  });
});
