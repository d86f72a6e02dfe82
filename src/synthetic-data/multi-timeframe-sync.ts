// Multi-timeframe synthetic markets with patterns: generated at the finest step (5m) with the
// patterns planted on their primary timeframes (15m, 4h or 1d), aggregated exactly to every other
// timeframe with the one `resample`, so a 4h pattern is a few bars of a daily candle and a long
// stretch of 15m candles, as on a real chart. Also checks and enforces where a pattern is clearest
// (`ensurePatternVisibility`) and lays higher-timeframe trends around lower-timeframe patterns
// (`createTimeframeConfluences`). It never aggregates any other way than `resample` and never
// changes a candle after aggregation.

import { DataValidationError } from '../errors.js';
import {
  lastClosedIndex,
  TIMEFRAME_MS,
  validateCandles,
  type Candles,
  type Timeframe,
} from '../data-processing/candles.js';
import { resample } from '../data-processing/resample.js';
import { rsi, sma } from '../data-processing/indicators.js';
import { Rng } from '../utils/random.js';
import { defaultConfig } from '../utils/config.js';
import {
  buildCandlesFromPath,
  simulateBasePath,
  type BasePath,
  type BaseProcessParams,
} from './base-process.js';
import {
  CLEAR_PATTERN,
  defaultBaseParams,
  fineStepsPerBar,
  MIN_SPAN_BARS,
  patternClarity,
  patternSkeleton,
  planPattern,
  plantedLabel,
  plantPatterns,
  type Direction,
  type NoiseProfile,
  type PatternLabel,
  type PatternPlan,
  type PatternSkeleton,
  type PatternType,
  type PlantedPath,
  type PlantHistory,
  type PlantOptions,
  type Strength,
  type VolumeProfile,
  withOutcome,
} from './pattern-generator.js';

/** The timeframes a pattern can be primary on. */
export const PATTERN_TIMEFRAMES: readonly Timeframe[] = Object.freeze(['15m', '4h', '1d']);

const FINE_MS = TIMEFRAME_MS['5m'];
const DAY_MS = 86_400_000;

/** One pattern to plant in a multi-timeframe market. */
export interface PatternRequest {
  /** Pattern type to plant. */
  type: PatternType;
  /** Timeframe the pattern is drawn on (15m, 4h or 1d). */
  primaryTimeframe: Timeframe;
  /**
   * Open time of the pattern's first bar (UTC ms; rounded up to the primary grid). Default: after
   * the previous pattern (or `leadDays` into the market) plus a short random gap.
   */
  onsetTimeMs?: number;
  /** Bars of the primary timeframe from onset to completion (default: drawn within the window). */
  spanBars?: number;
  /** Bars of the resolution after completion (default: the timeframe's default horizon). */
  resolutionBars?: number;
  /**
   * Bars after completion before the resolution starts (default 0): the market keeps its own
   * returns in them, so a decision inside them does not yet see which way the pattern resolves.
   */
  delayBars?: number;
  /** Plant as a look-alike that fails (before any `htfInfluence` on the outcome). */
  adversarial?: boolean;
  /** Strength of support/resistance reactions. Default strong. */
  strength?: Strength;
  /** Noise relative to the base's own (0.05 = natural). */
  noiseLevel?: number;
  /** Size multiplier of the skeleton (default 1; see `PlanOptions.amplitudeScale`). */
  amplitudeScale?: number;
  /** Character of the noise between waypoints. Default market_like. */
  noiseProfile?: NoiseProfile;
  /** Volume behaviour over the pattern. Default natural. */
  volumeProfile?: VolumeProfile;
  /** Breakout direction of a symmetric triangle (default: drawn at random). */
  breakoutDirection?: 1 | -1;
  /** Log-price drift per primary bar laid under the pattern (a higher-timeframe trend through it). */
  tiltPerBar?: number;
  /** A skeleton to use instead of the textbook one (e.g. a reshaped one from `createFeatureConfluences`). */
  skeleton?: PatternSkeleton;
}

