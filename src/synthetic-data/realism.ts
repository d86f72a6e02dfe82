// Realism measurement of synthetic markets: the stylized facts of candle series and the table of
// real vs synthetic, the discriminative score (our own histogram gradient-boosted trees over
// window statistics, time-blocked cross-validation, cluster-bootstrap intervals), the reference
// processes a capable discriminator must tell from real markets, and the report. Also the
// statistical primitives the calibration uses, so both sides measure the same thing the same way.
// It never changes the candles it is given and never feeds a measurement back into generation.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  allocateCandles,
  lastClosedIndex,
  repairCandles,
  sliceByTime,
  sliceCandles,
  TIMEFRAME_MS,
  validateCandles,
  type Candles,
  type Timeframe,
} from '../data-processing/candles.js';
import { readCandlesCsv } from '../data-processing/file-formats.js';
import { logger } from '../utils/logger.js';
import { resample } from '../data-processing/resample.js';
import {
  aggregateFineCandles,
  buildCandlesFromPath,
  type BaseProcessParams,
} from './base-process.js';
import { Rng } from '../utils/random.js';
import { DataValidationError } from '../errors.js';

/**
 * A candle series laid on its full time grid: one entry per grid slot from the first to the last
 * candle, NaN where a candle is missing. `logReturn[i]` is log(close[i] / close[i-1]) when both
 * slots hold a candle, else NaN.
 */
export interface GridSeries {
  /** Open time of slot 0 (UTC ms). */
  startTimeMs: number;
  /** Slot length (ms). */
  stepMs: number;
  /** Open price per slot, quote currency (NaN where no candle). */
  open: Float64Array;
  /** High price per slot (NaN where no candle). */
  high: Float64Array;
  /** Low price per slot (NaN where no candle). */
  low: Float64Array;
  /** Close price per slot (NaN where no candle). */
  close: Float64Array;
  /** Volume per slot, base currency (NaN where no candle). */
  volume: Float64Array;
  /** log(close[i] / close[i-1]) per slot; NaN when either slot is empty (and at slot 0). */
  logReturn: Float64Array;
}

/** Lays candles on their full grid (see `GridSeries`). Candles must be sorted and on the grid. */
export function toGrid(c: Candles): GridSeries {
  const stepMs = TIMEFRAME_MS[c.timeframe];
  const n = c.openTime.length;
  const start = n > 0 ? c.openTime[0] : 0;
  const len = n > 0 ? Math.round((c.openTime[n - 1] - start) / stepMs) + 1 : 0;
  const mk = (): Float64Array => new Float64Array(len).fill(NaN);
  const g: GridSeries = {
    startTimeMs: start,
    stepMs,
    open: mk(),
    high: mk(),
    low: mk(),
    close: mk(),
    volume: mk(),
    logReturn: mk(),
  };
  for (let i = 0; i < n; i++) {
    const k = Math.round((c.openTime[i] - start) / stepMs);
    g.open[k] = c.open[i];
    g.high[k] = c.high[i];
    g.low[k] = c.low[i];
    g.close[k] = c.close[i];
    g.volume[k] = c.volume[i];
  }
  for (let k = 1; k < len; k++) g.logReturn[k] = Math.log(g.close[k] / g.close[k - 1]);
  return g;
}

/** Mean of the finite values (NaN when none). */
export function finiteMean(x: ArrayLike<number>): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (Number.isFinite(v)) {
      s += v;
      n++;
    }
  }
  return n > 0 ? s / n : NaN;
}

/** Mean, standard deviation, skewness and excess kurtosis of the finite values. */
export function moments(x: ArrayLike<number>): {
  n: number;
  mean: number;
  std: number;
  skew: number;
  exKurt: number;
} {
  const m = finiteMean(x);
  let s2 = 0;
  let s3 = 0;
  let s4 = 0;
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) continue;
    const d = v - m;
    const d2 = d * d;
    s2 += d2;
    s3 += d2 * d;
    s4 += d2 * d2;
    n++;
  }
  if (n < 2) return { n, mean: m, std: NaN, skew: NaN, exKurt: NaN };
  const v = s2 / n;
  return {
    n,
    mean: m,
    std: Math.sqrt(v),
    skew: s3 / n / Math.pow(v, 1.5),
    exKurt: s4 / n / (v * v) - 3,
  };
}

/**
 * Autocorrelation of `x` at `lag`, over pairs where both values are finite, with the mean and
 * variance of all finite values (the usual ACF estimator, gap-aware). NaN without pairs.
 */
export function autocorrelation(x: ArrayLike<number>, lag: number): number {
  return crossCorrelation(x, x, lag);
}

/**
 * Correlation of x[t] with y[t + lag] over pairs where both are finite (each series centred and
 * scaled by its own finite mean and variance).
 */
export function crossCorrelation(x: ArrayLike<number>, y: ArrayLike<number>, lag: number): number {
  const mx = finiteMean(x);
  const my = finiteMean(y);
  let vx = 0;
  let nx = 0;
  for (let i = 0; i < x.length; i++)
    if (Number.isFinite(x[i])) {
      vx += (x[i] - mx) * (x[i] - mx);
      nx++;
    }
  let vy = 0;
  let ny = 0;
  for (let i = 0; i < y.length; i++)
    if (Number.isFinite(y[i])) {
      vy += (y[i] - my) * (y[i] - my);
      ny++;
    }
  let s = 0;
  let np = 0;
  const n = Math.min(x.length, y.length - lag);
  for (let i = Math.max(0, -lag); i < n; i++) {
    const a = x[i];
    const b = y[i + lag];
    if (Number.isFinite(a) && Number.isFinite(b)) {
      s += (a - mx) * (b - my);
      np++;
    }
  }
  if (np === 0 || vx === 0 || vy === 0) return NaN;
  return s / np / Math.sqrt((vx / nx) * (vy / ny));
}

/** Autocovariance of `x` at `lag` over finite pairs (mean of all finite values). */
export function autocovariance(x: ArrayLike<number>, lag: number): number {
  const m = finiteMean(x);
  let s = 0;
  let np = 0;
  for (let i = lag; i < x.length; i++) {
    const a = x[i - lag];
    const b = x[i];
    if (Number.isFinite(a) && Number.isFinite(b)) {
      s += (a - m) * (b - m);
      np++;
    }
  }
  return np > 0 ? s / np : NaN;
}

/** Pearson correlation of paired finite values. */
export function correlation(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let sx = 0;
  let sy = 0;
  let n = 0;
  const len = Math.min(x.length, y.length);
  for (let i = 0; i < len; i++)
    if (Number.isFinite(x[i]) && Number.isFinite(y[i])) {
      sx += x[i];
      sy += y[i];
      n++;
    }
  if (n < 3) return NaN;
  const mx = sx / n;
  const my = sy / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < len; i++)
    if (Number.isFinite(x[i]) && Number.isFinite(y[i])) {
      const a = x[i] - mx;
      const b = y[i] - my;
      sxy += a * b;
      sxx += a * a;
      syy += b * b;
    }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/** The finite values of `x`, sorted ascending (a new array). */
export function sortedFinite(x: ArrayLike<number>): Float64Array {
  let n = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i])) n++;
  const out = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i])) out[k++] = x[i];
  return out.sort();
}

/** Quantile `q` in [0, 1] of sorted values (linear interpolation); NaN when empty. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = Math.min(Math.max(q, 0), 1) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Median of the finite values. */
export function median(x: ArrayLike<number>): number {
  return quantileSorted(sortedFinite(x), 0.5);
}

/**
 * Hill estimator of the tail index of |x| from the largest `fraction` of the finite non-zero
 * absolute values (about 3 for the returns of liquid markets; smaller = heavier tail).
 */
export function hillTailIndex(x: ArrayLike<number>, fraction = 0.01): number {
  const abs = new Float64Array(x.length);
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Math.abs(x[i]);
    if (Number.isFinite(v) && v > 0) abs[n++] = v;
  }
  const s = abs.subarray(0, n).sort();
  const k = Math.max(5, Math.floor(n * fraction));
  if (n <= k + 1) return NaN;
  const threshold = Math.log(s[n - k - 1]);
  let sum = 0;
  for (let i = n - k; i < n; i++) sum += Math.log(s[i]) - threshold;
  return sum > 0 ? k / sum : NaN;
}

/** Returns `x` with each value divided by `scale` evaluated at its grid slot (a new array). */
export function scaleBySlot(
  x: Float64Array,
  startTimeMs: number,
  stepMs: number,
  scale: (timeMs: number) => number,
): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] / scale(startTimeMs + i * stepMs);
  return out;
}

/**
 * Centred moving mean of the finite values of `x` over `[i - half, i + half]` excluding `i`
 * itself (NaN where the window holds fewer than `half` finite values). O(n).
 */
