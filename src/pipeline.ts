// The default pipeline behind `npm start` / `ctm run`: data (the store when it holds the
// configured symbol, otherwise a seeded synthetic market spanning the configured splits), the
// look-ahead check of the features, and backtests of the built-in baselines on the test split,
// each written to its own runs/<id>/ with a report. It only calls the library functions the other
// commands call; it owns no logic of its own beyond choosing the data and printing a summary.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  sliceByTime,
  timeframeMs,
  type Candles,
  type Timeframe,
} from './data-processing/candles.js';
import { CandleStore } from './data-processing/store.js';
import { checkFeatureLookAhead } from './data-processing/feature-engineering.js';
import { loadEvaluationData, runBacktest } from './evaluation/evaluate.js';
import type { PerformanceMetrics } from './evaluation/metrics.js';
import { policySource } from './policies.js';
import {
  generateBaseMarket,
  marketOptionsFromSettings,
  writeSyntheticMarket,
} from './synthetic-data/base-process.js';
import { loadCalibration } from './synthetic-data/calibration.js';
import { rangeMs, type Config } from './utils/config.js';
import { createRun } from './utils/runs.js';
import { logger } from './utils/logger.js';

const DAY_MS = 86_400_000;

/** Options of `runDefaultPipeline`. */
export interface PipelineOptions {
  /** The resolved config. */
  readonly config: Config;
  /** Baselines backtested on the test split (default: buy-hold, sma-cross, random, flat). */
  readonly policies?: readonly string[];
  /** Days before the test split's end over which the look-ahead check cuts (default 120). */
  readonly lookAheadDays?: number;
  /** Called with each line of the summary as it becomes known. */
  readonly onLine?: (line: string) => void;
}

/** One backtest of the pipeline. */
export interface PipelineBacktest {
  /** Policy name (a baseline). */
  readonly policy: string;
  /** Run directory of the backtest. */
  readonly runDir: string;
  /** Metrics of the backtest on the test split. */
  readonly metrics: PerformanceMetrics;
}

/** What `runDefaultPipeline` did. */
export interface PipelineResult {
  /** `store` when the configured symbol was in the store, else `synthetic`. */
  readonly source: 'store' | 'synthetic';
  /** Symbol the pipeline ran on. */
  readonly symbol: string;
  /** The pipeline's own run directory (summary, and the synthetic data when generated). */
  readonly runDir: string;
  /** Look-ahead leaks found in the features (0 expected). */
  readonly leaks: number;
  /** One backtest per policy, in `policies` order. */
  readonly backtests: readonly PipelineBacktest[];
}

async function storeHasSymbol(config: Config, symbol: string, base: Timeframe): Promise<boolean> {
  if (!existsSync(config.paths.store)) return false;
  const store = await CandleStore.open(config.paths.store, { readOnly: true });
  try {
    const span = await store.span({ exchange: config.data.exchange, symbol, timeframe: base });
    return span !== null && span.rows > 0;
  } finally {
    store.close();
  }
}

/**
 * Runs the default pipeline (see the file comment) and returns what it produced.
 * @throws as the data loading, feature, synthetic and backtest functions it calls do.
 */
export async function runDefaultPipeline(options: PipelineOptions): Promise<PipelineResult> {
  const say = options.onLine ?? ((line: string) => logger.info(line));
  const symbol = options.config.data.symbols[0];
  const base = [...options.config.data.timeframes].sort(
    (a, b) => timeframeMs(a) - timeframeMs(b),
  )[0];
  const pipelineRun = createRun({ kind: 'pipeline', config: options.config });
  let config = options.config;
  let dataDir: string | undefined;
  let source: PipelineResult['source'] = 'store';
  if (!(await storeHasSymbol(config, symbol, base))) {
    // No real candles yet: a synthetic market over the configured splits (train to test end), in
    // the same file layout as real data, read back like any data directory.
    source = 'synthetic';
    const from = rangeMs(config.splits.train).fromMs;
    const to = rangeMs(config.splits.test).toMs;
    const params = loadCalibration(config.synthetic.calibration);
    const market = generateBaseMarket(params, {
      ...marketOptionsFromSettings(config.synthetic),
      seed: config.seed,
      days: Math.round((to - from) / DAY_MS),
      startTimeMs: from,
    });
    dataDir = pipelineRun.path('data');
    writeSyntheticMarket(dataDir, market, { ...params, symbol }, config.seed);
    config = { ...config, data: { ...config.data, exchange: 'synthetic' } };
    say(
      `no ${symbol} ${base} candles in ${config.paths.store}: generated a synthetic ${symbol} market (calibration ${config.synthetic.calibration}, seed ${config.seed}) in ${dataDir}`,
    );
    say(
      'for real data: ctm data download --symbols BTC/USDT  (or ctm data import FILE --symbol BTC/USDT --timeframe 15m)',
    );
  } else {
    say(`using ${symbol} from the store ${config.paths.store}`);
  }

  // Look-ahead check of the features over the last days of the test split.
  const data = await loadEvaluationData({ config, symbol, dataDir });
  const checkFrom = data.range.toMs - (options.lookAheadDays ?? 120) * DAY_MS;
  const recent = new Map<Timeframe, Candles>();
  for (const [tf, c] of data.candles)
    recent.set(tf, sliceByTime(c, checkFrom - config.backtest.warmupDays * DAY_MS, Infinity));
  const report = checkFeatureLookAhead(recent, {
    spec: config.features,
    windows: config.windows,
    cuts: config.features.lookahead.cuts,
    seed: config.seed,
    checks: config.features.lookahead.checks,
  });
  say(
    `look-ahead check: ${report.leaks.length} leaks in ${report.valuesCompared.toLocaleString('en-US')} values compared over ${report.cutRows.length} cuts`,
  );

  const backtests: PipelineBacktest[] = [];
  for (const policy of options.policies ?? ['buy-hold', 'sma-cross', 'random', 'flat']) {
    const outcome = await runBacktest({
      config,
      policy: policySource(policy, config),
      symbol,
      dataDir,
      commandLine: ['run'],
    });
    backtests.push({ policy, runDir: outcome.run.dir, metrics: outcome.metrics });
    say(summaryLine(policy, outcome.metrics, join(outcome.run.dir, 'report.html')));
  }
  pipelineRun.writeMetrics({
    source,
    symbol,
    leaks: report.leaks.length,
    backtests: backtests.map((b) => ({
      policy: b.policy,
      run: b.runDir,
      totalReturn: b.metrics.returns.totalReturn,
      sharpe: b.metrics.returns.sharpe,
      maxDrawdown: b.metrics.drawdown.maxDrawdown,
      trades: b.metrics.trades.count,
    })),
  });
  return { source, symbol, runDir: pipelineRun.dir, leaks: report.leaks.length, backtests };
}

function pct(x: number | null): string {
  return x === null ? '—' : `${(x * 100).toFixed(2)}%`;
}

function summaryLine(policy: string, m: PerformanceMetrics, report: string): string {
  const sharpe = m.returns.sharpe === null ? '—' : m.returns.sharpe.toFixed(2);
  return `${policy.padEnd(10)} total ${pct(m.returns.totalReturn).padStart(9)}  Sharpe ${sharpe.padStart(6)}  max DD ${pct(m.drawdown.maxDrawdown).padStart(8)}  trades ${String(m.trades.count).padStart(5)}  ${report}`;
}
