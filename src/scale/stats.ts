// Return statistics for comparing the runs of a sweep: what a run's metrics.json says about its
// per-bar Sharpe ratio (length, skewness, kurtosis), and each run's deflated Sharpe ratio over the
// true number of trials of the sweep, failures included. The formulas are those of
// evaluation/metrics.ts (called, never rewritten); this file never reads returns or candles.

import {
  deflatedSharpeRatio,
  expectedMaxSharpe,
  type PerformanceMetrics,
} from '../evaluation/metrics.js';
import type { SweepManifest } from './jobs.js';

/** What the sweep compares of one run (from its metrics.json). */
export interface ReturnStats {
  /** Which object of metrics.json: `strategy` (backtest), `pooled` (walk-forward) or the root. */
  readonly source: string;
  /** Annualised Sharpe ratio. */
  readonly sharpe: number | null;
  /** Sharpe ratio of per-bar returns (not annualised). */
  readonly sharpePerBar: number | null;
  /** Number of per-bar returns. */
  readonly bars: number;
  /** Bars in a year. */
  readonly barsPerYear: number;
  /** Skewness of the returns, population moment (γ3). */
  readonly skewness: number | null;
  /** Kurtosis of the returns, population moment, not excess (γ4; 3 for a normal). */
  readonly kurtosis: number | null;
  /** Total return (fraction). */
  readonly totalReturn: number | null;
  /** Maximum drawdown (fraction). */
  readonly maxDrawdown: number | null;
  /** Round-trip trades. */
  readonly trades: number | null;
  /** Probabilistic Sharpe ratio against 0, as the run reported it. */
  readonly psr: number | null;
}

function isPerformance(x: unknown): x is PerformanceMetrics {
  const m = x as Partial<PerformanceMetrics> | null;
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof m.bars === 'number' &&
    typeof m.returns === 'object' &&
    typeof m.trust === 'object'
  );
}

/**
 * Population skewness and kurtosis from the bias-adjusted sample skewness and excess kurtosis that
 * metrics.json reports (pandas' estimators, inverted exactly): γ3 = G1 (n − 2) / √(n (n − 1)),
 * γ4 = (G2 (n − 2)(n − 3) / (n − 1) − 6) / (n + 1) + 3.
 */
export function populationMoments(
  sampleSkew: number | null,
  sampleExcessKurtosis: number | null,
  n: number,
): { skewness: number | null; kurtosis: number | null } {
  return {
    skewness: sampleSkew === null || n < 3 ? null : (sampleSkew * (n - 2)) / Math.sqrt(n * (n - 1)),
    kurtosis:
      sampleExcessKurtosis === null || n < 4
        ? null
        : ((sampleExcessKurtosis * (n - 2) * (n - 3)) / (n - 1) - 6) / (n + 1) + 3,
  };
}

/**
 * The return statistics of a run's metrics.json: its `strategy` (a backtest), `pooled` (a
 * walk-forward backtest) or the root object when that is a `PerformanceMetrics`; null when the run
 * reports no returns (e.g. a training run).
 */
export function extractReturnStats(metrics: unknown): ReturnStats | null {
  const root = metrics as Record<string, unknown> | null;
  if (typeof root !== 'object' || root === null) return null;
  const [source, m] = isPerformance(root.strategy)
    ? ['strategy', root.strategy]
    : isPerformance(root.pooled)
      ? ['pooled', root.pooled]
      : isPerformance(root)
        ? ['root', root]
        : ['', null];
  if (m === null) return null;
  const moments = populationMoments(m.returns.skew, m.returns.kurtosis, m.bars);
  return {
    source,
    sharpe: m.returns.sharpe,
    sharpePerBar: m.trust.sharpePerBar,
    bars: m.bars,
    barsPerYear: m.barsPerYear,
    ...moments,
    totalReturn: m.returns.totalReturn,
    maxDrawdown: m.drawdown.maxDrawdown,
    trades: m.trades.count,
    psr: m.trust.psr,
  };
}

/**
 * The number of trials a sweep's deflated Sharpe ratios correct for: every job of the sweep,
 * failed and unfinished ones included. The one place that says how trials are counted.
 */
export function sweepTrials(manifest: Pick<SweepManifest, 'jobs'>): number {
  return manifest.jobs.length;
}

/** Deflated Sharpe ratios of a sweep's runs. */
export interface DeflatedSharpes {
  /** Per run, in input order: the DSR, or null without return statistics. */
  readonly dsr: (number | null)[];
  /** Trials corrected for. */
  readonly trials: number;
  /** Variance of the per-bar Sharpe ratios of the runs, or null with fewer than two runs. */
  readonly variance: number | null;
  /** Expected maximum annualised Sharpe ratio of `trials` unskilled runs (the DSR's benchmark). */
  readonly expectedMaxSharpe: number | null;
}

/**
 * The deflated Sharpe ratio (Bailey & López de Prado 2014) of each run against the expected
 * maximum Sharpe ratio of `trials` unskilled trials, whose variance is that of the runs' per-bar
 * Sharpe ratios (two or more runs), else each run's own estimation variance 1 / (T − 1).
 */
export function deflatedSharpes(
  stats: readonly (ReturnStats | null)[],
  trials: number,
): DeflatedSharpes {
  const srs = stats.flatMap((s) => ((s?.sharpePerBar ?? null) === null ? [] : [s!.sharpePerBar!]));
  let variance: number | null = null;
  if (srs.length >= 2) {
    const mean = srs.reduce((a, b) => a + b, 0) / srs.length;
    variance = srs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / (srs.length - 1);
  }
  const dsr = stats.map((s) => {
    if (s === null || s.sharpePerBar === null || s.skewness === null || s.kurtosis === null)
      return null;
    return deflatedSharpeRatio(
      { sharpe: s.sharpePerBar, observations: s.bars, skewness: s.skewness, kurtosis: s.kurtosis },
      trials,
      variance ?? 1 / (s.bars - 1),
    );
  });
  const first = stats.find((s) => s !== null) ?? null;
  return {
    dsr,
    trials,
    variance,
    expectedMaxSharpe:
      first === null
        ? null
        : expectedMaxSharpe(trials, variance ?? 1 / (first.bars - 1)) *
          Math.sqrt(first.barsPerYear),
  };
}
