// The one writer of docs/results.md: each experiment owns one section between
// `<!-- name:start -->` and `<!-- name:end -->` markers and replaces only that section. Never
// touches another experiment's section.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomicSync } from '../src/utils/fs.js';

/** docs/results.md of this checkout. */
export const RESULTS_FILE = join(
  fileURLToPath(new URL('..', import.meta.url)),
  'docs',
  'results.md',
);

/**
 * Writes `body` as section `name` of the results file: replaces the text between the section's
 * markers, or appends the section when the file (created if missing) has none. Atomic.
 * @returns the section as written, markers included.
 */
export function writeResultsSection(name: string, body: string, file = RESULTS_FILE): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  mkdirSync(dirname(file), { recursive: true });
  const text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Results\n\nEach experiment under experiments/ writes its own section.\n';
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  const next =
    i >= 0 && j > i
      ? text.slice(0, i) + block + text.slice(j + end.length)
      : `${text.trimEnd()}\n\n${block}\n`;
  writeFileAtomicSync(file, next);
  return block;
}

/** A difference with its sign and three decimals (+0.123, -0.045), as the reports print them. */
export function signed(d: number): string {
  return `${d >= 0 ? '+' : ''}${d.toFixed(3)}`;
}