export function movingMeanExcludingCentre(x: ArrayLike<number>, half: number): Float64Array {
  const n = x.length;
  const out = new Float64Array(n).fill(NaN);
  let s = 0;
  let c = 0;
  const add = (i: number, sign: number): void => {
    if (i >= 0 && i < n && Number.isFinite(x[i])) {
      s += sign * x[i];
      c += sign;
    }
  };
  for (let i = 0; i <= half && i < n; i++) add(i, 1);
  for (let i = 0; i < n; i++) {
    if (i > 0) {
      add(i + half, 1);
      add(i - half - 1, -1);
    }
    const own = Number.isFinite(x[i]) ? 1 : 0;
    const cc = c - own;
    if (cc >= half) out[i] = (s - (own === 1 ? x[i] : 0)) / cc;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Gradient-boosted trees (histogram-based, logistic loss): the discriminator of the realism score.

/** Hyperparameters of `fitGradientBoostedTrees`. */
export interface GbtOptions {
  /** Boosting rounds. */
  rounds: number;
  /** Maximum depth of each tree. */
  depth: number;
  /** Shrinkage of each tree's leaf values. */
  learningRate: number;
  /** Quantile bins per feature (<= 255). */
  bins: number;
  /** Minimum training rows in a leaf. */
  minLeaf: number;
  /** L2 regularisation of leaf values. */
  lambda: number;
  /** Fraction of rows drawn (without replacement) for each tree. */
  rowSubsample: number;
  /** Fraction of features considered by each tree. */
  colSubsample: number;
  /** Seed of the subsampling. */
  seed: number;
}

/** Default GBT hyperparameters (also in config/default.yaml under synthetic.realism.gbt). */
export const DEFAULT_GBT: Readonly<GbtOptions> = Object.freeze({
  rounds: 200,
  depth: 3,
  learningRate: 0.05,
  bins: 32,
  minLeaf: 8,
  lambda: 1,
  rowSubsample: 0.8,
  colSubsample: 0.6,
  seed: 1,
});

/** A fitted boosted-tree classifier. Trees are stored flat: node k of tree t at t * nodesPerTree + k. */
export interface GbtModel {
  /** Number of features the model was fitted on. */
  cols: number;
  /** Initial log-odds: log(prior / (1 - prior)) of the training labels. */
  base: number;
  /** Node slots per tree (a full binary tree of the fitted depth). */
  nodesPerTree: number;
  /** Feature index of each node, -1 for a leaf. */
  feature: Int32Array;
  /** Go left when value <= threshold (NaN goes right). */
  threshold: Float64Array;
  /** Leaf value (already multiplied by the learning rate). */
  value: Float64Array;
  /** Number of trees (boosting rounds). */
  trees: number;
}

/**
 * Fits histogram-based gradient-boosted trees with logistic loss on rows x cols features
 * (row-major; NaN allowed) and 0/1 labels. Deterministic for a given seed.
 */
export function fitGradientBoostedTrees(
  x: Float64Array,
  rows: number,
  cols: number,
  y: Uint8Array,
  options: Partial<GbtOptions> = {},
): GbtModel {
  const o = { ...DEFAULT_GBT, ...options };
  const rng = new Rng(o.seed);
  // Bin edges per feature from training quantiles.
  const edges: Float64Array[] = [];
  const binned = new Uint8Array(rows * cols);
  const col = new Float64Array(rows);
  for (let f = 0; f < cols; f++) {
    let m = 0;
    for (let i = 0; i < rows; i++) {
      const v = x[i * cols + f];
      if (!Number.isNaN(v)) col[m++] = v;
    }
    const sorted = col.subarray(0, m).slice().sort();
    const e: number[] = [];
    for (let b = 1; b < o.bins; b++) {
      const q = quantileSorted(sorted, b / o.bins);
      if (Number.isFinite(q) && (e.length === 0 || q > e[e.length - 1])) e.push(q);
    }
    const ef = Float64Array.from(e);
    edges.push(ef);
    for (let i = 0; i < rows; i++) {
      const v = x[i * cols + f];
      binned[i * cols + f] = Number.isNaN(v) ? ef.length + 1 : upperCount(ef, v);
    }
  }
  const nb = o.bins + 2;
  const nodesPerTree = (1 << (o.depth + 1)) - 1;
  const feature = new Int32Array(nodesPerTree * o.rounds).fill(-1);
  const threshold = new Float64Array(nodesPerTree * o.rounds);
  const value = new Float64Array(nodesPerTree * o.rounds);
  let pos = 0;
  for (let i = 0; i < rows; i++) pos += y[i];
  const prior = Math.min(Math.max(pos / rows, 1e-3), 1 - 1e-3);
  const base = Math.log(prior / (1 - prior));
  const score = new Float64Array(rows).fill(base);
  const g = new Float64Array(rows);
  const h = new Float64Array(rows);
  const histG = new Float64Array(cols * nb);
  const histH = new Float64Array(cols * nb);
  const histN = new Int32Array(cols * nb);
  const order = new Int32Array(rows);
  for (let i = 0; i < rows; i++) order[i] = i;
  const colOrder = new Int32Array(cols);
  for (let f = 0; f < cols; f++) colOrder[f] = f;
  const nRows = Math.max(2, Math.floor(rows * o.rowSubsample));
  const nCols = Math.max(1, Math.floor(cols * o.colSubsample));
  for (let t = 0; t < o.rounds; t++) {
    for (let i = 0; i < rows; i++) {
      const p = 1 / (1 + Math.exp(-score[i]));
      g[i] = p - y[i];
      h[i] = Math.max(p * (1 - p), 1e-6);
    }
    rng.shuffle(order);
    rng.shuffle(colOrder);
    const feats = colOrder.slice(0, nCols);
    // Node membership lists, breadth first: node k's children are 2k+1 and 2k+2.
    const members: (Int32Array | null)[] = new Array<Int32Array | null>(nodesPerTree).fill(null);
    members[0] = order.slice(0, nRows).sort();
    const off = t * nodesPerTree;
    for (let k = 0; k < nodesPerTree; k++) {
      const idx = members[k];
      if (idx === null) continue;
      let G = 0;
      let H = 0;
      for (let j = 0; j < idx.length; j++) {
        G += g[idx[j]];
        H += h[idx[j]];
      }
      const depthOfK = Math.floor(Math.log2(k + 1));
      value[off + k] = (-G / (H + o.lambda)) * o.learningRate;
      if (depthOfK >= o.depth || idx.length < 2 * o.minLeaf) continue;
      histG.fill(0);
      histH.fill(0);
      histN.fill(0);
      for (let j = 0; j < idx.length; j++) {
        const i = idx[j];
        const gi = g[i];
        const hi = h[i];
        const rowOff = i * cols;
        for (let q = 0; q < feats.length; q++) {
          const f = feats[q];
          const cell = f * nb + binned[rowOff + f];
          histG[cell] += gi;
          histH[cell] += hi;
          histN[cell]++;
        }
      }
      const parentGain = (G * G) / (H + o.lambda);
      let bestGain = 1e-9;
      let bestF = -1;
      let bestB = -1;
      for (let q = 0; q < feats.length; q++) {
        const f = feats[q];
        let gl = 0;
        let hl = 0;
        let nl = 0;
        const last = edges[f].length;
        for (let b = 0; b < last; b++) {
          const cell = f * nb + b;
          gl += histG[cell];
          hl += histH[cell];
          nl += histN[cell];
          const nr = idx.length - nl;
          if (nl < o.minLeaf || nr < o.minLeaf) continue;
          const gr = G - gl;
          const hr = H - hl;
          const gain = (gl * gl) / (hl + o.lambda) + (gr * gr) / (hr + o.lambda) - parentGain;
          if (gain > bestGain) {
            bestGain = gain;
            bestF = f;
            bestB = b;
          }
        }
      }
      if (bestF < 0) continue;
      feature[off + k] = bestF;
      threshold[off + k] = edges[bestF][bestB];
      let nl = 0;
      for (let j = 0; j < idx.length; j++) if (binned[idx[j] * cols + bestF] <= bestB) nl++;
      const left = new Int32Array(nl);
      const right = new Int32Array(idx.length - nl);
      let a = 0;
      let c = 0;
      for (let j = 0; j < idx.length; j++) {
        if (binned[idx[j] * cols + bestF] <= bestB) left[a++] = idx[j];
        else right[c++] = idx[j];
      }
      members[2 * k + 1] = left;
      members[2 * k + 2] = right;
    }
    // Update scores of all rows with this tree.
    for (let i = 0; i < rows; i++)
      score[i] += treeValue(feature, threshold, value, off, x, i * cols);
  }
  return { cols, base, nodesPerTree, feature, threshold, value, trees: o.rounds };
}

function upperCount(edges: Float64Array, v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function treeValue(
  feature: Int32Array,
  threshold: Float64Array,
  value: Float64Array,
  off: number,
  x: Float64Array,
  rowOff: number,
): number {
  let k = 0;
  for (;;) {
    const f = feature[off + k];
    if (f < 0) return value[off + k];
    const v = x[rowOff + f];
    k = v <= threshold[off + k] ? 2 * k + 1 : 2 * k + 2;
  }
}

/** Probability of class 1 for each row of `x` (rows x model.cols, row-major). */
export function predictGradientBoostedTrees(
  model: GbtModel,
  x: Float64Array,
  rows: number,
): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = model.base;
    for (let t = 0; t < model.trees; t++)
      s += treeValue(
        model.feature,
        model.threshold,
        model.value,
        t * model.nodesPerTree,
        x,
        i * model.cols,
      );
    out[i] = 1 / (1 + Math.exp(-s));
  }
  return out;
}

/** Area under the ROC curve of scores for labels (ties count one half). */
export function rocAuc(score: ArrayLike<number>, label: ArrayLike<number>): number {
  const n = score.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => score[a] - score[b]);
  let pos = 0;
  for (let i = 0; i < n; i++) pos += label[i] === 1 ? 1 : 0;
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  // Mann–Whitney U with average ranks for ties.
  let rankSum = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && score[idx[j + 1]] === score[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (label[idx[k]] === 1) rankSum += avg;
    i = j + 1;
  }
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

// ---------------------------------------------------------------------------------------------
// Window statistics: what the discriminator sees of a 256-bar 15m window and its 4h/1d context.

/** A market on the three timeframes (4h and 1d give the context of 15m windows). */
export interface MarketSeries {
  /** 15m candles. */
  m15: Candles;
  /** 4h candles (context of the 15m windows). */
  h4: Candles;
  /** 1d candles (context of the 15m windows). */
  d1: Candles;
}

/** Options of `extractWindowFeatures`. */
export interface WindowOptions {
  /** 15m bars per window (default 256). */
  windowBars: number;
  /** 15m bars between consecutive window ends (default 64). */
  strideBars: number;
  /** Closed 4h bars of context (default 64). */
  context4h: number;
  /** Closed 1d bars of context (default 32). */
  context1d: number;
  /**
   * Add the volatility level (log std of returns per timeframe) to the scale-free statistics.
   * Off by default: levels are judged by the realism table, the discriminator judges shape.
   */
  levels: boolean;
}

/** Default window options. */
export const DEFAULT_WINDOWS: Readonly<WindowOptions> = Object.freeze({
  windowBars: 256,
  strideBars: 64,
  context4h: 64,
  context1d: 32,
  levels: false,
});

/** Feature rows of the windows of one market. */
export interface WindowSet {
  /** rows x names.length, row-major. */
  x: Float64Array;
  /** Number of windows. */
  rows: number;
  /** Feature names, in column order (`windowFeatureNames`). */
  names: string[];
  /** Close time (UTC ms) of each window's last 15m bar. */
  endTimes: Float64Array;
}

const H4_MS = 14_400_000;
const D1_MS = 86_400_000;
const M15_MS = 900_000;

/** Feature names, in order (levels last when enabled). */
export function windowFeatureNames(levels: boolean): string[] {
  const names = [
    'r.skew',
    'r.exKurt',
    'z.abs.mean',
    'z.abs.q50',
    'z.abs.q90',
    'z.abs.q99',
    'z.abs.max',
    'z.abs.gt3',
    ...[1, 2, 3, 5, 10].map((k) => `acf.r.${k}`),
    ...[1, 2, 4, 8, 16, 32, 64].map((k) => `acf.abs.${k}`),
    ...[4, 16, 64].map((k) => `varRatio.${k}`),
    'vol16.logSd',
    'vol16.logMaxMin',
    'vol.halfRatio',
    'trend.abs',
    'trend.drawdown',
    'trend.range',
    'range.logMedian',
    'range.mean',
    'rangeBody.logMedian',
    'wick.upper.median',
    'wick.lower.median',
    'wick.asym.mean',
    'wick.upper.zero',
    'wick.lower.zero',
    'gap.zero',
    'gap.abs.mean',
    'doji',
    'corr.range.absR',
    'lv.sd',
    'lv.skew',
    ...[1, 4, 16, 64].map((k) => `acf.lv.${k}`),
    'corr.lv.absR',
    'corr.lv.range',
    'corr.lv.nextAbsR',
    'corr.absR.nextLv',
    'lv.maxMinusMedian',
    'lv.trend',
    'corr.lv.r',
    'season.hourVol',
    'season.hourVolume',
    'season.weekendVol',
    'season.weekendVolume',
    'leverage',
    'corr.r.absR',
    'h4.volRatio',
    'h4.exKurt',
    'h4.acf.abs.1',
    'h4.acf.abs.4',
    'h4.trend',
    'h4.range',
    'h4.rangeBody',
    'h4.lv.sd',
    'h4.lv.recent',
    'h4.vol.recent',
    'd1.volRatio',
    'd1.exKurt',
    'd1.trend',
    'd1.range',
    'd1.lv.sd',
    'd1.lv.recent',
    'd1.vol.recent',
    'd1.drawdown',
  ];
  if (levels) names.push('level.m15', 'level.h4', 'level.d1');
  return names;
}

/** Scratch buffers reused across windows. */
interface Scratch {
  r: Float64Array;
  a: Float64Array;
  b: Float64Array;
  c: Float64Array;
  d: Float64Array;
}

function makeScratch(n: number): Scratch {
  return {
    r: new Float64Array(n),
    a: new Float64Array(n),
    b: new Float64Array(n),
    c: new Float64Array(n),
    d: new Float64Array(n),
  };
}

/** Sample std of x[0..n). */
function stdOf(x: Float64Array, n: number): number {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    s += x[i];
    s2 += x[i] * x[i];
  }
  const m = s / n;
  return Math.sqrt(Math.max(s2 / n - m * m, 0));
}

