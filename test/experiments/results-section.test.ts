// The experiments' one writer of docs/results.md: a section lands between its own markers, other
// sections and text stay as they were, and a missing file or section is created.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeResultsSection } from '../../experiments/results-section.js';

const dir = mkdtempSync(join(tmpdir(), 'ctm-results-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeResultsSection', () => {
  it('replaces its section between its markers and leaves the other sections alone', () => {
    const file = join(dir, 'results.md');
    writeFileSync(
      file,
      '# Results\n\n<!-- synthetic:start -->\nsynthetic stays\n<!-- synthetic:end -->\n\n<!-- sequence-model:start -->\nold\n<!-- sequence-model:end -->\n\ntail stays\n',
    );
    const block = writeResultsSection('sequence-model', 'new body\n', file);
    expect(block).toBe('<!-- sequence-model:start -->\nnew body\n<!-- sequence-model:end -->');
    expect(readFileSync(file, 'utf8')).toBe(
      '# Results\n\n<!-- synthetic:start -->\nsynthetic stays\n<!-- synthetic:end -->\n\n<!-- sequence-model:start -->\nnew body\n<!-- sequence-model:end -->\n\ntail stays\n',
    );
  });

  it('creates the file, then appends a section it does not hold yet', () => {
    const fresh = join(dir, 'docs', 'fresh.md');
    writeResultsSection('patterns', 'first', fresh);
    writeResultsSection('realism', 'second', fresh);
    expect(readFileSync(fresh, 'utf8')).toBe(
      '# Results\n\nEach experiment under experiments/ writes its own section.\n\n' +
        '<!-- patterns:start -->\nfirst\n<!-- patterns:end -->\n\n' +
        '<!-- realism:start -->\nsecond\n<!-- realism:end -->\n',
    );
  });
});
