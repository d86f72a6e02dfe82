// The backtester: runs any Policy over multi-timeframe features bar by bar through the one Broker
// and the one ObservationBuilder (exactly what the RL env does), and returns the equity curve,
// positions, fills, round-trip trades and metrics. It never does accounting of its own (every
// number about money comes from the broker) and never shows a policy a row after its decision time.

import {
  sliceCandles,
  timeframeMs,
  type Candles,
  type Timeframe,
} from '../data-processing/candles.js';
import type { MultiTimeframeFeatures } from '../data-processing/feature-engineering.js';
import { DataValidationError } from '../errors.js';
import { createProgress, type Progress } from '../utils/progress.js';
import type { ReportBacktestInput, ReportHigherTimeframe, ReportTrade } from './report.js';
import {
  Broker,
  brokerConfig,
  spotBrokerConfig,
  type BrokerConfig,
  type BrokerOptions,
  type ChargeLedger,
  type FillLedger,
  type Trade,
} from './broker.js';
import {
  barsPerYearOf,
  calculatePerformanceMetrics,
  type MetricsTrade,
  type PerformanceMetrics,
} from './metrics.js';
import { ObservationBuilder, type ObservationSpec, type Policy } from './policy.js';
import { assertOutsideHoldout, type DateRange } from '../data-processing/splits.js';

/**
 * A policy that must know the absolute base row it starts at (the oracle, replays of recorded
 * actions). The backtester calls `startAt(startRow)` after `reset`; `act` is then called once per
 * decision row in order.
 */
export interface RowAwarePolicy extends Policy {
  /**
   * Told the absolute base row of the first decision (called after `reset`, before the first
   * `act`).
   */
  startAt(baseRow: number): void;
}

function isRowAware(p: Policy): p is RowAwarePolicy {
  return typeof (p as Partial<RowAwarePolicy>).startAt === 'function';
}

/** Options of `backtestStrategy` (the spec's `backtest_strategy(model, test_data, ...)`). */
export interface BacktestOptions {
  /** The decision maker (the spec's `model`). */
  readonly policy: Policy;
  /** Multi-timeframe features of the test data (the spec's `test_data`); prices come from `data.aligned.base`. */
  readonly data: MultiTimeframeFeatures;
  /** Starting equity in quote currency; default the broker config's (10,000). */
  readonly initialCapital?: number;
  /** Fee fraction per leg (taker and maker); default the broker config's (0.001). */
  readonly transactionCost?: number;
  /** The broker config section; default `brokerConfig()` (config/default.yaml). */
  readonly broker?: BrokerConfig;
  /** ccxt market description and funding-rate series passed to the broker. */
  readonly brokerOptions?: Omit<BrokerOptions, 'timeframe'>;
  /** Only bars whose open time lies in this range are traded; default all valid rows. */
  readonly range?: DateRange;
  /** The holdout split: a range touching it is refused unless `openHoldout`. */
  readonly holdout?: DateRange;
  /**
   * Allow a range that overlaps `holdout` (the final evaluation, `--open-holdout`); default false,
   * which makes an overlap throw `LookAheadError`.
   */
  readonly openHoldout?: boolean;
  /** Close the open position at the last close (taker fee and slippage), as freqtrade does. Default true. */
  readonly closeAtEnd?: boolean;
  /**
   * Also run spot buy-and-hold as the benchmark: the same fees, slippage and constraints on a spot
   * account (no funding, no leverage, no borrow; `spotBrokerConfig`). Default true.
   */
  readonly benchmark?: boolean;
  /** Number of strategies or seeds tried (for the deflated Sharpe ratio). Default 1. */
  readonly trials?: number;
  /** Annual risk-free rate for Sharpe/Sortino. Default 0. */
  readonly riskFreeRate?: number;
  /** Show a progress bar once a backtest has run this long, in seconds (TTY only). Default 2. */
  readonly progressAfterSeconds?: number;
}

