// Small, readable fixtures for the evaluation tests: seeded candles and multi-timeframe features
// built by hand from named columns (so that backtests can be tested independently of the feature
// registry), plus the SMA ratio columns the sma-cross baseline reads.
import {
  allocateCandles,
  timeframeMs,
  type Candles,
  type Timeframe,
} from '../../src/data-processing/candles.js';
import { alignTimeframes } from '../../src/data-processing/data-alignment.js';
import type {
  FeatureMatrix,
  MultiTimeframeFeatures,
} from '../../src/data-processing/feature-engineering.js';
import { resample } from '../../src/data-processing/resample.js';
import { Rng } from '../../src/utils/random.js';
import { featureMatrix } from '../helpers/features.js';

/** A seeded random walk of `n` candles (log-normal steps, valid OHLC). */
export function walkCandles(
  n: number,
  options: {
    seed?: number;
    startMs?: number;
    timeframe?: Timeframe;
    vol?: number;
    price?: number;
  } = {},
): Candles {
  const tf = options.timeframe ?? '15m';
  const rng = new Rng(options.seed ?? 1);
  const step = timeframeMs(tf);
  const start = options.startMs ?? Date.UTC(2023, 0, 1);
  const vol = options.vol ?? 0.004;
  const candles = allocateCandles('BTC/USDT', tf, n);
  const { openTime, open, high, low, close, volume } = candles;
  let p = options.price ?? 20_000;
  for (let i = 0; i < n; i++) {
    openTime[i] = start + i * step;
    open[i] = p;
    const c = p * Math.exp(vol * rng.normal());
    close[i] = c;
    high[i] = Math.max(p, c) * (1 + Math.abs(vol * 0.5 * rng.normal()));
    low[i] = Math.min(p, c) * (1 - Math.abs(vol * 0.5 * rng.normal()));
    volume[i] = 10 + 5 * rng.next();
    p = c;
  }
  return candles;
}

/** close / SMA(period) − 1 per row (NaN during warm-up), computed naively. */
export function closeOverSma(close: Float64Array, period: number): Float32Array {
  const out = new Float32Array(close.length).fill(NaN);
  for (let i = period - 1; i < close.length; i++) {
    let s = 0;
    for (let k = i - period + 1; k <= i; k++) s += close[k];
    out[i] = close[i] / (s / period) - 1;
  }
  return out;
}

/**
 * Multi-timeframe features from base candles (higher timeframes resampled exactly and aligned
 * last-closed) with the given base columns (and no higher-timeframe columns).
 */
export function handFeatures(
  base: Candles,
  columns: Record<string, Float32Array>,
  higherTfs: Timeframe[] = ['4h', '1d'],
): MultiTimeframeFeatures {
  const byTf: Partial<Record<Timeframe, Candles>> = { [base.timeframe]: base };
  for (const tf of higherTfs) byTf[tf] = resample(base, tf).candles;
  const aligned = alignTimeframes(byTf);
  const n = base.openTime.length;
  const barMs = timeframeMs(base.timeframe);
  const time = new Float64Array(n);
  for (let i = 0; i < n; i++) time[i] = base.openTime[i] + barMs;
  const names = Object.keys(columns);
  const values = new Float32Array(n * names.length);
  names.forEach((name, j) => {
    for (let i = 0; i < n; i++) values[i * names.length + j] = columns[name][i];
  });
  const identity = Int32Array.from({ length: n }, (_, i) => i);
  const perTimeframe = new Map<Timeframe, FeatureMatrix>([
    [base.timeframe, featureMatrix(base.timeframe, names, time, values)],
  ]);
  const rowIndex = new Map<Timeframe, Int32Array>([[base.timeframe, identity]]);
  for (const h of aligned.higher) {
    const m = h.candles.openTime.length;
    const t = new Float64Array(m);
    for (let i = 0; i < m; i++) t[i] = h.candles.openTime[i] + timeframeMs(h.timeframe);
    perTimeframe.set(h.timeframe, featureMatrix(h.timeframe, [], t, new Float32Array(0)));
    rowIndex.set(h.timeframe, h.lastClosed);
  }
  let firstValidRow = 0;
  for (; firstValidRow < n; firstValidRow++) {
    let ok = true;
    for (let j = 0; j < names.length; j++)
      if (Number.isNaN(values[firstValidRow * names.length + j])) ok = false;
    if (ok) break;
  }
  const base0 = perTimeframe.get(base.timeframe)!;
  return {
    base: base.timeframe,
    timeframes: [base.timeframe, ...aligned.higher.map((h) => h.timeframe)],
    perTimeframe,
    rowIndex,
    aligned,
    decisionRows: base0,
    firstValidRow,
    windows: { [base.timeframe]: 1 },
  };
}

/** Hand features with the two SMA ratio columns the sma-cross baseline reads by default. */
export function smaFeatures(base: Candles): MultiTimeframeFeatures {
  return handFeatures(base, {
    close_sma_10: closeOverSma(base.close, 10),
    close_sma_20: closeOverSma(base.close, 20),
  });
}