/** What `generateMultiTimeframeData` generates. */
export interface MultiTimeframePatternParams {
  /** Patterns to plant, in time order. */
  patterns: readonly PatternRequest[];
  /** Length of the market in whole UTC days. */
  days: number;
  /** Seed of the base path, the plans and the outcomes. */
  seed: number;
  /** Base-process parameters. Default the shipped BTC calibration. */
  params?: BaseProcessParams;
  /** Open time of the first bar (a UTC midnight; default 2024-01-01). */
  startTimeMs?: number;
  /** First open price, quote currency (default the calibration's `referencePrice`). */
  initialPrice?: number;
  /** Multiplier of every volatility of the base path. Default 1. */
  volatilityScale?: number;
  /** Window sizes per timeframe (default: config `windows`): default spans fit in them. */
  windows?: Partial<Record<Timeframe, number>>;
  /** Days before the first auto-placed pattern (default 3). */
  leadDays?: number;
  /**
   * Visibility search of `plantPatterns`: an unclear pattern may move up to this many primary
   * bars and grow a little (default 0: planted exactly as requested).
   */
  maxShiftBars?: number;
  /** Alternatively (the larger wins), the largest move as a share of each pattern's span. */
  maxShiftFraction?: number;
  /** Largest growth of an unclear pattern's size (default 1.3; 1 = never grow). */
  maxAmplitudeScale?: number;
  /**
   * How strongly the higher timeframes' trends at a pattern's onset decide its outcome, in
   * [0, 1] (default 0: outcomes as requested). See `htfOutcomeRule`.
   */
  htfInfluence?: number;
  /** Symbol put on the candles. Default the calibration's symbol. */
  symbol?: string;
}

/** How a planted pattern shows on one timeframe. */
export interface TimeframeVisibility {
  /** The timeframe looked at. */
  timeframe: Timeframe;
  /** Bars of this timeframe the pattern spans (onset to completion). */
  barsSpanned: number;
  /** True when the whole pattern fits in this timeframe's window. */
  fitsWindow: boolean;
  /** Clarity on this timeframe (see `patternClarity`; NaN when it spans fewer than 6 bars). */
  clarity: number;
}

/** Visibility of one planted pattern on every timeframe. */
export interface PatternVisibility {
  /** Pattern type. */
  type: PatternType;
  /** Timeframe the pattern was drawn on. */
  primaryTimeframe: Timeframe;
  /** How it shows on each generated timeframe. */
  perTimeframe: TimeframeVisibility[];
  /** True when the primary timeframe shows the whole pattern clearly and is where it is clearest. */
  clearestOnPrimary: boolean;
}

/** A generated multi-timeframe market with its planted patterns. */
export interface MultiTimeframeData {
  /** Symbol of the candles. */
  symbol: string;
  /** Fine (5m) candles. */
  fine: Candles;
  /** Candles per requested timeframe, each an exact aggregate of the fine candles. */
  frames: ReadonlyMap<Timeframe, Candles>;
  /** The base path before planting. */
  basePath: BasePath;
  /** The path with the patterns planted (as finally planted, after any visibility search). */
  planted: PlantedPath;
  /** One label per planted pattern, in time order. */
  labels: PatternLabel[];
  /** Visibility of each planted pattern, in label order. */
  visibility: PatternVisibility[];
  /** Base-process parameters the market was generated with. */
  params: BaseProcessParams;
  /** The plans as requested (before any visibility search), to re-plant from. */
  plans: PatternPlan[];
  /** Seed the market was generated with. */
  seed: number;
  /** Window sizes (bars) per timeframe that default spans and visibility were judged against. */
  windows: Partial<Record<Timeframe, number>>;
  /** The `htfInfluence` the outcomes were decided with (re-planting decides them alike). */
  htfInfluence: number;
}

function fail(field: string, reason: string): never {
  throw new DataValidationError({ source: 'multi-timeframe generator', field, reason });
}

/** Default resolution bars per primary timeframe (the dataset's default horizons). */
export const DEFAULT_RESOLUTION_BARS: Readonly<Record<string, number>> = Object.freeze({
  '15m': 16,
  '4h': 6,
  '1d': 3,
});

/** Default span of a pattern on `tf`: 55% to 95% of the window, at least `MIN_SPAN_BARS`. */
export function drawSpanBars(
  tf: Timeframe,
  windows: Partial<Record<Timeframe, number>>,
  rng: Rng,
): number {
  const w = windows[tf] ?? 32;
  const lo = Math.max(MIN_SPAN_BARS, Math.round(0.55 * w));
  const hi = Math.max(lo, Math.round(0.95 * w));
  return lo + rng.int(hi - lo + 1);
}

/**
 * Turns requests into plans on a path starting at `startTimeMs`: explicit onsets are rounded up
 * to the primary grid, the others placed after the previous pattern with a random gap of 2 to 6
 * primary bars.
 * @throws {DataValidationError} for a timeframe that cannot be primary, overlapping or
 *   out-of-range patterns.
 */
