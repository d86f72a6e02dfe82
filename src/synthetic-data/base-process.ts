// The realistic stochastic base of every synthetic market: a fine-step (5m or 1m) log-price path
// with Student-t shocks, multi-scale (long-memory) stochastic volatility with a leverage term,
// transient overreaction and liquidity noise, UTC intraday and weekday seasonality, jumps that
// excite volatility and volume, regime changes (ranging, trending up/down, high volatility) and
// volume coupled to volatility and to the memory of recent moves; optionally started at a given
// price and volatility; turned into
// candles whose highs and lows come from the Brownian bridge inside each fine step plus stop-run
// spikes where a close breaks the recent high or low, then
// aggregated exactly (with the one `resample`) to 15m, 4h and 1d, and written in the layout of
// the real data folder. It never reads real candles (calibration.ts turns those into parameters) and never uses an
// unseeded random number: every stream is forked from one seed.
//
// How the patterns code conditions the base on waypoints (issue 8):
//   const path = simulateBasePath(params, { seed, startTimeMs, steps });   // fine-step series
//   const logReturn = conditionOnWaypoints(path, [{ step: 400, logPrice: Math.log(52_000) }, ...]);
//   const volume = path.volume.map(...)                                     // reshape volume freely
//   const fine = buildCandlesFromPath({ ...path, logReturn, volume }, params, new Rng(seed2));
//   const { m15, h4, d1 } = aggregateFineCandles(fine);
// `conditionOnWaypoints` adds to each step a share of the missing move proportional to that
// step's variance sigma[i]^2 (the conditional mean of a bridge with time-varying volatility), so
// between waypoints the path keeps its own heavy-tailed shocks and volatility clustering.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataValidationError } from '../errors.js';
import {
  makeCandles,
  TIMEFRAME_MS,
  validateCandles,
  type Candles,
  type Timeframe,
} from '../data-processing/candles.js';
import { resample } from '../data-processing/resample.js';
import { RollingMax, RollingMin } from '../data-processing/indicators/rolling.js';
import { Rng } from '../utils/random.js';
import { writeFileAtomicSync } from '../utils/fs.js';

/** Fine step at which the base process is simulated. */
export type FineTimeframe = '1m' | '5m';

/** Names of the regimes, in the order of `RegimeParams` arrays and of `BasePath.regime` codes. */
export const REGIME_NAMES = ['ranging', 'trendUp', 'trendDown', 'highVol'] as const;

/** A regime name. */
export type RegimeName = (typeof REGIME_NAMES)[number];

/** One component of a multi-scale Ornstein–Uhlenbeck process (of log-volatility or log-volume). */
export interface OuComponent {
  /** e-folding time of the component's autocorrelation, in hours. */
  timescaleHours: number;
  /** Stationary standard deviation of the component (natural-log units). */
  std: number;
}

/**
 * Parameters of the base process (what `ctm synth calibrate` fits and ships as JSON). Units are
 * per 15m bar, per hour or per day, so the same parameters drive a 5m or a 1m fine step.
 */
export interface BaseProcessParams {
  /** Format version of this object. */
  version: 1;
  /** Symbol the parameters describe, ccxt unified (`BTC/USDT`). */
  symbol: string;
  /** Where the numbers came from (informational). */
  fittedOn: { source: string; from: string; to: string; bars: number };
  /** Last close of the calibration data (quote currency); default initial price. */
  referencePrice: number;
  /**
   * Shocks of the log price: scale, tails, drift, activity bursts, overreaction and liquidity
   * noise.
   */
  returns: {
    /** Root-mean-square 15m log return at neutral season, regime and volatility state. */
    sigma15m: number;
    /** Degrees of freedom of the Student-t shocks of one fine step (> 2). */
    tDof: number;
    /** Drift of the log price per day added in every regime. */
    driftPerDay: number;
    /**
     * Std of the log activity a (trading intensity, bursts): an AR(1) with right-skewed
     * (exponential) innovations and half-life `activityHalfLifeHours`; the step's volatility is
     * scaled by exp(a) (renormalised) and its volume by exp(volume.activityBeta * a).
     */
    activityStd: number;
    activityHalfLifeHours: number;
    /**
     * Overreaction: a share of each shock is transient and decays with `transientHalfLifeHours`
     * (negative return autocorrelation at intraday lags, wider ranges than bodies on 4h bars).
     */
    transientShare: number;
    transientHalfLifeHours: number;
    /**
     * Liquidity noise: an Ornstein–Uhlenbeck deviation of the traded price from the efficient
     * one, with its own shocks of `reversionStd` times the step's volatility per step and
     * half-life `reversionHalfLifeHours` (prices wander and come back within hours). Optional
     * (none when absent or 0).
     */
    reversionStd?: number;
    reversionHalfLifeHours?: number;
  };
  /** Stochastic log-volatility: OU components plus the news component (leverage and feedback). */
  volatility: {
    /** Components whose sum is the stochastic log-volatility. */
    components: OuComponent[];
    /**
     * Leverage: a step's shock z moves the news component of log-volatility by -leverage * z.
     * In [0, 1).
     */
    leverage: number;
    /**
     * Feedback: a step's (min(z^2, 25) - 1) / 2 moves the news component of log-volatility by this
     * much (large moves excite volatility, typical ones barely change it).
     */
    feedback: number;
    /** Half-life of the news component (EGARCH-like response to the last shocks), in hours. */
    newsHalfLifeHours: number;
  };
  /** UTC intraday and weekday profiles of volatility and volume. */
  seasonality: {
    /** Volatility multiplier per 15-minute slot of the UTC day (96 values, mean square 1). */
    volIntraday: number[];
    /** Volatility multiplier per UTC weekday, Sunday first (7 values, mean square 1). */
    volWeekday: number[];
    /** Log-volume offset per 15-minute slot of the UTC day (96 values, mean 0). */
    volumeIntraday: number[];
    /** Log-volume offset per UTC weekday, Sunday first (7 values, mean 0). */
    volumeWeekday: number[];
  };
  /** Jump rate, size distribution and the volatility and volume excitation they cause. */
  jumps: {
    /** Expected jumps per day at neutral regime. */
    ratePerDay: number;
    /** Jump size scale in units of the current fine-step volatility. */
    sizeSigmas: number;
    /** Degrees of freedom of the Student-t jump size (heavier tail for lower values). */
    sizeDof: number;
    /** Probability that a jump is downward. */
    downProb: number;
    /** Log-volatility added by a jump (decays with `decayHours`). */
    volBoost: number;
    /** Log-volume added in the step of a jump (decays with `decayHours`). */
    volumeBoost: number;
    /** e-folding time of the post-jump volatility and volume excitation, in hours. */
    decayHours: number;
  };
  /** Regimes (order of `REGIME_NAMES`): durations, drifts, multipliers and transitions. */
  regimes: {
    /** Mean duration of each regime in days (order of `REGIME_NAMES`). */
    meanDurationDays: number[];
    /** Gamma shape of the regime durations (1 = exponential; larger = more regular). */
    durationShape: number;
    /** Extra log-price drift per day in each regime. */
    driftPerDay: number[];
    /** Volatility multiplier of each regime. */
    volMultiplier: number[];
    /** Jump-rate multiplier of each regime. */
    jumpMultiplier: number[];
    /** Mean-reversion speed of the log price towards the regime's opening level, per day. */
    meanReversionPerDay: number[];
    /** Row-stochastic transition probabilities between regimes (diagonal ignored). */
    transition: number[][];
    /** Probability of each regime at the start of a path. */
    initial: number[];
    /** e-folding time over which the volatility level follows a regime change, in hours. */
    smoothingHours: number;
  };
  /**
   * Log volume: level, elasticities to volatility, activity, shocks and price, and its own noise.
   */
  volume: {
    /** Mean log volume (base units) of a 15m bar at `referencePrice`, neutral season and state. */
    logLevel15m: number;
    /** Elasticity of log volume to the slow log-volatility (components slower than 8h, regime, excitation). */
    volBeta: number;
    /** Elasticity of log volume to the fast log-volatility (components of 8h and faster). */
    volBetaFast: number;
    /** Elasticity of log volume to the step's log activity (see `returns.activityStd`). */
    activityBeta: number;
    /** Elasticity of log volume to the step's absolute standardized shock |z| - E|z|. */
    shockBeta: number;
    /**
     * Elasticity of log volume to the memory of past absolute shocks (an exponentially weighted
     * sum of |z| - E|z| with half-life `shockMemoryHalfLifeHours`, normalised to unit weight):
     * trading stays busy after a large move. Optional (0 when absent).
     */
    shockMemoryBeta?: number;
    /** Half-life of that memory in hours (default 1). */
    shockMemoryHalfLifeHours?: number;
    /** d log(volume) / d log(price): base volume falls as price rises when < 0. */
    priceElasticity: number;
    /** Persistent components of log volume independent of volatility. */
    components: OuComponent[];
    /** Std of the i.i.d. log-volume noise per fine step. */
    noiseStd: number;
  };
  /** Candle microstructure: open gaps, wicks, spikes and the price tick. */
  microstructure: {
    /** Probability that a bar opens exactly at the previous close. */
    zeroGapProb: number;
    /** Probability that a bar opens one tick above or below the previous close (the spread). */
    oneTickGapProb: number;
    /** Laplace scale of any other close-to-open gap, in units of the fine-step volatility. */
    gapSigmas: number;
    /** Multiplier of the fine-step volatility used for the intrabar Brownian-bridge extremes. */
    rangeScale: number;
    /** Probability that a fine step has no wick on a given side (its extreme is at open or close). */
    noWickProb: number;
    /** Probability that a wick of a fine step away from a recent extreme carries an extra spike. */
    spikeProb: number;
    /** Mean size of a spike in units of the fine-step volatility (exponentially distributed). */
    spikeSigmas: number;
    /**
     * Probability of a spike on the side of a fine step whose close is a new high (or low) of the
     * last `extremeLookbackHours`, instead of `spikeProb` there: stop orders rest beyond recent
     * extremes, so the bars that break them overshoot and leave a wick. Optional, default
     * `spikeProb` (spikes anywhere alike).
     */
    extremeSpikeProb?: number;
    /** Look-back of those highs and lows in hours (default 4). */
    extremeLookbackHours?: number;
    /** Log volume added per fine-step sigma of spike (spikes trade). */
    spikeVolumeBeta: number;
    /** Price tick in quote currency (0 = no rounding). */
    tickSize: number;
    /**
     * Microstructure regimes (optional; none = one stationary microstructure): exchanges change
     * their matching, fees and tick handling, and with them the close-to-open gaps and the share
     * of bars without a wick, for months at a time (Binance BTC/USDT 2022: gaps twentyfold
     * smaller from March to June than in the zero-fee period from July). With two or more
     * regimes, a hidden chain moves between them (a switch per fine step with probability
     * step / meanDays, to one of the other regimes at random, so a regime holds a share of time
     * proportional to its meanDays, and the first regime is drawn with that share); each regime
     * sets the gap probabilities and scales `gapSigmas` and `noWickProb`.
     */
    regimes?: MicrostructureRegime[];
  };
}

