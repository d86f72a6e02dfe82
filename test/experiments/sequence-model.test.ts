// The sequence-model experiment at its tiny scale (what CI runs): every comparison is produced with
// numbers (pattern data: variants, seeds, per-type accuracy; real data: walk-forward with its
// control), and the section lands between its markers in docs/results.md without touching the
// other sections.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  runSequenceModelExperiments,
  writeResultsSection,
} from '../../experiments/sequence-model.js';
import { hasSharedData, SHARED_DATA_DIR } from '../helpers/shared-data.js';

const dir = mkdtempSync(join(tmpdir(), 'ctm-exp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sequence-model experiment (tiny)', () => {
  it('reports every variant with numbers and says what could not be run', async () => {
    const body = await runSequenceModelExperiments({ tiny: true, dataDir: SHARED_DATA_DIR });
    expect(body).toContain('Scale: tiny');
    expect(body).toMatch(/### Synthetic pattern data/);
    expect(body).toMatch(/\| none \| \d+ \| (\d+\.\d|n\/a) \|/); // pattern-type accuracy per type
    for (const variant of [
      'full model (15m + 4h + 1d)',
      '15m only',
      '4h only',
      '1d only',
      'logistic regression',
    ])
      expect(body).toMatch(
        new RegExp(`\\| ${variant.replace(/[()+]/g, '\\$&')}[^|]*\\| \\d+\\.\\d \\|`),
      );
    expect(body).toMatch(
      /full model − best single-timeframe ablation \([^)]+\): -?\d+\.\d ± \d+\.\d pp/,
    );
    if (hasSharedData) {
      expect(body).toMatch(
        /\| 20\d\d-\d\d-\d\d – 20\d\d-\d\d-\d\d \| \d+\/\d+\/\d+ \| \d+\.\d \/ /,
      );
      expect(body).toMatch(/model − control -?\d+\.\d ± \d+\.\d pp/);
    } else {
      expect(body).toMatch(/Not run: .* has no BTC\/USDT candles/);
    }
  });

  it('writes its section between its markers and leaves the other sections alone', () => {
    const file = join(dir, 'results.md');
    writeFileSync(
      file,
      '# Results\n\n<!-- synthetic:start -->\nsynthetic stays\n<!-- synthetic:end -->\n\n<!-- sequence-model:start -->\nold\n<!-- sequence-model:end -->\n\ntail stays\n',
    );
    writeResultsSection('new body', file);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('<!-- sequence-model:start -->\nnew body\n<!-- sequence-model:end -->');
    expect(text).not.toContain('\nold\n');
    expect(text).toContain('synthetic stays');
    expect(text).toContain('tail stays');
    const fresh = join(dir, 'fresh.md');
    writeResultsSection('first', fresh);
    expect(readFileSync(fresh, 'utf8')).toBe(
      '# Results\n\n<!-- sequence-model:start -->\nfirst\n<!-- sequence-model:end -->\n',
    );
  });
});
