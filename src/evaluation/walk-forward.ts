// Walk-forward evaluation: a policy backtested on each fold of `walkForwardSplits` (the folds and the
// holdout guard live in data-processing/splits.ts), per-fold and pooled results. Never trades a row
// outside its fold's test range.

import { makeCandles, timeframeMs } from '../data-processing/candles.js';
import type { ReportBacktestInput } from './report.js';
import {
  backtestReportInput,
  backtestStrategy,
  metricsTrades,
  type BacktestOptions,
  type BacktestResult,
} from './backtest.js';
import { barsPerYearOf, calculatePerformanceMetrics, type PerformanceMetrics } from './metrics.js';
import type { Policy } from './policy.js';
import type { WalkForwardFold } from '../data-processing/splits.js';

/** Options of `walkForwardBacktest`: the backtest's options, per fold. */
export interface WalkForwardBacktestOptions extends Omit<BacktestOptions, 'policy' | 'range'> {
  /** Folds to evaluate, from `walkForwardSplits`. */
  readonly folds: readonly WalkForwardFold[];
  /**
   * A fixed policy, or a factory called once per fold with the fold (its train ranges are where a
   * model may be fitted): fold retraining plugs in here.
   */
  readonly policy: Policy | ((fold: WalkForwardFold) => Policy | Promise<Policy>);
}

/** One fold's outcome. */
export interface WalkForwardFoldResult {
  /** The fold. */
  readonly fold: WalkForwardFold;
  /** Null when the fold's test window holds no tradable bars (`skipped` says why). */
  readonly result: BacktestResult | null;
  /** Why the fold was skipped, or null when it ran. */
  readonly skipped: string | null;
}

/** Per-fold and pooled results of a walk-forward evaluation. */
export interface WalkForwardResult {
  /** Outcome of every fold, in fold order. */
  readonly folds: readonly WalkForwardFoldResult[];
  /** Metrics of the test returns of every fold, concatenated in time (compounded across folds). */
  readonly pooled: PerformanceMetrics;
  /** The same for buy-and-hold (when the benchmark is on). */
  readonly pooledBenchmark: PerformanceMetrics | null;
  /** Pooled equity, one point per test row of every fold, starting from the initial capital. */
  readonly pooledEquity: Float64Array;
}