/** Per-bar cost series of a backtest (one entry per return, quote currency). */
export interface BacktestCosts {
  /** Fees paid during each bar, quote currency. */
  readonly fees: Float64Array;
  /** Slippage cost incurred during each bar, quote currency. */
  readonly slippage: Float64Array;
  /** Funding and borrow paid (negative = received). */
  readonly funding: Float64Array;
  /** Absolute notional traded during each bar, quote currency. */
  readonly tradedNotional: Float64Array;
}

/** What `backtestStrategy` returns. Row-indexed arrays have `rows` entries, returns `rows - 1`. */
export interface BacktestResult {
  /** Symbol of the base candles, e.g. `BTC/USDT`. */
  readonly symbol: string;
  /** Base (decision) timeframe. */
  readonly timeframe: Timeframe;
  /** Base rows traded: the first is primed (decision at its close), every later one is stepped. */
  readonly startRow: number;
  /** Last base row (inclusive). */
  readonly endRow: number;
  /** Number of rows traded: `endRow - startRow + 1`. */
  readonly rows: number;
  /** Open time of each row (UTC ms). */
  readonly time: Float64Array;
  /** Equity marked at each row's close (after the final close-out on the last row). */
  readonly equity: Float64Array;
  /** Signed exposure held at each row's close. */
  readonly position: Float64Array;
  /** Target position the policy decided at each row's close (the last one is never executed). */
  readonly target: Float32Array;
  /** Simple returns of equity between consecutive closes. */
  readonly returns: Float64Array;
  /** Per-bar fees, slippage, funding and traded notional (`rows - 1` entries each). */
  readonly costs: BacktestCosts;
  /** Every fill, columnar (`get(i)` / `toArray()`; empty when the broker's `recordLedger` is off). */
  readonly fills: FillLedger;
  /** Funding and borrow charges, columnar (empty when `recordLedger` is off). */
  readonly charges: ChargeLedger;
  /** Closed round-trip trades. */
  readonly trades: Trade[];
  /** The trade still open at the end (only when `closeAtEnd` is false). */
  readonly openTrade: {
    side: number;
    entryTimeMs: number;
    entryPrice: number;
    barsHeld: number;
  } | null;
  /** Starting equity, quote currency. */
  readonly initialCapital: number;
  /** Equity at the last row's close (after the close-out when `closeAtEnd`), quote currency. */
  readonly finalEquity: number;
  /**
   * Performance metrics of `returns` and `trades` (per-bar returns stamped at each bar's close).
   */
  readonly metrics: PerformanceMetrics;
  /** Spot buy-and-hold equity (when `benchmark` is on). */
  readonly benchmarkEquity: Float64Array | null;
  /** Metrics of the spot buy-and-hold benchmark (trials = 1), or null when `benchmark` is off. */
  readonly benchmarkMetrics: PerformanceMetrics | null;
  /** The benchmark's round trips (one when closed at the end, else none). */
  readonly benchmarkTrades: Trade[];
  /** The base candles of the traded rows and the higher timeframes as they were aligned. */
  readonly candles: Candles;
  /** Each higher timeframe's candles with, per traded row, the index of its last closed candle. */
  readonly higher: readonly ReportHigherTimeframe[];
}

/** The metrics' view of broker trades: side as a word, entry notional as the return base. */
export function metricsTrades(trades: readonly Trade[]): MetricsTrade[] {
  return trades.map((t) => ({
    side: t.side > 0 ? 'long' : 'short',
    pnl: t.pnl,
    entryNotional: Math.abs(t.size) * t.entryPrice,
    barsHeld: t.barsHeld,
  }));
}

/**
 * First and last base rows a backtest of `spec` may trade over `data` in `range`: never before
 * `firstValidRow`, and from the first row whose observation is free of NaN.
 * @throws {DataValidationError} when no row qualifies (too few rows after the feature warm-up).
 */
