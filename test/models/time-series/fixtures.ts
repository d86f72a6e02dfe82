// Small, readable multi-timeframe feature sets for the sequence-model tests, built by hand (not by
// the feature engine) so that each test controls exactly which row holds what: a seeded random walk
// on 15m bars, 4h (and optionally 1d) candles aggregated from complete buckets, `lastClosed` by the
// definition (the last higher candle closing at or before the base row's close), and a few feature
// columns per timeframe. With `signal > 0` the next 15m returns drift with the sign of feature `f1`
// of the last closed 4h row, so the label is predictable from the 4h window but not from the 15m one.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Candles, Timeframe } from '../../../src/data-processing/candles.js';
import { allocateCandles, TIMEFRAME_MS } from '../../../src/data-processing/candles.js';
import type { AlignedFrames } from '../../../src/data-processing/data-alignment.js';
import type {
  FeatureMatrix,
  MultiTimeframeFeatures,
} from '../../../src/data-processing/feature-engineering.js';
import { Rng } from '../../../src/utils/random.js';
import { featureMatrix } from '../../helpers/features.js';

export interface FixtureOptions {
  seed: number;
  /** 15m bars. */
  bars: number;
  /** Feature columns per timeframe. */
  cols?: number;
  /** Higher timeframes (default ['4h']). */
  higher?: Timeframe[];
  /** Drift per 15m bar (log return) times sign(4h f1); 0 = pure noise. */
  signal?: number;
  /** Bar volatility (default 0.002). */
  volatility?: number;
  startMs?: number;
}

/** Builds the fixture features (see the file comment). */
export function fixtureFeatures(o: FixtureOptions): MultiTimeframeFeatures {
  const rng = new Rng(o.seed);
  const cols = o.cols ?? 3;
  const higher = o.higher ?? ['4h'];
  const start = o.startMs ?? Date.UTC(2021, 0, 1);
  const baseMs = TIMEFRAME_MS['15m'];
  const n = o.bars;
  const sigma = o.volatility ?? 0.002;
  const base = allocateCandles('FIX/USDT', '15m', n);
  // Higher-timeframe features are drawn up front (one row per complete candle), so the base path
  // can drift with the 4h feature f1 known at each bar.
  const per4h = 16;
  const signal4h = Float32Array.from({ length: Math.floor(n / per4h) + 1 }, () => rng.normal());
  let price = 100;
  for (let i = 0; i < n; i++) {
    const j = Math.floor(i / per4h) - 1; // the last 4h candle closed when bar i opens
    const drift = j >= 0 && o.signal ? o.signal * Math.sign(signal4h[j]) : 0;
    const r = drift + sigma * rng.normal();
    base.openTime[i] = start + i * baseMs;
    base.open[i] = price;
    price *= Math.exp(r);
    base.close[i] = price;
    base.high[i] = Math.max(base.open[i], price) * 1.0005;
    base.low[i] = Math.min(base.open[i], price) * 0.9995;
    base.volume[i] = 1 + rng.exponential();
  }
  const baseTime = Float64Array.from(base.openTime, (t) => t + baseMs);
  const baseNames = Array.from({ length: cols }, (_, j) => (j === 0 ? 'ret' : `f${j}`));
  const baseValues = new Float32Array(n * cols);
  for (let i = 0; i < n; i++) {
    baseValues[i * cols] = i === 0 ? NaN : Math.log(base.close[i] / base.close[i - 1]) / sigma;
    for (let j = 1; j < cols; j++) baseValues[i * cols + j] = rng.normal();
  }
  const perTimeframe = new Map<Timeframe, FeatureMatrix>([
    ['15m', featureMatrix('15m', baseNames, baseTime, baseValues)],
  ]);
  const rowIndex = new Map<Timeframe, Int32Array>([
    ['15m', Int32Array.from({ length: n }, (_, i) => i)],
  ]);
  const alignedHigher: AlignedFrames['higher'][number][] = [];
  for (const tf of higher) {
    const k = TIMEFRAME_MS[tf] / baseMs;
    const m = Math.floor(n / k);
    const c = allocateCandles('FIX/USDT', tf, m);
    for (let j = 0; j < m; j++) {
      c.openTime[j] = start + j * k * baseMs;
      c.open[j] = base.open[j * k];
      c.close[j] = base.close[j * k + k - 1];
      let hi = -Infinity;
      let lo = Infinity;
      for (let i = j * k; i < (j + 1) * k; i++) {
        hi = Math.max(hi, base.high[i]);
        lo = Math.min(lo, base.low[i]);
      }
      c.high[j] = hi;
      c.low[j] = lo;
      c.volume[j] = k;
    }
    const names = Array.from({ length: cols }, (_, j) => (j === 0 ? 'ret' : `f${j}`));
    const values = new Float32Array(m * cols);
    for (let j = 0; j < m; j++) {
      values[j * cols] =
        j === 0 ? NaN : Math.log(c.close[j] / c.close[j - 1]) / (sigma * Math.sqrt(k));
      for (let q = 1; q < cols; q++)
        values[j * cols + q] = tf === '4h' && q === 1 ? signal4h[j] : rng.normal();
    }
    const time = Float64Array.from(c.openTime, (t) => t + k * baseMs);
    perTimeframe.set(tf, featureMatrix(tf, names, time, values));
    const lastClosed = Int32Array.from({ length: n }, (_, i) =>
      Math.min(m - 1, Math.floor((i + 1) / k) - 1),
    );
    rowIndex.set(tf, lastClosed);
    alignedHigher.push({
      timeframe: tf,
      candles: c,
      lastClosed,
      staleness: Int32Array.from(lastClosed, (j, i) => (j < 0 ? -1 : i - ((j + 1) * k - 1))),
    });
  }
  const timeframes: Timeframe[] = ['15m', ...higher];
  // Rows whose windows of 8 bars (fixture default) are NaN-free: after the first return and the
  // first 8 closed candles of every higher timeframe.
  let first = 8;
  for (const tf of higher) {
    const idx = rowIndex.get(tf)!;
    while (first < n && idx[first] < 8) first++;
  }
  return {
    base: '15m',
    timeframes,
    perTimeframe,
    rowIndex,
    aligned: { mode: 'last-closed', base, higher: alignedHigher },
    decisionRows: featureMatrix(
      '15m',
      baseNames.map((s) => `15m.${s}`),
      baseTime,
      baseValues,
    ),
    firstValidRow: first,
    windows: Object.fromEntries(timeframes.map((t) => [t, 8])),
  };
}

