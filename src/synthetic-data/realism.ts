// Realism measurement of synthetic markets: the statistics of candle series (stylized facts) and
// the comparison table of real vs synthetic. Also the statistical primitives the calibration uses,
// so both sides measure the same thing the same way. It never generates data and never changes
// the candles it is given.

import {
  allocateCandles,
  sliceCandles,
  TIMEFRAME_MS,
  type Candles,
} from '../data-processing/candles.js';
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
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
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
  cols: number;
  base: number;
  nodesPerTree: number;
  /** Feature index of each node, -1 for a leaf. */
  feature: Int32Array;
  /** Go left when value <= threshold (NaN goes right). */
  threshold: Float64Array;
  /** Leaf value (already multiplied by the learning rate). */
  value: Float64Array;
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
  m15: Candles;
  h4: Candles;
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
  rows: number;
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

/** Index of the last bar with openTime + barMs <= closeMs, or -1. */
function lastClosedIndex(openTime: Float64Array, closeMs: number, barMs: number): number {
  let lo = 0;
  let hi = openTime.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (openTime[mid] + barMs <= closeMs) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
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
  value: number;
  lo: number;
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
  seed: number;
  /** Length in days. */
  days: number;
  /** Open time of the first bar (UTC midnight). */
  startTimeMs: number;
  /** Unconditional std of 15m log returns. */
  sigma15m: number;
  /** Mean and std of log 15m volume. */
  logVolumeMean: number;
  logVolumeStd: number;
  initialPrice: number;
  /** Candle microstructure (gaps, wicks, tick) shared with the base process. */
  microstructure: BaseProcessParams['microstructure'];
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