export function resolveBacktestRows(
  data: MultiTimeframeFeatures,
  spec: ObservationSpec,
  range?: DateRange,
): { startRow: number; endRow: number } {
  const base = data.aligned.base;
  const n = base.openTime.length;
  let start = Math.max(0, data.firstValidRow);
  let end = n - 1;
  if (range !== undefined) {
    while (start < n && base.openTime[start] < range.fromMs) start++;
    while (end >= 0 && base.openTime[end] >= range.toMs) end--;
  }
  const builder = new ObservationBuilder(data, spec);
  const obs = new Float32Array(builder.size);
  const firstRequested = start;
  for (; start < end; start++) {
    builder.build(start, null, obs, 0);
    let ok = true;
    for (let k = 0; k < obs.length; k++)
      if (obs[k] !== obs[k]) {
        ok = false;
        break;
      }
    if (ok) break;
  }
  if (!(end > start))
    throw new DataValidationError({
      reason:
        `no bars to backtest: ${n} base rows, first valid row ${data.firstValidRow}` +
        (data.firstValidRow >= end
          ? ' (the feature windows never fill up: load more history before the range, backtest.warmupDays)'
          : '') +
        (firstRequested < start ? `, observations hold NaN from row ${firstRequested} on` : '') +
        (range === undefined
          ? ''
          : `, range [${new Date(range.fromMs).toISOString()}, ${Number.isFinite(range.toMs) ? new Date(range.toMs).toISOString() : 'end'})`),
    });
  return { startRow: start, endRow: end };
}

/** Target 1 on every bar: the buy-and-hold benchmark (run on a spot account). */
const BUY_AND_HOLD: Policy = {
  observation: { timeframes: [], windows: {}, features: {}, account: false },
  act(_obs, numEnvs, out) {
    for (let i = 0; i < numEnvs; i++) out[i] = 1;
  },
};

interface Run {
  equity: Float64Array;
  position: Float64Array;
  target: Float32Array;
  costs: BacktestCosts;
  broker: Broker;
}

function runBroker(
  policy: Policy,
  data: MultiTimeframeFeatures,
  cfg: BrokerConfig,
  options: Omit<BrokerOptions, 'timeframe'>,
  initialCapital: number,
  startRow: number,
  endRow: number,
  closeAtEnd: boolean,
  progressAfterSeconds: number,
): Run {
  const c = data.aligned.base;
  const broker = new Broker(cfg, { ...options, timeframe: c.timeframe });
  broker.reset(initialCapital);
  const builder = new ObservationBuilder(data, policy.observation);
  const obs = new Float32Array(builder.size);
  const act = new Float32Array(1);
  const rows = endRow - startRow + 1;
  const equity = new Float64Array(rows);
  const position = new Float64Array(rows);
  const target = new Float32Array(rows);
  const fees = new Float64Array(rows - 1);
  const slippage = new Float64Array(rows - 1);
  const funding = new Float64Array(rows - 1);
  const traded = new Float64Array(rows - 1);
  policy.reset?.(1);
  if (isRowAware(policy)) policy.startAt(startRow);
  const { openTime, close } = c;
  broker.useCandles(c);
  // Warm the slippage estimators on the closed bars before the start, exactly as the env does.
  for (let r = Math.max(0, startRow - cfg.slippage.atrPeriod); r <= startRow; r++)
    broker.primeAt(r);
  equity[0] = broker.equity;
  // The bar appears only once the backtest turns out to be long (slow policies, long ranges).
  const started = performance.now();
  let progress: Progress | null = null;
  let fPrev = 0;
  let sPrev = 0;
  let uPrev = 0;
  let nPrev = 0;
  for (let k = 1; k < rows; k++) {
    const decision = startRow + k - 1;
    builder.build(decision, broker.account, obs, 0);
    policy.act(obs, 1, act);
    target[k - 1] = act[0];
    const i = decision + 1;
    broker.stepAt(i, act[0]);
    if (closeAtEnd && k === rows - 1) broker.closePosition(openTime[i] + broker.barMs, close[i]);
    equity[k] = broker.equity;
    position[k] = broker.exposure;
    const f = broker.feesPaid;
    const s = broker.slippagePaid;
    const u = broker.fundingPaid + broker.borrowPaid;
    const t = broker.tradedNotional;
    fees[k - 1] = f - fPrev;
    slippage[k - 1] = s - sPrev;
    funding[k - 1] = u - uPrev;
    traded[k - 1] = t - nPrev;
    fPrev = f;
    sPrev = s;
    uPrev = u;
    nPrev = t;
    if ((k & 1023) === 0) {
      if (progress === null && performance.now() - started > progressAfterSeconds * 1000)
        progress = createProgress('backtest', rows, { unit: 'bars' });
      progress?.update(k);
    }
  }
  // The decision at the last row is recorded but never executed (no next bar).
  builder.build(endRow, broker.account, obs, 0);
  policy.act(obs, 1, act);
  target[rows - 1] = act[0];
  progress?.stop();
  return {
    equity,
    position,
    target,
    costs: { fees, slippage, funding, tradedNotional: traded },
    broker,
  };
}

