// What the discriminator sees of a market: the scale-free statistics of each 256-bar 15m window
// and of its closed 4h/1d context. Reads only candles that closed by a window's end; never
// changes the candles.

import { type Candles, lastClosedIndex, TIMEFRAME_MS } from '../data-processing/candles.js';
import {
  autocorrelation,
  correlation,
  crossCorrelation,
  type GridSeries,
  median,
  moments,
  quantileSorted,
  sortedFinite,
  toGrid,
} from './realism-stats.js';

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
  const firstEnd = Math.max(
    W - 1,
    Math.ceil((fromMs - g.startTimeMs) / TIMEFRAME_MS['15m']) + W - 1,
  );
  for (let e = firstEnd; e < g.close.length; e += o.strideBars) {
    const endClose = g.startTimeMs + (e + 1) * TIMEFRAME_MS['15m'];
    if (endClose > toMs) break;
    let complete = true;
    for (let k = e - W + 1; k <= e; k++)
      if (!Number.isFinite(g.close[k])) {
        complete = false;
        break;
      }
    if (!complete) continue;
    const e4 = lastClosedIndex(src.h4.openTime, endClose, TIMEFRAME_MS['4h']);
    const e1 = lastClosedIndex(src.d1.openTime, endClose, TIMEFRAME_MS['1d']);
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
    const t = g.startTimeMs + (start + 1 + i) * TIMEFRAME_MS['15m'];
    const hour = Math.floor((t % TIMEFRAME_MS['1d']) / 3_600_000);
    const wd = (Math.floor(t / TIMEFRAME_MS['1d']) + 4) % 7;
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