export function planRequests(
  requests: readonly PatternRequest[],
  options: {
    startTimeMs: number;
    steps: number;
    windows: Partial<Record<Timeframe, number>>;
    leadDays: number;
    rng: Rng;
  },
): PatternPlan[] {
  const plans: PatternPlan[] = [];
  let cursorMs = options.startTimeMs + options.leadDays * DAY_MS;
  for (const [k, req] of requests.entries()) {
    if (!PATTERN_TIMEFRAMES.includes(req.primaryTimeframe))
      fail(
        `patterns[${k}].primaryTimeframe`,
        `must be one of ${PATTERN_TIMEFRAMES.join(', ')}, got ${req.primaryTimeframe}`,
      );
    const tf = req.primaryTimeframe;
    const barMs = TIMEFRAME_MS[tf];
    const barSteps = fineStepsPerBar(tf);
    const span = req.spanBars ?? drawSpanBars(tf, options.windows, options.rng);
    const resolution = req.resolutionBars ?? DEFAULT_RESOLUTION_BARS[tf] ?? 4;
    let onset = req.onsetTimeMs ?? cursorMs + (2 + options.rng.int(5)) * barMs;
    onset = Math.ceil(onset / barMs) * barMs;
    const onsetStep = Math.round((onset - options.startTimeMs) / FINE_MS);
    const skeleton =
      req.skeleton ??
      patternSkeleton(req.type, options.rng.fork(`skeleton-${k}`), {
        strength: req.strength,
        breakoutDirection: req.breakoutDirection,
        volumeProfile: req.volumeProfile,
        spanBars: span,
      });
    const plan = planPattern(skeleton, tf, onsetStep, barSteps, span, {
      resolutionBars: resolution,
      delayBars: req.delayBars,
      adversarial: req.adversarial,
      noiseLevel: req.noiseLevel,
      noiseProfile: req.noiseProfile,
      amplitudeScale: req.amplitudeScale,
    });
    plan.tiltPerBar = req.tiltPerBar ?? 0;
    if (plan.onsetStep < 1 || plan.endStep >= options.steps)
      fail(
        `patterns[${k}]`,
        `${req.type} on ${tf} does not fit in the market (onset ${new Date(onset).toISOString()})`,
      );
    plans.push(plan);
    cursorMs = options.startTimeMs + (plan.endStep + 1) * FINE_MS;
  }
  return plans;
}

/**
 * Generates a multi-timeframe market with patterns: simulates the base process at 5m for
 * `days` days, plants each requested pattern on its primary timeframe (see `plantPatterns`),
 * builds the fine candles and aggregates them exactly (fine → 15m → 4h and 1d, with `resample`).
 * Every timeframe is validated. Same parameters, same bytes.
 * @param patternParams the patterns, the length of the market and its seed
 * @param timeframes timeframes to return (default 15m, 4h, 1d); each a whole multiple of 5m
 * @throws {DataValidationError} for bad requests or parameters
 * @example
 * const mkt = generateMultiTimeframeData({ seed: 1, days: 40, patterns: [{ type: 'double_top', primaryTimeframe: '4h' }] });
 * mkt.frames.get('4h'); mkt.labels[0].completionTimeMs;
 */
export function generateMultiTimeframeData(
  patternParams: MultiTimeframePatternParams,
  timeframes: readonly Timeframe[] = ['15m', '4h', '1d'],
): MultiTimeframeData {
  const p = patternParams;
  if (!(Number.isInteger(p.days) && p.days > 0))
    fail('days', `must be a whole number of days > 0, got ${p.days}`);
  for (const tf of timeframes) fineStepsPerBar(tf);
  const params = p.params ?? defaultBaseParams();
  const windows = p.windows ?? defaultConfig().windows;
  const rng = new Rng(p.seed);
  const basePath = simulateBasePath(params, {
    seed: rng.fork('base').nextU32(),
    days: p.days,
    fineTimeframe: '5m',
    startTimeMs: p.startTimeMs,
    initialPrice: p.initialPrice,
    volatilityScale: p.volatilityScale,
  });
  const plans = planRequests(p.patterns, {
    startTimeMs: basePath.startTimeMs,
    steps: basePath.logReturn.length,
    windows,
    leadDays: p.leadDays ?? 3,
    rng: rng.fork('plans'),
  });
  const htfInfluence = p.htfInfluence ?? 0;
  if (!(htfInfluence >= 0 && htfInfluence <= 1))
    fail('htfInfluence', `must be in [0, 1], got ${htfInfluence}`);
  const planted = plantPatterns(basePath, plans, {
    maxShiftBars: p.maxShiftBars ?? 0,
    maxShiftFraction: p.maxShiftFraction,
    maxAmplitudeScale: p.maxAmplitudeScale,
    outcome: htfOutcomeRule(htfInfluence, basePath.startTimeMs, p.seed),
  });
  return assemble({
    symbol: p.symbol ?? params.symbol,
    basePath,
    plans,
    planted,
    params,
    seed: p.seed,
    windows,
    timeframes,
    htfInfluence,
  });
}