function returnsOf(equity: Float64Array): Float64Array {
  const r = new Float64Array(equity.length - 1);
  for (let k = 1; k < equity.length; k++) {
    const prev = equity[k - 1];
    r[k - 1] = prev > 0 ? equity[k] / prev - 1 : 0;
  }
  return r;
}

/** The trade open at the end (from the broker's open round trip; null when flat). */
function openTradeOf(broker: Broker): BacktestResult['openTrade'] {
  const t = broker.openTrade();
  if (t === null) return null;
  return {
    side: t.side,
    entryTimeMs: t.entryTimeMs,
    entryPrice: t.entryPrice,
    barsHeld: t.barsHeld,
  };
}

/**
 * Backtests a policy: at each row's close the policy sees the observation built by the shared
 * ObservationBuilder (features known at that time plus the broker's account), and its target is
 * filled by the shared Broker at the next bar's open. Returns equity, positions, fills, trades,
 * per-bar costs and the full metrics (and the same for spot buy-and-hold when `benchmark` is on).
 * @throws {LookAheadError} when the range touches a closed holdout
 * @throws {DataValidationError} when there are fewer than two rows to trade
 * @throws {ConfigError} when the broker config is invalid
 * @example
 * const result = backtestStrategy({ policy: smaCrossPolicy(features), data: features });
 * console.log(result.metrics.returns.sharpe);
 */
