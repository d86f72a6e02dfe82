// Calibration of the base process: estimates its parameters from real 15m candles and loads the
// shipped calibrations (config/calibrations/<name>.json, fitted on real data up to 2021-12-31).
// Seasonality, the close-to-open gap and the volume-price elasticity are estimated directly; the
// rest by indirect inference: the same estimators (targets) are computed on the real candles and
// on a simulated path, and the parameters are moved until the two agree. A second stage fits the
// shape parameters (`SHAPE_PARAMETERS`: tails, fast volatility, mean reversion, wicks, spikes,
// volume coupling) so that the quartiles of the realism discriminator's window statistics on the
// real candles of the calibration range are matched by the simulation.
// It never writes candles and never reads data outside the time range it is given.

import { Worker } from 'node:worker_threads';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, DataValidationError } from '../errors.js';
import { sliceByTime, type Candles } from '../data-processing/candles.js';
import { resample } from '../data-processing/resample.js';
import {
  checkBaseProcessParams,
  generateBaseMarket,
  REGIME_NAMES,
  type BaseProcessParams,
  type MicrostructureRegime,
  type OuComponent,
} from './base-process.js';
import {
  autocorrelation,
  autocovariance,
  correlation,
  crossCorrelation,
  finiteMean,
  type GridSeries,
  hillTailIndex,
  median,
  movingMeanExcludingCentre,
  quantileSorted,
  sortedFinite,
  toGrid,
} from './realism-stats.js';
import { type MarketSeries } from './realism-windows.js';
import { marketWindows } from './realism.js';
import { logger } from '../utils/logger.js';

/** Names of the shipped calibrations. */
export const SHIPPED_CALIBRATIONS = ['btc', 'eth'] as const;

/** Directory of the shipped calibrations (config/calibrations at the package root). */
export const CALIBRATIONS_DIR = fileURLToPath(
  new URL('../../config/calibrations/', import.meta.url),
);

/**
 * Loads base-process parameters: a shipped calibration by name (`btc`, `eth`) or a JSON file
 * written by `ctm synth calibrate`.
 * @throws {DataValidationError} when the file is missing, not JSON, or not valid parameters.
 */
export function loadCalibration(ref: string): BaseProcessParams {
  const lower = ref.toLowerCase();
  const file = (SHIPPED_CALIBRATIONS as readonly string[]).includes(lower)
    ? `${CALIBRATIONS_DIR}${lower}.json`
    : ref;
  if (!existsSync(file))
    throw new DataValidationError(
      { source: file, reason: 'calibration file not found' },
      {
        hint: `use one of ${SHIPPED_CALIBRATIONS.join(', ')} or a file from \`ctm synth calibrate\``,
      },
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataValidationError(
      { source: file, reason: `not valid JSON (${(err as Error).message})` },
      { cause: err },
    );
  }
  const params = parsed as BaseProcessParams;
  if (typeof parsed !== 'object' || parsed === null || params.version !== 1)
    throw new DataValidationError({
      source: file,
      field: 'version',
      reason: 'expected version 1 parameters',
    });
  try {
    checkBaseProcessParams(params);
  } catch (err) {
    if (err instanceof DataValidationError)
      throw new DataValidationError(
        { source: file, field: err.field, reason: err.reason },
        { cause: err },
      );
    throw new DataValidationError(
      { source: file, reason: `malformed parameters (${(err as Error).message})` },
      { cause: err },
    );
  }
  return params;
}

const DAY_MS = 86_400_000;
const SLOT_MS = 900_000;
const SLOTS = 96;
const EPOCH_WEEKDAY = 4;

/** Lags (in 15m bars) at which autocovariances are matched: 15 minutes to 84 days. */
export const CALIBRATION_LAGS: readonly number[] = Object.freeze([
  1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 144, 192, 288, 384, 576, 768, 1152, 1536, 2304,
  3072, 4608, 6144, 8064,
]);

/** Fewest days of real 15m candles a calibration accepts: the longest lag (84 days) plus a week. */
const MIN_CALIBRATION_DAYS = Math.ceil(CALIBRATION_LAGS[CALIBRATION_LAGS.length - 1] / 96) + 6;

/** Timescales (hours) of the log-volatility components. */
const VOL_TIMESCALES = [0.5, 2, 8, 32, 128, 512, 2048];
/** Log-volatility components this fast (hours) are shape parameters of the window stage. */
const FAST_SHAPE_HOURS = 32;
/** Timescales (hours) of the log-volume components. */
const VOLUME_TIMESCALES = [1, 6, 36, 216, 1296];

/** Seasonal tables indexed by weekday * 96 + 15m slot. */
export interface SeasonalTables {
  /** Volatility multiplier per slot: weekday x intraday (7 x 96 values). */
  vol: Float64Array;
  /** Log-volume offset per slot: weekday + intraday (7 x 96 values). */
  logVolume: Float64Array;
}

/** Seasonal tables of a parameter object. */
export function seasonalTables(p: BaseProcessParams): SeasonalTables {
  const vol = new Float64Array(7 * SLOTS);
  const logVolume = new Float64Array(7 * SLOTS);
  for (let w = 0; w < 7; w++)
    for (let k = 0; k < SLOTS; k++) {
      vol[w * SLOTS + k] = p.seasonality.volWeekday[w] * p.seasonality.volIntraday[k];
      logVolume[w * SLOTS + k] = p.seasonality.volumeWeekday[w] + p.seasonality.volumeIntraday[k];
    }
  return { vol, logVolume };
}

function seasonIndex(timeMs: number): number {
  const day = Math.floor(timeMs / DAY_MS);
  return ((day + EPOCH_WEEKDAY) % 7) * SLOTS + Math.floor((timeMs - day * DAY_MS) / SLOT_MS);
}

/** Per-label statistics of the heuristic regime labeller (order of `REGIME_NAMES`). */
export interface RegimeLabelStats {
  /** Fraction of days with each label. */
  share: number[];
  /** Mean run length in days. */
  meanRunDays: number[];
  /** Mean daily log return. */
  meanReturn: number[];
  /** Mean daily realized volatility divided by the overall mean. */
  relativeVol: number[];
  /** Jumps per day divided by the overall rate. */
  relativeJumps: number[];
  /** Row-normalized transition frequencies between runs. */
  transition: number[][];
}

/**
 * The statistics matched by calibration, measured on a 15m series after removing the seasonal
 * profile of `tables` (so real and simulated series are measured the same way).
 */
export interface CalibrationTargets {
  /** Median |r| of the deseasonalized 15m log returns. */
  medianAbs: number;
  /** Hill estimate of the tail index of |r| over its top 1%. */
  hill: number;
  /** Autocovariance of log(|r| + 0.05 median|r|) at `CALIBRATION_LAGS`. */
  logAbsCov: number[];
  /** Mean over lags 1..8 of corr(r_t, |r_{t+k}|). */
  leverage: number;
  /** Median of (high - low) / |close - open|, on 15m and on 4h bars. */
  rangeBody: number;
  /** Median of (high - low) / |close - open| on 4h bars. */
  rangeBody4h: number;
  /** Fraction of bar sides without a wick. */
  zeroWick: number;
  /** Jumps (|r| > 10 local mean |r|) per day, their median size in local mean |r|, and down share. */
  jumpsPerDay: number;
  /** Median jump size, in units of the local mean |r|. */
  jumpSize: number;
  /** Fraction of jumps that are downward. */
  jumpDown: number;
  /** Mean of deseasonalized log volume minus priceElasticity * log(price / referencePrice). */
  logVolumeMean: number;
  /** Variance and autocovariance (at `CALIBRATION_LAGS`) of deseasonalized log volume. */
  logVolumeVar: number;
  /** Autocovariance of deseasonalized log volume at `CALIBRATION_LAGS`. */
  logVolumeCov: number[];
  /** corr(log volume, log local mean |r|) and corr(log volume, |r| / local mean |r|). */
  volumeStateCorr: number;
  /** corr(log volume, |r| / local mean |r|). */
  volumeShockCorr: number;
  /** corr of log volume and of log short-run (±1h) mean |r|, both relative to their ±2-day means. */
  volumeFastCorr: number;
  /** corr of log volume (relative to its ±2-day mean) and log bar range relative to the local mean |r|. */
  volumeRangeCorr: number;
  /** Variance ratios at 4, 16 and 64 bars of returns standardized by the local mean |r|. */
  varianceRatio: number[];
  /** Mean ACF at lags 1 and 2 of |r| / local mean |r| (short-run clustering). */
  shortAbsAcf: number;
  /** Statistics of the heuristic regime labels. */
  regimes: RegimeLabelStats;
}

/**
 * The real targets every fit needs must be finite (too many missing candles leave a long lag
 * without pairs, and a fit on NaN makes NaN parameters).
 * @throws {DataValidationError} naming the first target that is not finite.
 */
function requireFiniteTargets(t: CalibrationTargets, source: string): void {
  const lists: [string, number[], readonly number[]][] = [
    ['median |r|', [t.medianAbs], []],
    ['Hill tail index', [t.hill], []],
    ['log|r| autocovariance', t.logAbsCov, CALIBRATION_LAGS],
    ['log-volume variance', [t.logVolumeVar], []],
    ['log-volume autocovariance', t.logVolumeCov, CALIBRATION_LAGS],
    ['variance ratio', t.varianceRatio, [4, 16, 64]],
  ];
  for (const [name, values, lags] of lists) {
    const k = values.findIndex((v) => !Number.isFinite(v));
    if (k >= 0)
      throw new DataValidationError({
        source,
        reason: `calibration cannot measure the real ${name}${k < lags.length ? ` at lag ${lags[k]} bars` : ''} (too few candles in the range, or too many missing)`,
      });
  }
}