/**
 * The trend of timeframe `tf` at fine step `onsetStep` of a path being planted, as
 * `timeframeTrend` reads it from candles (sign of the last close against the SMA of the last
 * `period` closes when the distance exceeds `minAtr` mean ranges, else 0), computed in log prices
 * from the fine steps before the onset (`logReturn` final there, `anchorLogPrice` the log close of
 * step onsetStep − 1). 0 when fewer than `period` bars closed. Bars are on the UTC grid of `tf`
 * (`startTimeMs` = open time of step 0).
 */
export function pathTimeframeTrend(
  logReturn: Float64Array,
  anchorLogPrice: number,
  onsetStep: number,
  tf: Timeframe,
  startTimeMs: number,
  period = 20,
  minAtr = 0.5,
): Direction {
  const H = fineStepsPerBar(tf);
  const g = ((Math.round(startTimeMs / FINE_MS) % H) + H) % H;
  const lastBar = Math.floor((g + onsetStep) / H) - 1;
  const firstBar = lastBar - period + 1;
  const firstStep = firstBar * H - g;
  if (firstStep < 0) return 0;
  // Log close of every step from firstStep - 1 to onsetStep - 1, walking back from the anchor.
  const lastStep = (lastBar + 1) * H - g - 1;
  let level = anchorLogPrice;
  for (let i = onsetStep - 1; i > lastStep; i--) level -= logReturn[i];
  let closeSum = 0;
  let rangeSum = 0;
  const lastClose = level;
  for (let b = lastBar; b >= firstBar; b--) {
    const from = b * H - g;
    closeSum += level;
    let hi = level;
    let lo = level;
    for (let i = from + H - 1; i >= from; i--) {
      level -= logReturn[i];
      if (level > hi) hi = level;
      if (level < lo) lo = level;
    }
    rangeSum += hi - lo;
  }
  const dist = lastClose - closeSum / period;
  return Math.abs(dist) < (minAtr * rangeSum) / period ? 0 : dist > 0 ? 1 : -1;
}

/**
 * The outcome rule of patterns in a market with higher-timeframe influence `s` in [0, 1]: for a
 * directional pattern with a resolution on 15m or 4h, the confluence of every higher pattern
 * timeframe at its onset decides how often it fails. The confluence `c` in [-1, 1] is the mean
 * over those timeframes (4h and 1d for a 15m pattern, 1d for a 4h one) of their trend
 * (`pathTimeframeTrend`, from the market before the pattern) times the pattern's expected
 * direction: 1 when all confirm it, -1 when all contradict it. A pattern planned to fail (the base
 * draw, e.g. `createAdversarialExamples` at a rate p) still fails with probability 1 − s·c when
 * c > 0, and one planned to resolve its textbook way fails anyway with probability s·|c| when
 * c < 0: failure rates p·(1 − s·c) confirmed, p + (1 − p)·s·|c| contradicted, p at c = 0 or
 * without a higher timeframe (1d patterns). No single timeframe sees the whole confluence of a
 * 15m pattern. Seeded per pattern (market seed and onset step), so re-planting the same plans
 * decides alike. `undefined` (no rule) for s = 0.
 */
export function htfOutcomeRule(
  s: number,
  startTimeMs: number,
  seed: number,
): ((plan: PatternPlan, history: PlantHistory) => PatternPlan) | undefined {
  if (!(s > 0)) return undefined;
  return (plan, history) => {
    const higher = higherTimeframes(plan.primaryTimeframe);
    if (higher.length === 0 || plan.expectedDirection === 0 || plan.resolutionBar < 0) return plan;
    let sum = 0;
    for (const tf of higher)
      sum += pathTimeframeTrend(
        history.logReturn,
        history.anchorLogPrice,
        plan.onsetStep,
        tf,
        startTimeMs,
      );
    const alignment = (sum * plan.expectedDirection) / higher.length;
    const u = new Rng(seed).fork(`outcome-${plan.onsetStep}`).next();
    const failed =
      alignment > 0
        ? plan.adversarial && u >= s * alignment
        : alignment < 0
          ? plan.adversarial || u < -s * alignment
          : plan.adversarial;
    return { ...withOutcome(plan, failed), htfAlignment: alignment };
  };
}