function view(x: Float64Array, n: number): Float64Array {
  return x.subarray(0, n);
}

/** Max drawdown and full range of the cumulative sum of x[0..n). */
function cumulativeShape(x: Float64Array, n: number): { drawdown: number; range: number } {
  let cum = 0;
  let peak = 0;
  let lo = 0;
  let hi = 0;
  let dd = 0;
  for (let i = 0; i < n; i++) {
    cum += x[i];
    if (cum > peak) peak = cum;
    if (peak - cum > dd) dd = peak - cum;
    if (cum < lo) lo = cum;
    if (cum > hi) hi = cum;
  }
  return { drawdown: dd, range: hi - lo };
}

/** Statistics of a context series (4h or 1d) ending at `end` (inclusive), `len` bars. */
function contextStats(
  c: Candles,
  end: number,
  len: number,
  s: Scratch,
  recentBars: number,
): {
  std: number;
  exKurt: number;
  acf1: number;
  acf4: number;
  trend: number;
  range: number;
  rangeBody: number;
  lvSd: number;
  lvRecent: number;
  volRecent: number;
  drawdown: number;
} {
  const start = end - len + 1;
  const n = len - 1;
  for (let i = 0; i < n; i++) {
    const k = start + 1 + i;
    s.a[i] = Math.log(c.close[k] / c.close[k - 1]);
    s.b[i] = Math.abs(s.a[i]);
    s.c[i] = (c.high[k] - c.low[k]) / c.close[k - 1];
    const body = Math.abs(c.close[k] - c.open[k]);
    s.d[i] = body > 0 ? Math.log((c.high[k] - c.low[k]) / body) : NaN;
  }
  const std = stdOf(s.a, n);
  const mom = moments(view(s.a, n));
  let rangeSum = 0;
  for (let i = 0; i < n; i++) rangeSum += s.c[i];
  const rangeBody = median(view(s.d, n));
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s.a[i];
  const shape = cumulativeShape(s.a, n);
  let recent = 0;
  for (let i = n - recentBars; i < n; i++) recent += s.a[i] * s.a[i];
  const volRecent = Math.log(Math.sqrt(recent / recentBars) / std);
  const acf1 = autocorrelation(view(s.b, n), 1);
  const acf4 = autocorrelation(view(s.b, n), 4);
  for (let i = 0; i < len; i++) {
    const v = c.volume[start + i];
    s.a[i] = v > 0 ? Math.log(v) : NaN;
  }
  const lv = moments(view(s.a, len));
  let lr = 0;
  let nr = 0;
  for (let i = len - recentBars; i < len; i++)
    if (Number.isFinite(s.a[i])) {
      lr += s.a[i];
      nr++;
    }
  return {
    std,
    exKurt: mom.exKurt,
    acf1,
    acf4,
    trend: Math.abs(sum) / (std * Math.sqrt(n)),
    range: Math.log(rangeSum / n / std),
    rangeBody,
    lvSd: lv.std,
    lvRecent: nr > 0 ? (lr / nr - lv.mean) / (lv.std || 1) : NaN,
    volRecent,
    drawdown: shape.drawdown / (std * Math.sqrt(n)),
  };
}

/**
 * Computes the window statistics of every window of `src` whose 15m bars lie in
 * [fromMs, toMs): windows end every `strideBars` bars, hold `windowBars` consecutive 15m candles
 * (windows with a missing bar are skipped) and read the closed 4h/1d bars before their end.
 * The statistics do not depend on the price level, the volume unit or (unless `levels`) the
 * volatility level.
 */
export function extractWindowFeatures(
  src: MarketSeries,
  fromMs: number,
  toMs: number,
  options: Partial<WindowOptions> = {},
): WindowSet {
  const o = { ...DEFAULT_WINDOWS, ...options };
  const names = windowFeatureNames(o.levels);
  const cols = names.length;
  const g = toGrid(src.m15);
  const W = o.windowBars;
  const rowsOut: number[] = [];
  const ends: number[] = [];
  const s = makeScratch(Math.max(W, o.context4h, o.context1d) + 1);
  const row = new Float64Array(cols);
  const firstEnd = Math.max(W - 1, Math.ceil((fromMs - g.startTimeMs) / M15_MS) + W - 1);
  for (let e = firstEnd; e < g.close.length; e += o.strideBars) {
    const endClose = g.startTimeMs + (e + 1) * M15_MS;
    if (endClose > toMs) break;
    let complete = true;
    for (let k = e - W + 1; k <= e; k++)
      if (!Number.isFinite(g.close[k])) {
        complete = false;
        break;
      }
    if (!complete) continue;
    const e4 = lastClosedIndex(src.h4.openTime, endClose, H4_MS);
    const e1 = lastClosedIndex(src.d1.openTime, endClose, D1_MS);
    if (e4 - o.context4h + 1 < 0 || e1 - o.context1d + 1 < 0) continue;
    windowRow(g, e - W + 1, W, src, e4, e1, o, s, row);
    for (let f = 0; f < cols; f++) rowsOut.push(row[f]);
    ends.push(endClose);
  }
  return {
    x: Float64Array.from(rowsOut),
    rows: ends.length,
    names,
    endTimes: Float64Array.from(ends),
  };
}

function windowRow(
  g: GridSeries,
  start: number,
  W: number,
  src: MarketSeries,
  e4: number,
  e1: number,
  o: WindowOptions,
  s: Scratch,
  out: Float64Array,
): void {
  const n = W - 1;
  const r = s.r;
  for (let i = 0; i < n; i++) r[i] = Math.log(g.close[start + 1 + i] / g.close[start + i]);
  const rv = view(r, n);
  const sigma = stdOf(r, n) || 1e-12;
  const mom = moments(rv);
  const absR = s.a;
  for (let i = 0; i < n; i++) absR[i] = Math.abs(r[i]);
  const absV = view(absR, n);
  const zs = new Float64Array(n);
  let gt3 = 0;
  let meanAbsZ = 0;
  for (let i = 0; i < n; i++) {
    zs[i] = absR[i] / sigma;
    meanAbsZ += zs[i] / n;
    if (zs[i] > 3) gt3++;
  }
  zs.sort();
  let f = 0;
  const put = (v: number): void => {
    out[f++] = v;
  };
  put(mom.skew);
  put(mom.exKurt);
  put(meanAbsZ);
  put(quantileSorted(zs, 0.5));
  put(quantileSorted(zs, 0.9));
  put(quantileSorted(zs, 0.99));
  put(zs[n - 1]);
  put(gt3 / n);
  for (const k of [1, 2, 3, 5, 10]) put(autocorrelation(rv, k));
  for (const k of [1, 2, 4, 8, 16, 32, 64]) put(autocorrelation(absV, k));
  for (const k of [4, 16, 64]) {
    const m = Math.floor(n / k);
    let ss = 0;
    for (let j = 0; j < m; j++) {
      let sum = 0;
      for (let i = j * k; i < (j + 1) * k; i++) sum += r[i];
      ss += sum * sum;
    }
    put(ss / m / (k * sigma * sigma));
  }
  // Rolling 16-bar volatility.
  const nv = Math.floor(n / 16);
  const lvol = s.b;
  let vmax = -Infinity;
  let vmin = Infinity;
  for (let j = 0; j < nv; j++) {
    let ss = 0;
    for (let i = j * 16; i < (j + 1) * 16; i++) ss += r[i] * r[i];
    const v = 0.5 * Math.log(ss / 16 + 1e-30);
    lvol[j] = v;
    if (v > vmax) vmax = v;
    if (v < vmin) vmin = v;
  }
  put(stdOf(lvol, nv));
  put(vmax - vmin);
  const half = Math.floor(n / 2);
  put(Math.log((stdOf(r.subarray(half), n - half) || 1e-12) / (stdOf(r, half) || 1e-12)));
  let total = 0;
  for (let i = 0; i < n; i++) total += r[i];
  const shape = cumulativeShape(r, n);
  const sq = sigma * Math.sqrt(n);
  put(Math.abs(total) / sq);
  put(shape.drawdown / sq);
  put(shape.range / sq);
  // Candle shape (bars 1..W-1 so that every bar has a previous close).
  const rangeRel = s.b;
  const rangeBody = s.c;
  let rangeMean = 0;
  let upZero = 0;
  let loZero = 0;
  let gapZero = 0;
  let gapAbs = 0;
  let doji = 0;
  let asym = 0;
  const upW = new Float64Array(n);
  const loW = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = start + 1 + i;
    const o1 = g.open[k];
    const c1 = g.close[k];
    const h1 = g.high[k];
    const l1 = g.low[k];
    const pc = g.close[k - 1];
    const rg = h1 - l1;
    rangeRel[i] = rg / pc / sigma;
    rangeMean += rangeRel[i] / n;
    const body = Math.abs(c1 - o1);
    rangeBody[i] = body > 0 ? Math.log(rg / body) : NaN;
    const top = Math.max(o1, c1);
    const bot = Math.min(o1, c1);
    upW[i] = rg > 0 ? (h1 - top) / rg : NaN;
    loW[i] = rg > 0 ? (bot - l1) / rg : NaN;
    if (rg > 0) asym += (upW[i] - loW[i]) / n;
    if (h1 === top) upZero++;
    if (l1 === bot) loZero++;
    if (o1 === pc) gapZero++;
    gapAbs += Math.abs(Math.log(o1 / pc)) / sigma / n;
    if (body === 0) doji++;
  }
  const logRange = new Float64Array(n);
  for (let i = 0; i < n; i++) logRange[i] = Math.log(rangeRel[i] + 1e-12);
  put(median(logRange));
  put(rangeMean);
  put(median(view(rangeBody, n)));
  put(median(upW));
  put(median(loW));
  put(asym);
  put(upZero / n);
  put(loZero / n);
  put(gapZero / n);
  put(gapAbs);
  put(doji / n);
  put(correlation(view(rangeRel, n), absV));
  // Volume (log, level-free).
  const lv = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = g.volume[start + 1 + i];
    lv[i] = v > 0 ? Math.log(v) : NaN;
  }
  const lvm = moments(lv);
  put(lvm.std);
  put(lvm.skew);
  for (const k of [1, 4, 16, 64]) put(autocorrelation(lv, k));
  put(correlation(lv, absV));
  put(correlation(lv, logRange));
  put(crossCorrelation(lv, absV, 1));
  put(crossCorrelation(absV, lv, 1));
  put((sortedFinite(lv).at(-1) ?? NaN) - median(lv));
  let first = 0;
  let last = 0;
  let nf = 0;
  let nl = 0;
  for (let i = 0; i < 64; i++) {
    if (Number.isFinite(lv[i])) {
      first += lv[i];
      nf++;
    }
    if (Number.isFinite(lv[n - 1 - i])) {
      last += lv[n - 1 - i];
      nl++;
    }
  }
  put((last / nl - first / nf) / (lvm.std || 1));
  put(correlation(lv, rv));
  // Seasonality inside the window: US/EU afternoon vs Asian night, weekend vs week.
  let dayAbs = 0;
  let dayN = 0;
  let nightAbs = 0;
  let nightN = 0;
  let dayLv = 0;
  let nightLv = 0;
  let weAbs = 0;
  let weN = 0;
  let wdAbs = 0;
  let wdN = 0;
  let weLv = 0;
  let wdLv = 0;
  for (let i = 0; i < n; i++) {
    const t = g.startTimeMs + (start + 1 + i) * M15_MS;
    const hour = Math.floor((t % D1_MS) / 3_600_000);
    const wd = (Math.floor(t / D1_MS) + 4) % 7;
    const lvi = Number.isFinite(lv[i]) ? lv[i] : lvm.mean;
    if (hour >= 12 && hour < 20) {
      dayAbs += absR[i];
      dayLv += lvi;
      dayN++;
    } else if (hour < 8) {
      nightAbs += absR[i];
      nightLv += lvi;
      nightN++;
    }
    if (wd === 0 || wd === 6) {
      weAbs += absR[i];
      weLv += lvi;
      weN++;
    } else {
      wdAbs += absR[i];
      wdLv += lvi;
      wdN++;
    }
  }
  put(
    dayN > 0 && nightN > 0 ? Math.log((dayAbs / dayN + 1e-12) / (nightAbs / nightN + 1e-12)) : NaN,
  );
  put(dayN > 0 && nightN > 0 ? dayLv / dayN - nightLv / nightN : NaN);
  put(weN > 16 && wdN > 16 ? Math.log((weAbs / weN + 1e-12) / (wdAbs / wdN + 1e-12)) : NaN);
  put(weN > 16 && wdN > 16 ? weLv / weN - wdLv / wdN : NaN);
  let lev = 0;
  for (let k = 1; k <= 8; k++) lev += crossCorrelation(rv, absV, k) / 8;
  put(lev);
  put(correlation(rv, absV));
  // Context.
  const c4 = contextStats(src.h4, e4, o.context4h, s, 16);
  put(Math.log(c4.std / (sigma * 4)));
  put(c4.exKurt);
  put(c4.acf1);
  put(c4.acf4);
  put(c4.trend);
  put(c4.range);
  put(c4.rangeBody);
  put(c4.lvSd);
  put(c4.lvRecent);
  put(c4.volRecent);
  const c1 = contextStats(src.d1, e1, o.context1d, s, 5);
  put(Math.log(c1.std / (sigma * Math.sqrt(96))));
  put(c1.exKurt);
  put(c1.trend);
  put(c1.range);
  put(c1.lvSd);
  put(c1.lvRecent);
  put(c1.volRecent);
  put(c1.drawdown);
  if (o.levels) {
    put(Math.log(sigma));
    put(Math.log(c4.std));
    put(Math.log(c1.std));
  }
}

