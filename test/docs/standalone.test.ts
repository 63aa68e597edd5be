import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * The repository stands alone: it carries the legacy contract and schema itself. Where the steering
 * repository's shared/ sits beside the clone (as on the team's machines and CI), the copies must
 * keep up with it; a clone with nothing beside it still passes.
 */
const ROOT = new URL('../../', import.meta.url);
const SHARED = new URL('../../../shared/legacy/', import.meta.url);

function text(url: URL): string {
  return readFileSync(url, 'utf8');
}

describe('the repository stands alone', () => {
  it('refers to nothing outside itself from its tracked files', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((file) => /\.(ts|md|json|ya?ml|sh)$/.test(file) || file === '.ci/run');
    const outside = tracked.filter((file) => /\.\.\/shared\//.test(text(new URL(file, ROOT))));
    // This file names ../shared on purpose, to compare the copies with it.
    expect(outside.filter((file) => file !== 'test/docs/standalone.test.ts')).toEqual([]);
  });

  it.runIf(existsSync(new URL('contract.md', SHARED)))(
    'keeps the legacy contract in step with shared/ (project notes may follow it)',
    () => {
      expect(
        text(new URL('docs/legacy-contract.md', ROOT)).startsWith(text(new URL('contract.md', SHARED))),
      ).toBe(true);
    },
  );

  it.runIf(existsSync(new URL('schema.sql', SHARED)))(
    'keeps the legacy schema fixture identical to shared/',
    () => {
      expect(text(new URL('test/fixtures/legacy-schema.sql', ROOT))).toBe(
        text(new URL('schema.sql', SHARED)),
      );
    },
  );
});
