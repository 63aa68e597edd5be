import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMissingDetailsClient,
  patientTemplateNames,
  resolveOpenFieldsNamed,
  savePlaceholder,
} from '../../examples/trpc-client.js';
import {
  listen,
  newLabId,
  seedOpenEmailRows,
  startTestApp,
  type TestApp,
  tokenFor,
} from '../support/fixtures.js';

const readJson = async (path: string) => JSON.parse(await readFile(new URL(path, import.meta.url), 'utf8'));

let t: TestApp;
let baseUrl: string;

beforeAll(async () => {
  t = await startTestApp();
  baseUrl = await listen(t);
});
afterAll(async () => {
  await t.close();
});

describe('the typed tRPC client example (examples/trpc-client.ts)', () => {
  it('lists, resolves and reports refused input against the real service', async () => {
    const labId = newLabId();
    const client = createMissingDetailsClient({ baseUrl, token: await tokenFor({ labId, userId: 7 }) });

    expect(await patientTemplateNames(client)).toEqual([
      'email',
      'mobile',
      'dob',
      'address',
      'referral_doctor',
      'organization',
    ]);

    expect(await savePlaceholder(client, 1, 'noemail@lab.in')).toEqual({ ok: true, activeConfigs: 1 });
    expect(await savePlaceholder(client, 1, '   ')).toEqual({
      ok: false,
      code: 'BAD_REQUEST',
      problems: [expect.stringMatching(/^configs\.0\.fieldValue: /)],
    });

    await seedOpenEmailRows(t.db, labId, [601, 602]);
    expect(await resolveOpenFieldsNamed(client, 'email')).toBe(2);
    expect(await resolveOpenFieldsNamed(client, 'email')).toBe(0);
  });

  it('gets AppRouter from a types-only package export that points at what the build emits', async () => {
    const pkg = await readJson('../../package.json');
    // Types only: no import/require/default condition a bundler could pull server code through.
    expect(pkg.exports['./client']).toEqual({ types: './dist/routers/app.router.d.ts' });

    const base = await readJson('../../tsconfig.json');
    const build = await readJson('../../tsconfig.build.json');
    expect(build.extends).toBe('./tsconfig.json');
    const options = { ...base.compilerOptions, ...build.compilerOptions };
    expect(options).toMatchObject({ declaration: true, noEmit: false, rootDir: '.', outDir: 'dist' });
    expect(build.include).toContain('routers');
    // The typecheck resolves the same specifier to the source that the build turns into that file.
    expect(base.compilerOptions.paths['missing-details-service/client']).toEqual(['./routers/app.router.ts']);
    expect(base.include).toContain('examples');

    const example = await readFile(new URL('../../examples/trpc-client.ts', import.meta.url), 'utf8');
    const serverImports = example.match(/^import .* from '(missing-details-service|\.\.?\/)[^']*';$/gm) ?? [];
    expect(serverImports).toEqual(["import type { AppRouter } from 'missing-details-service/client';"]);
  });
});
