// The sequence-model experiment at its tiny scale (what CI runs): every comparison is produced with
// numbers (pattern data: variants, seeds, per-type accuracy; real data: walk-forward with its
// control). Writing the section is tested with its helper (results-section.test.ts).

import { describe, expect, it } from 'vitest';
import { runSequenceModelExperiments } from '../../experiments/sequence-model.js';
import { hasSharedData, SHARED_DATA_DIR } from '../helpers/shared-data.js';

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
});
