// Counts a vitest JSON report: `node scripts/ci/count.mjs REPORT [PATH_PREFIX] [VITEST_STATUS]` prints
// `N passed, N failed` for the test files under PATH_PREFIX (default: all). A file that failed outside
// its tests (import, setup or teardown hook) counts as one failure; a run vitest failed for errors
// outside any file (unhandled rejections) is never reported as green.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const [reportPath, prefix = '', status = '0'] = process.argv.slice(2);
const report = JSON.parse(readFileSync(reportPath, 'utf8'));
const files = report.testResults.filter((f) => relative(process.cwd(), f.name).startsWith(prefix));
let passed = 0;
let failed = 0;
for (const file of files) {
  passed += file.assertionResults.filter((a) => a.status === 'passed').length;
  failed += file.assertionResults.filter((a) => a.status === 'failed').length;
  if (file.status === 'failed' && !file.assertionResults.some((a) => a.status === 'failed')) failed += 1;
}
if (prefix === '' && failed === 0 && status !== '0') failed = 1;
console.log(`${passed} passed, ${failed} failed`);
