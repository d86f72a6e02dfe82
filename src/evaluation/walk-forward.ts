// Walk-forward evaluation: rolling (or expanding) train/test date windows with a purge gap before
// each test window and an embargo after it, per-fold and pooled results of a policy, and the guard
// that keeps the holdout split closed. Never lets a train window overlap its test window or the
// label horizon before it, and never reads the holdout without an explicit `openHoldout`.

import { makeCandles, timeframeMs } from '../data-processing/candles.js';
import { LookAheadError } from '../errors.js';
import type { ReportBacktestInput } from '../utils/visualization.js';
import {
  backtestReportInput,
  backtestStrategy,
  metricsTrades,
  type BacktestOptions,
  type BacktestResult,
} from './backtest.js';
import { barsPerYearOf, calculatePerformanceMetrics, type PerformanceMetrics } from './metrics.js';
import type { Policy } from './policy.js';

/** A half-open UTC date range `[fromMs, toMs)` in epoch ms. */
export interface DateRange {
  /** Inclusive start, UTC ms. */
  readonly fromMs: number;
  /** Exclusive end, UTC ms. */
  readonly toMs: number;
}

/** One fold: where a policy may be fitted and where it is evaluated. */
export interface WalkForwardFold {
  /** 0-based fold number, in test-window order. */
  readonly index: number;
  /** Training ranges (one in walk-forward modes; up to two, around the test block, in k-fold). */
  readonly train: readonly DateRange[];
  /** The range evaluated. */
  readonly test: DateRange;
}

/**
 * How folds are cut. `rolling`: a train window of fixed length before each test window;
 * `expanding`: train from the start of the span; `purged-kfold`: contiguous test blocks with
 * training on both sides (López de Prado's purged k-fold), where the embargo after each test block
 * matters.
 */
export type WalkForwardMode = 'rolling' | 'expanding' | 'purged-kfold';

/** Options of `walkForwardSplits`. Lengths are in ms. */
export interface WalkForwardOptions {
  /** The span folds are cut from. */
  readonly range: DateRange;
  /** How folds are cut. Default rolling. */
  readonly mode?: WalkForwardMode;
  /** Train window length (rolling), minimum train length (expanding); unused in k-fold. */
  readonly trainMs?: number;
  /** Test window length (walk-forward modes). */
  readonly testMs?: number;
  /** Distance between consecutive test windows (default `testMs`: contiguous, non-overlapping). */
  readonly stepMs?: number;
  /** Number of folds (purged-kfold only). */
  readonly folds?: number;
  /**
   * Gap between the end of training data and the start of a test window: training rows whose
   * label (forward) horizon reaches into the test window are dropped. Set it to the label horizon.
   */
  readonly purgeMs: number;
  /**
   * Gap after a test window before training data may resume (purged-kfold; serial correlation
   * guard). Set it to the label horizon. Forward-only modes never train after a test window.
   */
  readonly embargoMs: number;
  /** The holdout split; the span must not touch it unless `openHoldout`. */
  readonly holdout?: DateRange;
  /** Allow the span to touch the holdout (the final evaluation). Default false. */
  readonly openHoldout?: boolean;
}

function overlaps(a: DateRange, b: DateRange): boolean {
  return a.fromMs < b.toMs && b.fromMs < a.toMs;
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : ms > 0 ? '+inf' : '-inf';
}

/**
 * Refuses a read of `range` that overlaps the holdout split unless the holdout is opened
 * explicitly (`--open-holdout`).
 * @throws {LookAheadError} naming both ranges.
 */
export function assertOutsideHoldout(
  range: DateRange,
  holdout: DateRange | undefined,
  openHoldout = false,
): void {
  if (holdout === undefined || openHoldout || holdout.fromMs >= holdout.toMs) return;
  if (overlaps(range, holdout))
    throw new LookAheadError(
      `range [${iso(range.fromMs)}, ${iso(range.toMs)}) reads the holdout split [${iso(holdout.fromMs)}, ${iso(holdout.toMs)})`,
      {
        hint: 'end the range before splits.holdout.from, or pass --open-holdout for the final evaluation',
      },
    );
}