// ---------------------------------------------------------------------------------------------
// Discriminative score: time-blocked cross-validated real-vs-other classification.

/** Options of `discriminativeScore`. */
export interface DiscriminativeOptions {
  /** Contiguous time blocks per class; each is the test set once (default 5). */
  folds: number;
  /** Windows whose span reaches into the test block are purged from training (in ms; default 256 x 15m). */
  purgeMs: number;
  /** Bootstrap resamples for the confidence intervals (default 1000). */
  bootstrap: number;
  /** Length of the bootstrap clusters of consecutive windows, in days (default 7). */
  clusterDays: number;
  /** Classifier hyperparameters. */
  gbt: Partial<GbtOptions>;
  /** Seed of the bootstrap and of the classifier. */
  seed: number;
}

/** Default options of `discriminativeScore`. */
export const DEFAULT_DISCRIMINATIVE: Readonly<DiscriminativeOptions> = Object.freeze({
  folds: 5,
  purgeMs: 256 * M15_MS,
  bootstrap: 1000,
  clusterDays: 7,
  gbt: {},
  seed: 1,
});

/** A point estimate with its 95% confidence interval. */
export interface Estimate {
  /** Point estimate. */
  value: number;
  /** Lower bound of the 95% interval. */
  lo: number;
  /** Upper bound of the 95% interval. */
  hi: number;
}

/** Result of `discriminativeScore`. */
export interface DiscriminativeResult {
  /** Out-of-fold accuracy at threshold 0.5 (chance = 0.5; classes are balanced). */
  accuracy: Estimate;
  /** Out-of-fold ROC AUC. */
  auc: Estimate;
  /** Windows per class after balancing. */
  windowsPerClass: number;
  /** Time blocks (folds) used per class. */
  folds: number;
  /** The five features the trees split on most (split counts). */
  topFeatures: { name: string; splits: number }[];
}

/** Evenly spaced subset of `k` row indices out of `n` (all when k >= n). */
function evenSubset(n: number, k: number): Int32Array {
  if (k >= n) return Int32Array.from({ length: n }, (_, i) => i);
  return Int32Array.from({ length: k }, (_, i) => Math.floor(((i + 0.5) * n) / k));
}

/**
 * Trains the boosted trees to tell `real` windows (label 1) from `other` windows (label 0) with
 * time-blocked cross-validation: each class is cut into `folds` contiguous time blocks; for fold
 * k the trees train on the other blocks (minus windows overlapping block k, purged) and score
 * block k, so real windows used for training and for scoring never share a time range. The
 * larger class is thinned evenly to the size of the smaller. Accuracy and AUC are pooled over
 * folds; 95% intervals come from a bootstrap over clusters of `clusterDays` consecutive windows.
 * @throws {DataValidationError} when a class has fewer than 2 x folds windows or names differ.
 */
export function discriminativeScore(
  real: WindowSet,
  other: WindowSet,
  options: Partial<DiscriminativeOptions> = {},
): DiscriminativeResult {
  const o = { ...DEFAULT_DISCRIMINATIVE, ...options };
  if (real.names.join() !== other.names.join())
    throw new DataValidationError({
      source: 'discriminativeScore',
      reason: 'feature names differ',
    });
  const per = Math.min(real.rows, other.rows);
  if (per < 2 * o.folds)
    throw new DataValidationError({
      source: 'discriminativeScore',
      reason: `too few windows (${real.rows} real, ${other.rows} other) for ${o.folds} folds`,
    });
  const cols = real.names.length;
  const sets = [other, real];
  const pick = sets.map((s) => evenSubset(s.rows, per));
  // Block id of each selected window (by time position within its own class).
  const block = sets.map((s, c) => {
    const t0 = s.endTimes[pick[c][0]];
    const t1 = s.endTimes[pick[c][per - 1]];
    return Int32Array.from(pick[c], (i) =>
      Math.min(o.folds - 1, Math.floor(((s.endTimes[i] - t0) / (t1 - t0 + 1)) * o.folds)),
    );
  });
  const prob = [new Float64Array(per), new Float64Array(per)];
  const splitCounts = new Float64Array(cols);
  for (let k = 0; k < o.folds; k++) {
    const trainRows: number[] = [];
    const trainY: number[] = [];
    for (let c = 0; c < 2; c++) {
      const s = sets[c];
      let lo = Infinity;
      let hi = -Infinity;
      for (let j = 0; j < per; j++)
        if (block[c][j] === k) {
          lo = Math.min(lo, s.endTimes[pick[c][j]]);
          hi = Math.max(hi, s.endTimes[pick[c][j]]);
        }
      for (let j = 0; j < per; j++) {
        if (block[c][j] === k) continue;
        const t = s.endTimes[pick[c][j]];
        if (t > lo - o.purgeMs && t < hi + o.purgeMs) continue;
        trainRows.push(c * per + j);
        trainY.push(c);
      }
    }
    const xTrain = new Float64Array(trainRows.length * cols);
    trainRows.forEach((code, r) => {
      const c = code >= per ? 1 : 0;
      const j = code - c * per;
      xTrain.set(sets[c].x.subarray(pick[c][j] * cols, (pick[c][j] + 1) * cols), r * cols);
    });
    const model = fitGradientBoostedTrees(xTrain, trainRows.length, cols, Uint8Array.from(trainY), {
      ...o.gbt,
      seed: o.seed + k,
    });
    for (let t = 0; t < model.feature.length; t++)
      if (model.feature[t] >= 0) splitCounts[model.feature[t]]++;
    for (let c = 0; c < 2; c++) {
      const rowsK: number[] = [];
      for (let j = 0; j < per; j++) if (block[c][j] === k) rowsK.push(j);
      const xTest = new Float64Array(rowsK.length * cols);
      rowsK.forEach((j, r) =>
        xTest.set(sets[c].x.subarray(pick[c][j] * cols, (pick[c][j] + 1) * cols), r * cols),
      );
      const p = predictGradientBoostedTrees(model, xTest, rowsK.length);
      rowsK.forEach((j, r) => (prob[c][j] = p[r]));
    }
  }
  const scores = new Float64Array(2 * per);
  const labels = new Uint8Array(2 * per);
  for (let c = 0; c < 2; c++)
    for (let j = 0; j < per; j++) {
      scores[c * per + j] = prob[c][j];
      labels[c * per + j] = c;
    }
  const acc = accuracyOf(scores, labels);
  const auc = rocAuc(scores, labels);
  // Cluster bootstrap: clusters of consecutive windows of about clusterDays, per class.
  const clusterMs = o.clusterDays * D1_MS;
  const clusters = sets.map((s, c) => {
    const map = new Map<number, number[]>();
    const t0 = s.endTimes[pick[c][0]];
    for (let j = 0; j < per; j++) {
      const id = Math.floor((s.endTimes[pick[c][j]] - t0) / clusterMs);
      const list = map.get(id);
      if (list === undefined) map.set(id, [c * per + j]);
      else list.push(c * per + j);
    }
    return [...map.values()];
  });
  const rng = new Rng(o.seed ^ 0x5eed);
  const accs = new Float64Array(o.bootstrap);
  const aucs = new Float64Array(o.bootstrap);
  const bs: number[] = [];
  const bl: number[] = [];
  for (let b = 0; b < o.bootstrap; b++) {
    bs.length = 0;
    bl.length = 0;
    for (let c = 0; c < 2; c++) {
      const cl = clusters[c];
      for (let q = 0; q < cl.length; q++) {
        const members = cl[rng.int(cl.length)];
        for (const m of members) {
          bs.push(scores[m]);
          bl.push(labels[m]);
        }
      }
    }
    accs[b] = accuracyOf(bs, bl);
    aucs[b] = rocAuc(bs, bl);
  }
  accs.sort();
  aucs.sort();
  const ranked = Array.from(splitCounts, (v, i) => ({ name: real.names[i], splits: v }))
    .sort((a, b) => b.splits - a.splits)
    .slice(0, 5);
  return {
    accuracy: { value: acc, lo: quantileSorted(accs, 0.025), hi: quantileSorted(accs, 0.975) },
    auc: { value: auc, lo: quantileSorted(aucs, 0.025), hi: quantileSorted(aucs, 0.975) },
    windowsPerClass: per,
    folds: o.folds,
    topFeatures: ranked,
  };
}

function accuracyOf(score: ArrayLike<number>, label: ArrayLike<number>): number {
  let ok = 0;
  for (let i = 0; i < score.length; i++) if ((score[i] >= 0.5 ? 1 : 0) === label[i]) ok++;
  return ok / score.length;
}

// ---------------------------------------------------------------------------------------------
// Reference processes that a capable discriminator must tell from real markets.

