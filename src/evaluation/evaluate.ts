// The evaluation pipeline behind `ctm backtest`: picks the date range (never the holdout unless it
// is opened), loads candles (store, one file, or a candle directory, docs/architecture.md), builds
// the features with the one feature registry, resolves the policy, runs the backtest (or the
// walk-forward folds) and writes runs/<id>/ with metrics.json, trades, equity and the report.
// Never trades a bar outside the chosen range and never reads candles after it.

import { gzipSync } from 'node:zlib';
import {
  candleCount,
  parseTimeframe,
  timeframeMs,
  type Candles,
  type Timeframe,
} from '../data-processing/candles.js';
import {
  dataFingerprint,
  loadCandleDirectory,
  loadCandleFile,
  loadHistoricalData,
} from '../data-processing/data-loader.js';
import {
  buildFeatures,
  type MultiTimeframeFeatures,
} from '../data-processing/feature-engineering.js';
import { resample } from '../data-processing/resample.js';
import { UsageError } from '../errors.js';
import { rangeMs, type Config } from '../utils/config.js';
import { writeFileAtomicSync } from '../utils/fs.js';
import { logger } from '../utils/logger.js';
import { countTrials, createRun, withRun, type Run } from '../utils/runs.js';
import {
  buildBacktestPayload,
  emptyReportPayload,
  writeRunReport,
  type ReportOptions,
  type ReportPayload,
} from './report.js';
import { backtestReportInput, backtestStrategy, type BacktestResult } from './backtest.js';
import type { PolicyContext, ResolvedPolicy } from './baselines.js';
import { meanSpread, type MeanSpread, type PerformanceMetrics } from './metrics.js';
import type { Policy } from './policy.js';
import {
  walkForwardBacktest,
  walkForwardReportInput,
  type WalkForwardResult,
} from './walk-forward.js';
import {
  assertOutsideHoldout,
  clipToHoldout,
  walkForwardSplits,
  type DateRange,
} from '../data-processing/splits.js';

const DAY_MS = 86_400_000;

/** Where the candles of an evaluation come from. */
export interface EvaluationSource {
  /** One candle file of the base timeframe; higher timeframes are aggregated from it exactly. */
  readonly dataFile?: string;
  /** Base timeframe of `dataFile` (default: from the file name, else the first of `data.timeframes`). */
  readonly timeframe?: Timeframe;
  /** A directory of `<exchange>-<BASEQUOTE>-<tf>.csv.gz` files (see `loadCandleDirectory`). */
  readonly dataDir?: string;
}

/** Options of `loadEvaluationData`. */
export interface EvaluationDataOptions extends EvaluationSource {
  /** The resolved config (data source, features, windows, splits). */
  readonly config: Config;
  /** Symbol to load, ccxt unified (`BTC/USDT`). */
  readonly symbol: string;
  /** Requested range (`--from/--to`; either end may be open). Default: `backtest.defaultRange`. */
  readonly from?: number;
  /** Exclusive end of the requested range, UTC ms (`--to`); open when omitted. */
  readonly to?: number;
  /** Allow the range to touch the holdout split (`--open-holdout`). Default false. */
  readonly openHoldout?: boolean;
}

/** Candles and features of an evaluation, and the range to trade. */
export interface EvaluationData {
  /** Candles per timeframe, base first (loaded from before the range for warm-up). */
  readonly candles: Map<Timeframe, Candles>;
  /** Features of `candles` on every timeframe. */
  readonly features: MultiTimeframeFeatures;
  /** Bars with open time in this range are traded; earlier loaded bars only warm the features up. */
  readonly range: DateRange;
  /** Where the candles came from, in words. */
  readonly source: string;
}

/**
 * The range an evaluation trades: `from/to` when given (a missing `to` stops at the closed
 * holdout), else `backtest.defaultRange` (the test split, or everything outside the holdout).
 * @throws {LookAheadError} when the range reaches into the holdout without `openHoldout`.
 */