interface AssembleInput {
  symbol: string;
  basePath: BasePath;
  plans: PatternPlan[];
  planted: PlantedPath;
  params: BaseProcessParams;
  seed: number;
  windows: Partial<Record<Timeframe, number>>;
  timeframes: readonly Timeframe[];
  htfInfluence: number;
}

/** Candles of every timeframe from a planted path (fine → 15m → higher), validated. */
function assemble(a: AssembleInput): MultiTimeframeData {
  const fine = buildCandlesFromPath(
    a.planted.path,
    { symbol: a.symbol, microstructure: a.params.microstructure },
    new Rng(a.seed).fork('candles'),
  );
  const frames = aggregateFrames(fine, a.timeframes);
  for (const [tf, c] of frames)
    validateCandles(c, { source: `synthetic ${a.symbol} ${tf} (seed ${a.seed})` });
  const labels = a.planted.planted.map((pp) => plantedLabel(pp, a.planted.path));
  const data: MultiTimeframeData = {
    symbol: a.symbol,
    fine,
    frames,
    basePath: a.basePath,
    planted: a.planted,
    labels,
    visibility: [],
    params: a.params,
    plans: a.plans,
    seed: a.seed,
    windows: a.windows,
    htfInfluence: a.htfInfluence,
  };
  data.visibility = a.planted.planted.map((_, k) => measureVisibility(data, k));
  return data;
}

/**
 * Exact aggregates of fine candles: 15m from the fine step, every timeframe above 15m from 15m,
 * every one below from the fine step (all with `resample`, complete buckets only).
 */
export function aggregateFrames(
  fine: Candles,
  timeframes: readonly Timeframe[],
): Map<Timeframe, Candles> {
  const m15 = resample(fine, '15m').candles;
  const out = new Map<Timeframe, Candles>();
  for (const tf of timeframes) {
    if (tf === '15m') out.set(tf, m15);
    else if (TIMEFRAME_MS[tf] > TIMEFRAME_MS['15m']) out.set(tf, resample(m15, tf).candles);
    else out.set(tf, resample(fine, tf).candles);
  }
  return out;
}

/** How the k-th planted pattern of `data` shows on every timeframe of the market. */
export function measureVisibility(data: MultiTimeframeData, k: number): PatternVisibility {
  const pp = data.planted.planted[k];
  const plan = pp.plan;
  const spanMs = plan.spanBars * plan.barSteps * FINE_MS;
  const perTimeframe: TimeframeVisibility[] = [];
  for (const tf of data.frames.keys()) {
    const barMs = TIMEFRAME_MS[tf];
    const barsSpanned = spanMs / barMs;
    const barSteps = barMs / FINE_MS;
    // Clarity needs bars that tile the pattern from its onset (true for the primary and any
    // finer timeframe) and enough of them to draw a shape.
    const tiles =
      (plan.onsetStep % barSteps === 0 || barSteps <= plan.barSteps) && barsSpanned >= 6;
    perTimeframe.push({
      timeframe: tf,
      barsSpanned,
      fitsWindow: barsSpanned <= (data.windows[tf] ?? Infinity),
      clarity:
        tiles && barSteps <= plan.barSteps
          ? patternClarity(pp, data.planted.path.logReturn, barSteps)
          : NaN,
    });
  }
  const primary = perTimeframe.find((v) => v.timeframe === plan.primaryTimeframe);
  // The primary timeframe is where the whole pattern fits a window with enough bars to read it:
  // finer timeframes need more bars than their windows hold, coarser ones compress it into a few.
  const clearestOnPrimary =
    primary !== undefined &&
    primary.fitsWindow &&
    primary.clarity <= CLEAR_PATTERN &&
    perTimeframe.every(
      (v) =>
        v.timeframe === plan.primaryTimeframe || !v.fitsWindow || v.barsSpanned < MIN_SPAN_BARS,
    );
  return {
    type: plan.type,
    primaryTimeframe: plan.primaryTimeframe,
    perTimeframe,
    clearestOnPrimary,
  };
}