/** Options of the reference processes. */
export interface ReferenceProcessOptions {
  /** Seed of the returns and volumes. */
  seed: number;
  /** Length in days. */
  days: number;
  /** Open time of the first bar (UTC midnight). */
  startTimeMs: number;
  /** Unconditional std of 15m log returns. */
  sigma15m: number;
  /** Mean and std of log 15m volume. */
  logVolumeMean: number;
  /** Std of log 15m volume. */
  logVolumeStd: number;
  /** Price at the start, quote currency. */
  initialPrice: number;
  /** Candle microstructure (gaps, wicks, tick) shared with the base process. */
  microstructure: BaseProcessParams['microstructure'];
  /** Symbol put on the candles. */
  symbol: string;
}

function referenceMarket(
  o: ReferenceProcessOptions,
  fill: (rng: Rng, logReturn: Float64Array, sigma: Float64Array) => void,
): MarketSeries {
  const steps = o.days * 288;
  const rng = new Rng(o.seed);
  const logReturn = new Float64Array(steps);
  const sigma = new Float64Array(steps);
  fill(rng.fork('returns'), logReturn, sigma);
  const vr = rng.fork('volume');
  const volume = new Float64Array(steps);
  // Lognormal i.i.d. 15m volume split evenly over its three 5m steps.
  for (let i = 0; i < steps; i += 3) {
    const v = Math.exp(o.logVolumeMean + o.logVolumeStd * vr.normal()) / 3;
    for (let k = i; k < Math.min(steps, i + 3); k++) volume[k] = v;
  }
  const fine = buildCandlesFromPath(
    {
      fineTimeframe: '5m',
      startTimeMs: o.startTimeMs,
      initialLogPrice: Math.log(o.initialPrice),
      logReturn,
      sigma,
      volume,
    },
    { symbol: o.symbol, microstructure: o.microstructure },
    rng.fork('candles'),
  );
  return aggregateFineCandles(fine);
}

/** A Gaussian random walk at 5m with constant volatility and lognormal volume. */
export function gaussianWalkMarket(o: ReferenceProcessOptions): MarketSeries {
  const s = o.sigma15m / Math.sqrt(3);
  return referenceMarket(o, (rng, r, sigma) => {
    for (let i = 0; i < r.length; i++) {
      r[i] = s * rng.normal();
      sigma[i] = s;
    }
  });
}

/**
 * A GARCH(1,1) walk with Student-t(4) shocks at 5m (alpha 0.05, beta 0.94; unconditional
 * variance matching `sigma15m`) and lognormal volume.
 */
export function garchMarket(o: ReferenceProcessOptions): MarketSeries {
  const alpha = 0.05;
  const beta = 0.94;
  const nu = 4;
  const unconditional = (o.sigma15m * o.sigma15m) / 3;
  const omega = unconditional * (1 - alpha - beta);
  const tScale = Math.sqrt((nu - 2) / nu);
  return referenceMarket(o, (rng, r, sigma) => {
    let v = unconditional;
    let prev = 0;
    for (let i = 0; i < r.length; i++) {
      v = omega + alpha * prev * prev + beta * v;
      const s = Math.sqrt(v);
      prev = s * rng.studentT(nu) * tScale;
      r[i] = prev;
      sigma[i] = s;
    }
  });
}

/**
 * Real 15m candles shuffled in time: each candle keeps its shape relative to the previous close
 * (gap, high, low, close) and its volume, but candles are put in random order, destroying
 * volatility clustering and seasonality. Timestamps stay on the original grid; 4h and 1d are
 * aggregated from the shuffled 15m. Gaps in the input are closed up.
 */
export function shuffledMarket(m15: Candles, seed: number): MarketSeries {
  const n = m15.openTime.length;
  const rng = new Rng(seed);
  const order = Int32Array.from({ length: n - 1 }, (_, i) => i + 1);
  rng.shuffle(order);
  const out = allocateCandles(m15.symbol, '15m', n - 1);
  const start = m15.openTime[0] - (m15.openTime[0] % D1_MS) + D1_MS;
  let prev = m15.close[0];
  for (let j = 0; j < n - 1; j++) {
    const i = order[j];
    const pc = m15.close[i - 1];
    out.openTime[j] = start + j * M15_MS;
    out.open[j] = (prev * m15.open[i]) / pc;
    out.high[j] = (prev * m15.high[i]) / pc;
    out.low[j] = (prev * m15.low[i]) / pc;
    out.close[j] = (prev * m15.close[i]) / pc;
    out.volume[j] = m15.volume[i];
    prev = out.close[j];
  }
  const whole = Math.floor((n - 1) / 96) * 96;
  const c = sliceCandles(out, 0, whole);
  return { m15: c, h4: resample(c, '4h').candles, d1: resample(c, '1d').candles };
}

// ---------------------------------------------------------------------------------------------
// Stylized facts and the realism table.

/** Seasonal profiles of a series: mean |r| and mean log volume per UTC hour and weekday. */
export interface SeasonalProfiles {
  /** Mean |r| per UTC hour of the bar's open, divided by the overall mean (24 values; NaN for 1d). */
  hourVol: number[];
  /** Mean |r| per UTC weekday (Sunday first) divided by the overall mean. */
  weekdayVol: number[];
  /** Mean log volume per UTC hour minus the overall mean (24 values). */
  hourVolume: number[];
  /** Mean log volume per UTC weekday minus the overall mean. */
  weekdayVolume: number[];
}

/** The stylized facts of one series on one timeframe. */
export interface StylizedFacts {
  /** Timeframe the facts were measured on, e.g. `15m`. */
  timeframe: string;
  /** Scalar facts by name (see `FACT_NAMES`). NaN when not defined for the timeframe. */
  values: Record<string, number>;
  /** ACF of returns at lags 1..10. */
  acfReturns: number[];
  /** ACF of |returns| at lags 1..100. */
  acfAbs: number[];
  /** Histogram of standardized returns on [-8, 8] in 64 bins (densities). */
  histogram: number[];
  /** Intraday and weekday profiles of volatility and volume. */
  profiles: SeasonalProfiles;
}

const ABS_LAGS = [1, 2, 5, 10, 20, 50, 100];

/** Names of the scalar facts, in table order. */
export const FACT_NAMES: readonly string[] = Object.freeze([
  'mean',
  'std',
  'skew',
  'exKurt',
  'hill',
  ...Array.from({ length: 10 }, (_, k) => `acf.r.${k + 1}`),
  ...ABS_LAGS.map((k) => `acf.abs.${k}`),
  'acf.abs.decay',
  'volVolumeCorr',
  'acf.volume.1',
  'acf.volume.10',
  'acf.volume.100',
  'rangeBody.q25',
  'rangeBody.q50',
  'rangeBody.q75',
  'wick.upper.q50',
  'wick.lower.q50',
  'wick.total.q90',
  'season.hourVol.corr',
  'season.weekdayVol.corr',
  'season.hourVolume.corr',
  'season.weekdayVolume.corr',
  'leverage.1',
  'leverage.5',
  'leverage.10',
  'gap.zero',
]);

const HIST_LO = -8;
const HIST_HI = 8;
const HIST_BINS = 64;

/** Seasonal profiles of candles (hour profiles are NaN for timeframes of a day or longer). */
export function seasonalProfiles(c: Candles): SeasonalProfiles {
  const g = toGrid(c);
  const hv = new Float64Array(24);
  const hn = new Float64Array(24);
  const hl = new Float64Array(24);
  const hln = new Float64Array(24);
  const wv = new Float64Array(7);
  const wn = new Float64Array(7);
  const wl = new Float64Array(7);
  const wln = new Float64Array(7);
  let sAbs = 0;
  let nAbs = 0;
  let sLv = 0;
  let nLv = 0;
  for (let i = 0; i < g.close.length; i++) {
    const t = g.startTimeMs + i * g.stepMs;
    const h = Math.floor((t % D1_MS) / 3_600_000);
    const w = (Math.floor(t / D1_MS) + 4) % 7;
    const a = Math.abs(g.logReturn[i]);
    if (Number.isFinite(a)) {
      hv[h] += a;
      hn[h]++;
      wv[w] += a;
      wn[w]++;
      sAbs += a;
      nAbs++;
    }
    const v = g.volume[i];
    if (v > 0) {
      const lv = Math.log(v);
      hl[h] += lv;
      hln[h]++;
      wl[w] += lv;
      wln[w]++;
      sLv += lv;
      nLv++;
    }
  }
  const daily = g.stepMs >= D1_MS;
  const mAbs = sAbs / nAbs;
  const mLv = sLv / nLv;
  return {
    hourVol: Array.from(hv, (s, k) => (daily || hn[k] === 0 ? NaN : s / hn[k] / mAbs)),
    weekdayVol: Array.from(wv, (s, k) => (wn[k] === 0 ? NaN : s / wn[k] / mAbs)),
    hourVolume: Array.from(hl, (s, k) => (daily || hln[k] === 0 ? NaN : s / hln[k] - mLv)),
    weekdayVolume: Array.from(wl, (s, k) => (wln[k] === 0 ? NaN : s / wln[k] - mLv)),
  };
}

/** Pearson correlation over the indices where both profiles are finite. */
function profileCorr(a: number[], b: number[] | undefined): number {
  if (b === undefined) return NaN;
  return correlation(a, b);
}

/** Hill tail fraction per timeframe (about 1% of 15m bars, 2.5% of 4h, 5% of 1d). */
function hillFraction(stepMs: number): number {
  return stepMs <= M15_MS ? 0.01 : stepMs <= H4_MS ? 0.025 : 0.05;
}

/**
 * Measures the stylized facts of candles on their own timeframe. Seasonal facts are correlations
 * of this series' profiles with `reference` (NaN without one).
 */
