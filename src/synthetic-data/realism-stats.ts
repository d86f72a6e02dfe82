// Statistical primitives of the realism measurement and of the calibration (one definition, so
// both sides measure the same thing the same way): candles on their time grid, gap-aware moments,
// autocorrelations, quantiles, the Hill tail index, seasonal scaling. Pure functions of their
// inputs; they never change what they are given.

import { type Candles, TIMEFRAME_MS } from '../data-processing/candles.js';

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