/** One microstructure regime of `BaseProcessParams.microstructure.regimes`. */
export interface MicrostructureRegime {
  /** Mean duration of a stay in the regime, in days. */
  meanDays: number;
  /** Probability that a bar opens exactly at the previous close, in this regime. */
  zeroGapProb: number;
  /** Probability that a bar opens one tick away from the previous close, in this regime. */
  oneTickGapProb: number;
  /** Multiplier of `microstructure.gapSigmas` (the Laplace scale of other gaps). */
  gapScale: number;
  /** Multiplier of `microstructure.noWickProb` (capped so that a side keeps some wick chance). */
  noWickScale: number;
}

/** Look-back of the stop-run spikes' highs and lows when a calibration does not set it (hours). */
const DEFAULT_EXTREME_LOOKBACK_HOURS = 4;

/** Options of `simulateBasePath` and `generateBaseMarket`. */
export interface BasePathOptions {
  /** Seed of every random stream (regimes, volatility, shocks, jumps, volume). */
  seed: number;
  /** Open time of the first fine step (UTC ms); must lie on the 1d grid. Default 2024-01-01. */
  startTimeMs?: number;
  /** Number of fine steps. Either this or `days`. */
  steps?: number;
  /** Length in days (365 per year). Either this or `steps`. */
  days?: number;
  /** Fine step (default 5m). */
  fineTimeframe?: FineTimeframe;
  /** First open price (default `params.referencePrice`). */
  initialPrice?: number;
  /** Extra log-price drift per year added to every regime (default 0). */
  annualDrift?: number;
  /** Multiplier of every volatility (default 1). */
  volatilityScale?: number;
  /**
   * Volatility at the start (RMS 15m log return, e.g. the trailing realised volatility of a real
   * market where the path should continue). The log-volatility components start at their
   * conditional draw given this level (each moved by its share of the variance) and then revert
   * to the calibrated level at their own speeds. Default: a draw from the stationary distribution.
   */
  initialVolatility15m?: number;
  /** Force the first regime instead of drawing it from `params.regimes.initial`. */
  initialRegime?: RegimeName;
}

/** A regime segment of a path, in fine steps and time. */
export interface RegimeSegment {
  /** The regime in force over the segment. */
  regime: RegimeName;
  /** First fine step of the segment. */
  startStep: number;
  /** One past the last fine step of the segment. */
  endStep: number;
  /** Open time of the first step (UTC ms). */
  startTimeMs: number;
  /** Close time of the last step (UTC ms). */
  endTimeMs: number;
}

/** A jump of a path. */
export interface JumpEvent {
  /** Fine step in which it happened. */
  step: number;
  /** Open time of that step (UTC ms). */
  timeMs: number;
  /** Size of the jump in log price. */
  logSize: number;
}

/**
 * The fine-step series of a base path. `logReturn[i]` is the close-to-close log return of step i
 * (the first step's return is measured from `initialLogPrice`); `sigma[i]` is the step's diffusive
 * standard deviation (log units, includes season, regime and volatility state); `volume[i]` the
 * step's volume in base units.
 */
export interface BasePath {
  /** Length of one step (5m or 1m). */
  fineTimeframe: FineTimeframe;
  /** Open time of step 0 (UTC ms). */
  startTimeMs: number;
  /** Log of the price at which step 0 opens. */
  initialLogPrice: number;
  /** Close-to-close log return of each step. */
  logReturn: Float64Array;
  /**
   * Diffusive standard deviation of each step's log return (season, regime and volatility state
   * included).
   */
  sigma: Float64Array;
  /** Volume of each step, base currency. */
  volume: Float64Array;
  /** Regime code per step (index into `REGIME_NAMES`). */
  regime: Uint8Array;
  /** Regime segments, in time order. */
  regimes: RegimeSegment[];
  /** Jumps, in time order. */
  jumps: JumpEvent[];
}