/** Options of `ensurePatternVisibility`. */
export interface VisibilityOptions {
  /** Largest move of a pattern in primary bars (default: a quarter of its span). */
  maxShiftBars?: number;
  /** Largest growth of its size (default 1.3). */
  maxAmplitudeScale?: number;
}

/**
 * Makes every planted pattern of `patternType` on `primaryTimeframe` clearest on that timeframe:
 * the pattern is re-planted, moved by up to a quarter of its span and grown by up to 30% while
 * its clarity on the primary timeframe is worse than `CLEAR_PATTERN` (the other patterns are
 * re-planted as they were). Its expression on the other timeframes is what exact aggregation
 * gives: a stretch longer than the window on finer timeframes, a few bars on coarser ones.
 * @returns new data with the adjusted patterns and their `visibility` report
 * @throws {DataValidationError} when the market holds no such pattern
 */
export function ensurePatternVisibility(
  multiTfData: MultiTimeframeData,
  patternType: PatternType,
  primaryTimeframe: Timeframe,
  options: VisibilityOptions = {},
): MultiTimeframeData {
  const d = multiTfData;
  const match = (plan: PatternPlan): boolean =>
    plan.type === patternType && plan.primaryTimeframe === primaryTimeframe;
  if (!d.plans.some(match))
    fail('patternType', `no ${patternType} on ${primaryTimeframe} in this market`);
  const maxShift =
    options.maxShiftBars ??
    Math.max(1, Math.floor(Math.min(...d.plans.filter(match).map((p) => p.spanBars)) / 4));
  return replant(d, d.plans, {
    maxShiftBars: maxShift,
    maxAmplitudeScale: options.maxAmplitudeScale,
    searchFilter: match,
  });
}

/**
 * `plans` planted again on the base path of `d` with its outcome rule (`htfInfluence`), and the
 * market rebuilt from them (same symbol, parameters, seed, windows and timeframes).
 */
function replant(
  d: MultiTimeframeData,
  plans: PatternPlan[],
  options: Omit<PlantOptions, 'outcome'>,
): MultiTimeframeData {
  const planted = plantPatterns(d.basePath, plans, {
    ...options,
    outcome: htfOutcomeRule(d.htfInfluence, d.basePath.startTimeMs, d.seed),
  });
  return assemble({
    symbol: d.symbol,
    basePath: d.basePath,
    plans,
    planted,
    params: d.params,
    seed: d.seed,
    windows: d.windows,
    timeframes: [...d.frames.keys()],
    htfInfluence: d.htfInfluence,
  });
}

/** Kinds of timeframe confluence. */
export type TimeframeConfluence = 'htf_confirms' | 'htf_contradicts' | 'tf_divergence';

/** The next coarser pattern timeframe (15m → 4h → 1d), or null for 1d. */
export function higherTimeframe(tf: Timeframe): Timeframe | null {
  return higherTimeframes(tf)[0] ?? null;
}

/** Every coarser pattern timeframe, nearest first (15m → [4h, 1d], 4h → [1d], 1d → []). */
export function higherTimeframes(tf: Timeframe): readonly Timeframe[] {
  const k = PATTERN_TIMEFRAMES.indexOf(tf);
  return k >= 0 ? PATTERN_TIMEFRAMES.slice(k + 1) : [];
}

/** Options of `createTimeframeConfluences`. */
export interface TimeframeConfluenceOptions {
  /** Which planted patterns (indices into `labels`; default: every one below 1d with room before it). */
  patterns?: readonly number[];
  /** Bars of the higher-timeframe trend (default: its window). */
  trendBars?: number;
  /** Size of the higher-timeframe trend in its ATRs (default 5). */
  trendAtr?: number;
  /** Jitters of the trend tried per pattern until its candles show the confluence (default 6). */
  attempts?: number;
}