/** Returns standardized by their seasonal volatility multiplier, on the grid. */
function deseasonalized(
  g: GridSeries,
  tables: SeasonalTables,
): {
  r: Float64Array;
  lv: Float64Array;
} {
  const n = g.logReturn.length;
  const r = new Float64Array(n);
  const lv = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const idx = seasonIndex(g.startTimeMs + i * g.stepMs);
    r[i] = g.logReturn[i] / tables.vol[idx];
    const v = g.volume[i];
    lv[i] = v > 0 ? Math.log(v) - tables.logVolume[idx] : NaN;
  }
  return { r, lv };
}

/** Daily log return and realized volatility from a 15m grid (days with < 48 bars are NaN). */
function dailySeries(g: GridSeries): { ret: Float64Array; rv: Float64Array; day0: number } {
  const day0 = Math.floor(g.startTimeMs / DAY_MS);
  const nDays = Math.floor((g.startTimeMs + g.logReturn.length * g.stepMs - 1) / DAY_MS) - day0 + 1;
  const ret = new Float64Array(nDays);
  const ss = new Float64Array(nDays);
  const cnt = new Int32Array(nDays);
  for (let i = 0; i < g.logReturn.length; i++) {
    const r = g.logReturn[i];
    if (!Number.isFinite(r)) continue;
    const d = Math.floor((g.startTimeMs + i * g.stepMs) / DAY_MS) - day0;
    ret[d] += r;
    ss[d] += r * r;
    cnt[d]++;
  }
  const rv = new Float64Array(nDays);
  for (let d = 0; d < nDays; d++) {
    if (cnt[d] < 48) {
      ret[d] = NaN;
      rv[d] = NaN;
    } else rv[d] = Math.sqrt((ss[d] * SLOTS) / cnt[d]);
  }
  return { ret, rv, day0 };
}

/**
 * Heuristic regime labels of daily series (codes of `REGIME_NAMES`): high volatility when the
 * 5-day mean realized volatility exceeds 1.7 times its median; trending when the centred 21-day
 * return exceeds the median daily volatility times sqrt(21); ranging otherwise; runs shorter than
 * 3 days join the previous run. Uses future days (it labels history; it is not a signal).
 */
export function labelRegimes(ret: Float64Array, rv: Float64Array): Uint8Array {
  const n = ret.length;
  const labels = new Uint8Array(n);
  const medRv = median(rv);
  const thr = medRv * Math.sqrt(21);
  for (let j = 0; j < n; j++) {
    let sv = 0;
    let cv = 0;
    for (let k = Math.max(0, j - 2); k <= Math.min(n - 1, j + 2); k++)
      if (Number.isFinite(rv[k])) {
        sv += rv[k];
        cv++;
      }
    let sr = 0;
    for (let k = Math.max(0, j - 10); k <= Math.min(n - 1, j + 10); k++)
      if (Number.isFinite(ret[k])) sr += ret[k];
    if (cv > 0 && sv / cv > 1.7 * medRv) labels[j] = 3;
    else if (sr > thr) labels[j] = 1;
    else if (sr < -thr) labels[j] = 2;
    else labels[j] = 0;
  }
  let runStart = 0;
  for (let j = 1; j <= n; j++) {
    if (j === n || labels[j] !== labels[runStart]) {
      if (j - runStart < 3 && runStart > 0) labels.fill(labels[runStart - 1], runStart, j);
      runStart = j;
    }
  }
  return labels;
}

function regimeStats(
  ret: Float64Array,
  rv: Float64Array,
  jumpsPerDayArr: Float64Array,
): RegimeLabelStats {
  const nR = REGIME_NAMES.length;
  const labels = labelRegimes(ret, rv);
  const days = new Float64Array(nR);
  const runs = new Float64Array(nR);
  const sumRet = new Float64Array(nR);
  const nRet = new Float64Array(nR);
  const sumRv = new Float64Array(nR);
  const sumJ = new Float64Array(nR);
  const trans = Array.from({ length: nR }, () => new Array<number>(nR).fill(0));
  const meanRv = finiteMean(rv);
  const meanJ = finiteMean(jumpsPerDayArr);
  for (let j = 0; j < labels.length; j++) {
    const l = labels[j];
    days[l]++;
    if (j === 0 || labels[j - 1] !== l) {
      runs[l]++;
      if (j > 0) trans[labels[j - 1]][l]++;
    }
    if (Number.isFinite(ret[j]) && Number.isFinite(rv[j])) {
      sumRet[l] += ret[j];
      sumRv[l] += rv[j];
      sumJ[l] += jumpsPerDayArr[j];
      nRet[l]++;
    }
  }
  const total = labels.length;
  return {
    share: Array.from(days, (d) => d / total),
    meanRunDays: Array.from(days, (d, l) => (runs[l] > 0 ? d / runs[l] : NaN)),
    meanReturn: Array.from(sumRet, (s, l) => (nRet[l] > 0 ? s / nRet[l] : NaN)),
    relativeVol: Array.from(sumRv, (s, l) => (nRet[l] > 0 ? s / nRet[l] / meanRv : NaN)),
    relativeJumps: Array.from(sumJ, (s, l) =>
      nRet[l] > 0 && meanJ > 0 ? s / nRet[l] / meanJ : NaN,
    ),
    transition: trans.map((row) => {
      const s = row.reduce((a, b) => a + b, 0);
      return row.map((v) => (s > 0 ? v / s : 0));
    }),
  };
}

/**
 * Measures the calibration targets on 15m candles (gaps allowed).
 * @param tables seasonal profile removed before measuring (the fitted one, for real and simulated alike).
 * @param priceElasticity and `referencePrice` adjust the volume level for the price level.
 */
export function measureCalibrationTargets(
  c15: Candles,
  tables: SeasonalTables,
  priceElasticity: number,
  referencePrice: number,
): CalibrationTargets {
  const g = toGrid(c15);
  const n = g.logReturn.length;
  const { r, lv } = deseasonalized(g, tables);
  const abs = new Float64Array(n);
  for (let i = 0; i < n; i++) abs[i] = Math.abs(r[i]);
  const medianAbs = median(abs);
  const c = 0.05 * medianAbs;
  const p = new Float64Array(n);
  for (let i = 0; i < n; i++) p[i] = Math.log(abs[i] + c);
  const logAbsCov = CALIBRATION_LAGS.map((L) => autocovariance(p, L));
  let lev = 0;
  for (let k = 1; k <= 8; k++) lev += crossCorrelation(r, abs, k) / 8;
  // Candle shape.
  const ratios: number[] = [];
  let zero = 0;
  let sides = 0;
  for (let i = 0; i < n; i++) {
    const o = g.open[i];
    const cl = g.close[i];
    if (!Number.isFinite(o)) continue;
    const body = Math.abs(cl - o);
    if (body > 0) ratios.push((g.high[i] - g.low[i]) / body);
    if (g.high[i] === Math.max(o, cl)) zero++;
    if (g.low[i] === Math.min(o, cl)) zero++;
    sides += 2;
  }
  // Jumps relative to the local mean |r| (two days either side, excluding the bar).
  const local = movingMeanExcludingCentre(abs, 192);
  const day0 = Math.floor(g.startTimeMs / DAY_MS);
  const daily = dailySeries(g);
  const jumpsByDay = new Float64Array(daily.ret.length);
  const sizes: number[] = [];
  let down = 0;
  const u = new Float64Array(n);
  const logLocal = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    u[i] = abs[i] / local[i];
    logLocal[i] = Math.log(local[i]);
    if (u[i] > 10) {
      sizes.push(u[i]);
      if (r[i] < 0) down++;
      jumpsByDay[Math.floor((g.startTimeMs + i * g.stepMs) / DAY_MS) - day0]++;
    }
  }
  let finiteBars = 0;
  for (let i = 0; i < n; i++) if (Number.isFinite(r[i])) finiteBars++;
  const nDays = finiteBars / SLOTS;
  // Short-run structure, scale-free: u = r / local mean |r|.
  const z = new Float64Array(n);
  for (let i = 0; i < n; i++) z[i] = r[i] / local[i];
  const varianceRatio = [4, 16, 64].map((k) => varianceRatioOf(z, k));
  const shortAbsAcf = (autocorrelation(u, 1) + autocorrelation(u, 2)) / 2;
  const lvLocal = movingMeanExcludingCentre(lv, 192);
  const shortAbs = movingMeanExcludingCentre(abs, 4);
  const lvDev = new Float64Array(n);
  const shortDev = new Float64Array(n);
  const rangeDev = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    lvDev[i] = lv[i] - lvLocal[i];
    shortDev[i] = Math.log(shortAbs[i] / local[i]);
    const idx = seasonIndex(g.startTimeMs + i * g.stepMs);
    const range = (g.high[i] - g.low[i]) / g.close[i] / tables.vol[idx];
    rangeDev[i] = range > 0 ? Math.log(range / local[i]) : NaN;
  }
  // Volume.
  const logRef = Math.log(referencePrice);
  const adj = new Float64Array(n);
  for (let i = 0; i < n; i++) adj[i] = lv[i] - priceElasticity * (Math.log(g.close[i]) - logRef);
  return {
    medianAbs,
    hill: hillTailIndex(r, 0.01),
    logAbsCov,
    leverage: lev,
    rangeBody: median(ratios),
    rangeBody4h: rangeBodyMedian(resample(c15, '4h').candles),
    zeroWick: sides > 0 ? zero / sides : NaN,
    jumpsPerDay: sizes.length / nDays,
    jumpSize: sizes.length > 0 ? median(sizes) : NaN,
    jumpDown: sizes.length > 0 ? down / sizes.length : 0.5,
    logVolumeMean: finiteMean(adj),
    logVolumeVar: autocovariance(adj, 0),
    logVolumeCov: CALIBRATION_LAGS.map((L) => autocovariance(adj, L)),
    volumeStateCorr: correlation(lv, logLocal),
    volumeShockCorr: correlation(lv, u),
    volumeFastCorr: correlation(lvDev, shortDev),
    volumeRangeCorr: correlation(lvDev, rangeDev),
    varianceRatio,
    shortAbsAcf,
    regimes: regimeStats(daily.ret, daily.rv, jumpsByDay),
  };
}

