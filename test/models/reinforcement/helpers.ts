// Small hand-made multi-timeframe features for the env tests: a few causal features per timeframe
// (log return, relative range, close over a trailing mean) computed from candles aligned with
// alignTimeframes, so that every test knows exactly what an observation holds.

import {
  allocateCandles,
  TIMEFRAME_MS,
  type Candles,
  type Timeframe,
} from '../../../src/data-processing/candles.js';
import { alignTimeframes } from '../../../src/data-processing/data-alignment.js';
import type {
  FeatureMatrix,
  MultiTimeframeFeatures,
} from '../../../src/data-processing/feature-engineering.js';
import { Rng } from '../../../src/utils/random.js';

export const SIMPLE_FEATURES = ['ret', 'range', 'trend'] as const;

/** Per-row causal features of one timeframe: log(close/prevClose), (high-low)/close, close/mean(close, `trend` bars) - 1. */
function simpleMatrix(c: Candles, tf: Timeframe, trend: number): FeatureMatrix {
  const n = c.openTime.length;
  const cols = SIMPLE_FEATURES.length;
  const values = new Float32Array(n * cols);
  const time = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) {
    time[r] = c.openTime[r] + TIMEFRAME_MS[tf];
    values[r * cols] = r === 0 ? NaN : Math.log(c.close[r] / c.close[r - 1]);
    values[r * cols + 1] = (c.high[r] - c.low[r]) / c.close[r];
    sum += c.close[r];
    if (r >= trend) sum -= c.close[r - trend];
    values[r * cols + 2] = r >= trend - 1 ? c.close[r] / (sum / trend) - 1 : NaN;
  }
  return { timeframe: tf, names: [...SIMPLE_FEATURES], time, values, rows: n, cols };
}

/**
 * Builds MultiTimeframeFeatures from candles (base = the finest), with the simple features above,
 * `lastClosed` row indices for higher timeframes and `firstValidRow` for `windows`.
 */
export function simpleFeatures(
  candles: ReadonlyMap<Timeframe, Candles>,
  windows: Partial<Record<Timeframe, number>>,
  trend = 5,
): MultiTimeframeFeatures {
  const aligned = alignTimeframes(candles);
  const base = aligned.base;
  const baseTf = base.timeframe;
  const n = base.openTime.length;
  const timeframes: Timeframe[] = [baseTf, ...aligned.higher.map((h) => h.timeframe)];
  const perTimeframe = new Map<Timeframe, FeatureMatrix>();
  const rowIndex = new Map<Timeframe, Int32Array>();
  perTimeframe.set(baseTf, simpleMatrix(base, baseTf, trend));
  rowIndex.set(
    baseTf,
    Int32Array.from({ length: n }, (_, i) => i),
  );
  for (const h of aligned.higher) {
    perTimeframe.set(h.timeframe, simpleMatrix(h.candles, h.timeframe, trend));
    rowIndex.set(h.timeframe, h.lastClosed);
  }
  // Decision rows: current values of each timeframe joined on the base rows.
  const names: string[] = [];
  for (const tf of timeframes) for (const f of SIMPLE_FEATURES) names.push(`${tf}.${f}`);
  const dcols = names.length;
  const dvalues = new Float32Array(n * dcols);
  const dtime = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    dtime[i] = base.openTime[i] + TIMEFRAME_MS[baseTf];
    timeframes.forEach((tf, t) => {
      const m = perTimeframe.get(tf)!;
      const row = rowIndex.get(tf)![i];
      for (let c = 0; c < m.cols; c++)
        dvalues[i * dcols + t * m.cols + c] = row < 0 ? NaN : m.values[row * m.cols + c];
    });
  }
  // First base row whose every window is complete and NaN-free.
  let firstValidRow = n;
  for (let i = 0; i < n && firstValidRow === n; i++) {
    let ok = true;
    for (const tf of timeframes) {
      const m = perTimeframe.get(tf)!;
      const last = rowIndex.get(tf)![i];
      const w = windows[tf] ?? 1;
      if (last - w + 1 < 0) {
        ok = false;
        break;
      }
      for (let r = last - w + 1; r <= last && ok; r++)
        for (let c = 0; c < m.cols; c++) if (!Number.isFinite(m.values[r * m.cols + c])) ok = false;
      if (!ok) break;
    }
    if (ok) firstValidRow = i;
  }
  return {
    base: baseTf,
    timeframes,
    perTimeframe,
    rowIndex,
    aligned,
    decisionRows: { timeframe: baseTf, names, time: dtime, values: dvalues, rows: n, cols: dcols },
    firstValidRow,
    windows: { ...windows },
  };
}

/** A seeded random walk of `n` candles on `tf` (gaussian log returns of `sigma`), from 2024-01-01. */
export function walkCandles(
  n: number,
  seed: number,
  options: { tf?: Timeframe; sigma?: number; drift?: number; start?: number; price?: number } = {},
): Candles {
  const tf = options.tf ?? '15m';
  const ms = TIMEFRAME_MS[tf];
  const rng = new Rng(seed);
  const sigma = options.sigma ?? 0.004;
  const cols = allocateCandles('SYN/USDT', tf, n);
  let p = options.price ?? 100;
  const t0 = options.start ?? Date.UTC(2024, 0, 1);
  for (let i = 0; i < n; i++) {
    const o = p;
    const c = o * Math.exp((options.drift ?? 0) + sigma * rng.normal());
    cols.openTime[i] = t0 + i * ms;
    cols.open[i] = o;
    cols.close[i] = c;
    cols.high[i] = Math.max(o, c) * (1 + Math.abs(rng.normal()) * sigma * 0.5);
    cols.low[i] = Math.min(o, c) * (1 - Math.abs(rng.normal()) * sigma * 0.5);
    cols.volume[i] = 100 * (1 + rng.exponential());
    p = c;
  }
  return cols;
}

/** Single-timeframe features over `candles` with window `w`. */
export function singleFeatures(candles: Candles, w: number): MultiTimeframeFeatures {
  return simpleFeatures(new Map([[candles.timeframe, candles]]), { [candles.timeframe]: w });
}