/** A waypoint of `conditionOnWaypoints`: the log close that step `step` must end at. */
export interface Waypoint {
  /** Fine step whose close is pinned (0-based). */
  step: number;
  /** Log of the close price that step must end at. */
  logPrice: number;
}

/** The candles of a synthetic market plus the labels of what happened in it. */
export interface SyntheticMarket {
  /** The fine-step candles (5m or 1m). */
  fine: Candles;
  /** 15m candles (exact aggregates of `fine`). */
  m15: Candles;
  /** 4h candles (exact aggregates of `fine`). */
  h4: Candles;
  /** 1d candles (exact aggregates of `fine`). */
  d1: Candles;
  /** The fine-step series the candles were built from. */
  path: BasePath;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Volatility components with timescales up to this many hours are "fast". */
const FAST_HOURS = 8;
const SLOT_MS = 900_000;
const SLOTS_PER_DAY = 96;
/** Epoch day 0 (1970-01-01) was a Thursday (weekday 4, Sunday = 0). */
const EPOCH_WEEKDAY = 4;

function fail(field: string, reason: string): never {
  throw new DataValidationError({ source: 'synthetic base process', field, reason });
}

/**
 * Checks a parameter object for the shapes and ranges the generator relies on.
 * @throws {DataValidationError} naming the offending field.
 */
export function checkBaseProcessParams(p: BaseProcessParams): void {
  const nR = REGIME_NAMES.length;
  const finitePos = (v: number, f: string): void => {
    if (!(Number.isFinite(v) && v > 0)) fail(f, `must be a positive number, got ${v}`);
  };
  finitePos(p.referencePrice, 'referencePrice');
  finitePos(p.returns.sigma15m, 'returns.sigma15m');
  if (!(p.returns.tDof > 2)) fail('returns.tDof', `must be > 2, got ${p.returns.tDof}`);
  if (!(p.volatility.leverage >= 0 && p.volatility.leverage < 1))
    fail('volatility.leverage', `must be in [0, 1), got ${p.volatility.leverage}`);
  if (!(p.volatility.feedback >= 0))
    fail('volatility.feedback', `must be >= 0, got ${p.volatility.feedback}`);
  finitePos(p.volatility.newsHalfLifeHours, 'volatility.newsHalfLifeHours');
  if (!(p.returns.activityStd >= 0))
    fail('returns.activityStd', `must be >= 0, got ${p.returns.activityStd}`);
  finitePos(p.returns.activityHalfLifeHours, 'returns.activityHalfLifeHours');
  if (!(p.returns.transientShare >= 0 && p.returns.transientShare < 1))
    fail('returns.transientShare', `must be in [0, 1), got ${p.returns.transientShare}`);
  finitePos(p.returns.transientHalfLifeHours, 'returns.transientHalfLifeHours');
  for (const [name, comps] of [
    ['volatility.components', p.volatility.components],
    ['volume.components', p.volume.components],
  ] as const) {
    comps.forEach((c, k) => {
      finitePos(c.timescaleHours, `${name}[${k}].timescaleHours`);
      if (!(c.std >= 0)) fail(`${name}[${k}].std`, `must be >= 0, got ${c.std}`);
    });
  }
  const lengths: [string, unknown[], number][] = [
    ['seasonality.volIntraday', p.seasonality.volIntraday, SLOTS_PER_DAY],
    ['seasonality.volWeekday', p.seasonality.volWeekday, 7],
    ['seasonality.volumeIntraday', p.seasonality.volumeIntraday, SLOTS_PER_DAY],
    ['seasonality.volumeWeekday', p.seasonality.volumeWeekday, 7],
    ['regimes.meanDurationDays', p.regimes.meanDurationDays, nR],
    ['regimes.driftPerDay', p.regimes.driftPerDay, nR],
    ['regimes.volMultiplier', p.regimes.volMultiplier, nR],
    ['regimes.jumpMultiplier', p.regimes.jumpMultiplier, nR],
    ['regimes.meanReversionPerDay', p.regimes.meanReversionPerDay, nR],
    ['regimes.transition', p.regimes.transition, nR],
    ['regimes.initial', p.regimes.initial, nR],
  ];
  for (const [f, arr, len] of lengths)
    if (!Array.isArray(arr) || arr.length !== len)
      fail(f, `must hold ${len} values, got ${Array.isArray(arr) ? arr.length : typeof arr}`);
  p.regimes.transition.forEach((row, k) => {
    if (!Array.isArray(row) || row.length !== nR)
      fail(`regimes.transition[${k}]`, `must hold ${nR} values`);
    if (!(rowSumOffDiagonal(row, k) > 0))
      fail(`regimes.transition[${k}]`, 'needs a positive probability of leaving the regime');
  });
  p.regimes.meanDurationDays.forEach((d, k) => finitePos(d, `regimes.meanDurationDays[${k}]`));
  p.regimes.volMultiplier.forEach((d, k) => finitePos(d, `regimes.volMultiplier[${k}]`));
  finitePos(p.regimes.durationShape, 'regimes.durationShape');
  finitePos(p.regimes.smoothingHours, 'regimes.smoothingHours');
  finitePos(p.jumps.decayHours, 'jumps.decayHours');
  if (!(p.jumps.sizeDof > 0)) fail('jumps.sizeDof', 'must be > 0');
  if (!(p.jumps.ratePerDay >= 0)) fail('jumps.ratePerDay', 'must be >= 0');
  const m = p.microstructure;
  if (!(m.zeroGapProb >= 0 && m.oneTickGapProb >= 0 && m.zeroGapProb + m.oneTickGapProb <= 1))
    fail('microstructure.zeroGapProb', 'zeroGapProb and oneTickGapProb must be >= 0 with sum <= 1');
  if (!(m.noWickProb >= 0 && m.spikeProb >= 0 && m.noWickProb + m.spikeProb < 1))
    fail('microstructure.noWickProb', 'noWickProb and spikeProb must be >= 0 with sum < 1');
  if (!(m.spikeSigmas >= 0)) fail('microstructure.spikeSigmas', 'must be >= 0');
  const extremeProb = m.extremeSpikeProb ?? m.spikeProb;
  if (!(extremeProb >= 0 && m.noWickProb + extremeProb < 1))
    fail('microstructure.extremeSpikeProb', 'must be >= 0 with noWickProb + extremeSpikeProb < 1');
  finitePos(
    m.extremeLookbackHours ?? DEFAULT_EXTREME_LOOKBACK_HOURS,
    'microstructure.extremeLookbackHours',
  );
  if (!(m.spikeVolumeBeta >= 0)) fail('microstructure.spikeVolumeBeta', 'must be >= 0');
  if (!(m.gapSigmas >= 0)) fail('microstructure.gapSigmas', 'must be >= 0');
  finitePos(m.rangeScale, 'microstructure.rangeScale');
  if (!(m.tickSize >= 0)) fail('microstructure.tickSize', 'must be >= 0');
  if (m.regimes !== undefined && m.regimes.length === 1)
    fail(
      'microstructure.regimes',
      'needs two regimes or more (none = one stationary microstructure)',
    );
  (m.regimes ?? []).forEach((r, k) => {
    const at = `microstructure.regimes[${k}]`;
    finitePos(r.meanDays, `${at}.meanDays`);
    if (!(r.zeroGapProb >= 0 && r.oneTickGapProb >= 0 && r.zeroGapProb + r.oneTickGapProb <= 1))
      fail(`${at}.zeroGapProb`, 'zeroGapProb and oneTickGapProb must be >= 0 with sum <= 1');
    if (!(r.gapScale >= 0 && Number.isFinite(r.gapScale)))
      fail(`${at}.gapScale`, 'must be a finite number >= 0');
    if (!(r.noWickScale >= 0 && Number.isFinite(r.noWickScale)))
      fail(`${at}.noWickScale`, 'must be a finite number >= 0');
  });
}

function rowSumOffDiagonal(row: number[], k: number): number {
  let s = 0;
  for (let j = 0; j < row.length; j++) if (j !== k && row[j] > 0) s += row[j];
  return s;
}

/** Number of fine steps in `days` days at `tf`. */
export function stepsPerDay(tf: FineTimeframe): number {
  return DAY_MS / TIMEFRAME_MS[tf];
}

/** Default start of generated paths: 2024-01-01T00:00:00Z. */
export const DEFAULT_START_MS = Date.UTC(2024, 0, 1);

// Fast variates on top of the seeded Rng (the hot loop draws several per step): the ziggurat
// normal of Marsaglia & Tsang (2000, 128 layers) and Student-t as normal / sqrt(gamma / shape),
// with Marsaglia–Tsang gamma. Deterministic given the Rng state.
const ZIG_R = 3.442619855899;
const ZIG_K = new Uint32Array(128);
const ZIG_W = new Float64Array(128);
const ZIG_F = new Float64Array(128);
{
  const m1 = 2147483648;
  const vn = 9.91256303526217e-3;
  let dn = ZIG_R;
  let tn = dn;
  const q = vn / Math.exp(-0.5 * dn * dn);
  ZIG_K[0] = Math.floor((dn / q) * m1);
  ZIG_K[1] = 0;
  ZIG_W[0] = q / m1;
  ZIG_W[127] = dn / m1;
  ZIG_F[0] = 1;
  ZIG_F[127] = Math.exp(-0.5 * dn * dn);
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(vn / dn + Math.exp(-0.5 * dn * dn)));
    ZIG_K[i + 1] = Math.floor((dn / tn) * m1);
    tn = dn;
    ZIG_F[i] = Math.exp(-0.5 * dn * dn);
    ZIG_W[i] = dn / m1;
  }
}