function rangeBodyMedian(c: Candles): number {
  const ratios: number[] = [];
  for (let i = 0; i < c.open.length; i++) {
    const body = Math.abs(c.close[i] - c.open[i]);
    if (body > 0) ratios.push((c.high[i] - c.low[i]) / body);
  }
  return median(ratios);
}

/** Variance ratio var(sum of k consecutive x) / (k var(x)) over non-overlapping complete blocks. */
function varianceRatioOf(x: Float64Array, k: number): number {
  let s1 = 0;
  let s2 = 0;
  let n1 = 0;
  let sb = 0;
  let nb = 0;
  for (let start = 0; start + k <= x.length; start += k) {
    let sum = 0;
    let ok = true;
    for (let i = start; i < start + k; i++) {
      const v = x[i];
      if (!Number.isFinite(v)) {
        ok = false;
        break;
      }
      sum += v;
    }
    if (!ok) continue;
    for (let i = start; i < start + k; i++) {
      s1 += x[i];
      s2 += x[i] * x[i];
      n1++;
    }
    sb += sum * sum;
    nb++;
  }
  if (nb === 0) return NaN;
  const mean = s1 / n1;
  const variance = s2 / n1 - mean * mean;
  return (sb / nb - k * k * mean * mean) / (k * variance);
}

/** Options of `calibrateBaseProcess`. */
export interface CalibrationOptions {
  /** Symbol recorded in the parameters (default: the candles' symbol). */
  symbol?: string;
  /** Use candles with open time >= fromMs (default: all). */
  fromMs?: number;
  /** Use candles with open time < toMs (default: all). */
  toMs?: number;
  /** Months (counted back from the end) used for the seasonal profiles (default 24). */
  seasonalityMonths?: number;
  /** Months used for the close-to-open gap statistics (default 12). */
  microstructureMonths?: number;
  /**
   * Look for microstructure regimes in those months (`microstructureRegimes`: 30-day blocks split
   * by their mean gap beyond one tick; two kept when that differs threefold). Default false.
   */
  microstructureRegimes?: boolean;
  /** Indirect-inference iterations (default 20). */
  iterations?: number;
  /** Length of each simulated path in days (default: twice the real span, at least 1460). */
  simulationDays?: number;
  /** Seed of the simulations (default 1). */
  seed?: number;
  /** Price tick in quote currency (default 0.01). */
  tickSize?: number;
  /**
   * Rounds of the window-statistics stage (default 6; 0 skips it): each round re-fits the level
   * parameters (a few indirect-inference steps) and then runs one coordinate sweep of the shape
   * parameters (`SHAPE_PARAMETERS`) on the distance between the quartiles of the window
   * statistics of real and simulated candles.
   */
  windowRounds?: number;
  /** Length of each simulated path of the window-statistics stage in days (default 1460). */
  windowSimulationDays?: number;
  /** 15m bars between the ends of consecutive windows of that stage (default 128). */
  windowStrideBars?: number;
  /** Called after each iteration. */
  onIteration?: (iteration: number, total: number) => void;
  /**
   * Threads of the window-statistics stage, 1 or 2 (default 1): with 2, a worker thread simulates
   * the downward move of each shape parameter while this thread simulates the upward one. Every
   * simulation is a pure function of its parameters, so the result is the same byte for byte.
   */
  workers?: number;
}

/** Result of `calibrateBaseProcess`: parameters plus how well the final simulation matches. */
export interface CalibrationResult {
  /** The fitted parameters. */
  params: BaseProcessParams;
  /** Targets measured on the real candles. */
  real: CalibrationTargets;
  /** The same targets measured on a market simulated with `params`. */
  simulated: CalibrationTargets;
  /** Quartiles of the window statistics, real and simulated (absent when that stage is skipped). */
  realWindows?: WindowTargets;
  /** Quartiles of the window statistics of the simulated market. */
  simulatedWindows?: WindowTargets;
}

function seasonality(
  g: GridSeries,
  fromIndex: number,
): Pick<
  BaseProcessParams['seasonality'],
  'volIntraday' | 'volWeekday' | 'volumeIntraday' | 'volumeWeekday'
> {
  const n = g.logReturn.length;
  const day0 = Math.floor(g.startTimeMs / DAY_MS);
  const nDays = Math.ceil((n * g.stepMs) / DAY_MS) + 1;
  const dayAbs = new Float64Array(nDays);
  const dayLv = new Float64Array(nDays);
  const dayN = new Float64Array(nDays);
  const dayNv = new Float64Array(nDays);
  for (let i = fromIndex; i < n; i++) {
    const d = Math.floor((g.startTimeMs + i * g.stepMs) / DAY_MS) - day0;
    if (Number.isFinite(g.logReturn[i])) {
      dayAbs[d] += Math.abs(g.logReturn[i]);
      dayN[d]++;
    }
    if (g.volume[i] > 0) {
      dayLv[d] += Math.log(g.volume[i]);
      dayNv[d]++;
    }
  }
  // Weeks: 7-day blocks of the day index.
  const wAbs = new Float64Array(Math.ceil(nDays / 7) + 1);
  const wN = new Float64Array(wAbs.length);
  const wLv = new Float64Array(wAbs.length);
  const wNv = new Float64Array(wAbs.length);
  for (let d = 0; d < nDays; d++) {
    const w = Math.floor(d / 7);
    wAbs[w] += dayAbs[d];
    wN[w] += dayN[d];
    wLv[w] += dayLv[d];
    wNv[w] += dayNv[d];
  }
  const slotVol = new Float64Array(SLOTS);
  const slotN = new Float64Array(SLOTS);
  const slotLv = new Float64Array(SLOTS);
  const slotNv = new Float64Array(SLOTS);
  const wdVol = new Float64Array(7);
  const wdN = new Float64Array(7);
  const wdLv = new Float64Array(7);
  const wdNv = new Float64Array(7);
  for (let i = fromIndex; i < n; i++) {
    const t = g.startTimeMs + i * g.stepMs;
    const dayAbsIdx = Math.floor(t / DAY_MS);
    const d = dayAbsIdx - day0;
    const w = Math.floor(d / 7);
    const slot = Math.floor((t - dayAbsIdx * DAY_MS) / SLOT_MS);
    const wd = (dayAbsIdx + EPOCH_WEEKDAY) % 7;
    const r = g.logReturn[i];
    if (Number.isFinite(r) && dayN[d] >= 48 && dayAbs[d] > 0) {
      slotVol[slot] += Math.abs(r) / (dayAbs[d] / dayN[d]);
      slotN[slot]++;
    }
    if (Number.isFinite(r) && wN[w] >= 7 * 48 && wAbs[w] > 0) {
      wdVol[wd] += Math.abs(r) / (wAbs[w] / wN[w]);
      wdN[wd]++;
    }
    const v = g.volume[i];
    if (v > 0 && dayNv[d] >= 48) {
      slotLv[slot] += Math.log(v) - dayLv[d] / dayNv[d];
      slotNv[slot]++;
    }
    if (v > 0 && wNv[w] >= 7 * 48) {
      wdLv[wd] += Math.log(v) - wLv[w] / wNv[w];
      wdNv[wd]++;
    }
  }
  const rmsNormalize = (a: Float64Array, cnt: Float64Array): number[] => {
    const m = Array.from(a, (s, k) => (cnt[k] > 0 ? s / cnt[k] : 1));
    const rms = Math.sqrt(m.reduce((s, v) => s + v * v, 0) / m.length);
    return m.map((v) => round(v / rms, 5));
  };
  const centre = (a: Float64Array, cnt: Float64Array): number[] => {
    const m = Array.from(a, (s, k) => (cnt[k] > 0 ? s / cnt[k] : 0));
    const mean = m.reduce((s, v) => s + v, 0) / m.length;
    return m.map((v) => round(v - mean, 5));
  };
  return {
    volIntraday: rmsNormalize(slotVol, slotN),
    volWeekday: rmsNormalize(wdVol, wdN),
    volumeIntraday: centre(slotLv, slotNv),
    volumeWeekday: centre(wdLv, wdNv),
  };
}

