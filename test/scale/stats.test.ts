// Comparing the runs of a sweep: the statistics read back from a run's metrics.json give the same
// probabilistic and deflated Sharpe ratios as the metrics module computes from the returns, and
// the deflated Sharpe ratio falls as the number of trials (failures included) grows.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  calculatePerformanceMetrics,
  probabilisticSharpeRatio,
} from '../../src/evaluation/metrics.js';
import { deflatedSharpes, extractReturnStats, sweepTrials } from '../../src/scale/stats.js';
import { Rng } from '../../src/utils/random.js';

function returns(seed: number, n: number, drift: number): Float64Array {
  const rng = new Rng(seed);
  // Skewed, heavy-tailed returns so that the moments matter.
  return Float64Array.from(
    { length: n },
    () => drift + 0.01 * rng.studentT(4) + 0.004 * (rng.exponential() - 1),
  );
}

describe('extractReturnStats', () => {
  it('recovers the population moments: the PSR from metrics.json equals the one computed from the returns', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1e6 }),
        fc.integer({ min: 5, max: 3000 }),
        (seed, n) => {
          const m = calculatePerformanceMetrics(returns(seed, n, -0.002), [], { barsPerYear: 365 });
          const s = extractReturnStats(JSON.parse(JSON.stringify({ strategy: m })))!;
          expect(s.source).toBe('strategy');
          const psr = probabilisticSharpeRatio({
            sharpe: s.sharpePerBar!,
            observations: s.bars,
            skewness: s.skewness!,
            kurtosis: s.kurtosis!,
          });
          // The inversion of pandas' bias adjustment is exact up to rounding (relative 1e-9).
          expect(psr).toBeCloseTo(m.trust.psr!, 9);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('reads walk-forward pooled metrics and ignores runs without returns', () => {
    const m = calculatePerformanceMetrics(returns(3, 500, 0), [], { barsPerYear: 365 });
    expect(extractReturnStats({ pooled: m })?.source).toBe('pooled');
    expect(extractReturnStats(m)?.source).toBe('root');
    expect(extractReturnStats({ bestValLoss: 1.2, validation: { accuracy: 0.5 } })).toBeNull();
    expect(extractReturnStats(null)).toBeNull();
  });
});

describe('deflatedSharpes', () => {
  it('for one run equals the DSR the metrics module gives for the same number of trials', () => {
    const r = returns(11, 2000, 0.001);
    for (const trials of [1, 5, 40]) {
      const m = calculatePerformanceMetrics(r, [], { barsPerYear: 365, trials });
      const d = deflatedSharpes([extractReturnStats({ strategy: m })], trials);
      expect(d.dsr[0]).toBeCloseTo(m.trust.dsr!, 9);
    }
  });

  it('falls as trials grow, and a sweep counts every job as a trial', () => {
    const stats = [1, 2, 3, 4].map((seed) =>
      extractReturnStats({
        strategy: calculatePerformanceMetrics(returns(seed, 1500, 0.0005), [], {
          barsPerYear: 365,
        }),
      }),
    );
    const four = deflatedSharpes(stats, 4);
    const forty = deflatedSharpes(stats, 40);
    for (let k = 0; k < 4; k++) expect(forty.dsr[k]!).toBeLessThan(four.dsr[k]!);
    expect(forty.expectedMaxSharpe!).toBeGreaterThan(four.expectedMaxSharpe!);
    // A failed job has no statistics and no DSR, yet counts.
    const withFailure = deflatedSharpes([...stats, null], 5);
    expect(withFailure.dsr[4]).toBeNull();
    expect(withFailure.trials).toBe(5);
    expect(sweepTrials({ jobs: new Array(7).fill(null) })).toBe(7);
  });
});