export function evaluationRange(
  config: Config,
  from: number | undefined,
  to: number | undefined,
  openHoldout = false,
): DateRange {
  const holdout = rangeMs(config.splits.holdout);
  if (from !== undefined || to !== undefined) {
    const range = {
      fromMs: from ?? -Infinity,
      toMs: to ?? (openHoldout ? Infinity : holdout.fromMs),
    };
    if (!(range.toMs > range.fromMs))
      throw new UsageError(`empty date range: --from must be before --to`);
    assertOutsideHoldout(range, holdout, openHoldout);
    return range;
  }
  if (config.backtest.defaultRange === 'test') {
    const test = rangeMs(config.splits.test);
    assertOutsideHoldout(test, holdout, openHoldout);
    return test;
  }
  return clipToHoldout({ fromMs: -Infinity, toMs: Infinity }, holdout, openHoldout);
}

function fileTimeframe(path: string): Timeframe | undefined {
  const m = /[-_.](\d+[mhdw])(?:\.|$)/.exec(path.replace(/\.(csv|json|parquet)(\.gz)?$/i, '.$1'));
  if (m === null) return undefined;
  try {
    return parseTimeframe(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * Loads the candles of one symbol for an evaluation (with `backtest.warmupDays` of history
 * before the range for the features), aggregates missing higher timeframes exactly, and builds
 * the features. Candles at or after the range end are never loaded.
 * @throws {UsageError} for a missing file or directory entry; {DataValidationError} for invalid
 *   candles (naming file and line); {LookAheadError} for a range touching a closed holdout.
 */
export async function loadEvaluationData(options: EvaluationDataOptions): Promise<EvaluationData> {
  const { config, symbol } = options;
  const range = evaluationRange(config, options.from, options.to, options.openHoldout);
  const load = { fromMs: range.fromMs - config.backtest.warmupDays * DAY_MS, toMs: range.toMs };
  const timeframes = [...config.data.timeframes].sort((a, b) => timeframeMs(a) - timeframeMs(b));
  const candles = new Map<Timeframe, Candles>();
  let source: string;
  if (options.dataFile !== undefined && options.dataDir !== undefined)
    throw new UsageError('give either --data or --data-dir, not both');
  if (options.dataFile !== undefined) {
    const tf = options.timeframe ?? fileTimeframe(options.dataFile) ?? timeframes[0];
    candles.set(
      tf,
      await loadCandleFile(options.dataFile, {
        symbol,
        timeframe: tf,
        ...load,
        repair: config.data.repair,
      }),
    );
    source = options.dataFile;
  } else if (options.dataDir !== undefined) {
    const read = await loadCandleDirectory(options.dataDir, {
      exchange: config.data.exchange,
      symbol,
      timeframes,
      ...load,
      repair: config.data.repair,
      require: 'finest',
    });
    for (const [tf, c] of read) candles.set(tf, c);
    source = options.dataDir;
  } else {
    const data = await loadHistoricalData({
      exchange: config.data.exchange,
      symbols: [symbol],
      timeframes,
      startDate: Number.isFinite(load.fromMs) ? load.fromMs : null,
      endDate: Number.isFinite(load.toMs) ? load.toMs : null,
      store: config.paths.store,
    });
    for (const [tf, c] of data.get(symbol) ?? []) candles.set(tf, c);
    source = `store ${config.paths.store}`;
  }
  const baseTf = [...candles.keys()].sort((a, b) => timeframeMs(a) - timeframeMs(b))[0];
  const base = candles.get(baseTf) as Candles;
  if (candleCount(base) < 2)
    throw new UsageError(
      `only ${candleCount(base)} ${baseTf} candles of ${symbol} in the range (${source})`,
      { hint: 'check --from/--to, splits.test and the data coverage (ctm data info)' },
    );
  for (const tf of timeframes)
    if (timeframeMs(tf) > timeframeMs(baseTf) && !candles.has(tf))
      candles.set(tf, resample(base, tf).candles);
  const features = buildFeatures(candles, { spec: config.features, windows: config.windows });
  return { candles, features, range, source };
}

/**
 * The policy of a backtest, resolved once the evaluation's features exist. The registry above
 * evaluation/ makes one from a `--policy` reference (`policySource` in src/policies.ts).
 */
export interface PolicySource {
  /**
   * The feature spec and windows the policy was trained on, when it was trained: the data is built
   * with them (everything else, costs included, comes from the command's config). Omitted: the
   * command's config.
   */
  readonly trainedOn?: Pick<Config, 'features' | 'windows'>;
  /**
   * Builds the policy for the evaluation's features.
   * @throws whatever the resolution throws (an unknown reference, a bad module or run).
   */
  resolve(context: PolicyContext): Promise<ResolvedPolicy>;
}

/** The number of trials a result was chosen from, and where it came from. */
export interface TrialsBehind {
  /** What the deflated Sharpe ratio corrects for: the largest of the three counts below. */
  trials: number;
  /** `backtest.trials`: trials the user says were tried elsewhere. */
  configured: number;
  /** Runs of this run's kind on the same data (this one, failed and unfinished ones included). */
  evaluated: number;
  /** Runs of the evaluated policy's training kind on its training data (0 for baselines). */
  trained: number;
}

/**
 * The trials behind a result of `run` (which recorded its data): the largest of the configured
 * count, the runs of its kind on the same data and, for a trained policy, the training runs of that
 * kind on the same training data (`countTrials`, failures included).
 */
export function trialsBehind(config: Config, run: Run, policyRun?: Run): TrialsBehind {
  const runsDir = config.paths.runs;
  const evaluated = countTrials(runsDir, run.info.kind, run.info.data).trials;
  const trained =
    policyRun === undefined
      ? 0
      : countTrials(runsDir, policyRun.info.kind, policyRun.info.data).trials;
  const configured = config.backtest.trials;
  return { trials: Math.max(configured, evaluated, trained), configured, evaluated, trained };
}

/** Options of `runBacktest` (what `ctm backtest` takes). */
export interface RunBacktestOptions extends EvaluationSource {
  /** The resolved config. */
  readonly config: Config;
  /** The policy to backtest (from a baseline name, a run directory or a module path). */
  readonly policy: PolicySource;
  /** Symbol to backtest, ccxt unified (`BTC/USDT`). */
  readonly symbol: string;
  /** Start of the range, UTC ms (`--from`); default `backtest.defaultRange`. */
  readonly from?: number;
  /** Exclusive end of the range, UTC ms (`--to`). */
  readonly to?: number;
  /** Allow the range to touch the holdout split (`--open-holdout`). Default false. */
  readonly openHoldout?: boolean;
  /** Evaluate on walk-forward folds (`backtest.walkForward`) instead of one range. */
  readonly walkForward?: boolean;
  /** The command line recorded in run.json. */
  readonly commandLine?: string[];
}

/** What `runBacktest` produced. */
export interface RunBacktestOutcome {
  /** The run directory the results, tables and report were written to. */
  readonly run: Run;
  /** Metrics of the backtest (walk-forward: pooled over the folds' test returns). */
  readonly metrics: PerformanceMetrics;
  /** Buy-and-hold metrics (pooled in walk-forward), or null when the benchmark is off. */
  readonly benchmarkMetrics: PerformanceMetrics | null;
  /** The single-range backtest, or null in walk-forward mode. */
  readonly single: BacktestResult | null;
  /** The walk-forward result, or null for a single range. */
  readonly walkForward: WalkForwardResult | null;
  /** Display name of the policy (baseline, module path or run id). */
  readonly policyName: string;
  /**
   * For a policy reported over seeds (random): mean and spread over them (the report and the
   * metrics above are of its first seed); null otherwise.
   */
  readonly overSeeds: SeedSummary | null;
}

/** A policy's key figures over its seeds (walk-forward: pooled per seed). */
export interface SeedSummary {
  /** Number of seeds. */
  seeds: number;
  /** Total return over the seeds. */
  totalReturn: MeanSpread;
  /** Annualised Sharpe ratio over the seeds. */
  sharpe: MeanSpread;
  /** Maximum drawdown over the seeds. */
  maxDrawdown: MeanSpread;
  /** Each seed's figures, in seed order. */
  perSeed: Array<{
    totalReturn: number | null;
    sharpe: number | null;
    maxDrawdown: number | null;
  }>;
}

function csvNumber(x: number): string {
  return Number.isFinite(x) ? String(x) : '';
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function writeTables(run: Run, results: readonly BacktestResult[]): void {
  let trades =
    'side,entry_time,exit_time,entry_price,exit_price,size,gross_pnl,fees,slippage,funding,borrow,pnl,bars_held,exit_kind\n';
  let equity = 'open_time,equity,benchmark_equity,position,target\n';
  for (const r of results) {
    for (const t of r.trades)
      trades += `${t.side > 0 ? 'long' : 'short'},${iso(t.entryTimeMs)},${iso(t.exitTimeMs)},${csvNumber(t.entryPrice)},${csvNumber(t.exitPrice)},${csvNumber(t.size)},${csvNumber(t.grossPnl)},${csvNumber(t.fees)},${csvNumber(t.slippage)},${csvNumber(t.funding)},${csvNumber(t.borrow)},${csvNumber(t.pnl)},${t.barsHeld},${t.exitKind}\n`;
    const parts: string[] = [];
    for (let k = 0; k < r.rows; k++)
      parts.push(
        `${r.time[k]},${csvNumber(r.equity[k])},${r.benchmarkEquity === null ? '' : csvNumber(r.benchmarkEquity[k])},${csvNumber(r.position[k])},${csvNumber(r.target[k])}\n`,
      );
    equity += parts.join('');
  }
  writeFileAtomicSync(run.path('trades.csv'), trades);
  writeFileAtomicSync(run.path('equity.csv.gz'), gzipSync(equity));
  run.addArtifact('trades', 'trades.csv');
  run.addArtifact('equity', 'equity.csv.gz');
}

/**
 * `ctm backtest`: loads data, builds features, resolves the policy, backtests it (one range or
 * walk-forward folds) and writes runs/<id>/: run.json, metrics.json, trades.csv, equity.csv.gz,
 * report.html, report-data.json and the PNGs.
 * @throws as `loadEvaluationData`, the policy's resolution and `backtestStrategy` do.
 */
export async function runBacktest(options: RunBacktestOptions): Promise<RunBacktestOutcome> {
  const { config } = options;
  // A trained policy reads the features and windows it was trained on (everything else, costs
  // included, comes from this command's config).
  const trainedOn = options.policy.trainedOn;
  const dataConfig = trainedOn === undefined ? config : { ...config, ...trainedOn };
  const data = await loadEvaluationData({ ...options, config: dataConfig });
  const resolved = await options.policy.resolve({ features: data.features, config });
  const run = createRun({ kind: 'backtest', config, commandLine: options.commandLine });
  return withRun(run, async () => {
    run.update({
      data: dataFingerprint(options.symbol, data.candles),
      featureSpec: {
        names: Object.fromEntries([...data.features.perTimeframe].map(([tf, m]) => [tf, m.names])),
        windows: data.features.windows,
      },
      extra: {
        policy: resolved.name,
        policyKind: resolved.kind,
        source: data.source,
        range: [data.range.fromMs, data.range.toMs].map((t) =>
          Number.isFinite(t) ? iso(t) : null,
        ),
        openHoldout: options.openHoldout === true,
      },
    });
    const bt = config.backtest;
    const trials = trialsBehind(config, run, resolved.run);
    run.update({ extra: { ...run.info.extra, trials } });
    const common = {
      data: data.features,
      broker: resolved.broker ?? config.broker,
      holdout: rangeMs(config.splits.holdout),
      openHoldout: options.openHoldout,
      closeAtEnd: bt.closeAtEnd,
      benchmark: bt.benchmark,
      trials: trials.trials,
      riskFreeRate: bt.riskFreeRate,
      progressAfterSeconds: bt.progressAfterSeconds,
    };
    const facts: Record<string, string | number> = {
      policy: resolved.name,
      symbol: options.symbol,
      data: data.source,
      fee: config.broker.takerFeeRate,
      leverage: config.broker.leverage,
      market: config.broker.marketType,
    };
    const reportOptions: ReportOptions = config.report;
    const title = `Backtest of ${resolved.name} on ${options.symbol}`;
    if (options.walkForward === true) {
      const wf = bt.walkForward;
      const barMs = timeframeMs(data.features.base);
      const base = data.features.aligned.base;
      const span = {
        fromMs: Math.max(data.range.fromMs, base.openTime[0]),
        toMs: Math.min(data.range.toMs, base.openTime[candleCount(base) - 1] + barMs),
      };
      const folds = walkForwardSplits({
        range: span,
        mode: wf.mode,
        trainMs: wf.trainDays * DAY_MS,
        testMs: wf.testDays * DAY_MS,
        stepMs: (wf.stepDays ?? wf.testDays) * DAY_MS,
        folds: wf.folds,
        purgeMs: wf.purgeBars * barMs,
        embargoMs: wf.embargoBars * barMs,
        holdout: common.holdout,
        openHoldout: options.openHoldout,
      });
      const result = await walkForwardBacktest({ ...common, policy: resolved.policy, folds });
      const done = result.folds.flatMap((f) => (f.result === null ? [] : [f.result]));
      const overSeeds = await summariseSeeds(
        resolved.seeds,
        async (policy) =>
          (await walkForwardBacktest({ ...common, benchmark: false, policy, folds })).pooled,
      );
      run.writeMetrics({
        policy: resolved.name,
        overSeeds,
        mode: wf.mode,
        pooled: result.pooled,
        pooledBenchmark: result.pooledBenchmark,
        folds: result.folds.map((f) => ({
          index: f.fold.index,
          train: f.fold.train.map((r) => [iso(r.fromMs), iso(r.toMs)]),
          test: [iso(f.fold.test.fromMs), iso(f.fold.test.toMs)],
          skipped: f.skipped,
          metrics: f.result?.metrics ?? null,
        })),
      });
      writeTables(run, done);
      let payload: ReportPayload;
      try {
        const input = walkForwardReportInput(result, `Walk-forward ${title}`, facts);
        payload = buildBacktestPayload(input, reportOptions);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        logger.warn({ reason: err.message }, 'walk-forward report drawn without charts');
        payload = {
          ...emptyReportPayload(`Walk-forward ${title}`),
          facts,
          metrics: result.pooled,
          benchmarkMetrics: result.pooledBenchmark,
          monthly: result.pooled.monthly,
          yearly: result.pooled.yearly,
        };
      }
      writeRunReport(run, payload, reportOptions);
      return {
        run,
        metrics: result.pooled,
        benchmarkMetrics: result.pooledBenchmark,
        single: null,
        walkForward: result,
        policyName: resolved.name,
        overSeeds,
      };
    }
    const result = backtestStrategy({ ...common, policy: resolved.policy, range: data.range });
    const overSeeds = await summariseSeeds(
      resolved.seeds,
      (policy) =>
        backtestStrategy({ ...common, benchmark: false, policy, range: data.range }).metrics,
    );
    run.writeMetrics({
      policy: resolved.name,
      overSeeds,
      strategy: result.metrics,
      benchmark: result.benchmarkMetrics,
    });
    writeTables(run, [result]);
    writeRunReport(
      run,
      buildBacktestPayload(backtestReportInput(result, title, facts), reportOptions),
      reportOptions,
    );
    return {
      run,
      metrics: result.metrics,
      benchmarkMetrics: result.benchmarkMetrics,
      single: result,
      walkForward: null,
      policyName: resolved.name,
      overSeeds,
    };
  });
}

/**
 * Mean and spread over a policy's seeds of the metrics `evaluate` gives each (null for a policy
 * with one seed).
 */
async function summariseSeeds(
  seeds: readonly Policy[] | undefined,
  evaluate: (policy: Policy) => PerformanceMetrics | Promise<PerformanceMetrics>,
): Promise<SeedSummary | null> {
  if (seeds === undefined || seeds.length < 2) return null;
  const perSeed: SeedSummary['perSeed'] = [];
  for (const policy of seeds) {
    const m = await evaluate(policy);
    perSeed.push({
      totalReturn: m.returns.totalReturn,
      sharpe: m.returns.sharpe,
      maxDrawdown: m.drawdown.maxDrawdown,
    });
  }
  return {
    seeds: seeds.length,
    totalReturn: meanSpread(perSeed.map((x) => x.totalReturn)),
    sharpe: meanSpread(perSeed.map((x) => x.sharpe)),
    maxDrawdown: meanSpread(perSeed.map((x) => x.maxDrawdown)),
    perSeed,
  };
}