export function stylizedFacts(c: Candles, reference?: SeasonalProfiles): StylizedFacts {
  const g = toGrid(c);
  const r = g.logReturn;
  const n = r.length;
  const mom = moments(r);
  const abs = new Float64Array(n);
  for (let i = 0; i < n; i++) abs[i] = Math.abs(r[i]);
  const acfReturns = Array.from({ length: 10 }, (_, k) => autocorrelation(r, k + 1));
  const acfAbs = Array.from({ length: 100 }, (_, k) => autocorrelation(abs, k + 1));
  // Decay exponent: slope of log ACF on log lag over lags 1..100 where the ACF is positive.
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  let m = 0;
  acfAbs.forEach((v, k) => {
    if (v > 0) {
      const x = Math.log(k + 1);
      const y = Math.log(v);
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
      m++;
    }
  });
  const decay = m >= 3 ? -(m * sxy - sx * sy) / (m * sxx - sx * sx) : NaN;
  const lv = new Float64Array(n);
  for (let i = 0; i < n; i++) lv[i] = g.volume[i] > 0 ? Math.log(g.volume[i]) : NaN;
  const rb: number[] = [];
  const up: number[] = [];
  const lo: number[] = [];
  const tot: number[] = [];
  let gapZero = 0;
  let gaps = 0;
  for (let i = 0; i < n; i++) {
    const o = g.open[i];
    if (!Number.isFinite(o)) continue;
    const cl = g.close[i];
    const range = g.high[i] - g.low[i];
    const body = Math.abs(cl - o);
    if (body > 0) rb.push(range / body);
    if (range > 0) {
      const u = (g.high[i] - Math.max(o, cl)) / range;
      const d = (Math.min(o, cl) - g.low[i]) / range;
      up.push(u);
      lo.push(d);
      tot.push(u + d);
    }
    if (i > 0 && Number.isFinite(g.close[i - 1])) {
      gaps++;
      if (o === g.close[i - 1]) gapZero++;
    }
  }
  const rbs = sortedFinite(rb);
  const profiles = seasonalProfiles(c);
  const histogram = new Array<number>(HIST_BINS).fill(0);
  const width = (HIST_HI - HIST_LO) / HIST_BINS;
  let counted = 0;
  for (let i = 0; i < n; i++) {
    const z = (r[i] - mom.mean) / mom.std;
    if (!Number.isFinite(z)) continue;
    counted++;
    if (z >= HIST_LO && z < HIST_HI) histogram[Math.floor((z - HIST_LO) / width)]++;
  }
  for (let k = 0; k < HIST_BINS; k++) histogram[k] /= counted * width;
  const values: Record<string, number> = {
    mean: mom.mean,
    std: mom.std,
    skew: mom.skew,
    exKurt: mom.exKurt,
    hill: hillTailIndex(r, hillFraction(g.stepMs)),
    'acf.abs.decay': decay,
    volVolumeCorr: correlation(abs, lv),
    'acf.volume.1': autocorrelation(lv, 1),
    'acf.volume.10': autocorrelation(lv, 10),
    'acf.volume.100': autocorrelation(lv, 100),
    'rangeBody.q25': quantileSorted(rbs, 0.25),
    'rangeBody.q50': quantileSorted(rbs, 0.5),
    'rangeBody.q75': quantileSorted(rbs, 0.75),
    'wick.upper.q50': median(up),
    'wick.lower.q50': median(lo),
    'wick.total.q90': quantileSorted(sortedFinite(tot), 0.9),
    'season.hourVol.corr': profileCorr(profiles.hourVol, reference?.hourVol),
    'season.weekdayVol.corr': profileCorr(profiles.weekdayVol, reference?.weekdayVol),
    'season.hourVolume.corr': profileCorr(profiles.hourVolume, reference?.hourVolume),
    'season.weekdayVolume.corr': profileCorr(profiles.weekdayVolume, reference?.weekdayVolume),
    'leverage.1': crossCorrelation(r, abs, 1),
    'leverage.5': crossCorrelation(r, abs, 5),
    'leverage.10': crossCorrelation(r, abs, 10),
    'gap.zero': gaps > 0 ? gapZero / gaps : NaN,
  };
  acfReturns.forEach((v, k) => (values[`acf.r.${k + 1}`] = v));
  for (const k of ABS_LAGS) values[`acf.abs.${k}`] = acfAbs[k - 1];
  return { timeframe: c.timeframe, values, acfReturns, acfAbs, histogram, profiles };
}

/** Averages profiles elementwise (the reference of the seasonal facts). */
export function meanProfiles(list: SeasonalProfiles[]): SeasonalProfiles {
  const avg = (key: keyof SeasonalProfiles): number[] => {
    const len = list[0][key].length;
    return Array.from({ length: len }, (_, k) => finiteMean(list.map((p) => p[key][k])));
  };
  return {
    hourVol: avg('hourVol'),
    weekdayVol: avg('weekdayVol'),
    hourVolume: avg('hourVolume'),
    weekdayVolume: avg('weekdayVolume'),
  };
}

/** Candles of a series split into calendar years (UTC) with at least `minDays` days of bars. */
export function splitByYear(c: Candles, minDays = 300): { year: number; candles: Candles }[] {
  const out: { year: number; candles: Candles }[] = [];
  if (c.openTime.length === 0) return out;
  const first = new Date(c.openTime[0]).getUTCFullYear();
  const last = new Date(c.openTime[c.openTime.length - 1]).getUTCFullYear();
  const barsPerDay = D1_MS / TIMEFRAME_MS[c.timeframe];
  for (let y = first; y <= last; y++) {
    const part = sliceByTime(c, Date.UTC(y, 0, 1), Date.UTC(y + 1, 0, 1));
    if (part.openTime.length >= minDays * barsPerDay) out.push({ year: y, candles: part });
  }
  return out;
}

/** Candles split into consecutive chunks of `days` days (a trailing partial chunk is dropped). */
export function splitByDays(c: Candles, days = 365): Candles[] {
  const out: Candles[] = [];
  if (c.openTime.length === 0) return out;
  const span = days * D1_MS;
  for (let t = c.openTime[0]; ; t += span) {
    const part = sliceByTime(c, t, t + span);
    if (
      part.openTime.length === 0 ||
      part.openTime[part.openTime.length - 1] + TIMEFRAME_MS[c.timeframe] < t + span
    )
      break;
    out.push(part);
  }
  return out;
}

/** One row of the realism table: a fact on a timeframe, real range vs synthetic. */
export interface RealismRow {
  /** Timeframe of the fact, e.g. `4h`. */
  timeframe: string;
  /** Fact name (one of `FACT_NAMES`). */
  fact: string;
  /** Real yearly values: min, median, max (over symbols x years). */
  realMin: number;
  /** Median of the real yearly values. */
  realMedian: number;
  /** Maximum of the real yearly values. */
  realMax: number;
  /** Median of the synthetic yearly values, and their min and max. */
  synthetic: number;
  /** Minimum of the synthetic yearly values. */
  syntheticMin: number;
  /** Maximum of the synthetic yearly values. */
  syntheticMax: number;
  /** Whether `synthetic` lies inside [realMin, realMax]. */
  inRange: boolean;
  /** Distance outside the range (0 inside), and that distance relative to the range width. */
  outsideBy: number;
  /**
   * `outsideBy` / (realMax - realMin) (Infinity when the range is a point and the value is off it).
   */
  outsideRelative: number;
}

/** A realism table over timeframes. */
export interface RealismTable {
  /** One row per fact and timeframe. */
  rows: RealismRow[];
  /** Fraction of facts (with a defined real range and synthetic value) inside the real range. */
  fractionInRange: number;
  /** The facts outside, sorted by relative distance. */
  outside: RealismRow[];
  /** Real series used, e.g. `BTC/USDT 2019`. */
  realYears: string[];
  /** Number of synthetic yearly series behind each synthetic median. */
  syntheticYears: number;
}

/** Facts of several yearly series of one timeframe. */
export interface YearlyFacts {
  /** Which series and year, e.g. `BTC/USDT 2019`. */
  label: string;
  /** Its stylized facts. */
  facts: StylizedFacts;
}

/**
 * Builds the table row for every fact of every timeframe: the real range spanned by the yearly
 * values, the median of the synthetic yearly values, and whether (and by how much) it falls
 * outside. `real` and `synthetic` map a timeframe to its yearly facts.
 */
export function realismTable(
  real: Map<string, YearlyFacts[]>,
  synthetic: Map<string, YearlyFacts[]>,
): RealismTable {
  const rows: RealismRow[] = [];
  for (const [tf, realYears] of real) {
    const synYears = synthetic.get(tf) ?? [];
    for (const fact of FACT_NAMES) {
      const rv = sortedFinite(realYears.map((y) => y.facts.values[fact]));
      const sv = sortedFinite(synYears.map((y) => y.facts.values[fact]));
      if (rv.length === 0 || sv.length === 0) continue;
      const lo = rv[0];
      const hi = rv[rv.length - 1];
      const s = quantileSorted(sv, 0.5);
      const outsideBy = s < lo ? lo - s : s > hi ? s - hi : 0;
      const width = hi - lo;
      rows.push({
        timeframe: tf,
        fact,
        realMin: lo,
        realMedian: quantileSorted(rv, 0.5),
        realMax: hi,
        synthetic: s,
        syntheticMin: sv[0],
        syntheticMax: sv[sv.length - 1],
        inRange: outsideBy === 0,
        outsideBy,
        outsideRelative: width > 0 ? outsideBy / width : outsideBy > 0 ? Infinity : 0,
      });
    }
  }
  const outside = rows
    .filter((r) => !r.inRange)
    .sort((a, b) => b.outsideRelative - a.outsideRelative);
  const firstTf = [...real.keys()][0];
  return {
    rows,
    fractionInRange: rows.length > 0 ? (rows.length - outside.length) / rows.length : NaN,
    outside,
    realYears: (real.get(firstTf) ?? []).map((y) => y.label),
    syntheticYears: (synthetic.get(firstTf) ?? []).length,
  };
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(2) : v.toPrecision(3);
}