/** Writes candles as CSV files in the ../shared/data layout (`binance-<BASEQUOTE>-<tf>.csv`). */
export function writeCandleDir(
  dir: string,
  symbol: string,
  candles: ReadonlyMap<Timeframe, Candles>,
): void {
  mkdirSync(dir, { recursive: true });
  for (const [tf, c] of candles) {
    const lines = ['open_time,open,high,low,close,volume'];
    for (let i = 0; i < c.openTime.length; i++)
      lines.push(
        [c.openTime[i], c.open[i], c.high[i], c.low[i], c.close[i], c.volume[i]].join(','),
      );
    writeFileSync(
      join(dir, `binance-${symbol.replace('/', '')}-${tf}.csv`),
      lines.join('\n') + '\n',
    );
  }
}

/**
 * A config file for tiny end-to-end training runs: 15m + 4h, short windows, a reduced feature
 * set (short warm-up), an 8-unit model, splits over January 2021.
 */
export function tinyTrainingConfig(runsDir: string): string {
  return `
paths: { runs: ${JSON.stringify(runsDir)} }
data: { timeframes: [15m, 4h] }
windows: { 15m: 16, 4h: 8, 1d: 4 }
splits:
  train: { from: 2021-01-01, to: 2021-01-20 }
  validation: { from: 2021-01-20, to: 2021-01-26 }
  test: { from: 2021-01-26, to: 2021-02-01 }
  holdout: { from: 2030-01-01, to: null }
features:
  returns: [1, 4]
  sma: [5]
  ema: [5]
  rsi: [5]
  macd: []
  bollinger: []
  atr: [5]
  adx: []
  stochastic: []
  williamsR: []
  cci: []
  roc: []
  obv: []
  mfi: []
  vwap: []
  vwapDaily: false
  donchian: []
  keltner: []
  realizedVol: [4]
  volumeZ: [5]
  candleShape: false
  supportResistance: { enabled: false }
  cross: { trend: false, rangePosition: false, supportResistance: false, rsi: false, volatilityRatio: false, timeOfDay: true, dayOfWeek: false, staleness: false }
model:
  hiddenDims: 8
  attentionHeads: 2
  denseUnits: 8
  labels: { horizon: 4 }
  embargoBars: 4
  train:
    epochs: 3
    batchSize: 16
    learningRate: 0.003
    schedule: cosine
    warmupSteps: 5
    # Weight averaging on: its state must survive a kill -9 as well.
    averageDecay: 0.9
    earlyStoppingPatience: 0
    checkpointEverySteps: 5
    logEverySteps: 5
    evalBatchSize: 128
`;
}
