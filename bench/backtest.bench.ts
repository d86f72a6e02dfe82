// `backtest.sma_cross_140k` (ms): a long/short SMA(10)/SMA(20) cross over 140,000 15m bars with a
// 0.1% fee per leg, end to end like backtesting.py's `run()`: the two close/SMA − 1 feature columns
// are computed (the project's `sma`), then `backtestStrategy` runs the sma-cross baseline through
// the Broker and the ObservationBuilder and computes the full metrics. Reported twice: with the
// buy-and-hold benchmark run through a second broker (the default) and without it (what
// backtesting.py computes). Real BTC candles when ../shared/data exists, else a seeded walk.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  makeCandles,
  sliceCandles,
  timeframeMs,
  type Candles,
} from '../src/data-processing/candles.js';
import { alignTimeframes } from '../src/data-processing/data-alignment.js';
import type {
  FeatureMatrix,
  MultiTimeframeFeatures,
} from '../src/data-processing/feature-engineering.js';
import { readCandlesCsv } from '../src/data-processing/file-formats.js';
import { sma } from '../src/data-processing/indicators.js';
import { backtestStrategy, type BacktestResult } from '../src/evaluation/backtest.js';
import { smaCrossPolicy } from '../src/evaluation/baselines.js';
import { Rng } from '../src/utils/random.js';
import { report, timeBest } from './lib.js';

const BARS = 140_000;
const DATA =
  process.env.CTM_SHARED_DATA ?? fileURLToPath(new URL('../../shared/data/', import.meta.url));

async function candles(): Promise<{ c: Candles; source: string }> {
  const file = join(DATA, 'binance-BTCUSDT-15m.csv.gz');
  if (existsSync(file)) {
    const { candles: all } = await readCandlesCsv(file, { symbol: 'BTC/USDT', timeframe: '15m' });
    const n = all.openTime.length;
    return { c: sliceCandles(all, n - BARS, n), source: 'binance BTC/USDT 15m, last 140,000 bars' };
  }
  const rng = new Rng(7);
  const cols = {
    openTime: new Float64Array(BARS),
    open: new Float64Array(BARS),
    high: new Float64Array(BARS),
    low: new Float64Array(BARS),
    close: new Float64Array(BARS),
    volume: new Float64Array(BARS),
  };
  let p = 20_000;
  for (let i = 0; i < BARS; i++) {
    const c = p * Math.exp(0.004 * rng.normal());
    cols.openTime[i] = Date.UTC(2020, 0, 1) + i * timeframeMs('15m');
    cols.open[i] = p;
    cols.high[i] = Math.max(p, c) * 1.001;
    cols.low[i] = Math.min(p, c) * 0.999;
    cols.close[i] = c;
    cols.volume[i] = 10;
    p = c;
  }
  return { c: makeCandles('BTC/USDT', '15m', cols), source: 'seeded random walk' };
}

/** The two feature columns close/SMA(n) − 1 on the 15m rows, as the feature registry names them. */
function smaFeatures(c: Candles): MultiTimeframeFeatures {
  const n = c.openTime.length;
  const fast = sma(c.close, 10);
  const slow = sma(c.close, 20);
  const values = new Float32Array(2 * n);
  const time = new Float64Array(n);
  const barMs = timeframeMs('15m');
  for (let i = 0; i < n; i++) {
    values[2 * i] = c.close[i] / fast[i] - 1;
    values[2 * i + 1] = c.close[i] / slow[i] - 1;
    time[i] = c.openTime[i] + barMs;
  }
  const matrix: FeatureMatrix = {
    timeframe: '15m',
    names: ['close_sma_10', 'close_sma_20'],
    time,
    values,
    rows: n,
    cols: 2,
  };
  const identity = new Int32Array(n);
  for (let i = 0; i < n; i++) identity[i] = i;
  return {
    base: '15m',
    timeframes: ['15m'],
    perTimeframe: new Map([['15m', matrix]]),
    rowIndex: new Map([['15m', identity]]),
    aligned: alignTimeframes({ '15m': c }),
    decisionRows: matrix,
    firstValidRow: 19,
    windows: { '15m': 1 },
  };
}

const { c, source } = await candles();
let last: BacktestResult | undefined;
const run = (benchmark: boolean): void => {
  const f = smaFeatures(c);
  const policy = smaCrossPolicy(f, { fastFeature: 'close_sma_10', slowFeature: 'close_sma_20' });
  last = backtestStrategy({ policy, data: f, transactionCost: 0.001, benchmark });
};
const withBenchmark = await timeBest(() => run(true), 15, 3);
const withoutBenchmark = await timeBest(() => run(false), 15, 3);
const params = {
  bars: c.openTime.length,
  trades: last?.trades.length ?? 0,
  fee: 0.001,
  source,
  metrics: 'full (returns, drawdown, trades, costs, PSR/DSR, monthly)',
  goal: '<= 60 ms (backtesting.py 0.6.5 run(): 1.22 s on 140,000 bars)',
};
report('backtest.sma_cross_140k', withBenchmark, 'ms', false, { ...params, benchmarkRun: true });
report('backtest.sma_cross_140k.no_benchmark', withoutBenchmark, 'ms', false, {
  ...params,
  benchmarkRun: false,
});
