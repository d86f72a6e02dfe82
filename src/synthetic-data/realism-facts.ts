// Stylized facts of candle series (returns, tails, clustering, seasonality, candle shape, volume)
// and the realism table: where synthetic yearly values fall against the real yearly range. Never
// changes the candles it is given.

import { type Candles, sliceByTime, TIMEFRAME_MS } from '../data-processing/candles.js';
import {
  autocorrelation,
  correlation,
  crossCorrelation,
  finiteMean,
  hillTailIndex,
  median,
  moments,
  quantileSorted,
  sortedFinite,
  toGrid,
} from './realism-stats.js';

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

/** Lower edge of the histogram of standardized returns (`StylizedFacts.histogram`). */
export const HIST_LO = -8;
/** Upper edge of the histogram of standardized returns. */
export const HIST_HI = 8;
/** Bins of the histogram of standardized returns. */
export const HIST_BINS = 64;

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
    const h = Math.floor((t % TIMEFRAME_MS['1d']) / 3_600_000);
    const w = (Math.floor(t / TIMEFRAME_MS['1d']) + 4) % 7;
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
  const daily = g.stepMs >= TIMEFRAME_MS['1d'];
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
  return stepMs <= TIMEFRAME_MS['15m'] ? 0.01 : stepMs <= TIMEFRAME_MS['4h'] ? 0.025 : 0.05;
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
  const barsPerDay = TIMEFRAME_MS['1d'] / TIMEFRAME_MS[c.timeframe];
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
  const span = days * TIMEFRAME_MS['1d'];
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

/** A fact value for tables: 3 significant digits, exponent notation below 1e-3 and from 1e4. */
export function formatFactValue(v: number): string {
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
        `| ${r.fact} | ${formatFactValue(r.realMin)} | ${formatFactValue(r.realMedian)} | ${formatFactValue(r.realMax)} | ${formatFactValue(r.synthetic)} | ${formatFactValue(r.syntheticMin)} … ${formatFactValue(r.syntheticMax)} | ${r.inRange ? 'yes' : '**no**'} |`,
      );
    lines.push('');
  }
  if (t.outside.length > 0) {
    lines.push('Outside the real range:', '');
    for (const r of t.outside)
      lines.push(
        `- ${r.timeframe} ${r.fact}: synthetic ${formatFactValue(r.synthetic)} vs real [${formatFactValue(r.realMin)}, ${formatFactValue(r.realMax)}], outside by ${formatFactValue(r.outsideBy)} (${(100 * r.outsideRelative).toFixed(0)}% of the range width)`,
      );
    lines.push('');
  }
  return lines.join('\n');
}