function round(v: number, digits: number): number {
  return Number(v.toPrecision(digits));
}

/** Non-negative least squares min ||A x - b|| (x >= 0) by cyclic coordinate descent. */
function nnls(a: number[][], b: number[], x0: number[], iterations = 500): number[] {
  const m = a.length;
  const k = x0.length;
  const x = x0.slice();
  const res = b.map((bi, i) => bi - a[i].reduce((s, aij, j) => s + aij * x[j], 0));
  for (let it = 0; it < iterations; it++) {
    for (let j = 0; j < k; j++) {
      let num = 0;
      let den = 0;
      for (let i = 0; i < m; i++) {
        num += a[i][j] * res[i];
        den += a[i][j] * a[i][j];
      }
      if (den === 0) continue;
      const next = Math.max(0, x[j] + num / den);
      const delta = next - x[j];
      if (delta !== 0) {
        for (let i = 0; i < m; i++) res[i] -= a[i][j] * delta;
        x[j] = next;
      }
    }
  }
  return x;
}

/** Basis of exponential autocovariances exp(-lag / tau) at `CALIBRATION_LAGS` (15m bars). */
function expBasis(timescalesHours: number[]): number[][] {
  return CALIBRATION_LAGS.map((L) => timescalesHours.map((tau) => Math.exp(-(L * 0.25) / tau)));
}

/**
 * Moves component variances so that the simulated autocovariances at `CALIBRATION_LAGS` move
 * to the real ones (a Gauss–Newton step assuming unit response, constrained to variances >= 0).
 */
