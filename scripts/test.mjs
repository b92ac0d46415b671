#!/usr/bin/env node
// `npm test`: runs every suite with vitest, then prints which suites were skipped and why and a
// closing "N passed, N failed, N skipped" line. Under CI=true the global setup fails instead of
// skipping anything for a missing service.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'latch-test-report-'));
const report = join(dir, 'report.json');
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)];
const run = spawnSync('npx', args, { stdio: 'inherit', env: process.env });

let passed = 0;
let failed = 0;
let skipped = 0;
const skippedSuites = new Set();
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
  skipped = r.numPendingTests + r.numTodoTests;
  for (const file of r.testResults) {
    for (const t of file.assertionResults) {
      const why = [...t.ancestorTitles, t.title].find((s) => /\[skipped: /.test(s));
      if (t.status !== 'passed' && t.status !== 'failed' && why) skippedSuites.add(why);
    }
    if (file.status === 'failed' && file.assertionResults.length === 0) failed++;
  }
} catch {
  failed = Math.max(failed, 1);
  console.error('test: no report was written (vitest crashed before finishing)');
}
rmSync(dir, { recursive: true, force: true });

if (skippedSuites.size > 0) {
  console.log('\nSkipped for a missing service:');
  for (const s of skippedSuites) console.log(`  - ${s}`);
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
