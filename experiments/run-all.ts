// `npm run experiments`: runs every experiment under experiments/ (a file that writes a section of
// docs/results.md; shared modules are not run), each in its own process, in name order; pass name
// fragments to run a subset. Exits non-zero when any experiment fails.

import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const dir = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run-all.ts' && f !== 'results-section.ts')
  .filter((f) => readFileSync(join(dir, f), 'utf8').includes('writeResultsSection('))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
let failed = false;
for (const file of files) {
  process.stderr.write(`experiment: ${file}\n`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, file)], { stdio: 'inherit' });
  process.stderr.write(
    `experiment: ${file} ${r.status === 0 ? 'done' : `failed (status ${r.status})`} in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
  );
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