function updateComponents(
  comps: OuComponent[],
  realCov: number[],
  simCov: number[],
  floor: number,
): OuComponent[] {
  const taus = comps.map((c) => c.timescaleHours);
  const basis = expBasis(taus);
  const v0 = comps.map((c) => c.std * c.std);
  // Target: v such that B v = B v0 + (real - sim); weight lags by 1/(lag^0.25) to favour short
  // lags a little (where the estimates are precise).
  const w = CALIBRATION_LAGS.map((L) => 1 / Math.pow(L, 0.25));
  const target = realCov.map((rc, i) => {
    const bv = basis[i].reduce((s, bij, j) => s + bij * v0[j], 0);
    return (bv + (rc - simCov[i])) * w[i];
  });
  const wa = basis.map((row, i) => row.map((v) => v * w[i]));
  const v = nnls(wa, target, v0);
  // Half steps: the response of the autocovariances to the variances is below one (15m
  // aggregation, interaction with the other parts), and full steps oscillate.
  return comps.map((c, j) => ({
    timescaleHours: c.timescaleHours,
    std: round(Math.sqrt(Math.max(floor, 0.5 * (v0[j] + v[j]))), 5),
  }));
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function ratio(a: number, b: number, lo = 0.5, hi = 2): number {
  const q = a / b;
  return Number.isFinite(q) && q > 0 ? clamp(q, lo, hi) : 1;
}

/** Daily log volume on log price and log realized volatility: the price coefficient. */
function priceElasticity(g: GridSeries, tables: SeasonalTables): number {
  const { lv } = deseasonalized(g, tables);
  const daily = dailySeries(g);
  const day0 = daily.day0;
  const nD = daily.ret.length;
  const sumLv = new Float64Array(nD);
  const nLv = new Float64Array(nD);
  const lastPrice = new Float64Array(nD).fill(NaN);
  for (let i = 0; i < lv.length; i++) {
    const d = Math.floor((g.startTimeMs + i * g.stepMs) / DAY_MS) - day0;
    if (Number.isFinite(lv[i])) {
      sumLv[d] += lv[i];
      nLv[d]++;
    }
    if (Number.isFinite(g.close[i])) lastPrice[d] = g.close[i];
  }
  const rows: [number, number, number][] = [];
  for (let d = 0; d < nD; d++)
    if (nLv[d] >= 48 && daily.rv[d] > 0 && lastPrice[d] > 0)
      rows.push([Math.log(lastPrice[d]), Math.log(daily.rv[d]), sumLv[d] / nLv[d]]);
  // OLS with intercept on two regressors.
  const m = rows.length;
  if (m < 30) return 0;
  const mean = [0, 1, 2].map((k) => rows.reduce((s, r) => s + r[k], 0) / m);
  let s11 = 0;
  let s12 = 0;
  let s22 = 0;
  let s1y = 0;
  let s2y = 0;
  for (const r of rows) {
    const a = r[0] - mean[0];
    const b = r[1] - mean[1];
    const y = r[2] - mean[2];
    s11 += a * a;
    s12 += a * b;
    s22 += b * b;
    s1y += a * y;
    s2y += b * y;
  }
  const det = s11 * s22 - s12 * s12;
  if (!(det > 0)) return 0;
  return clamp((s22 * s1y - s12 * s2y) / det, -1.5, 0.5);
}

/** A neutral starting point for the indirect inference. */
function initialParams(
  symbol: string,
  referencePrice: number,
  tickSize: number,
): BaseProcessParams {
  return {
    version: 1,
    symbol,
    fittedOn: { source: '', from: '', to: '', bars: 0 },
    referencePrice,
    returns: {
      sigma15m: 0.004,
      tDof: 4,
      driftPerDay: 0,
      activityStd: 0.3,
      activityHalfLifeHours: 0.5,
      transientShare: 0.1,
      transientHalfLifeHours: 1,
      reversionStd: 0,
      reversionHalfLifeHours: 1,
    },
    volatility: {
      components: VOL_TIMESCALES.map((t) => ({ timescaleHours: t, std: 0.2 })),
      leverage: 0.02,
      feedback: 0.05,
      newsHalfLifeHours: 1,
    },
    seasonality: {
      volIntraday: new Array<number>(SLOTS).fill(1),
      volWeekday: new Array<number>(7).fill(1),
      volumeIntraday: new Array<number>(SLOTS).fill(0),
      volumeWeekday: new Array<number>(7).fill(0),
    },
    jumps: {
      ratePerDay: 0.1,
      sizeSigmas: 15,
      sizeDof: 3,
      downProb: 0.5,
      volBoost: 0.3,
      volumeBoost: 1,
      decayHours: 2,
    },
    regimes: {
      meanDurationDays: [12, 10, 10, 5],
      durationShape: 2,
      driftPerDay: [0, 0.006, -0.006, 0],
      volMultiplier: [0.85, 1, 1.05, 1.6],
      jumpMultiplier: [1, 1, 1, 1],
      meanReversionPerDay: [0.1, 0, 0, 0],
      transition: [
        [0, 0.4, 0.4, 0.2],
        [0.7, 0, 0.1, 0.2],
        [0.7, 0.1, 0, 0.2],
        [0.6, 0.2, 0.2, 0],
      ],
      initial: [0.5, 0.2, 0.2, 0.1],
      smoothingHours: 12,
    },
    volume: {
      logLevel15m: 5,
      volBeta: 0.8,
      volBetaFast: 0.8,
      activityBeta: 1,
      shockBeta: 0.3,
      shockMemoryBeta: 0,
      shockMemoryHalfLifeHours: 1,
      priceElasticity: 0,
      components: VOLUME_TIMESCALES.map((t) => ({ timescaleHours: t, std: 0.2 })),
      noiseStd: 0.3,
    },
    microstructure: {
      zeroGapProb: 0.4,
      oneTickGapProb: 0.3,
      gapSigmas: 0.02,
      rangeScale: 1,
      noWickProb: 0.03,
      spikeProb: 0.005,
      spikeSigmas: 1.2,
      extremeSpikeProb: 0.3,
      extremeLookbackHours: 4,
      spikeVolumeBeta: 0.15,
      tickSize,
    },
  };
}

/**
 * Close-to-open gap statistics of grid slots `fromIndex` to `toIndex` (exclusive; default the
 * end): P(open == previous close), P(one tick away) and the Laplace scale (in 5m sigmas) of the
 * other gaps.
 */
export function gapStats(
  g: GridSeries,
  fromIndex: number,
  tickSize: number,
  toIndex = g.close.length,
): { zeroGapProb: number; oneTickGapProb: number; gapSigmas: number } {
  const n = toIndex;
  const abs = new Float64Array(n);
  for (let i = 0; i < n; i++) abs[i] = Math.abs(g.logReturn[i]);
  const local = movingMeanExcludingCentre(abs, 96);
  let same = 0;
  let oneTick = 0;
  let pairs = 0;
  const scaled: number[] = [];
  for (let i = Math.max(1, fromIndex); i < n; i++) {
    const pc = g.close[i - 1];
    const o = g.open[i];
    if (!(Number.isFinite(pc) && Number.isFinite(o))) continue;
    pairs++;
    const ticks = tickSize > 0 ? Math.abs(o - pc) / tickSize : Infinity;
    if (o === pc) same++;
    else if (ticks < 1.5) oneTick++;
    else if (local[i] > 0) {
      // The local mean |r| of a 15m bar is ~0.8 sigma15m, and sigma5m = sigma15m / sqrt(3).
      const sigma5m = local[i] / 0.8 / Math.sqrt(3);
      scaled.push(Math.abs(Math.log(o / pc)) / sigma5m);
    }
  }
  return {
    zeroGapProb: pairs > 0 ? round(same / pairs, 4) : 0.4,
    oneTickGapProb: pairs > 0 ? round(oneTick / pairs, 4) : 0.3,
    gapSigmas: scaled.length > 0 ? round(median(scaled) / Math.LN2, 4) : 0.02,
  };
}

/** Days per block of `microstructureRegimes`. */
const REGIME_BLOCK_DAYS = 30;
/** Smallest ratio of the two groups' mean gap sizes that makes them separate regimes. */
const REGIME_MIN_GAP_RATIO = 3;
/** Smallest ratio of the two groups' shares of bar sides without a wick (wick regimes). */
const REGIME_MIN_WICKLESS_RATIO = 2;

/**
 * The two groups of positive block values (0 = lower) with the smallest within-group sum of
 * squares of their logs, when each holds two blocks or more and the groups' medians differ by at
 * least `minRatio`; else undefined.
 */
function splitBlocks(values: number[], minRatio: number): number[] | undefined {
  const logs = values.map((v) => Math.log(Math.max(v, 1e-12)));
  const sorted = [...logs].sort((x, y) => x - y);
  const ss = (v: number[]): number => {
    const m = v.reduce((a, x) => a + x, 0) / v.length;
    return v.reduce((a, x) => a + (x - m) * (x - m), 0);
  };
  let cut = 2;
  let best = Infinity;
  for (let k = 2; k <= sorted.length - 2; k++) {
    const w = ss(sorted.slice(0, k)) + ss(sorted.slice(k));
    if (w < best) {
      best = w;
      cut = k;
    }
  }
  const threshold = (sorted[cut - 1] + sorted[cut]) / 2;
  const group = logs.map((v) => (v > threshold ? 1 : 0));
  const medians = [0, 1].map((j) => median(values.filter((_, k) => group[k] === j)));
  const sizes = [0, 1].map((j) => group.filter((g) => g === j).length);
  return sizes.some((n) => n < 2) || !(medians[1] >= minRatio * medians[0]) ? undefined : group;
}

/**
 * Microstructure regimes of the real candles from `fromIndex` on: the range is cut into 30-day
 * blocks, each with its gap statistics (`gapStats`) and its share of bar sides without a wick.
 * Gap regimes first: the blocks are split in two by the log of their mean gap beyond one tick
 * (share of such gaps x Laplace scale; the split of the sorted values with the smallest
 * within-group sum of squares), kept when the groups' medians differ by at least
 * REGIME_MIN_GAP_RATIO. Else wick regimes: the same split of the blocks' wickless shares, kept
 * when those differ by at least REGIME_MIN_WICKLESS_RATIO (Binance BTC/USDT from 2023 Q2: up to
 * three times more bar sides without a wick). Each group of two blocks or more becomes a regime:
 * its mean gap probabilities, its gap scale and wickless share relative to `overall` and the
 * whole range, and its mean stay (block days x blocks / runs of consecutive blocks). Otherwise
 * undefined (one stationary microstructure).
 * @param overall the stationary gap statistics of the same range (`gapStats`); the regimes' gap
 *   scales are relative to its `gapSigmas`.
 */
export function microstructureRegimes(
  g: GridSeries,
  fromIndex: number,
  tickSize: number,
  overall: { gapSigmas: number },
): MicrostructureRegime[] | undefined {
  const per = Math.round((REGIME_BLOCK_DAYS * DAY_MS) / g.stepMs);
  const blocks: {
    gap: ReturnType<typeof gapStats>;
    wickless: number;
  }[] = [];
  for (let a = fromIndex; a + per / 2 <= g.close.length; a += per) {
    const b = Math.min(g.close.length, a + per);
    let zero = 0;
    let sides = 0;
    for (let i = a; i < b; i++) {
      const o = g.open[i];
      const c = g.close[i];
      if (!(Number.isFinite(o) && Number.isFinite(c))) continue;
      sides += 2;
      if (g.high[i] === Math.max(o, c)) zero++;
      if (g.low[i] === Math.min(o, c)) zero++;
    }
    if (sides > 0) blocks.push({ gap: gapStats(g, a, tickSize, b), wickless: zero / sides });
  }
  if (blocks.length < 4 || !(overall.gapSigmas > 0)) return undefined;
  // Mean size of a block's gaps beyond one tick (probability x Laplace scale): the regimes differ
  // in both (Binance BTC/USDT 2022: 2-5% of such gaps before July, over half after).
  const mass = blocks.map((x) => (1 - x.gap.zeroGapProb - x.gap.oneTickGapProb) * x.gap.gapSigmas);
  const group =
    splitBlocks(mass, REGIME_MIN_GAP_RATIO) ??
    splitBlocks(
      blocks.map((x) => x.wickless),
      REGIME_MIN_WICKLESS_RATIO,
    );
  if (group === undefined) return undefined;
  const members = [0, 1].map((j) => blocks.filter((_, k) => group[k] === j));
  const medianGap = members.map((m) => median(m.map((x) => x.gap.gapSigmas)));
  const wicklessAll = blocks.reduce((a, x) => a + x.wickless, 0) / blocks.length;
  const mean = (v: number[]): number => v.reduce((a, x) => a + x, 0) / v.length;
  return [0, 1].map((j) => {
    let runs = 0;
    for (let k = 0; k < group.length; k++) if (group[k] === j && group[k - 1] !== j) runs++;
    return {
      meanDays: round((REGIME_BLOCK_DAYS * members[j].length) / runs, 4),
      zeroGapProb: round(mean(members[j].map((x) => x.gap.zeroGapProb)), 4),
      oneTickGapProb: round(mean(members[j].map((x) => x.gap.oneTickGapProb)), 4),
      gapScale: round(medianGap[j] / overall.gapSigmas, 4),
      noWickScale:
        wicklessAll > 0 ? round(mean(members[j].map((x) => x.wickless)) / wicklessAll, 4) : 1,
    };
  });
}

/**
 * Regime parameters straight from the labelled real history, made symmetric between up and down
 * trends (so the default market has no built-in direction; `annualDrift` adds one): durations and
 * drifts of the trends are the averages of the up and down estimates, ranging drift is zero,
 * high-volatility drift is half its estimate, and the base drift cancels the stationary mean drift.
 * Drifts are shrunk by 0.6 because labels chosen on realized moves overstate them.
 */
function regimesFromLabels(p: BaseProcessParams, stats: RegimeLabelStats): void {
  const driftShrink = 0.6;
  const fin = (v: number, d: number): number => (Number.isFinite(v) ? v : d);
  const rg = p.regimes;
  const trendDays = (fin(stats.meanRunDays[1], 10) + fin(stats.meanRunDays[2], 10)) / 2;
  rg.meanDurationDays = [
    fin(stats.meanRunDays[0], 15),
    trendDays,
    trendDays,
    fin(stats.meanRunDays[3], 7),
  ].map((d) => round(clamp(d, 2, 90), 4));
  const trendDrift =
    (driftShrink *
      (Math.abs(fin(stats.meanReturn[1], 0)) + Math.abs(fin(stats.meanReturn[2], 0)))) /
    2;
  const highVolDrift = 0.5 * driftShrink * fin(stats.meanReturn[3], 0);
  rg.driftPerDay = [0, trendDrift, -trendDrift, highVolDrift].map((v) => round(v, 4));
  const t = stats.transition;
  const up = (t[0][1] + t[0][2]) / 2;
  const sym = (a: number, b: number): number => (a + b) / 2;
  rg.transition = [
    [0, up, up, t[0][3]],
    [sym(t[1][0], t[2][0]), 0, sym(t[1][2], t[2][1]), sym(t[1][3], t[2][3])],
    [sym(t[1][0], t[2][0]), sym(t[1][2], t[2][1]), 0, sym(t[1][3], t[2][3])],
    [t[3][0], sym(t[3][1], t[3][2]), sym(t[3][1], t[3][2]), 0],
  ].map((row, k) => {
    const s = row.reduce((a, b) => a + b, 0);
    return row.map((v, j) => (s > 0 ? round(v / s, 4) : j === k ? 0 : 1 / 3));
  });
  const trendShare = (stats.share[1] + stats.share[2]) / 2;
  rg.initial = [stats.share[0], trendShare, trendShare, stats.share[3]].map((v) => round(v, 4));
  rg.jumpMultiplier = stats.relativeJumps.map((v) =>
    round(Number.isFinite(v) ? clamp(v, 0.2, 5) : 1, 4),
  );
  let meanDrift = 0;
  for (let k = 0; k < REGIME_NAMES.length; k++) meanDrift += rg.initial[k] * rg.driftPerDay[k];
  p.returns.driftPerDay = round(-meanDrift, 4);
}

/**
 * Fits base-process parameters to real 15m candles (see the file comment for the method).
 * Deterministic for a given input and seed.
 * @throws {DataValidationError} when fewer than 90 days of candles fall in the range, or a real
 *   target cannot be measured on them.
 */
export async function calibrateBaseProcess(
  candles15m: Candles,
  options: CalibrationOptions = {},
): Promise<CalibrationResult> {
  if (candles15m.timeframe !== '15m')
    throw new DataValidationError({
      source: candles15m.symbol,
      field: 'timeframe',
      reason: `calibration needs 15m candles, got ${candles15m.timeframe}`,
    });
  const c = sliceByTime(candles15m, options.fromMs ?? -Infinity, options.toMs ?? Infinity);
  const bars = c.openTime.length;
  if (bars < MIN_CALIBRATION_DAYS * SLOTS)
    throw new DataValidationError({
      source: candles15m.symbol,
      reason: `calibration needs at least ${MIN_CALIBRATION_DAYS} days of 15m candles in the range (its longest autocovariance lag is ${CALIBRATION_LAGS[CALIBRATION_LAGS.length - 1] / SLOTS} days), got ${(bars / SLOTS).toFixed(1)} days (${bars} bars)`,
    });
  const g = toGrid(c);
  const n = g.close.length;
  const indexMonthsBack = (months: number): number =>
    Math.max(0, n - Math.round((months * 30.44 * DAY_MS) / g.stepMs));
  const referencePrice = c.close[bars - 1];
  const p = initialParams(
    options.symbol ?? candles15m.symbol,
    referencePrice,
    options.tickSize ?? 0.01,
  );
  p.seasonality = seasonality(g, indexMonthsBack(options.seasonalityMonths ?? 24));
  const microFrom = indexMonthsBack(options.microstructureMonths ?? 12);
  Object.assign(p.microstructure, gapStats(g, microFrom, p.microstructure.tickSize));
  if (options.microstructureRegimes === true) {
    const regimes = microstructureRegimes(
      g,
      microFrom,
      p.microstructure.tickSize,
      p.microstructure,
    );
    if (regimes !== undefined) p.microstructure.regimes = regimes;
  }
  const tables = seasonalTables(p);
  p.volume.priceElasticity = round(priceElasticity(g, tables), 4);
  const real = measureCalibrationTargets(c, tables, p.volume.priceElasticity, referencePrice);
  requireFiniteTargets(real, candles15m.symbol);
  regimesFromLabels(p, real.regimes);
  p.returns.sigma15m = real.medianAbs / 0.6;
  p.volume.logLevel15m = real.logVolumeMean;
  const iterations = options.iterations ?? 20;
  const simDays = options.simulationDays ?? Math.max(1460, 2 * Math.round(bars / SLOTS));
  for (const [key, days] of [
    ['simulationDays', simDays],
    ['windowSimulationDays', options.windowSimulationDays ?? 1460],
  ] as const)
    if (!(days >= MIN_CALIBRATION_DAYS))
      throw new ConfigError(
        key,
        `must be at least ${MIN_CALIBRATION_DAYS} days (the longest autocovariance lag is ${CALIBRATION_LAGS[CALIBRATION_LAGS.length - 1] / SLOTS} days), got ${days}`,
      );
  const seed = options.seed ?? 1;
  // Iterate, keeping the parameters whose simulation came closest to the real targets.
  let best = { loss: Infinity, params: structuredClone(p), sim: real };
  for (let it = 1; it <= iterations; it++) {
    const mkt = generateBaseMarket(p, { seed, days: simDays });
    const sim = measureCalibrationTargets(
      mkt.m15,
      tables,
      p.volume.priceElasticity,
      referencePrice,
    );
    const loss = calibrationLoss(real, sim);
    logger.debug({ iteration: it, loss }, 'calibration iteration');
    if (loss < best.loss) best = { loss, params: structuredClone(p), sim };
    if (it < iterations) updateParams(p, real, sim);
    options.onIteration?.(it, iterations);
  }
  Object.assign(p, best.params);
  let sim = best.sim;
  let realWindows: WindowTargets | undefined;
  let simWindows: WindowTargets | undefined;
  const rounds = options.windowRounds ?? 6;
  if (rounds > 0) {
    const stride = options.windowStrideBars ?? 128;
    realWindows = measureWindowTargets(
      { m15: c, h4: resample(c, '4h').candles, d1: resample(c, '1d').candles },
      stride,
    );
    const fit = await fitWindowStatistics(
      p,
      {
        real,
        realWindows,
        days: options.windowSimulationDays ?? 1460,
        stride,
        seed,
        tables,
        referencePrice,
      },
      {
        rounds,
        workers: options.workers ?? 1,
        onRound: (r) => options.onIteration?.(iterations + r, iterations + rounds),
      },
    );
    Object.assign(p, fit.params);
    sim = fit.sim;
    simWindows = fit.simWindows;
  }
  p.fittedOn = {
    source: candles15m.symbol,
    from: new Date(c.openTime[0]).toISOString().slice(0, 10),
    to: new Date(c.openTime[bars - 1]).toISOString().slice(0, 10),
    bars,
  };
  return {
    params: roundParams(p),
    real,
    simulated: sim,
    realWindows,
    simulatedWindows: simWindows,
  };
}

/**
 * Distance between real and simulated targets: squared differences, each scaled by a tolerance
 * of the size that matters (relative for levels, absolute for correlations).
 */
export function calibrationLoss(real: CalibrationTargets, sim: CalibrationTargets): number {
  const rel = (a: number, b: number, tol: number): number => (Math.log(a / b) / tol) ** 2;
  const abs = (a: number, b: number, tol: number): number => ((a - b) / tol) ** 2;
  const meanAbs = (a: number[], b: number[], tol: number): number =>
    a.reduce((s, v, i) => s + abs(v, b[i], tol), 0) / a.length;
  const terms = [
    rel(real.medianAbs, sim.medianAbs, 0.05),
    rel(real.hill, sim.hill, 0.05),
    meanAbs(real.logAbsCov, sim.logAbsCov, 0.02),
    abs(real.leverage, sim.leverage, 0.01),
    rel(real.rangeBody, sim.rangeBody, 0.05),
    rel(real.rangeBody4h, sim.rangeBody4h, 0.05),
    rel(real.zeroWick, sim.zeroWick, 0.1),
    abs(real.logVolumeMean, sim.logVolumeMean, 0.1),
    rel(real.logVolumeVar, sim.logVolumeVar, 0.1),
    meanAbs(real.logVolumeCov, sim.logVolumeCov, 0.03),
    abs(real.volumeStateCorr, sim.volumeStateCorr, 0.03),
    abs(real.volumeShockCorr, sim.volumeShockCorr, 0.03),
    abs(real.volumeFastCorr, sim.volumeFastCorr, 0.03),
    abs(real.volumeRangeCorr, sim.volumeRangeCorr, 0.03),
    meanAbs(real.varianceRatio, sim.varianceRatio, 0.02),
    abs(real.shortAbsAcf, sim.shortAbsAcf, 0.02),
  ];
  return terms.reduce((s, v) => s + (Number.isFinite(v) ? v : 100), 0);
}

/**
 * One indirect-inference step: moves each parameter group towards the real targets. With
 * `levelsOnly`, the shape parameters (`SHAPE_PARAMETERS`, fitted by the window-statistics stage)
 * are left alone.
 */
function updateParams(
  p: BaseProcessParams,
  real: CalibrationTargets,
  sim: CalibrationTargets,
  levelsOnly = false,
): void {
  p.returns.sigma15m *= ratio(real.medianAbs, sim.medianAbs);
  const comps = updateComponents(p.volatility.components, real.logAbsCov, sim.logAbsCov, 1e-4);
  // In the window stage the fast components are shape parameters: only the slow ones move here.
  p.volatility.components = comps.map((c, k) =>
    levelsOnly && c.timescaleHours <= FAST_SHAPE_HOURS ? p.volatility.components[k] : c,
  );
  // Jumps are rare (their rate is a shape parameter); their count beyond the t tails sets the t
  // degrees of freedom only through the Hill index.
  p.jumps.downProb = clamp(real.jumpDown, 0.3, 0.7);
  p.volume.logLevel15m += real.logVolumeMean - sim.logVolumeMean;
  if (!levelsOnly) {
    // Tail: a lower Hill index (heavier tail) needs fewer degrees of freedom.
    const nuMinus2 = (p.returns.tDof - 2) * Math.pow(ratio(real.hill, sim.hill, 0.7, 1.4), 3);
    p.returns.tDof = clamp(2 + nuMinus2, 2.3, 30);
    updateShapeParams(p, real, sim);
    updateVolumeComponents(p, real, sim);
  }
  updateRegimeLevels(p, real, sim);
}

/** The indirect-inference steps of the shape parameters (the first stage only). */
function updateShapeParams(
  p: BaseProcessParams,
  real: CalibrationTargets,
  sim: CalibrationTargets,
): void {
  p.volatility.leverage = clamp(p.volatility.leverage + (sim.leverage - real.leverage), 0, 0.3);
  p.volatility.feedback = clamp(
    p.volatility.feedback + 0.3 * (real.shortAbsAcf - sim.shortAbsAcf),
    0,
    0.5,
  );
  // Overreaction: a variance ratio above the real one at 16 bars needs a larger transient share.
  p.returns.transientShare = clamp(
    p.returns.transientShare + 0.5 * (sim.varianceRatio[1] - real.varianceRatio[1]),
    0,
    0.8,
  );

  p.microstructure.rangeScale = clamp(
    p.microstructure.rangeScale * Math.pow(ratio(real.rangeBody, sim.rangeBody), 1.5),
    0.3,
    3,
  );
  p.microstructure.spikeSigmas = clamp(
    p.microstructure.spikeSigmas * Math.pow(ratio(real.rangeBody4h, sim.rangeBody4h), 3),
    0.05,
    20,
  );
  p.microstructure.noWickProb = clamp(
    p.microstructure.noWickProb * ratio(real.zeroWick, sim.zeroWick, 0.3, 3),
    0.001,
    0.5,
  );
  p.volume.volBeta = clamp(
    p.volume.volBeta * ratio(real.volumeStateCorr, sim.volumeStateCorr),
    0.05,
    3,
  );
  p.volume.volBetaFast = clamp(
    p.volume.volBetaFast * ratio(real.volumeFastCorr, sim.volumeFastCorr),
    0.05,
    4,
  );
  p.volume.activityBeta = clamp(
    p.volume.activityBeta * ratio(real.volumeRangeCorr, sim.volumeRangeCorr),
    0.01,
    6,
  );
  p.volume.shockBeta = clamp(
    p.volume.shockBeta * ratio(real.volumeShockCorr, sim.volumeShockCorr),
    0.01,
    2,
  );
}

/** Volume persistent components and noise towards the real log-volume autocovariances. */
function updateVolumeComponents(
  p: BaseProcessParams,
  real: CalibrationTargets,
  sim: CalibrationTargets,
): void {
  const before = p.volume.components.reduce((s, c) => s + c.std * c.std, 0);
  p.volume.components = updateComponents(
    p.volume.components,
    real.logVolumeCov,
    sim.logVolumeCov,
    1e-4,
  );
  const after = p.volume.components.reduce((s, c) => s + c.std * c.std, 0);
  const noiseVar =
    p.volume.noiseStd * p.volume.noiseStd +
    (real.logVolumeVar - sim.logVolumeVar) -
    (after - before);
  p.volume.noiseStd = Math.sqrt(Math.max(0.005, noiseVar));
}

/** Regime volatility levels towards the real ones (relative levels only). */
function updateRegimeLevels(
  p: BaseProcessParams,
  real: CalibrationTargets,
  sim: CalibrationTargets,
): void {
  // Regime volatility levels, matched through the same heuristic labeller on both sides.
  const rg = p.regimes;
  for (let k = 0; k < REGIME_NAMES.length; k++)
    rg.volMultiplier[k] = clamp(
      rg.volMultiplier[k] *
        Math.pow(ratio(real.regimes.relativeVol[k], sim.regimes.relativeVol[k]), 0.7),
      0.3,
      4,
    );
  // Up and down trends share one volatility level (the default market has no direction).
  const trendVol = Math.sqrt(rg.volMultiplier[1] * rg.volMultiplier[2]);
  rg.volMultiplier[1] = trendVol;
  rg.volMultiplier[2] = trendVol;
  // The regimes carry relative levels only: their share-weighted log multiplier is zero.
  let logMean = 0;
  for (let k = 0; k < REGIME_NAMES.length; k++)
    logMean += rg.initial[k] * Math.log(rg.volMultiplier[k]);
  for (let k = 0; k < REGIME_NAMES.length; k++) rg.volMultiplier[k] /= Math.exp(logMean);
}

// ---------------------------------------------------------------------------------------------
// Window-statistics stage: the shape parameters are fitted so that the window statistics of the
// realism discriminator (on the calibration range only) have the same quartiles in simulated
// and real candles.

/** Quartiles of each window statistic over the windows of a market. */
export interface WindowTargets {
  /** Statistic names, in order (`windowFeatureNames`). */
  names: string[];
  /** First quartile of each statistic. */
  q25: number[];
  /** Median of each statistic. */
  q50: number[];
  /** Third quartile of each statistic. */
  q75: number[];
  /** Windows measured. */
  windows: number;
}

/**
 * Quartiles of the window statistics of the realism discriminator (`extractWindowFeatures`)
 * over every window of `market` whose ends are `strideBars` 15m bars apart.
 */
export function measureWindowTargets(market: MarketSeries, strideBars = 128): WindowTargets {
  const w = marketWindows(market, { strideBars });
  const cols = w.names.length;
  const col = new Float64Array(w.rows);
  const out: WindowTargets = { names: w.names, q25: [], q50: [], q75: [], windows: w.rows };
  for (let j = 0; j < cols; j++) {
    for (let i = 0; i < w.rows; i++) col[i] = w.x[i * cols + j];
    const sorted = sortedFinite(col);
    out.q25.push(quantileSorted(sorted, 0.25));
    out.q50.push(quantileSorted(sorted, 0.5));
    out.q75.push(quantileSorted(sorted, 0.75));
  }
  return out;
}

/**
 * Distance between the window statistics of real and simulated candles: for each statistic with
 * a real interquartile range, the squared differences of the median and (half weight) of the
 * quartiles, in units of that range, each capped at 25; summed over statistics.
 */
export function windowLoss(real: WindowTargets, sim: WindowTargets): number {
  let s = 0;
  for (let j = 0; j < real.names.length; j++) {
    const iqr = real.q75[j] - real.q25[j];
    if (!(iqr > 1e-9)) continue;
    const d = (a: number, b: number): number => {
      const v = ((a - b) / iqr) ** 2;
      return Number.isFinite(v) ? Math.min(v, 25) : 25;
    };
    s +=
      d(sim.q50[j], real.q50[j]) + 0.5 * (d(sim.q25[j], real.q25[j]) + d(sim.q75[j], real.q75[j]));
  }
  return s;
}

/**
 * Pseudo-path of the drift of the trend regimes: sets `regimes.driftPerDay` to [0, +x, -x, h]
 * (h, the high-volatility drift, unchanged) and the base drift so that the stationary mean drift
 * stays zero.
 */
const TREND_DRIFT = 'regimes.trendDrift';

/** A shape parameter of the window-statistics stage: its key path, bounds and search step. */
export interface ShapeParameter {
  /** Dotted key path in `BaseProcessParams`, e.g. `volume.shockBeta`. */
  path: string;
  /** Lower bound of the value. */
  lo: number;
  /** Upper bound of the value. */
  hi: number;
  /** Initial step: multiplicative (log units) when `log`, else additive. */
  step: number;
  /** Search in log space (multiplicative steps) instead of additive ones. */
  log: boolean;
}

/** The parameters fitted by the window-statistics stage (all others are levels or measured). */
export const SHAPE_PARAMETERS: readonly ShapeParameter[] = Object.freeze([
  { path: 'returns.tDof', lo: 2.3, hi: 30, step: 0.15, log: true },
  { path: TREND_DRIFT, lo: 0, hi: 0.05, step: 0.001, log: false },
  { path: 'returns.activityStd', lo: 0, hi: 1.2, step: 0.1, log: false },
  { path: 'returns.activityHalfLifeHours', lo: 0.1, hi: 6, step: 0.4, log: true },
  { path: 'returns.transientShare', lo: 0, hi: 0.8, step: 0.05, log: false },
  { path: 'returns.transientHalfLifeHours', lo: 0.25, hi: 12, step: 0.4, log: true },
  { path: 'returns.reversionStd', lo: 0, hi: 1, step: 0.05, log: false },
  { path: 'returns.reversionHalfLifeHours', lo: 0.1, hi: 12, step: 0.4, log: true },
  { path: 'volatility.leverage', lo: 0, hi: 0.3, step: 0.02, log: false },
  { path: 'volatility.feedback', lo: 0, hi: 0.6, step: 0.03, log: false },
  { path: 'volatility.newsHalfLifeHours', lo: 0.25, hi: 48, step: 0.5, log: true },
  // The fast log-volatility components (timescales up to FAST_SHAPE_HOURS; the slower ones are
  // levels, fitted to the autocovariances of log |r| over days to months).
  ...VOL_TIMESCALES.flatMap((t, k) =>
    t <= FAST_SHAPE_HOURS
      ? [{ path: `volatility.components.${k}.std`, lo: 0.01, hi: 1, step: 0.05, log: false }]
      : [],
  ),
  { path: 'jumps.ratePerDay', lo: 0.005, hi: 1, step: 0.4, log: true },
  { path: 'jumps.volBoost', lo: 0, hi: 2, step: 0.1, log: false },
  { path: 'jumps.volumeBoost', lo: 0, hi: 3, step: 0.2, log: false },
  { path: 'jumps.decayHours', lo: 0.25, hi: 24, step: 0.4, log: true },
  { path: 'microstructure.rangeScale', lo: 0.5, hi: 2, step: 0.05, log: true },
  { path: 'microstructure.spikeProb', lo: 0, hi: 0.2, step: 0.01, log: false },
  { path: 'microstructure.spikeSigmas', lo: 0.05, hi: 10, step: 0.3, log: true },
  { path: 'microstructure.extremeSpikeProb', lo: 0, hi: 0.45, step: 0.05, log: false },
  { path: 'microstructure.extremeLookbackHours', lo: 0.5, hi: 24, step: 0.4, log: true },
  { path: 'microstructure.noWickProb', lo: 0.001, hi: 0.5, step: 0.2, log: true },
  { path: 'microstructure.spikeVolumeBeta', lo: 0, hi: 1, step: 0.05, log: false },
  { path: 'volume.volBeta', lo: 0.05, hi: 3, step: 0.2, log: true },
  { path: 'volume.volBetaFast', lo: 0.05, hi: 4, step: 0.2, log: true },
  { path: 'volume.activityBeta', lo: 0.01, hi: 6, step: 0.2, log: true },
  { path: 'volume.shockBeta', lo: 0.01, hi: 2, step: 0.2, log: true },
  { path: 'volume.shockMemoryBeta', lo: 0, hi: 10, step: 0.5, log: false },
  { path: 'volume.shockMemoryHalfLifeHours', lo: 0.1, hi: 12, step: 0.4, log: true },
  ...VOLUME_TIMESCALES.map((_, k) => ({
    path: `volume.components.${k}.std`,
    lo: 0.01,
    hi: 1.5,
    step: 0.05,
    log: false,
  })),
  { path: 'volume.noiseStd', lo: 0.05, hi: 1.5, step: 0.05, log: false },
]);

/** The object holding the last key of a dotted path (array indices allowed), and that key. */
function shapeSlot(p: BaseProcessParams, path: string): [Record<string, unknown>, string] {
  const keys = path.split('.');
  let obj = p as unknown as Record<string, unknown>;
  for (let i = 0; i < keys.length - 1; i++) obj = obj[keys[i]] as Record<string, unknown>;
  return [obj, keys[keys.length - 1]];
}

function shapeGet(p: BaseProcessParams, path: string): number {
  if (path === TREND_DRIFT) return p.regimes.driftPerDay[1];
  const [obj, key] = shapeSlot(p, path);
  const v = obj[key];
  return typeof v === 'number' ? v : 0;
}

function shapeSet(p: BaseProcessParams, path: string, value: number): void {
  if (path === TREND_DRIFT) {
    const rg = p.regimes;
    rg.driftPerDay = [0, value, -value, rg.driftPerDay[3]];
    let meanDrift = 0;
    for (let k = 0; k < REGIME_NAMES.length; k++) meanDrift += rg.initial[k] * rg.driftPerDay[k];
    p.returns.driftPerDay = round(-meanDrift, 4);
    return;
  }
  const [obj, key] = shapeSlot(p, path);
  obj[key] = value;
}

/**
 * Weight of `calibrationLoss` beside `windowLoss` in the window-statistics stage: the window
 * statistics lead there; the long-range targets (autocovariances over weeks, volume level,
 * regimes) keep the levels in place.
 */
const TARGETS_WEIGHT = 0.3;

/**
 * What one simulation of the window-statistics stage needs besides the parameters (plain data:
 * it is sent to the helper thread).
 */
export interface WindowFitSetup {
  /** Real calibration targets. */
  real: CalibrationTargets;
  /** Quartiles of the real window statistics. */
  realWindows: WindowTargets;
  /** Simulated days. */
  days: number;
  /** 15m bars between window ends. */
  stride: number;
  /** Seed of every simulation (common random numbers). */
  seed: number;
  /** Seasonal tables of the real range. */
  tables: SeasonalTables;
  /** Reference price of the volume elasticity. */
  referencePrice: number;
}

interface WindowFitOptions {
  rounds: number;
  workers: number;
  onRound: (round: number) => void;
}

/** A simulation of the window-statistics stage and its loss. */
export interface WindowFitState {
  /** The parameters simulated. */
  params: BaseProcessParams;
  /** TARGETS_WEIGHT x calibration loss + window loss. */
  loss: number;
  /** Calibration targets of the simulation. */
  sim: CalibrationTargets;
  /** Quartiles of the simulation's window statistics. */
  simWindows: WindowTargets;
}

/**
 * Simulates `params` with the setup's seed and measures its loss: the one evaluation of the
 * window-statistics stage, in this thread or in the helper thread (same code, same bytes).
 */
export function evaluateWindowFit(params: BaseProcessParams, o: WindowFitSetup): WindowFitState {
  const mkt = generateBaseMarket(params, { seed: o.seed, days: o.days });
  const sim = measureCalibrationTargets(
    mkt.m15,
    o.tables,
    params.volume.priceElasticity,
    o.referencePrice,
  );
  const simWindows = measureWindowTargets(mkt, o.stride);
  const loss =
    TARGETS_WEIGHT * calibrationLoss(o.real, sim) + windowLoss(o.realWindows, simWindows);
  return { params, loss, sim, simWindows };
}

/** A worker thread that runs `evaluateWindowFit` on the parameters it is sent. */
class WindowFitHelper {
  private readonly worker: Worker;
  private readonly waiting = new Map<
    number,
    { resolve: (s: WindowFitState) => void; reject: (e: unknown) => void }
  >();
  private next = 0;

  constructor(setup: WindowFitSetup) {
    // From the TypeScript sources (tests, tsx) the worker registers tsx's loader first.
    const ts = import.meta.url.endsWith('.ts');
    const file = new URL(
      ts ? './calibration-worker.ts' : './calibration-worker.js',
      import.meta.url,
    );
    const boot = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(file.href)}); });`;
    this.worker = ts
      ? new Worker(boot, { eval: true, workerData: setup })
      : new Worker(file, { workerData: setup });
    this.worker.on('message', (msg: { id: number; state?: WindowFitState; error?: string }) => {
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (msg.state !== undefined) w?.resolve(msg.state);
      else w?.reject(new Error(msg.error ?? 'calibration worker failed'));
    });
    this.worker.on('error', (err) => {
      for (const [, w] of this.waiting) w.reject(err);
      this.waiting.clear();
    });
  }

  evaluate(params: BaseProcessParams): Promise<WindowFitState> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, params });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/**
 * The window-statistics stage: alternates a few indirect-inference steps of the level
 * parameters with one coordinate sweep over `SHAPE_PARAMETERS` (each moved up or down by its
 * step; a move is kept when it lowers calibrationLoss + windowLoss; steps of parameters that did
 * not move shrink). Every simulation uses the same seed (common random numbers), so the loss is
 * a deterministic function of the parameters; with two workers the downward move is simulated in
 * a helper thread beside the upward one, and the same moves are kept.
 */
async function fitWindowStatistics(
  start: BaseProcessParams,
  setup: WindowFitSetup,
  o: WindowFitOptions,
): Promise<WindowFitState> {
  const helper = o.workers > 1 ? new WindowFitHelper(setup) : undefined;
  try {
    return await sweepWindowStatistics(start, setup, o, helper);
  } finally {
    await helper?.close();
  }
}

async function sweepWindowStatistics(
  start: BaseProcessParams,
  setup: WindowFitSetup,
  o: WindowFitOptions,
  helper: WindowFitHelper | undefined,
): Promise<WindowFitState> {
  const evaluate = (params: BaseProcessParams): WindowFitState => evaluateWindowFit(params, setup);
  let cur = evaluate(structuredClone(start));
  const steps = SHAPE_PARAMETERS.map((s) => s.step);
  for (let round = 1; round <= o.rounds; round++) {
    for (let k = 0; k < 3; k++) {
      const next = structuredClone(cur.params);
      updateParams(next, setup.real, cur.sim, true);
      const e = evaluate(next);
      if (e.loss < cur.loss) cur = e;
    }
    for (let k = 0; k < SHAPE_PARAMETERS.length; k++) {
      const sp = SHAPE_PARAMETERS[k];
      const x0 = shapeGet(cur.params, sp.path);
      // The up and down moves (a move the bounds cancel is skipped); with a helper thread both
      // are simulated at once, else the down move only when the up move did not help.
      const moves: { params: BaseProcessParams; dir: number }[] = [];
      for (const dir of [1, -1]) {
        const x = clamp(
          sp.log ? Math.max(x0, sp.lo) * Math.exp(dir * steps[k]) : x0 + dir * steps[k],
          sp.lo,
          sp.hi,
        );
        if (x === x0) continue;
        const next = structuredClone(cur.params);
        shapeSet(next, sp.path, round5(x));
        moves.push({ params: next, dir });
      }
      const ahead =
        helper !== undefined && moves.length === 2 ? helper.evaluate(moves[1].params) : undefined;
      let moved = false;
      for (let m = 0; m < moves.length && !moved; m++) {
        const { params, dir } = moves[m];
        const e = m === 1 && ahead !== undefined ? await ahead : evaluate(params);
        if (!(e.loss < cur.loss)) continue;
        moved = true;
        cur = e;
        // Keep going that way with doubled steps while it helps (at most 3 more moves).
        let step = steps[k];
        for (let extra = 0; extra < 3; extra++) {
          step *= 2;
          const xi = shapeGet(cur.params, sp.path);
          const x2 = clamp(
            sp.log ? Math.max(xi, sp.lo) * Math.exp(dir * step) : xi + dir * step,
            sp.lo,
            sp.hi,
          );
          if (x2 === xi) break;
          const further = structuredClone(cur.params);
          shapeSet(further, sp.path, round5(x2));
          const e2 = evaluate(further);
          if (!(e2.loss < cur.loss)) break;
          cur = e2;
        }
        steps[k] *= 1.2;
      }
      // A down move simulated ahead but not needed is awaited all the same (its thread is free).
      if (ahead !== undefined && moved) await ahead;
      if (!moved) steps[k] *= 0.6;
    }
    logger.debug({ round, loss: cur.loss }, 'window-statistics round');
    o.onRound(round);
  }
  return cur;
}

function round5(v: number): number {
  return Number(v.toPrecision(5));
}

/** Rounds every number but the reference price to 5 significant digits (readable JSON). */
function roundParams(p: BaseProcessParams): BaseProcessParams {
  return JSON.parse(
    JSON.stringify(p, (k, v: unknown) =>
      typeof v === 'number' && k !== 'referencePrice' ? round(v, 5) : v,
    ),
  ) as BaseProcessParams;
}