function concat(arrays: readonly ArrayLike<number>[]): Float64Array {
  let n = 0;
  for (const a of arrays) n += a.length;
  const out = new Float64Array(n);
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

/**
 * Backtests a policy on the test window of every fold (each fold starts flat with the initial
 * capital) and pools the folds: returns are concatenated in time and compounded, trades pooled,
 * per-fold costs rescaled to the pooled equity at each fold's start.
 * @throws {RangeError} when no fold has a tradable test window
 * @throws {LookAheadError} when a test window touches a closed holdout
 */
export async function walkForwardBacktest(
  options: WalkForwardBacktestOptions,
): Promise<WalkForwardResult> {
  const { folds, policy, ...rest } = options;
  const results: WalkForwardFoldResult[] = [];
  for (const fold of folds) {
    const p = typeof policy === 'function' ? await policy(fold) : policy;
    try {
      results.push({
        fold,
        result: backtestStrategy({ ...rest, policy: p, range: fold.test }),
        skipped: null,
      });
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      results.push({ fold, result: null, skipped: err.message });
    }
  }
  const done = results.filter((r) => r.result !== null).map((r) => r.result as BacktestResult);
  if (done.length === 0)
    throw new RangeError(
      `walk-forward: no fold has bars to test (${results[0]?.skipped ?? 'no folds'})`,
    );
  const first = done[0];
  const initial = first.initialCapital;
  // Rescale each fold's currency amounts to the pooled equity at its start.
  const scaled = {
    fees: [] as Float64Array[],
    slippage: [] as Float64Array[],
    funding: [] as Float64Array[],
    traded: [] as Float64Array[],
  };
  const equityParts: Float64Array[] = [Float64Array.of(initial)];
  let equity = initial;
  for (const r of done) {
    const s = equity / r.initialCapital;
    const scale = (a: Float64Array): Float64Array => a.map((x) => x * s);
    scaled.fees.push(scale(r.costs.fees));
    scaled.slippage.push(scale(r.costs.slippage));
    scaled.funding.push(scale(r.costs.funding));
    scaled.traded.push(scale(r.costs.tradedNotional));
    const part = new Float64Array(r.returns.length);
    for (let k = 0; k < r.returns.length; k++) {
      equity *= 1 + r.returns[k];
      part[k] = equity;
    }
    equityParts.push(part);
  }
  const returns = concat(done.map((r) => r.returns));
  const timeMs = concat(
    done.map((r) => {
      const t = new Float64Array(r.returns.length);
      const step = timeframeMs(r.timeframe);
      for (let k = 0; k < t.length; k++) t[k] = r.time[k + 1] + step;
      return t;
    }),
  );
  const barsPerYear = barsPerYearOf(timeframeMs(first.timeframe));
  const pooled = calculatePerformanceMetrics(
    returns,
    done.flatMap((r) => metricsTrades(r.trades)),
    {
      barsPerYear,
      timeMs,
      trials: options.trials,
      riskFreeRate: options.riskFreeRate,
      account: {
        initialCapital: initial,
        fees: concat(scaled.fees),
        slippage: concat(scaled.slippage),
        funding: concat(scaled.funding),
        tradedNotional: concat(scaled.traded),
        exposure: concat(done.map((r) => r.position.subarray(1))),
      },
    },
  );
  let pooledBenchmark: PerformanceMetrics | null = null;
  if (done.every((r) => r.benchmarkEquity !== null)) {
    const b = concat(
      done.map((r) => {
        const e = r.benchmarkEquity as Float64Array;
        const out = new Float64Array(e.length - 1);
        for (let k = 1; k < e.length; k++) out[k - 1] = e[k - 1] > 0 ? e[k] / e[k - 1] - 1 : 0;
        return out;
      }),
    );
    pooledBenchmark = calculatePerformanceMetrics(
      b,
      done.flatMap((r) => metricsTrades(r.benchmarkTrades)),
      {
        barsPerYear,
        timeMs,
        riskFreeRate: options.riskFreeRate,
      },
    );
  }
  return { folds: results, pooled, pooledBenchmark, pooledEquity: concat(equityParts) };
}

/**
 * The report's view of a walk-forward evaluation: the folds' test windows side by side (each
 * fold's equity rescaled to the pooled equity at its start, the benchmark likewise), every trade.
 * @throws {RangeError} when test windows overlap (they cannot be drawn on one time axis).
 */
export function walkForwardReportInput(
  wf: WalkForwardResult,
  title: string,
  facts: Record<string, string | number> = {},
): ReportBacktestInput {
  const done = wf.folds.filter((f) => f.result !== null).map((f) => f.result as BacktestResult);
  for (let k = 1; k < done.length; k++)
    if (done[k].time[0] <= done[k - 1].time[done[k - 1].time.length - 1])
      throw new RangeError('walk-forward test windows overlap: no single chart of them');
  const parts = done.map((r) => backtestReportInput(r, title));
  const candles = makeCandles(done[0].symbol, done[0].timeframe, {
    openTime: concat(done.map((r) => r.candles.openTime)),
    open: concat(done.map((r) => r.candles.open)),
    high: concat(done.map((r) => r.candles.high)),
    low: concat(done.map((r) => r.candles.low)),
    close: concat(done.map((r) => r.candles.close)),
    volume: concat(done.map((r) => r.candles.volume)),
  });
  const equity: number[] = [];
  const bench: number[] = [];
  let eq = done[0].initialCapital;
  let be = eq;
  for (const r of done) {
    const s = eq / r.initialCapital;
    const sb = be / r.initialCapital;
    for (let k = 0; k < r.rows; k++) {
      equity.push(r.equity[k] * s);
      if (r.benchmarkEquity !== null) bench.push(r.benchmarkEquity[k] * sb);
    }
    eq = r.equity[r.rows - 1] * s;
    if (r.benchmarkEquity !== null) be = r.benchmarkEquity[r.rows - 1] * sb;
  }
  const higher = done[0].higher.map((h, j) => {
    const lastClosed = new Int32Array(candles.openTime.length);
    let o = 0;
    for (const r of done) {
      lastClosed.set(r.higher[j].lastClosed, o);
      o += r.rows;
    }
    return { timeframe: h.timeframe, candles: h.candles, lastClosed };
  });
  return {
    title,
    symbol: done[0].symbol,
    candles,
    higher,
    equity,
    benchmarkEquity: bench.length === equity.length ? bench : undefined,
    position: concat(done.map((r) => r.position)),
    trades: parts.flatMap((p) => p.trades),
    metrics: wf.pooled,
    benchmarkMetrics: wf.pooledBenchmark ?? undefined,
    facts: { ...facts, folds: done.length },
  };
}