/** The realism table as markdown (one table per timeframe, then the facts outside the range). */
export function realismTableMarkdown(t: RealismTable): string {
  const lines: string[] = [];
  lines.push(
    `${t.rows.length - t.outside.length} of ${t.rows.length} stylized facts (${(100 * t.fractionInRange).toFixed(1)}%) of the synthetic data lie inside the range spanned by the real yearly values (${t.realYears.join(', ')}); synthetic value = median over ${t.syntheticYears} synthetic years.`,
    '',
  );
  const tfs = [...new Set(t.rows.map((r) => r.timeframe))];
  for (const tf of tfs) {
    lines.push(`#### ${tf}`, '');
    lines.push(
      '| fact | real min | real median | real max | synthetic | synthetic years | in range |',
    );
    lines.push('|---|---:|---:|---:|---:|---|:-:|');
    for (const r of t.rows.filter((x) => x.timeframe === tf))
      lines.push(
        `| ${r.fact} | ${fmt(r.realMin)} | ${fmt(r.realMedian)} | ${fmt(r.realMax)} | ${fmt(r.synthetic)} | ${fmt(r.syntheticMin)} … ${fmt(r.syntheticMax)} | ${r.inRange ? 'yes' : '**no**'} |`,
      );
    lines.push('');
  }
  if (t.outside.length > 0) {
    lines.push('Outside the real range:', '');
    for (const r of t.outside)
      lines.push(
        `- ${r.timeframe} ${r.fact}: synthetic ${fmt(r.synthetic)} vs real [${fmt(r.realMin)}, ${fmt(r.realMax)}], outside by ${fmt(r.outsideBy)} (${(100 * r.outsideRelative).toFixed(0)}% of the range width)`,
      );
    lines.push('');
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Report: markdown + self-contained HTML with inline SVG plots.

/** A named discriminative score for the report. */
export interface NamedScore {
  /** What was told apart, e.g. `synthetic (btc) vs BTC 2023`. */
  name: string;
  /** The score with its intervals. */
  result: DiscriminativeResult;
}

/** Everything the realism report shows. */
export interface RealismReport {
  /** Report title. */
  title: string;
  /** Stylized facts, real ranges vs synthetic. */
  table: RealismTable;
  /** Discriminative scores, the real-vs-real control first. */
  scores: NamedScore[];
  /** Per timeframe: yearly facts of the real and synthetic series (for the plots). */
  real: Map<string, YearlyFacts[]>;
  /** Per timeframe: yearly facts of the synthetic series (for the plots). */
  synthetic: Map<string, YearlyFacts[]>;
}

function fmtEstimate(e: Estimate): string {
  return `${e.value.toFixed(3)} [${e.lo.toFixed(3)}, ${e.hi.toFixed(3)}]`;
}

/** The discriminative scores as a markdown table. */
export function scoresMarkdown(scores: NamedScore[]): string {
  const lines = [
    '| comparison | accuracy [95% CI] | AUC [95% CI] | windows per class | strongest statistics |',
    '|---|---:|---:|---:|---|',
  ];
  for (const s of scores)
    lines.push(
      `| ${s.name} | ${fmtEstimate(s.result.accuracy)} | ${fmtEstimate(s.result.auc)} | ${s.result.windowsPerClass} | ${s.result.topFeatures
        .slice(0, 3)
        .map((f) => f.name)
        .join(', ')} |`,
    );
  return lines.join('\n');
}

function escHtml(s: string): string {
  return s.replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c,
  );
}

/** A minimal multi-series line chart as inline SVG (numeric x). */
export function lineSvg(
  title: string,
  xLabel: string,
  series: { name: string; x: number[]; y: number[]; color: string; dash?: boolean }[],
  width = 520,
  height = 300,
): string {
  const left = 56;
  const right = width - 12;
  const top = 28;
  const bottom = height - 36;
  let xLo = Infinity;
  let xHi = -Infinity;
  let yLo = Infinity;
  let yHi = -Infinity;
  for (const s of series)
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) return;
      xLo = Math.min(xLo, x);
      xHi = Math.max(xHi, x);
      yLo = Math.min(yLo, y);
      yHi = Math.max(yHi, y);
    });
  if (!Number.isFinite(xLo)) {
    xLo = 0;
    xHi = 1;
    yLo = 0;
    yHi = 1;
  }
  if (yHi === yLo) yHi = yLo + 1;
  const sx = (x: number): number => left + ((x - xLo) / (xHi - xLo || 1)) * (right - left);
  const sy = (y: number): number => bottom - ((y - yLo) / (yHi - yLo)) * (bottom - top);
  let out = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`;
  out += `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">${escHtml(title)}</text>`;
  out += `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#888"/><line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#888"/>`;
  for (let k = 0; k <= 4; k++) {
    const yv = yLo + ((yHi - yLo) * k) / 4;
    const xv = xLo + ((xHi - xLo) * k) / 4;
    out += `<text x="${left - 4}" y="${sy(yv) + 4}" text-anchor="end" fill="#555">${escHtml(fmt(yv))}</text>`;
    out += `<text x="${sx(xv)}" y="${bottom + 14}" text-anchor="middle" fill="#555">${escHtml(fmt(xv))}</text>`;
    out += `<line x1="${left}" y1="${sy(yv)}" x2="${right}" y2="${sy(yv)}" stroke="#eee"/>`;
  }
  out += `<text x="${(left + right) / 2}" y="${height - 6}" text-anchor="middle" fill="#555">${escHtml(xLabel)}</text>`;
  series.forEach((s, k) => {
    let d = '';
    let pen = false;
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`;
      pen = true;
    });
    out += `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dash === true ? ' stroke-dasharray="5 3"' : ''}><title>${escHtml(s.name)}</title></path>`;
    out += `<rect x="${right - 150}" y="${top + 4 + k * 15}" width="10" height="3" fill="${s.color}"/><text x="${right - 136}" y="${top + 9 + k * 15}">${escHtml(s.name)}</text>`;
  });
  return out + '</svg>';
}

function medianCurve(list: YearlyFacts[], pick: (f: StylizedFacts) => number[]): number[] {
  if (list.length === 0) return [];
  const len = pick(list[0].facts).length;
  return Array.from({ length: len }, (_, k) => median(list.map((y) => pick(y.facts)[k])));
}

/** Plots per timeframe: overlaid return histograms (log density) and ACFs, as inline SVG. */
export function realismPlots(report: RealismReport): { timeframe: string; svgs: string[] }[] {
  const out: { timeframe: string; svgs: string[] }[] = [];
  const width = (HIST_HI - HIST_LO) / HIST_BINS;
  const centres = Array.from({ length: HIST_BINS }, (_, k) => HIST_LO + (k + 0.5) * width);
  const normal = centres.map((z) => Math.log10(Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI)));
  for (const [tf, realYears] of report.real) {
    const synYears = report.synthetic.get(tf) ?? [];
    const log10 = (v: number[]): number[] => v.map((d) => (d > 0 ? Math.log10(d) : NaN));
    const rh = log10(medianCurve(realYears, (f) => f.histogram));
    const sh = log10(medianCurve(synYears, (f) => f.histogram));
    const lags100 = Array.from({ length: 100 }, (_, k) => k + 1);
    const lags10 = lags100.slice(0, 10);
    out.push({
      timeframe: tf,
      svgs: [
        lineSvg(`${tf}: density of standardized log returns (log10)`, 'return / std', [
          { name: 'real (median year)', x: centres, y: rh, color: '#1f77b4' },
          { name: 'synthetic (median year)', x: centres, y: sh, color: '#d62728' },
          { name: 'normal', x: centres, y: normal, color: '#999', dash: true },
        ]),
        lineSvg(`${tf}: ACF of |returns|`, 'lag (bars)', [
          {
            name: 'real (median year)',
            x: lags100,
            y: medianCurve(realYears, (f) => f.acfAbs),
            color: '#1f77b4',
          },
          {
            name: 'synthetic (median year)',
            x: lags100,
            y: medianCurve(synYears, (f) => f.acfAbs),
            color: '#d62728',
          },
        ]),
        lineSvg(`${tf}: ACF of returns`, 'lag (bars)', [
          {
            name: 'real (median year)',
            x: lags10,
            y: medianCurve(realYears, (f) => f.acfReturns),
            color: '#1f77b4',
          },
          {
            name: 'synthetic (median year)',
            x: lags10,
            y: medianCurve(synYears, (f) => f.acfReturns),
            color: '#d62728',
          },
        ]),
      ],
    });
  }
  return out;
}

/** The realism report as markdown (scores, then the table). */
export function realismReportMarkdown(report: RealismReport): string {
  return [
    `## ${report.title}`,
    '',
    '### Discriminative score',
    '',
    scoresMarkdown(report.scores),
    '',
    '### Stylized facts',
    '',
    realismTableMarkdown(report.table),
  ].join('\n');
}

/** The realism report as one self-contained HTML page (no scripts, no network). */
export function realismReportHtml(report: RealismReport): string {
  const row = (cells: string[], tag = 'td'): string =>
    `<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join('')}</tr>`;
  let html = `<!doctype html><html><head><meta charset="utf-8"><title>${escHtml(report.title)}</title>`;
  html +=
    '<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ddd;padding:3px 8px;font-size:12px;text-align:right}td:first-child,th:first-child{text-align:left}.no{background:#fde2e2}.plots{display:flex;flex-wrap:wrap;gap:8px}</style></head><body>';
  html += `<h1>${escHtml(report.title)}</h1>`;
  html += '<h2>Discriminative score</h2><table>';
  html += row(
    [
      'comparison',
      'accuracy [95% CI]',
      'AUC [95% CI]',
      'windows per class',
      'strongest statistics',
    ],
    'th',
  );
  for (const s of report.scores)
    html += row([
      escHtml(s.name),
      fmtEstimate(s.result.accuracy),
      fmtEstimate(s.result.auc),
      String(s.result.windowsPerClass),
      escHtml(s.result.topFeatures.map((f) => f.name).join(', ')),
    ]);
  html += '</table>';
  const t = report.table;
  html += `<h2>Stylized facts</h2><p>${t.rows.length - t.outside.length} of ${t.rows.length} facts (${(100 * t.fractionInRange).toFixed(1)}%) inside the real range (${escHtml(t.realYears.join(', '))}).</p>`;
  for (const p of realismPlots(report)) {
    html += `<h3>${escHtml(p.timeframe)}</h3><div class="plots">${p.svgs.join('')}</div><table>`;
    html += row(
      ['fact', 'real min', 'real median', 'real max', 'synthetic', 'synthetic years', 'in range'],
      'th',
    );
    for (const r of t.rows.filter((x) => x.timeframe === p.timeframe))
      html += `<tr${r.inRange ? '' : ' class="no"'}>${[
        escHtml(r.fact),
        fmt(r.realMin),
        fmt(r.realMedian),
        fmt(r.realMax),
        fmt(r.synthetic),
        `${fmt(r.syntheticMin)} … ${fmt(r.syntheticMax)}`,
        r.inRange ? 'yes' : `no (by ${fmt(r.outsideBy)})`,
      ]
        .map((c) => `<td>${c}</td>`)
        .join('')}</tr>`;
    html += '</table>';
  }
  return html + '</body></html>';
}

// ---------------------------------------------------------------------------------------------
// Orchestration shared by `ctm synth realism` and experiments/realism.ts.

/** A labelled market (real symbol or synthetic run). */
export interface LabelledMarket {
  /** Name of the market, e.g. a symbol or a synthetic run. */
  label: string;
  /** Its 15m, 4h and 1d candles. */
  market: MarketSeries;
}

const TIMEFRAME_KEYS = [
  ['15m', 'm15'],
  ['4h', 'h4'],
  ['1d', 'd1'],
] as const;

/**
 * Stylized facts of real markets by calendar year and of synthetic markets by 365-day chunk, on
 * 15m, 4h and 1d, with seasonal facts measured against the pooled real profiles; and the table.
 * @param realYears only calendar years in this inclusive range are used (default 2018–2023).
 */
export function realismFacts(
  real: LabelledMarket[],
  synthetic: LabelledMarket[],
  realYears: [number, number] = [2018, 2023],
): {
  real: Map<string, YearlyFacts[]>;
  synthetic: Map<string, YearlyFacts[]>;
  table: RealismTable;
} {
  const realMap = new Map<string, YearlyFacts[]>();
  const synMap = new Map<string, YearlyFacts[]>();
  for (const [tf, key] of TIMEFRAME_KEYS) {
    const realParts: { label: string; candles: Candles }[] = [];
    for (const r of real)
      for (const y of splitByYear(r.market[key]))
        if (y.year >= realYears[0] && y.year <= realYears[1])
          realParts.push({ label: `${r.label} ${y.year}`, candles: y.candles });
    const reference = meanProfiles(realParts.map((p) => seasonalProfiles(p.candles)));
    realMap.set(
      tf,
      realParts.map((p) => ({ label: p.label, facts: stylizedFacts(p.candles, reference) })),
    );
    const synParts: YearlyFacts[] = [];
    for (const s of synthetic)
      splitByDays(s.market[key], 365).forEach((c, k) =>
        synParts.push({ label: `${s.label} #${k + 1}`, facts: stylizedFacts(c, reference) }),
      );
    synMap.set(tf, synParts);
  }
  return { real: realMap, synthetic: synMap, table: realismTable(realMap, synMap) };
}

/** Where a real market stood at a time: the start state a synthetic continuation is given. */
export interface MarketState {
  /** Close of the last 15m candle that opened before `atMs` (quote currency). */
  price: number;
  /** RMS of the 15m log returns over the trailing days before `atMs` (gaps skipped). */
  volatility15m: number;
}

/**
 * The last close and the trailing realised volatility of 15m candles before `atMs`: only
 * candles that opened before `atMs` are read (information available at that time).
 * @throws {DataValidationError} when fewer than 96 returns fall in the trailing range.
 */
export function marketStateAt(m15: Candles, atMs: number, trailingDays = 30): MarketState {
  const before = sliceByTime(m15, atMs - trailingDays * D1_MS - M15_MS, atMs);
  const g = toGrid(before);
  let ss = 0;
  let n = 0;
  for (let i = 1; i < g.logReturn.length; i++) {
    const r = g.logReturn[i];
    if (Number.isFinite(r)) {
      ss += r * r;
      n++;
    }
  }
  if (n < 96)
    throw new DataValidationError({
      source: m15.symbol,
      reason: `only ${n} 15m returns in the ${trailingDays} days before ${new Date(atMs).toISOString()}`,
    });
  return { price: before.close[before.close.length - 1], volatility15m: Math.sqrt(ss / n) };
}

