// `npm run docs`: writes the generated references, docs/cli.md (from the `ctm` command
// definitions) and docs/config.md (from the config schema and config/default.yaml), with
// `--check` it writes nothing and exits 1 when a committed file differs. The text comes from
// src/cli/reference.ts; test/cli/reference.test.ts runs the same check inside `npm test`.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../src/cli/program.js';
import {
  cliReference,
  configReference,
  REFERENCE_COMMAND,
  type ReferenceFile,
} from '../src/cli/reference.js';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The text of every generated reference file, by path relative to the repository root. */
export function renderReferenceDocs(): Record<ReferenceFile, string> {
  return {
    'docs/cli.md': cliReference(buildProgram()),
    'docs/config.md': configReference(),
  };
}

/** The generated files whose committed text differs from what the code generates now. */
export function staleReferenceDocs(root: string = ROOT): ReferenceFile[] {
  const docs = renderReferenceDocs();
  return (Object.keys(docs) as ReferenceFile[]).filter((file) => {
    let committed: string;
    try {
      committed = readFileSync(`${root}/${file}`, 'utf8');
    } catch {
      return true;
    }
    return committed !== docs[file];
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const stale = staleReferenceDocs();
    for (const file of stale)
      process.stderr.write(`${file} is out of date: run ${REFERENCE_COMMAND}\n`);
    process.exit(stale.length === 0 ? 0 : 1);
  }
  for (const [file, text] of Object.entries(renderReferenceDocs())) {
    writeFileSync(`${ROOT}/${file}`, text);
    process.stdout.write(`wrote ${file}\n`);
  }
}
