// Prints what failed in the last run, from the JSON report (`test-results/results.json`):
// each failed attempt's test, where it failed and the first lines of each error — a test that
// passed on its retry too, marked so. `scripts/e2e.sh` calls it after every run so that a log's
// last screen says why, not only the list reporter's attachments (screenshots, traces) that
// come after the errors, and so that a flaky test is seen even when the run passes.
import { readFileSync } from 'node:fs';

const LINES = 12;
const report = JSON.parse(readFileSync(new URL('./test-results/results.json', import.meta.url), 'utf8'));
// Colour codes, as the terminal reporter writes them.
const plain = (text) => text.replace(/\u001b\[[0-9;]*m/g, '');

function* specs(suite, path) {
  for (const spec of suite.specs ?? []) yield { spec, path: [...path, spec.title] };
  for (const inner of suite.suites ?? []) yield* specs(inner, [...path, inner.title]);
}

const lines = [];
for (const suite of report.suites ?? []) {
  for (const { spec, path } of specs(suite, [suite.title])) {
    for (const test of spec.tests) {
      for (const result of test.results) {
        if (result.status === 'passed' || result.status === 'skipped') continue;
        const retried = test.status === 'flaky' ? ', passed on its retry' : '';
        lines.push(`✘ ${path.join(' › ')} (${result.status}, ${(result.duration / 1000).toFixed(1)} s${retried})`);
        for (const error of result.errors ?? []) {
          const at = error.location ? `${error.location.file.split('/').pop()}:${error.location.line}` : '';
          // Without the code frame (`> 4 |   expect(…)`): its place is printed above it.
          const message = plain(error.message ?? String(error.value ?? ''))
            .split('\n')
            .filter((l) => l.trim() && !/^\s*(>\s*)?\d*\s*\|/.test(l));
          if (at) lines.push(`  ${at}`);
          lines.push(...message.slice(0, LINES).map((l) => `    ${l}`));
          if (message.length > LINES) lines.push(`    … ${message.length - LINES} more lines`);
        }
      }
    }
  }
}
if (lines.length) console.log(`\nWhat failed:\n${lines.join('\n')}`);