export function backtestStrategy(options: BacktestOptions): BacktestResult {
  const data = options.data;
  const base = data.aligned.base;
  const tf = base.timeframe;
  const fee = options.transactionCost;
  const cfg =
    fee === undefined
      ? (options.broker ?? brokerConfig())
      : { ...(options.broker ?? brokerConfig()), takerFeeRate: fee, makerFeeRate: fee };
  const initialCapital = options.initialCapital ?? cfg.initialCapital;
  const { startRow, endRow } = resolveBacktestRows(data, options.policy.observation, options.range);
  const barMs = timeframeMs(tf);
  assertOutsideHoldout(
    { fromMs: base.openTime[startRow], toMs: base.openTime[endRow] + barMs },
    options.holdout,
    options.openHoldout,
  );
  const closeAtEnd = options.closeAtEnd ?? true;
  const progressAfterSeconds = options.progressAfterSeconds ?? 2;
  const bo = options.brokerOptions ?? {};
  // The policy and its spot buy-and-hold benchmark run over the same rows, costs and capital.
  const runOn = (policy: Policy, progressAfter: number, broker = cfg): Run =>
    runBroker(
      policy,
      data,
      broker,
      bo,
      initialCapital,
      startRow,
      endRow,
      closeAtEnd,
      progressAfter,
    );
  const run = runOn(options.policy, progressAfterSeconds);
  const rows = endRow - startRow + 1;
  const time = base.openTime.slice(startRow, endRow + 1);
  const closeTimes = new Float64Array(rows - 1);
  for (let k = 1; k < rows; k++) closeTimes[k - 1] = time[k] + barMs;
  const returns = returnsOf(run.equity);
  const trades = run.broker.trades.toArray();
  const barsPerYear = barsPerYearOf(barMs);
  const metricsOptions = {
    barsPerYear,
    timeMs: closeTimes,
    trials: options.trials,
    riskFreeRate: options.riskFreeRate,
  };
  const metrics = calculatePerformanceMetrics(returns, metricsTrades(trades), {
    ...metricsOptions,
    account: { initialCapital, ...run.costs, exposure: run.position.subarray(1) },
  });
  let benchmarkEquity: Float64Array | null = null;
  let benchmarkMetrics: PerformanceMetrics | null = null;
  let benchmarkTrades: Trade[] = [];
  if (options.benchmark ?? true) {
    const b = runOn(BUY_AND_HOLD, Infinity, spotBrokerConfig(cfg));
    benchmarkEquity = b.equity;
    benchmarkTrades = b.broker.trades.toArray();
    benchmarkMetrics = calculatePerformanceMetrics(
      returnsOf(b.equity),
      metricsTrades(benchmarkTrades),
      {
        ...metricsOptions,
        trials: 1,
        account: { initialCapital, ...b.costs, exposure: b.position.subarray(1) },
      },
    );
  }
  const higher = data.aligned.higher.map((h) => ({
    timeframe: h.timeframe,
    candles: h.candles,
    lastClosed: h.lastClosed.subarray(startRow, endRow + 1),
  }));
  return {
    symbol: base.symbol,
    timeframe: tf,
    startRow,
    endRow,
    rows,
    time,
    equity: run.equity,
    position: run.position,
    target: run.target,
    returns,
    costs: run.costs,
    fills: run.broker.fills,
    charges: run.broker.charges,
    trades,
    openTrade: openTradeOf(run.broker),
    initialCapital,
    finalEquity: run.equity[rows - 1],
    metrics,
    benchmarkEquity,
    benchmarkMetrics,
    benchmarkTrades,
    candles: sliceCandles(base, startRow, endRow + 1),
    higher,
  };
}

/** The report's view of a backtest (trades as entries and exits, the open one included). */
export function backtestReportInput(
  result: BacktestResult,
  title: string,
  facts: Record<string, string | number> = {},
): ReportBacktestInput {
  const trades: ReportTrade[] = result.trades.map((t) => ({
    side: t.side > 0 ? 'long' : 'short',
    entryTimeMs: t.entryTimeMs,
    entryPrice: t.entryPrice,
    exitTimeMs: t.exitTimeMs,
    exitPrice: t.exitPrice,
    pnl: t.pnl,
    returnFraction: t.pnl / (Math.abs(t.size) * t.entryPrice),
    barsHeld: t.barsHeld,
  }));
  const open = result.openTrade;
  if (open !== null)
    trades.push({
      side: open.side > 0 ? 'long' : 'short',
      entryTimeMs: open.entryTimeMs,
      entryPrice: open.entryPrice,
      exitTimeMs: null,
      exitPrice: null,
      pnl: 0,
      returnFraction: 0,
      barsHeld: open.barsHeld,
    });
  return {
    title,
    symbol: result.symbol,
    candles: result.candles,
    higher: result.higher,
    equity: result.equity,
    benchmarkEquity: result.benchmarkEquity ?? undefined,
    position: result.position,
    trades,
    metrics: result.metrics,
    benchmarkMetrics: result.benchmarkMetrics ?? undefined,
    facts,
  };
}