/** Standard normal variate (ziggurat). */
export function fastNormal(rng: Rng): number {
  for (;;) {
    const hz = rng.nextU32() | 0;
    const iz = hz & 127;
    if (Math.abs(hz) < ZIG_K[iz]) return hz * ZIG_W[iz];
    if (iz === 0) {
      let x: number;
      let y: number;
      do {
        x = -Math.log(1 - rng.next()) / ZIG_R;
        y = -Math.log(1 - rng.next());
      } while (y + y < x * x);
      return hz > 0 ? ZIG_R + x : -ZIG_R - x;
    }
    const x = hz * ZIG_W[iz];
    if (ZIG_F[iz] + rng.next() * (ZIG_F[iz - 1] - ZIG_F[iz]) < Math.exp(-0.5 * x * x)) return x;
  }
}

/** Gamma(shape >= 1, 1) variate (Marsaglia–Tsang) with precomputed d = shape - 1/3, c = 1/sqrt(9d). */
function fastGamma(rng: Rng, d: number, c: number): number {
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = fastNormal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    const x2 = x * x;
    if (u < 1 - 0.0331 * x2 * x2) return d * v;
    if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Sampler of Student-t variates with `dof` > 2 degrees of freedom, scaled to unit variance. */
interface UnitT {
  d: number;
  c: number;
  shape: number;
  scale: number;
}

function unitTSampler(dof: number): UnitT {
  const shape = dof / 2;
  const boosted = shape < 1 ? shape + 1 : shape;
  const d = boosted - 1 / 3;
  return { d, c: 1 / Math.sqrt(9 * d), shape, scale: dof > 2 ? Math.sqrt((dof - 2) / dof) : 1 };
}

function unitT(rng: Rng, t: UnitT): number {
  let g = fastGamma(rng, t.d, t.c);
  if (t.shape < 1) g *= Math.pow(1 - rng.next(), 1 / t.shape);
  return (fastNormal(rng) / Math.sqrt(g / t.shape)) * t.scale;
}

/** Draws the regime sequence; fills `regime` and returns its segments. */
function drawRegimes(
  p: BaseProcessParams,
  rng: Rng,
  steps: number,
  stepMs: number,
  startTimeMs: number,
  regime: Uint8Array,
  initialRegime: RegimeName | undefined,
): RegimeSegment[] {
  const r = p.regimes;
  const segments: RegimeSegment[] = [];
  let state =
    initialRegime === undefined ? pick(rng, r.initial) : REGIME_NAMES.indexOf(initialRegime);
  const stepsPerDayF = DAY_MS / stepMs;
  let at = 0;
  let first = true;
  while (at < steps) {
    // Gamma durations (mean meanDurationDays); the first segment starts mid-way through its life.
    let days = (rng.gamma(r.durationShape) / r.durationShape) * r.meanDurationDays[state];
    if (first) days *= rng.next();
    first = false;
    const len = Math.max(1, Math.round(days * stepsPerDayF));
    const end = Math.min(steps, at + len);
    regime.fill(state, at, end);
    segments.push({
      regime: REGIME_NAMES[state],
      startStep: at,
      endStep: end,
      startTimeMs: startTimeMs + at * stepMs,
      endTimeMs: startTimeMs + end * stepMs,
    });
    at = end;
    const row = r.transition[state].map((v, j) => (j === state ? 0 : Math.max(0, v)));
    state = pick(rng, row);
  }
  return segments;
}

function pick(rng: Rng, weights: number[]): number {
  let total = 0;
  for (const w of weights) total += Math.max(0, w);
  let u = rng.next() * total;
  for (let k = 0; k < weights.length; k++) {
    u -= Math.max(0, weights[k]);
    if (u < 0) return k;
  }
  return weights.length - 1;
}

/** Seasonal tables per (weekday, 15m slot): volatility multiplier and log-volume offset. */
function seasonTables(p: BaseProcessParams): { vol: Float64Array; logVolume: Float64Array } {
  const s = p.seasonality;
  const vol = new Float64Array(7 * SLOTS_PER_DAY);
  const logVolume = new Float64Array(7 * SLOTS_PER_DAY);
  for (let w = 0; w < 7; w++)
    for (let k = 0; k < SLOTS_PER_DAY; k++) {
      vol[w * SLOTS_PER_DAY + k] = s.volWeekday[w] * s.volIntraday[k];
      logVolume[w * SLOTS_PER_DAY + k] = s.volumeWeekday[w] + s.volumeIntraday[k];
    }
  return { vol, logVolume };
}

/** Index into the seasonal tables of the step opening at `timeMs`. */
function seasonIndex(timeMs: number): number {
  const day = Math.floor(timeMs / DAY_MS);
  const weekday = (day + EPOCH_WEEKDAY) % 7;
  const slot = Math.floor((timeMs - day * DAY_MS) / SLOT_MS);
  return weekday * SLOTS_PER_DAY + slot;
}

/** A multi-scale OU process updated every `every` steps (slow components are updated less often). */
interface OuState {
  phi: Float64Array;
  innov: Float64Array;
  every: Int32Array;
  x: Float64Array;
  /** Total stationary variance. */
  variance: number;
}

function ouState(comps: OuComponent[], stepMs: number, rng: Rng, scale = 1): OuState {
  const k = comps.length;
  const phi = new Float64Array(k);
  const innov = new Float64Array(k);
  const every = new Int32Array(k);
  const x = new Float64Array(k);
  let variance = 0;
  for (let j = 0; j < k; j++) {
    const tauSteps = (comps[j].timescaleHours * HOUR_MS) / stepMs;
    // Update at most every tau/64 steps: the component then moves by < 2% of its range per update.
    const e = Math.max(1, Math.min(12, Math.floor(tauSteps / 64)));
    every[j] = e;
    phi[j] = Math.exp(-e / tauSteps);
    const sd = comps[j].std * scale;
    innov[j] = sd * Math.sqrt(1 - phi[j] * phi[j]);
    x[j] = sd * rng.normal();
    variance += sd * sd;
  }
  return { phi, innov, every, x, variance };
}

/**
 * Simulates the fine-step series of the base process: regimes, stochastic volatility, Student-t
 * shocks, jumps and volume. Deterministic for a given seed and options. Linear time, no per-step
 * allocation.
 * @throws {DataValidationError} for bad parameters or options.
 */
export function simulateBasePath(p: BaseProcessParams, options: BasePathOptions): BasePath {
  checkBaseProcessParams(p);
  const tf = options.fineTimeframe ?? '5m';
  if (tf !== '5m' && tf !== '1m') fail('fineTimeframe', `must be 5m or 1m, got ${String(tf)}`);
  const stepMs = TIMEFRAME_MS[tf];
  const startTimeMs = options.startTimeMs ?? DEFAULT_START_MS;
  if (!Number.isFinite(startTimeMs) || startTimeMs % DAY_MS !== 0)
    fail('startTimeMs', `must be a UTC midnight (multiple of ${DAY_MS} ms), got ${startTimeMs}`);
  const steps =
    options.steps ??
    (options.days === undefined ? NaN : Math.round(options.days * (DAY_MS / stepMs)));
  if (!(Number.isInteger(steps) && steps > 0))
    fail(
      'steps',
      `give a positive whole number of steps or days (got steps=${options.steps}, days=${options.days})`,
    );
  const initialPrice = options.initialPrice ?? p.referencePrice;
  if (!(initialPrice > 0 && Number.isFinite(initialPrice)))
    fail('initialPrice', `must be a positive price, got ${initialPrice}`);
  const volScale = options.volatilityScale ?? 1;
  if (!(volScale > 0)) fail('volatilityScale', `must be > 0, got ${volScale}`);

  const root = new Rng(options.seed);
  const regimeRng = root.fork('regimes');
  const volRng = root.fork('volatility');
  const shockRng = root.fork('shocks');
  const jumpRng = root.fork('jumps');
  const volumeRng = root.fork('volume');
  const activityRng = root.fork('activity');
  const reversionRng = root.fork('reversion');

  const regime = new Uint8Array(steps);
  const regimes = drawRegimes(
    p,
    regimeRng,
    steps,
    stepMs,
    startTimeMs,
    regime,
    options.initialRegime,
  );

  const dtDays = stepMs / DAY_MS;
  const stepsPer15m = SLOT_MS / stepMs;
  const sigmaStep = (p.returns.sigma15m / Math.sqrt(stepsPer15m)) * volScale;
  const nu = p.returns.tDof;
  const shockT = unitTSampler(nu);
  const meanAbsT = meanAbsUnitT(nu);
  const lev = p.volatility.leverage;
  const feedback = p.volatility.feedback;
  const newsKeep = Math.exp((-Math.LN2 * stepMs) / (p.volatility.newsHalfLifeHours * HOUR_MS));
  // Stationary variance of the news component (z of unit variance; (z^2 - 1) / 2 of variance
  // about (E z^4 - 1) / 4, capped for heavy tails), so that exp(h - V) keeps mean square 1.
  const kurtosisT = nu > 4.5 ? (3 * (nu - 2)) / (nu - 4) : 9;
  const newsVariance =
    (feedback * feedback * ((kurtosisT - 1) / 4) + lev * lev) / (1 - newsKeep * newsKeep);
  const actStd = p.returns.activityStd;
  const actKeep = Math.exp((-Math.LN2 * stepMs) / (p.returns.activityHalfLifeHours * HOUR_MS));
  const actInnov = actStd * Math.sqrt(1 - actKeep * actKeep);
  // log E[exp(2a)] of the stationary activity (a sum of centred exponentials):
  // sum_k -log(1 - 2 c_k) - 2 c_k with c_k = actInnov * actKeep^k, so exp(a - actBias) has mean
  // square 1.
  let actBias = 0;
  for (let k = 0, c = actInnov; k < 10_000 && c > 1e-9; k++, c *= actKeep)
    actBias += 2 * c < 0.99 ? -Math.log(1 - 2 * c) - 2 * c : 2 * c * c;
  actBias /= 2;
  let activity = 0;
  const reversionStd = p.returns.reversionStd ?? 0;
  const reversionKeep = Math.exp(
    (-Math.LN2 * stepMs) / ((p.returns.reversionHalfLifeHours ?? 1) * HOUR_MS),
  );
  let reversion = 0;
  const transientShare = p.returns.transientShare;
  const transientKeep = Math.exp(
    (-Math.LN2 * stepMs) / (p.returns.transientHalfLifeHours * HOUR_MS),
  );

  const vol = ouState(p.volatility.components, stepMs, volRng);
  const fast = Uint8Array.from(p.volatility.components, (c) =>
    c.timescaleHours <= FAST_HOURS ? 1 : 0,
  );
  const vlm = ouState(p.volume.components, stepMs, volumeRng);
  // exp(h - V) has mean square 1 when h ~ N(0, V).
  const volBias = vol.variance + newsVariance;
  const nVolComponents = p.volatility.components.length;
  const { vol: seasonVol, logVolume: seasonVolume } = seasonTables(p);

  const nR = REGIME_NAMES.length;
  const regimeLogVol = new Float64Array(nR);
  const regimeDrift = new Float64Array(nR);
  const regimeRevert = new Float64Array(nR);
  const regimeJump = new Float64Array(nR);
  const baseDrift = p.returns.driftPerDay + (options.annualDrift ?? 0) / 365;
  for (let k = 0; k < nR; k++) {
    regimeLogVol[k] = Math.log(p.regimes.volMultiplier[k]);
    regimeDrift[k] = (baseDrift + p.regimes.driftPerDay[k]) * dtDays;
    regimeRevert[k] = 1 - Math.exp(-p.regimes.meanReversionPerDay[k] * dtDays);
    regimeJump[k] = p.jumps.ratePerDay * p.regimes.jumpMultiplier[k] * dtDays;
  }
  const regimeAlpha = 1 - Math.exp(-stepMs / (p.regimes.smoothingHours * HOUR_MS));
  const jumpDecay = Math.exp(-stepMs / (p.jumps.decayHours * HOUR_MS));
  const j = p.jumps;
  const jumpT = unitTSampler(j.sizeDof);

  const v = p.volume;
  const logRef = Math.log(p.referencePrice);
  const logVol0 = v.logLevel15m - Math.log(stepsPer15m);
  const memBeta = v.shockMemoryBeta ?? 0;
  const memKeep = Math.exp((-Math.LN2 * stepMs) / ((v.shockMemoryHalfLifeHours ?? 1) * HOUR_MS));
  let shockMemory = 0;

  const logReturn = new Float64Array(steps);
  const sigma = new Float64Array(steps);
  const volume = new Float64Array(steps);
  const jumps: JumpEvent[] = [];

  const initialLogPrice = Math.log(initialPrice);
  let x = initialLogPrice;
  let anchor = x;
  let prevRegime = -1;
  let regimeLevel = regimeLogVol[regime[0]];
  if (options.initialVolatility15m !== undefined) {
    const target = options.initialVolatility15m;
    if (!(target > 0 && Number.isFinite(target)))
      fail('initialVolatility15m', `must be a positive number, got ${target}`);
    // Gaussian conditioning of the components on their sum: x_k += var_k / V * (H - sum x).
    const want = Math.log(target / (p.returns.sigma15m * volScale)) + volBias - regimeLevel;
    let sum = 0;
    for (let k = 0; k < nVolComponents; k++) sum += vol.x[k];
    if (vol.variance > 0)
      for (let k = 0; k < nVolComponents; k++) {
        const sd = p.volatility.components[k].std;
        vol.x[k] += ((sd * sd) / vol.variance) * (want - sum);
      }
  }
  let excite = 0;
  let exciteVolume = 0;
  let news = 0;
  let transient = 0;
  const logVolScale = Math.log(volScale);
  const nVol = vol.x.length;
  const nVlm = vlm.x.length;
  for (let i = 0; i < steps; i++) {
    const reg = regime[i];
    if (reg !== prevRegime) {
      anchor = x;
      prevRegime = reg;
    }
    // Log-volatility: OU components, the news component (response to the last shocks, set at
    // the end of the previous step), regime level, jump excitation and the step's activity.
    let hFast = news;
    let hSlow = 0;
    for (let k = 0; k < nVol; k++) {
      if (i % vol.every[k] === 0)
        vol.x[k] = vol.phi[k] * vol.x[k] + vol.innov[k] * fastNormal(volRng);
      if (fast[k] === 1) hFast += vol.x[k];
      else hSlow += vol.x[k];
    }
    regimeLevel += regimeAlpha * (regimeLogVol[reg] - regimeLevel);
    excite *= jumpDecay;
    exciteVolume *= jumpDecay;
    activity = actKeep * activity + actInnov * (activityRng.exponential() - 1);
    const tIdx = seasonIndex(startTimeMs + i * stepMs);
    const s =
      sigmaStep *
      Math.exp(hFast + hSlow - volBias + regimeLevel + excite + activity - actBias) *
      seasonVol[tIdx];
    const z = unitT(shockRng, shockT);
    // Efficient move plus the change of the transient (overreaction) component.
    const previousTransient = transient;
    transient = transientKeep * transient + transientShare * s * z;
    let r =
      regimeDrift[reg] - regimeRevert[reg] * (x - anchor) + s * z + transient - previousTransient;
    if (reversionStd > 0) {
      const previousReversion = reversion;
      reversion = reversionKeep * reversion + reversionStd * s * fastNormal(reversionRng);
      r += reversion - previousReversion;
    }
    let jumped = 0;
    if (jumpRng.next() < regimeJump[reg]) {
      const size = Math.abs(unitT(jumpRng, jumpT)) * j.sizeSigmas * s;
      const signed = jumpRng.next() < j.downProb ? -size : size;
      r += signed;
      jumps.push({ step: i, timeMs: startTimeMs + i * stepMs, logSize: signed });
      excite += j.volBoost;
      exciteVolume += j.volumeBoost;
      jumped = 1;
    }
    x += r;
    logReturn[i] = r;
    sigma[i] = s;
    const newsZ = jumped === 1 ? (r > 0 ? 3 : -3) : z;
    news = newsKeep * news + feedback * 0.5 * (Math.min(newsZ * newsZ, 25) - 1) - lev * newsZ;
    // Log-volume: level, season, coupling to volatility state and to the step's shock, own
    // persistent components, price elasticity, noise.
    let y = 0;
    for (let k = 0; k < nVlm; k++) {
      if (i % vlm.every[k] === 0)
        vlm.x[k] = vlm.phi[k] * vlm.x[k] + vlm.innov[k] * fastNormal(volumeRng);
      y += vlm.x[k];
    }
    const absZ = Math.abs(z) - meanAbsT;
    const memoryValue = shockMemory;
    shockMemory =
      memKeep * shockMemory + (1 - memKeep) * (Math.min(Math.abs(newsZ), 10) - meanAbsT);
    const logVolume =
      logVol0 +
      seasonVolume[tIdx] +
      v.volBeta * (hSlow + regimeLevel + excite + logVolScale) +
      v.volBetaFast * hFast +
      v.activityBeta * activity +
      v.shockBeta * absZ +
      memBeta * memoryValue +
      exciteVolume +
      y +
      v.priceElasticity * (x - logRef) +
      v.noiseStd * fastNormal(volumeRng);
    volume[i] = Math.exp(logVolume);
  }
  return {
    fineTimeframe: tf,
    startTimeMs,
    initialLogPrice,
    logReturn,
    sigma,
    volume,
    regime,
    regimes,
    jumps,
  };
}

/** E|T| for a Student-t scaled to unit variance (closed form). */
function meanAbsUnitT(nu: number): number {
  const lg = lgamma((nu + 1) / 2) - lgamma(nu / 2);
  return (
    ((2 * Math.sqrt(nu) * Math.exp(lg)) / ((nu - 1) * Math.sqrt(Math.PI))) *
    Math.sqrt((nu - 2) / nu)
  );
}

/** log Gamma(x) for x > 0 (Lanczos approximation, |error| < 1e-13). */
function lgamma(x: number): number {
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lgamma(1 - x);
  const xx = x - 1;
  let a = c[0];
  const t = xx + g + 0.5;
  for (let i = 1; i < g + 2; i++) a += c[i] / (xx + i);
  return 0.5 * Math.log(2 * Math.PI) + (xx + 0.5) * Math.log(t) - t + Math.log(a);
}

/**
 * Returns a copy of `path.logReturn` conditioned to pass through the waypoints: the log close at
 * the end of step `w.step` equals `w.logPrice` for every waypoint. Between consecutive waypoints
 * (and from the start to the first one) the missing move is spread over the steps in proportion
 * to `sigma[i]^2`, the conditional mean of a bridge with time-varying volatility, so the path
 * keeps its shocks, jumps and volatility clustering. Steps after the last waypoint are unchanged.
 * @throws {DataValidationError} when waypoints are out of range or not strictly increasing in step.
 */
export function conditionOnWaypoints(
  path: Pick<BasePath, 'logReturn' | 'sigma' | 'initialLogPrice'>,
  waypoints: readonly Waypoint[],
): Float64Array {
  const n = path.logReturn.length;
  const out = Float64Array.from(path.logReturn);
  let from = 0;
  let level = path.initialLogPrice;
  let prevStep = -1;
  for (const w of waypoints) {
    if (!(Number.isInteger(w.step) && w.step > prevStep && w.step < n))
      fail('waypoints', `step ${w.step} must be an integer in (${prevStep}, ${n})`);
    if (!Number.isFinite(w.logPrice)) fail('waypoints', `logPrice at step ${w.step} is not finite`);
    let move = 0;
    let variance = 0;
    for (let i = from; i <= w.step; i++) {
      move += out[i];
      variance += path.sigma[i] * path.sigma[i];
    }
    const missing = w.logPrice - level - move;
    if (variance > 0) {
      for (let i = from; i <= w.step; i++)
        out[i] += (missing * path.sigma[i] * path.sigma[i]) / variance;
    } else {
      out[w.step] += missing;
    }
    level = w.logPrice;
    from = w.step + 1;
    prevStep = w.step;
  }
  return out;
}

/**
 * Builds fine-step candles from a fine-step path: close = exp(cumulative log return), open = the
 * previous close plus a microstructure gap (none with probability `zeroGapProb`, one tick with
 * probability `oneTickGapProb`, else Laplace with scale `gapSigmas * sigma`), high and low from the Brownian-bridge extremes of each step
 * (standard deviation `rangeScale * sigma`; a side has no wick with probability `noWickProb`),
 * plus spikes beyond a wick (mean `spikeSigmas * sigma`, exponential) with probability
 * `extremeSpikeProb` on the side where the step's close breaks the high or low of the last
 * `extremeLookbackHours` of closes and `spikeProb` elsewhere, the step's volume multiplied by
 * exp(`spikeVolumeBeta` x spike size in sigmas); prices rounded to `tickSize`. With
 * `microstructure.regimes`, the gap probabilities, gap scale and no-wick probability follow the
 * regime a hidden chain is in (drawn from the same rng). Spikes are placed on
 * the path given, so a conditioned (patterned) path gets its stop runs where it breaks its own
 * highs and lows. High >= max(open, close) and low <= min(open, close) hold by construction; every
 * value is checked to be finite.
 * @param path only `fineTimeframe`, `startTimeMs`, `initialLogPrice`, `logReturn`, `sigma` and
 *   `volume` are read; pass a conditioned `logReturn` or reshaped `volume` freely.
 * @param rng the candle stream; same rng state, same candles.
 * @throws {DataValidationError} when the columns differ in length or a step yields a non-finite
 *   price or a negative or non-finite volume (naming the step).
 */
export function buildCandlesFromPath(
  path: Pick<
    BasePath,
    'fineTimeframe' | 'startTimeMs' | 'initialLogPrice' | 'logReturn' | 'sigma' | 'volume'
  >,
  params: Pick<BaseProcessParams, 'symbol' | 'microstructure'>,
  rng: Rng,
): Candles {
  const n = path.logReturn.length;
  if (path.sigma.length !== n || path.volume.length !== n)
    fail(
      'path',
      `logReturn, sigma and volume lengths differ (${n}, ${path.sigma.length}, ${path.volume.length})`,
    );
  const m = params.microstructure;
  const stepMs = TIMEFRAME_MS[path.fineTimeframe];
  const openTime = new Float64Array(n);
  const open = new Float64Array(n);
  const high = new Float64Array(n);
  const low = new Float64Array(n);
  const close = new Float64Array(n);
  const volume = new Float64Array(n);
  const tick = m.tickSize;
  const invTick = tick > 0 ? 1 / tick : 0;
  const rs2 = m.rangeScale * m.rangeScale;
  const oneTickEnd = m.zeroGapProb + m.oneTickGapProb;
  const extremeProb = m.extremeSpikeProb ?? m.spikeProb;
  // Highs and lows of the closes of the last extremeLookbackHours (before the current step).
  const lookback = Math.max(
    1,
    Math.round(((m.extremeLookbackHours ?? DEFAULT_EXTREME_LOOKBACK_HOURS) * HOUR_MS) / stepMs),
  );
  const recentHigh = new RollingMax(lookback);
  const recentLow = new RollingMin(lookback);
  // Microstructure of the current step: the stationary one, or that of the regime the hidden
  // chain is in (drawn only when there are regimes, so candles without them stay the same).
  const regimes = m.regimes ?? [];
  let zeroGapProb = m.zeroGapProb;
  let gapEnd = oneTickEnd;
  let gapSigmas = m.gapSigmas;
  let noWickProb = m.noWickProb;
  let regime = -1;
  const enter = (k: number): void => {
    const r = regimes[k];
    regime = k;
    zeroGapProb = r.zeroGapProb;
    gapEnd = r.zeroGapProb + r.oneTickGapProb;
    gapSigmas = m.gapSigmas * r.gapScale;
    noWickProb = Math.min(0.5, m.noWickProb * r.noWickScale);
  };
  if (regimes.length > 1) {
    const total = regimes.reduce((a, r) => a + r.meanDays, 0);
    let u = rng.next() * total;
    let k = 0;
    while (k < regimes.length - 1 && u >= regimes[k].meanDays) u -= regimes[k++].meanDays;
    enter(k);
  }
  let prevLogClose = path.initialLogPrice;
  let prevClose = roundTick(Math.exp(prevLogClose), tick, invTick);
  for (let i = 0; i < n; i++) {
    const s = path.sigma[i];
    if (regime >= 0 && rng.next() < stepMs / (regimes[regime].meanDays * DAY_MS)) {
      const k = Math.floor(rng.next() * (regimes.length - 1));
      enter(k >= regime ? k + 1 : k);
    }
    // Open: the previous close, one tick away (the spread), or a Laplace gap.
    let lo = prevLogClose;
    let o = prevClose;
    const gapDraw = rng.next();
    if (i > 0 && gapDraw >= zeroGapProb) {
      const u = rng.next() - 0.5;
      if (gapDraw < gapEnd && tick > 0) {
        o = u < 0 && prevClose > tick ? prevClose - tick : prevClose + tick;
        lo = Math.log(o);
      } else {
        lo += -gapSigmas * s * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
        o = roundTick(Math.exp(lo), tick, invTick);
      }
    }
    const lc = prevLogClose + path.logReturn[i];
    const dx = lc - lo;
    const v2 = 2 * rs2 * s * s;
    let up = dx > 0 ? dx : 0;
    let dn = dx < 0 ? dx : 0;
    const wickUp = rng.next();
    const wickDown = rng.next();
    if (wickUp >= noWickProb) {
      up = 0.5 * (dx + Math.sqrt(dx * dx + v2 * rng.exponential()));
    }
    if (wickDown >= noWickProb) {
      dn = 0.5 * (dx - Math.sqrt(dx * dx + v2 * rng.exponential()));
    }
    // Spikes: short-lived excursions beyond the bridge (stop runs, thin books), mostly on the
    // side where the close breaks the recent high or low; they trade (volume rises with them).
    // A side without a wick keeps none.
    const at = i > 0 && lc > recentHigh.value ? 1 : i > 0 && lc < recentLow.value ? -1 : 0;
    recentHigh.push(lc);
    recentLow.push(lc);
    let spiked = 0;
    if (rng.next() < (at > 0 ? extremeProb : m.spikeProb)) {
      const e = m.spikeSigmas * rng.exponential();
      if (wickUp >= noWickProb) {
        up += e * s;
        spiked += e;
      }
    }
    if (rng.next() < (at < 0 ? extremeProb : m.spikeProb)) {
      const e = m.spikeSigmas * rng.exponential();
      if (wickDown >= noWickProb) {
        dn -= e * s;
        spiked += e;
      }
    }
    const c = roundTick(Math.exp(lc), tick, invTick);
    const h = roundTick(Math.exp(lo + up), tick, invTick);
    const l = roundTick(Math.exp(lo + dn), tick, invTick);
    openTime[i] = path.startTimeMs + i * stepMs;
    open[i] = o;
    close[i] = c;
    high[i] = Math.max(h, o, c);
    low[i] = Math.min(l, o, c);
    volume[i] = spiked > 0 ? path.volume[i] * Math.exp(m.spikeVolumeBeta * spiked) : path.volume[i];
    // High >= max(open, close) >= min(open, close) >= low holds by construction; only a
    // non-finite or negative input can break a candle, and it is caught here, naming the step.
    const finite = Number.isFinite(lo + up + dn + lc);
    if (!(finite && volume[i] >= 0 && volume[i] < Infinity))
      throw new DataValidationError({
        source: `synthetic ${params.symbol} ${path.fineTimeframe}`,
        row: i,
        openTime: openTime[i],
        field: finite ? 'volume' : 'price',
        reason: `non-finite or negative value (logReturn ${path.logReturn[i]}, sigma ${s}, volume ${path.volume[i]})`,
      });
    prevLogClose = lc;
    prevClose = c;
  }
  return makeCandles(params.symbol, path.fineTimeframe, {
    openTime,
    open,
    high,
    low,
    close,
    volume,
  });
}

function roundTick(price: number, tick: number, invTick: number): number {
  if (tick <= 0) return price;
  const r = Math.round(price * invTick) / invTick;
  return r > 0 ? r : tick;
}

/**
 * Aggregates fine candles exactly (with `resample`) to 15m, then 15m to 4h and 1d. Only complete
 * buckets are kept, so a path that starts at UTC midnight and lasts whole days loses nothing.
 */
export function aggregateFineCandles(fine: Candles): { m15: Candles; h4: Candles; d1: Candles } {
  const m15 = resample(fine, '15m').candles;
  return { m15, h4: resample(m15, '4h').candles, d1: resample(m15, '1d').candles };
}

/**
 * Generates a complete synthetic market: simulates the base path, builds the fine candles,
 * aggregates them exactly to 15m, 4h and 1d and validates those. Same seed and options, same bytes.
 * @example const mkt = generateBaseMarket(params, { seed: 7, days: 365 }); mkt.m15.close
 * @throws {DataValidationError} for bad parameters or options.
 */
export function generateBaseMarket(
  p: BaseProcessParams,
  options: BasePathOptions,
): SyntheticMarket {
  const path = simulateBasePath(p, options);
  const fine = buildCandlesFromPath(path, p, new Rng(options.seed).fork('candles'));
  const { m15, h4, d1 } = aggregateFineCandles(fine);
  for (const c of [m15, h4, d1])
    validateCandles(c, { source: `synthetic ${p.symbol} ${c.timeframe} (seed ${options.seed})` });
  return { fine, m15, h4, d1, path };
}

/** The `synthetic` config keys that shape a generated market (see config/default.yaml). */
export interface SyntheticMarketSettings {
  /** Fine step of the simulation (`synthetic.fineTimeframe`). */
  fineTimeframe: FineTimeframe;
  /** First open price, quote currency; null = the calibration's `referencePrice`. */
  initialPrice: number | null;
  /** Starting RMS 15m log return; null = a draw from the stationary distribution. */
  initialVolatility: number | null;
  /** Extra log-price drift per year added to every regime. */
  annualDrift: number;
  /** Multiplier of every volatility (1 = as calibrated). */
  volatilityScale: number;
}

/**
 * The `generateBaseMarket` options the `synthetic` config section sets (fine step, price level,
 * starting volatility, drift, volatility scale), so every caller reads them the same way.
 */
export function marketOptionsFromSettings(
  s: SyntheticMarketSettings,
): Pick<
  BasePathOptions,
  'fineTimeframe' | 'initialPrice' | 'initialVolatility15m' | 'annualDrift' | 'volatilityScale'
> {
  return {
    fineTimeframe: s.fineTimeframe,
    initialPrice: s.initialPrice ?? undefined,
    initialVolatility15m: s.initialVolatility ?? undefined,
    annualDrift: s.annualDrift,
    volatilityScale: s.volatilityScale,
  };
}

/** The timeframes `generateBaseMarket` returns besides the fine one. */
export const SYNTHETIC_TIMEFRAMES: readonly Timeframe[] = Object.freeze(['15m', '4h', '1d']);

/** `open_time,open,high,low,close,volume` CSV of candles (UTC ms; numbers in shortest round-trip form). */
export function candlesToCsv(c: Candles): string {
  const parts: string[] = ['open_time,open,high,low,close,volume\n'];
  for (let i = 0; i < c.openTime.length; i++)
    parts.push(
      `${c.openTime[i]},${c.open[i]},${c.high[i]},${c.low[i]},${c.close[i]},${c.volume[i]}\n`,
    );
  return parts.join('');
}

/** The labels file written beside synthetic candles. */
export interface SyntheticLabels {
  /** Symbol of the calibration the market was generated from. */
  symbol: string;
  /** Seed of the market. */
  seed: number;
  /** Fine step of the simulation. */
  fineTimeframe: FineTimeframe;
  /** Open time of the first fine step, UTC ms. */
  startTimeMs: number;
  /** Close time of the last fine step, UTC ms. */
  endTimeMs: number;
  /** Regime segments with their start and end as ISO 8601 UTC. */
  regimes: (RegimeSegment & { start: string; end: string })[];
  /** Jumps with their time as ISO 8601 UTC. */
  jumps: (JumpEvent & { time: string })[];
  /** The parameters the market was generated with. */
  params: BaseProcessParams;
}

/** File-name stem of a symbol: `BTC/USDT` -> `BTCUSDT`. */
export function symbolStem(symbol: string): string {
  return symbol.replace(/[^A-Za-z0-9]/g, '').toUpperCase();
}

/**
 * Writes a synthetic market in the layout of the real data folder: `synthetic-<SYM>-15m.csv.gz`,
 * `-4h.csv.gz`, `-1d.csv.gz` (gzip, deterministic bytes) and `synthetic-<SYM>-labels.json`, each
 * written atomically. Returns the paths written.
 */
export function writeSyntheticMarket(
  dir: string,
  market: SyntheticMarket,
  params: BaseProcessParams,
  seed: number,
): string[] {
  mkdirSync(dir, { recursive: true });
  const stem = `synthetic-${symbolStem(params.symbol)}`;
  const written: string[] = [];
  for (const c of [market.m15, market.h4, market.d1]) {
    const file = join(dir, `${stem}-${c.timeframe}.csv.gz`);
    writeFileAtomicSync(file, gzipSync(candlesToCsv(c), { level: 6 }));
    written.push(file);
  }
  const iso = (ms: number): string => new Date(ms).toISOString();
  const path = market.path;
  const labels: SyntheticLabels = {
    symbol: params.symbol,
    seed,
    fineTimeframe: path.fineTimeframe,
    startTimeMs: path.startTimeMs,
    endTimeMs: path.startTimeMs + path.logReturn.length * TIMEFRAME_MS[path.fineTimeframe],
    regimes: path.regimes.map((r) => ({ ...r, start: iso(r.startTimeMs), end: iso(r.endTimeMs) })),
    jumps: path.jumps.map((j) => ({ ...j, time: iso(j.timeMs) })),
    params,
  };
  const labelFile = join(dir, `${stem}-labels.json`);
  writeFileAtomicSync(labelFile, JSON.stringify(labels, null, 1) + '\n');
  written.push(labelFile);
  return written;
}