/** The higher-timeframe trend laid in front of a pattern by `createTimeframeConfluences`. */
function htfTrendSkeleton(
  direction: 1 | -1,
  kind: TimeframeConfluence,
  size: number,
  rng: Rng,
): PatternSkeleton {
  const type: PatternType = direction > 0 ? 'uptrend' : 'downtrend';
  const u = (lo: number, hi: number): number => rng.uniform(lo, hi);
  const d = direction;
  // Impulses and pullbacks; for a divergence the last impulse makes a marginal new extreme slowly
  // (momentum fades: the higher timeframe's RSI fails to confirm the new extreme).
  const imp = size / 2.2;
  const pts =
    kind === 'tf_divergence'
      ? [
          { x: 0.2, y: d * imp * u(0.75, 0.85), role: 'peak' as const },
          { x: 0.32, y: d * imp * u(0.4, 0.5), role: 'trough' as const },
          { x: 0.46, y: d * imp * u(1.75, 1.85), role: 'peak' as const },
          { x: 0.62, y: d * imp * u(1.2, 1.3), role: 'trough' as const },
          { x: 0.74, y: d * imp * u(1.55, 1.65), role: 'shape' as const },
          { x: 0.84, y: d * imp * u(1.4, 1.5), role: 'shape' as const },
          { x: 1, y: d * imp * u(1.92, 2), role: 'completion' as const },
        ]
      : [
          { x: 0.25, y: d * imp * u(0.9, 1.1), role: 'peak' as const },
          { x: 0.4, y: d * imp * u(0.55, 0.7), role: 'trough' as const },
          { x: 0.62, y: d * imp * u(1.5, 1.7), role: 'peak' as const },
          { x: 0.78, y: d * imp * u(1.15, 1.3), role: 'trough' as const },
          { x: 1, y: d * imp * u(2.1, 2.3), role: 'completion' as const },
        ];
  return {
    type,
    points: pts.map((q) =>
      d < 0
        ? { ...q, role: q.role === 'peak' ? 'trough' : q.role === 'trough' ? 'peak' : q.role }
        : q,
    ),
    expectedDirection: d,
    resolutionY: 0,
    consolidation: null,
    consolidationScale: 1,
    levels: [],
    volume: [{ kind: 'ramp', x0: 0, x1: 1, factor: 1.2 }],
    strength: 'strong',
  };
}

/**
 * Lays a higher-timeframe trend in front of lower-timeframe patterns: `htf_confirms` trends in the
 * pattern's expected direction, `htf_contradicts` against it, `tf_divergence` against it with
 * fading momentum (the last push makes a marginal new extreme slowly, so the higher timeframe's
 * RSI diverges from its price as the lower-timeframe pattern turns). The trend ends where the
 * pattern begins. Each confluence is verified on the higher timeframe's candles closed by the
 * pattern's onset (`timeframeTrend`, `htfRsiDivergence`); a pattern whose trend does not show it
 * gets another jitter of the trend (up to `attempts`), else keeps the first.
 * @returns new data with the trends planted (patterns without room before them are left as they are)
 * @throws {DataValidationError} for an unknown confluence type
 */
export function createTimeframeConfluences(
  multiTfData: MultiTimeframeData,
  confluenceType: TimeframeConfluence,
  options: TimeframeConfluenceOptions = {},
): MultiTimeframeData {
  if (!['htf_confirms', 'htf_contradicts', 'tf_divergence'].includes(confluenceType))
    fail(
      'confluenceType',
      `unknown confluence "${String(confluenceType)}" (htf_confirms, htf_contradicts, tf_divergence)`,
    );
  const d = multiTfData;
  const rng = new Rng(d.seed).fork(`confluence-${confluenceType}`);
  const chosen = new Set(options.patterns ?? d.plans.map((_, k) => k));
  const attempts = Math.max(1, options.attempts ?? 6);
  // Per pattern, the trend plan of each attempt (a fresh jitter of the trend's skeleton).
  const trends: Array<Array<PatternPlan | null>> = d.plans.map(() => []);
  let prevEnd = 0;
  d.plans.forEach((plan, k) => {
    const htf = higherTimeframe(plan.primaryTimeframe);
    const dir = plan.expectedDirection;
    const barSteps = htf === null ? 0 : fineStepsPerBar(htf);
    const bars = htf === null ? 0 : (options.trendBars ?? d.windows[htf] ?? 32);
    const room = htf === null ? 0 : Math.floor((plan.onsetStep - prevEnd - 1) / barSteps);
    const n = Math.min(bars, room);
    prevEnd = plan.endStep;
    if (!chosen.has(k) || htf === null || dir === 0 || n < MIN_SPAN_BARS) return;
    const trendDir = (confluenceType === 'htf_confirms' ? dir : -dir) as 1 | -1;
    // The trend ends on the higher timeframe's grid at or before the pattern's onset.
    const end = Math.floor(plan.onsetStep / barSteps) * barSteps;
    for (let a = 0; a < attempts; a++) {
      // Each attempt: a fresh jitter and a slightly shorter trend (another stretch of noise).
      const len = Math.max(MIN_SPAN_BARS, n - 2 * (a % 4));
      const sk = htfTrendSkeleton(
        trendDir,
        confluenceType,
        options.trendAtr ?? 5,
        rng.fork(`${k}-${a}`),
      );
      const trend = planPattern(sk, htf, end - len * barSteps, barSteps, len, {
        resolutionBars: 0,
      });
      trends[k].push(trend.onsetStep > 0 && trend.endStep < plan.onsetStep ? trend : null);
    }
  });
  const build = (pick: (k: number) => number): MultiTimeframeData => {
    const plans: PatternPlan[] = [];
    let last = 0;
    d.plans.forEach((plan, k) => {
      const trend = trends[k][pick(k)] ?? null;
      if (trend !== null && trend.onsetStep > last) plans.push(trend);
      plans.push(plan);
      last = plan.endStep;
    });
    return replant(d, plans, { maxShiftBars: 0 });
  };
  // Verify with the higher timeframe's own candles; per pattern keep the first attempt that shows
  // the confluence (the patterns are planted independently of each other).
  const choice = d.plans.map(() => -1);
  for (let a = 0; a < attempts && choice.some((c, k) => c < 0 && trends[k].length > 0); a++) {
    const trial = build(() => a);
    d.plans.forEach((plan, k) => {
      if (choice[k] >= 0 || trends[k].length === 0) return;
      const htf = higherTimeframe(plan.primaryTimeframe) as Timeframe;
      const candles = trial.frames.get(htf);
      const onsetMs = trial.basePath.startTimeMs + plan.onsetStep * FINE_MS;
      if (
        candles !== undefined &&
        showsConfluence(candles, onsetMs, plan.expectedDirection, confluenceType)
      )
        choice[k] = a;
    });
  }
  return build((k) => Math.max(0, choice[k]));
}