/** Windows of `market` whose bars lie in [fromMs, toMs) (all of it when omitted, after a warm-up for the 1d context). */
export function marketWindows(
  market: MarketSeries,
  options: Partial<WindowOptions> = {},
  fromMs?: number,
  toMs?: number,
): WindowSet {
  const o = { ...DEFAULT_WINDOWS, ...options };
  const first = market.m15.openTime[0];
  const last = market.m15.openTime[market.m15.openTime.length - 1] + M15_MS;
  return extractWindowFeatures(
    market,
    fromMs ?? first + (o.context1d + 1) * D1_MS,
    toMs ?? last,
    o,
  );
}

/**
 * The calendar years a calibration was fitted on (`params.fittedOn`, inclusive), or undefined when
 * the parameters carry no fit range (hand-made parameters).
 */
export function calibrationYearsOf(
  params: Pick<BaseProcessParams, 'fittedOn'>,
): [number, number] | undefined {
  const from = Number(params.fittedOn.from.slice(0, 4));
  const to = Number(params.fittedOn.to.slice(0, 4));
  return from >= 1970 && to >= from ? [from, to] : undefined;
}

/** Options of `runRealism`. */
export interface RunRealismOptions {
  /** Real years whose values span the ranges (inclusive). */
  realYears: [number, number];
  /** Real windows scored against, and the control year. */
  scoreYear: number;
  /**
   * Year of the scoring market whose windows are scored against `scoreYear` as the real-vs-real
   * control.
   */
  controlYear: number;
  /** Window options (defaults `DEFAULT_WINDOWS`). */
  windows: Partial<WindowOptions>;
  /**
   * Options of `discriminativeScore` (defaults `DEFAULT_DISCRIMINATIVE`; its seed is replaced by
   * `seed`).
   */
  discriminative: Partial<DiscriminativeOptions>;
  /** Also score the reference processes (Gaussian walk, GARCH-t, shuffled real) and the levels variant. */
  strengthChecks: boolean;
  /** Also score every other real year against the score year (context for the control). */
  yearControls: boolean;
  /**
   * With `yearControls`: the years the calibration was fitted on (inclusive). Their real windows,
   * pooled, are also scored against the score year: what a perfect copy of the calibration data
   * would score (optional).
   */
  calibrationYears?: [number, number];
  /** Microstructure of the reference processes' candles. */
  microstructure: BaseProcessParams['microstructure'];
  /** Seed of the scores and the reference processes. */
  seed: number;
  /** Called with a short description before each expensive step. */
  onStep?: (what: string) => void;
}

/**
 * Runs the whole realism measurement: the stylized-facts table of `synthetic` against the yearly
 * ranges of `real`, and the discriminative scores against the score year of `scoring` (the first
 * real market by default): the real-vs-real control first, then each synthetic market, then
 * (optionally) the reference processes and the other real years.
 */
export function runRealism(
  real: LabelledMarket[],
  synthetic: LabelledMarket[],
  scoring: LabelledMarket,
  options: RunRealismOptions,
  title = 'Realism of synthetic markets',
): RealismReport {
  const step = options.onStep ?? ((): void => undefined);
  step('stylized facts');
  const facts = realismFacts(real, synthetic, options.realYears);
  const Y = (y: number): number => Date.UTC(y, 0, 1);
  const w = options.windows;
  const d = { ...options.discriminative, seed: options.seed };
  step('windows');
  const scoreWindows = marketWindows(
    scoring.market,
    w,
    Y(options.scoreYear),
    Y(options.scoreYear + 1),
  );
  const scores: NamedScore[] = [];
  const score = (name: string, other: WindowSet): void => {
    step(name);
    scores.push({ name, result: discriminativeScore(scoreWindows, other, d) });
  };
  score(
    `control: ${scoring.label} ${options.controlYear} vs ${options.scoreYear}`,
    marketWindows(scoring.market, w, Y(options.controlYear), Y(options.controlYear + 1)),
  );
  const synWindows = synthetic.map((s) => marketWindows(s.market, w));
  const pooled = poolWindows(synWindows);
  score(
    `synthetic (${synthetic.map((s) => s.label).join(', ')}) vs ${scoring.label} ${options.scoreYear}`,
    pooled,
  );
  if (options.strengthChecks) {
    const year = sliceByTime(scoring.market.m15, Y(options.scoreYear), Y(options.scoreYear + 1));
    const g = toGrid(year);
    const lv = Array.from(g.volume, (v) => (v > 0 ? Math.log(v) : NaN));
    const lvm = moments(lv);
    const ref: ReferenceProcessOptions = {
      seed: options.seed + 17,
      days: 365 + 40,
      startTimeMs: Y(options.scoreYear + 1),
      sigma15m: moments(g.logReturn).std,
      logVolumeMean: lvm.mean,
      logVolumeStd: lvm.std,
      initialPrice: year.close[0],
      microstructure: options.microstructure,
      symbol: scoring.market.m15.symbol,
    };
    score(
      `Gaussian random walk vs ${scoring.label} ${options.scoreYear}`,
      marketWindows(gaussianWalkMarket(ref), w),
    );
    score(
      `GARCH(1,1)-t walk vs ${scoring.label} ${options.scoreYear}`,
      marketWindows(garchMarket(ref), w),
    );
    const shuffleFrom =
      Y(options.scoreYear) - (w.context1d ?? DEFAULT_WINDOWS.context1d) * 2 * D1_MS;
    score(
      `${scoring.label} ${options.scoreYear} shuffled in time vs ${scoring.label} ${options.scoreYear}`,
      marketWindows(
        shuffledMarket(
          sliceByTime(scoring.market.m15, shuffleFrom, Y(options.scoreYear + 1)),
          options.seed + 29,
        ),
        w,
      ),
    );
    const levels = { ...w, levels: true };
    const scoreLevels = marketWindows(
      scoring.market,
      levels,
      Y(options.scoreYear),
      Y(options.scoreYear + 1),
    );
    step('levels');
    scores.push({
      name: `with volatility levels: control ${options.controlYear} vs ${options.scoreYear}`,
      result: discriminativeScore(
        scoreLevels,
        marketWindows(scoring.market, levels, Y(options.controlYear), Y(options.controlYear + 1)),
        d,
      ),
    });
    scores.push({
      name: `with volatility levels: synthetic vs ${options.scoreYear}`,
      result: discriminativeScore(
        scoreLevels,
        poolWindows(synthetic.map((s) => marketWindows(s.market, levels))),
        d,
      ),
    });
  }
  if (options.yearControls) {
    for (let y = options.realYears[0]; y <= options.realYears[1]; y++) {
      if (y === options.scoreYear || y === options.controlYear) continue;
      const other = marketWindows(scoring.market, w, Y(y), Y(y + 1));
      if (other.rows >= 4 * (d.folds ?? DEFAULT_DISCRIMINATIVE.folds))
        score(`${scoring.label} ${y} vs ${options.scoreYear}`, other);
    }
    const fit = options.calibrationYears;
    if (fit)
      score(
        `calibration data itself: ${scoring.label} ${fit[0]}-${fit[1]} pooled vs ${options.scoreYear}`,
        marketWindows(scoring.market, w, Y(fit[0]), Y(fit[1] + 1)),
      );
  }
  return { title, table: facts.table, scores, real: facts.real, synthetic: facts.synthetic };
}

/**
 * Concatenates window sets (same statistics) into one; end times of each later set are shifted
 * past the previous one so that the time blocks of the cross-validation stay contiguous per set.
 */
export function poolWindows(sets: WindowSet[]): WindowSet {
  const names = sets[0].names;
  const rows = sets.reduce((s, w) => s + w.rows, 0);
  const x = new Float64Array(rows * names.length);
  const endTimes = new Float64Array(rows);
  let at = 0;
  let shift = 0;
  let lastEnd = -Infinity;
  for (const s of sets) {
    if (s.rows === 0) continue;
    x.set(s.x, at * names.length);
    shift = Math.max(shift, lastEnd - s.endTimes[0] + 366 * D1_MS);
    for (let i = 0; i < s.rows; i++)
      endTimes[at + i] = s.endTimes[i] + (lastEnd === -Infinity ? 0 : shift);
    lastEnd = endTimes[at + s.rows - 1];
    at += s.rows;
  }
  return { x, rows, names, endTimes };
}

/** ccxt-style symbol from a file stem such as `BTCUSDT` (quote USDT, USDC, BUSD, USD, BTC, ETH). */
function symbolFromStem(stem: string): string {
  for (const q of ['USDT', 'USDC', 'BUSD', 'USD', 'BTC', 'ETH'])
    if (stem.length > q.length && stem.endsWith(q)) return `${stem.slice(0, -q.length)}/${q}`;
  return stem;
}

async function readRepaired(path: string, symbol: string, tf: Timeframe): Promise<Candles> {
  const { candles } = await readCandlesCsv(path, { symbol, timeframe: tf });
  const { candles: repaired, actions } = repairCandles(candles);
  if (actions.length > 0)
    logger.info({ file: path, dropped: actions.length }, 'dropped off-grid or duplicate rows');
  validateCandles(repaired, { source: path });
  return repaired;
}

/**
 * Reads a market from its 15m candle file (`...-15m.csv` or `.csv.gz`): the 4h and 1d files
 * beside it (same name with `-4h` / `-1d`) when present, else aggregated from the 15m. Exact
 * duplicate and off-grid rows are dropped (logged).
 * @throws {DataValidationError} for unreadable or invalid candles, naming the file.
 */
export async function readMarket(path15m: string): Promise<LabelledMarket> {
  const name = basename(path15m);
  const m = /^(?:.*-)?([A-Za-z0-9]+)-15m\.csv(\.gz)?$/.exec(name);
  const stem = m === null ? name : m[1].toUpperCase();
  const symbol = symbolFromStem(stem);
  const m15 = await readRepaired(path15m, symbol, '15m');
  const sibling = (tf: Timeframe): string => path15m.replace(/-15m\.csv(\.gz)?$/, `-${tf}.csv$1`);
  const h4 = existsSync(sibling('4h'))
    ? await readRepaired(sibling('4h'), symbol, '4h')
    : resample(m15, '4h').candles;
  const d1 = existsSync(sibling('1d'))
    ? await readRepaired(sibling('1d'), symbol, '1d')
    : resample(m15, '1d').candles;
  return { label: symbol.split('/')[0], market: { m15, h4, d1 } };
}

/**
 * Reads markets from a 15m file or from every `*-15m.csv(.gz)` file of a directory (whose name
 * starts with `prefix` when given), sorted by file name.
 * @throws {DataValidationError} when nothing matches.
 */
export async function readMarkets(fileOrDir: string, prefix = ''): Promise<LabelledMarket[]> {
  if (!existsSync(fileOrDir))
    throw new DataValidationError({ source: fileOrDir, reason: 'no such file or directory' });
  const files = statSync(fileOrDir).isDirectory()
    ? readdirSync(fileOrDir)
        .filter((f) => f.startsWith(prefix) && /-15m\.csv(\.gz)?$/.test(f))
        .sort()
        .map((f) => join(fileOrDir, f))
    : [fileOrDir];
  if (files.length === 0)
    throw new DataValidationError({
      source: fileOrDir,
      reason: `no ${prefix}*-15m.csv(.gz) candle file found`,
    });
  const out: LabelledMarket[] = [];
  for (const f of files) out.push(await readMarket(f));
  return out;
}
