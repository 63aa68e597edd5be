import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/fixtures.js';

/** Debian's chromium, installed by .ci/run. */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// On a developer's machine without chromium the page test is skipped; in CI it must run (and fail).
const runPageTest = existsSync(CHROMIUM) || process.env.CI === 'true';

describe.skipIf(!runPageTest)('the docs page at /docs', () => {
  let t: TestApp;
  let baseUrl: string;
  let userDataDir: string;
  let browser: BrowserContext | undefined;

  beforeAll(async () => {
    t = await startTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    userDataDir = await mkdtemp(join(tmpdir(), 'md-docs-chromium-'));
  });
  afterAll(async () => {
    await browser?.close();
    await t.close();
    await rm(userDataDir, { recursive: true, force: true });
  });

  it('lists the five operations of the REST shim in Swagger UI, in a real headless Chromium', async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`).toBe(true);
    // A persistent context is how Playwright takes a user data dir: a new, empty one.
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30_000,
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    const failedRequests: string[] = [];
    page.on('requestfailed', (request) => failedRequests.push(request.url()));

    const answer = await page.goto(`${baseUrl}/docs`, { waitUntil: 'load' });
    expect(answer?.status()).toBe(200);
    await page.locator('.opblock').first().waitFor({ state: 'visible', timeout: 20_000 });
    const operations = await page
      .locator('.opblock-summary')
      .evaluateAll((nodes) =>
        nodes.map(
          (node) =>
            `${node.querySelector('.opblock-summary-method')?.textContent?.trim()} ${node
              .querySelector('.opblock-summary-path')
              ?.getAttribute('data-path')}`,
        ),
      );

    expect(operations).toEqual(
      expect.arrayContaining([
        'GET /api-v3/registration/patients/missing-details-templates',
        'GET /api-v3/registration/patients/lab-missing-details-config',
        'POST /api-v3/registration/patients/lab-missing-details-config',
        'GET /api-v3/account/missing-details/lab-fields',
        'PATCH /api-v3/account/missing-details/lab-fields',
      ]),
    );
    await expect(page.locator('.info .title').textContent()).resolves.toContain('Missing Details');
    // Everything the page needs comes from the service itself.
    expect(failedRequests).toEqual([]);
  });
});