/** Whether the higher timeframe shows a confluence at a pattern's onset (from its closed candles). */
function showsConfluence(
  htf: Candles,
  onsetMs: number,
  expected: Direction,
  type: TimeframeConfluence,
): boolean {
  const trend = timeframeTrend(htf, onsetMs);
  if (type === 'htf_confirms') return trend === expected;
  if (type === 'htf_contradicts') return trend === -expected;
  return htfRsiDivergence(htf, onsetMs, -expected as 1 | -1);
}

/**
 * Trend of a timeframe at a decision time, from its candles closed by then: the sign of the close
 * relative to its SMA over `period` bars when the distance exceeds `minAtr`·(mean range), else 0.
 */
export function timeframeTrend(
  candles: Candles,
  decisionTimeMs: number,
  period = 20,
  minAtr = 0.5,
): Direction {
  const last = lastClosedIndex(candles.openTime, decisionTimeMs, TIMEFRAME_MS[candles.timeframe]);
  if (last < period) return 0;
  const close = candles.close.subarray(0, last + 1);
  const m = sma(close, period);
  let range = 0;
  for (let i = last - period + 1; i <= last; i++) range += candles.high[i] - candles.low[i];
  range /= period;
  const dist = close[last] - m[last];
  return Math.abs(dist) < minAtr * range ? 0 : dist > 0 ? 1 : -1;
}

/**
 * Whether the last two swing extremes of `candles` before `decisionTimeMs` (within `lookback`
 * bars) diverge from RSI(14): for `direction` 1 (an up-trend) a higher high in price with a lower
 * RSI, for -1 a lower low with a higher RSI. Computed from candles closed by the decision time.
 */
export function htfRsiDivergence(
  candles: Candles,
  decisionTimeMs: number,
  direction: 1 | -1,
  lookback = 32,
): boolean {
  const last = lastClosedIndex(candles.openTime, decisionTimeMs, TIMEFRAME_MS[candles.timeframe]);
  if (last < lookback + 14) return false;
  const close = candles.close.subarray(0, last + 1);
  const r = rsi(close, 14);
  // Local extremes (3 bars either side, the last bar counts with its left side only).
  const ext: number[] = [];
  for (let i = last - lookback; i <= last; i++) {
    let ok = true;
    for (let j = Math.max(0, i - 3); j <= Math.min(last, i + 3); j++)
      if (j !== i && direction * (close[j] - close[i]) > 0) ok = false;
    if (ok) ext.push(i);
  }
  if (ext.length < 2) return false;
  const a = ext[ext.length - 2];
  const b = ext[ext.length - 1];
  return direction * (close[b] - close[a]) > 0 && direction * (r[b] - r[a]) < 0;
}
