// `npm run bench`: runs every bench/*.bench.ts in its own process (so one does not warm or
// pollute another), collects their JSON lines into bench/results.json (not committed) and prints
// a markdown table.

import { readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { BenchResult } from './lib.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
const results: BenchResult[] = [];
let failed = false;
for (const file of files) {
  process.stderr.write(`bench: ${file}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, file)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) {
    process.stderr.write(`bench: ${file} failed with status ${r.status}\n`);
    failed = true;
  }
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('{')) results.push(JSON.parse(line) as BenchResult);
  }
}
writeFileSync(join(dir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
process.stdout.write('| name | value | unit | params |\n|---|---:|---|---|\n');
for (const r of results)
  process.stdout.write(`| ${r.name} | ${r.value} | ${r.unit} | ${JSON.stringify(r.params)} |\n`);
process.exit(failed ? 1 : 0);