/**
 * Clips `range` so that it ends before the holdout when the holdout is closed and starts before
 * the range ends (the default data range of an evaluation). A range lying entirely inside a closed
 * holdout is refused.
 * @throws {LookAheadError} when nothing is left outside the holdout.
 */
export function clipToHoldout(
  range: DateRange,
  holdout: DateRange | undefined,
  openHoldout = false,
): DateRange {
  if (holdout === undefined || openHoldout || !overlaps(range, holdout)) return range;
  if (holdout.fromMs > range.fromMs) return { fromMs: range.fromMs, toMs: holdout.fromMs };
  if (holdout.toMs < range.toMs) return { fromMs: holdout.toMs, toMs: range.toMs };
  assertOutsideHoldout(range, holdout, openHoldout);
  return range;
}

/**
 * Cuts train/test folds from a date span.
 * @throws {RangeError} on non-positive lengths, a span too short for one fold, or a missing
 *   option of the chosen mode
 * @throws {LookAheadError} when the span overlaps a closed holdout
 * @example
 * const folds = walkForwardSplits({ range, trainMs: 365 * DAY, testMs: 90 * DAY,
 *   purgeMs: 16 * 15 * MIN, embargoMs: 16 * 15 * MIN });
 */
export function walkForwardSplits(options: WalkForwardOptions): WalkForwardFold[] {
  const { range, purgeMs, embargoMs } = options;
  const mode = options.mode ?? 'rolling';
  assertOutsideHoldout(range, options.holdout, options.openHoldout);
  if (
    !(range.toMs > range.fromMs) ||
    !Number.isFinite(range.fromMs) ||
    !Number.isFinite(range.toMs)
  )
    throw new RangeError(
      `walk-forward span [${iso(range.fromMs)}, ${iso(range.toMs)}) is empty or unbounded`,
    );
  if (!(purgeMs >= 0) || !(embargoMs >= 0))
    throw new RangeError(`purge (${purgeMs} ms) and embargo (${embargoMs} ms) must be >= 0`);
  const folds: WalkForwardFold[] = [];
  if (mode === 'purged-kfold') {
    const k = options.folds ?? 0;
    if (!(Number.isInteger(k) && k >= 2))
      throw new RangeError(`purged-kfold needs folds >= 2, got ${k}`);
    const span = range.toMs - range.fromMs;
    for (let i = 0; i < k; i++) {
      const test = {
        fromMs: range.fromMs + Math.floor((span * i) / k),
        toMs: range.fromMs + Math.floor((span * (i + 1)) / k),
      };
      const train: DateRange[] = [];
      const before = { fromMs: range.fromMs, toMs: test.fromMs - purgeMs };
      const after = { fromMs: test.toMs + embargoMs, toMs: range.toMs };
      if (before.toMs > before.fromMs) train.push(before);
      if (after.toMs > after.fromMs) train.push(after);
      folds.push({ index: i, train, test });
    }
    return folds;
  }
  const trainMs = options.trainMs ?? 0;
  const testMs = options.testMs ?? 0;
  const stepMs = options.stepMs ?? testMs;
  if (!(trainMs > 0) || !(testMs > 0) || !(stepMs > 0))
    throw new RangeError(
      `walk-forward needs trainMs, testMs and stepMs > 0 (got ${trainMs}, ${testMs}, ${stepMs})`,
    );
  for (
    let start = range.fromMs + trainMs + purgeMs;
    start + testMs <= range.toMs;
    start += stepMs
  ) {
    const trainTo = start - purgeMs;
    const trainFrom = mode === 'expanding' ? range.fromMs : trainTo - trainMs;
    folds.push({
      index: folds.length,
      train: [{ fromMs: trainFrom, toMs: trainTo }],
      test: { fromMs: start, toMs: start + testMs },
    });
  }
  if (folds.length === 0)
    throw new RangeError(
      `span [${iso(range.fromMs)}, ${iso(range.toMs)}) is too short for one fold of train ${trainMs} ms + purge ${purgeMs} ms + test ${testMs} ms`,
    );
  return folds;
}

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
