// Indicator behaviour of synthetic patterns. Indicators are always the true ones, computed by the
// one indicators module from the candles; confluences (RSI divergence, a MACD cross at the trend
// change, a Bollinger squeeze before a breakout, a support test on volume) are created by shaping
// the price and volume path of the pattern and then verified by computing the indicators. Lag and
// noise are data augmentations applied to copies for the dataset, recorded in its metadata; they
// never change what the env, the backtester or live trading compute. False signals are measured,
// not assumed.

import { DataValidationError } from '../errors.js';
import { TIMEFRAME_MS, type Candles } from '../data-processing/candles.js';
import {
  adx,
  atr,
  bollingerBands,
  ema,
  macd,
  obv,
  rsi,
  sma,
  volumeZScore,
} from '../data-processing/indicators.js';
import { Rng } from '../utils/random.js';
import {
  generatePattern,
  isPatternType,
  patternFamily,
  patternSkeleton,
  type GeneratedPattern,
  type KeyRole,
  type PatternSkeleton,
  type PatternType,
  type SkeletonPoint,
  type Strength,
  type NoiseProfile,
} from './pattern-generator.js';
import type { BaseProcessParams } from './base-process.js';
import type { Timeframe } from '../data-processing/candles.js';

/** Named indicator columns, one value per candle (NaN during warm-up). */
export type IndicatorSet = Record<string, Float64Array>;

/** Periods of `calculateRealisticIndicators` (TA-Lib defaults). */
export interface IndicatorOptions {
  /** RSI period in bars. Default 14. */
  rsiPeriod?: number;
  /** MACD fast, slow and signal EMA periods in bars. Default 12, 26, 9. */
  macd?: { fast: number; slow: number; signal: number };
  /** Bollinger period (bars) and band width (standard deviations). Default 20, 2. */
  bollinger?: { period: number; stdDev: number };
  /** ATR period in bars. Default 14. */
  atrPeriod?: number;
  /** ADX/DI period in bars. Default 14. */
  adxPeriod?: number;
  /** Look-back of the volume z-score in bars. Default 20. */
  volumePeriod?: number;
  /** SMA periods in bars (one `sma_<n>` column each). Default 20, 50. */
  smaPeriods?: readonly number[];
  /** EMA periods in bars (one `ema_<n>` column each). Default 12, 26. */
  emaPeriods?: readonly number[];
}

/** Indicators that follow price with a delay (moving-average based). */
export const LAGGING_INDICATORS: readonly string[] = Object.freeze([
  'sma',
  'ema',
  'macd',
  'macd_signal',
  'macd_hist',
  'bb_upper',
  'bb_middle',
  'bb_lower',
  'atr',
  'adx',
  'obv',
]);

/**
 * The indicators of candles, computed by the one indicators module (`data-processing/indicators`)
 * with TA-Lib conventions: RSI, MACD line/signal/histogram, Bollinger bands with %B and bandwidth,
 * ATR, ADX with ±DI, OBV, volume z-score, SMAs and EMAs. The same function serves real and
 * synthetic candles: synthetic indicators behave realistically because the candles do.
 * @param syntheticPriceData any candles
 * @returns columns `rsi`, `macd`, `macd_signal`, `macd_hist`, `bb_upper`, `bb_middle`, `bb_lower`,
 *   `bb_pctb`, `bb_width`, `atr`, `adx`, `plus_di`, `minus_di`, `obv`, `volume_z`, `sma_<n>`, `ema_<n>`
 */
export function calculateRealisticIndicators(
  syntheticPriceData: Candles,
  options: IndicatorOptions = {},
): IndicatorSet {
  const c = syntheticPriceData;
  const m = options.macd ?? { fast: 12, slow: 26, signal: 9 };
  const bb = options.bollinger ?? { period: 20, stdDev: 2 };
  const mac = macd(c.close, { fastPeriod: m.fast, slowPeriod: m.slow, signalPeriod: m.signal });
  const bands = bollingerBands(c.close, {
    period: bb.period,
    stdDevUp: bb.stdDev,
    stdDevDown: bb.stdDev,
  });
  const dmi = adx(c.high, c.low, c.close, options.adxPeriod ?? 14);
  const out: IndicatorSet = {
    rsi: rsi(c.close, options.rsiPeriod ?? 14),
    macd: mac.macd,
    macd_signal: mac.signal,
    macd_hist: mac.histogram,
    bb_upper: bands.upper,
    bb_middle: bands.middle,
    bb_lower: bands.lower,
    bb_pctb: bands.percentB,
    bb_width: bands.bandwidth,
    atr: atr(c.high, c.low, c.close, options.atrPeriod ?? 14),
    adx: dmi.adx,
    plus_di: dmi.plusDi,
    minus_di: dmi.minusDi,
    obv: obv(c.close, c.volume),
    volume_z: volumeZScore(c.volume, { period: options.volumePeriod ?? 20 }),
  };
  for (const p of options.smaPeriods ?? [20, 50]) out[`sma_${p}`] = sma(c.close, p);
  for (const p of options.emaPeriods ?? [12, 26]) out[`ema_${p}`] = ema(c.close, p);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Signals and their false-signal frequency

/** Kinds of indicator signal. */
export type SignalKind =
  'macd_cross' | 'rsi_reversal' | 'bollinger_breakout' | 'bollinger_squeeze_breakout';

/** One indicator signal: where, which way. */
export interface IndicatorSignal {
  /** Which signal fired. */
  kind: SignalKind;
  /** Index of the candle on whose close the signal is known. */
  index: number;
  /** Direction the signal points: 1 up, -1 down. */
  direction: 1 | -1;
}

/**
 * The classic signals of a candle series, each known at the close of its candle: MACD line
 * crossing its signal line, RSI leaving oversold (< 30, up) or overbought (> 70, down), a close
 * outside a Bollinger band (continuation), and such a close right after a squeeze (bandwidth at
 * its lowest 10% of the last 100 bars within the 5 bars before).
 */
export function indicatorSignals(candles: Candles, indicators?: IndicatorSet): IndicatorSignal[] {
  const ind = indicators ?? calculateRealisticIndicators(candles);
  const n = candles.close.length;
  const out: IndicatorSignal[] = [];
  const { macd: line, macd_signal: sig, rsi: r, bb_upper: up, bb_lower: lo, bb_width: w } = ind;
  for (let i = 1; i < n; i++) {
    const d0 = line[i - 1] - sig[i - 1];
    const d1 = line[i] - sig[i];
    if (d0 === d0 && d1 === d1 && d0 <= 0 !== d1 <= 0)
      out.push({ kind: 'macd_cross', index: i, direction: d1 > 0 ? 1 : -1 });
    if (r[i - 1] < 30 && r[i] >= 30) out.push({ kind: 'rsi_reversal', index: i, direction: 1 });
    if (r[i - 1] > 70 && r[i] <= 70) out.push({ kind: 'rsi_reversal', index: i, direction: -1 });
    const c = candles.close[i];
    const pc = candles.close[i - 1];
    const breakUp = c > up[i] && !(pc > up[i - 1]);
    const breakDown = c < lo[i] && !(pc < lo[i - 1]);
    if (breakUp || breakDown) {
      const direction = breakUp ? 1 : -1;
      out.push({ kind: 'bollinger_breakout', index: i, direction });
      if (i >= 100 && squeezeBefore(w, i, 100, 5, 0.1))
        out.push({ kind: 'bollinger_squeeze_breakout', index: i, direction });
    }
  }
  return out;
}

/** Whether the bandwidth was in its lowest `q` share of the `look` bars before bar i within `within` bars. */
function squeezeBefore(
  width: Float64Array,
  i: number,
  look: number,
  within: number,
  q: number,
): boolean {
  const hist: number[] = [];
  for (let k = i - look; k < i; k++) if (width[k] === width[k]) hist.push(width[k]);
  if (hist.length < look / 2) return false;
  hist.sort((a, b) => a - b);
  const cut = hist[Math.floor(q * (hist.length - 1))];
  for (let k = i - within; k < i; k++) if (width[k] <= cut) return true;
  return false;
}

/** False-signal frequency per signal kind. */
export interface FalseSignalReport {
  /** Forward horizon in bars over which a signal must pay. */
  horizonBars: number;
  /** Per kind: signals, false ones (the close `horizonBars` later is on the wrong side), and their share. */
  perKind: Record<SignalKind, { signals: number; falseSignals: number; rate: number }>;
  /** Signals, false ones and their share over every kind (rate NaN without signals). */
  overall: { signals: number; falseSignals: number; rate: number };
}

/**
 * Measures how often the indicators' signals are false: a signal with direction d is false when
 * the log return from its close to the close `horizonBars` later has the other sign.
 */
export function measureFalseSignals(
  candles: Candles,
  options: { horizonBars?: number; indicators?: IndicatorSet } = {},
): FalseSignalReport {
  const h = options.horizonBars ?? 10;
  const signals = indicatorSignals(candles, options.indicators);
  const kinds: SignalKind[] = [
    'macd_cross',
    'rsi_reversal',
    'bollinger_breakout',
    'bollinger_squeeze_breakout',
  ];
  const perKind = Object.fromEntries(
    kinds.map((k) => [k, { signals: 0, falseSignals: 0, rate: NaN }]),
  ) as FalseSignalReport['perKind'];
  const overall = { signals: 0, falseSignals: 0, rate: NaN };
  const c = candles.close;
  for (const s of signals) {
    if (s.index + h >= c.length) continue;
    const r = Math.log(c[s.index + h] / c[s.index]);
    const bad = s.direction * r <= 0;
    perKind[s.kind].signals++;
    overall.signals++;
    if (bad) {
      perKind[s.kind].falseSignals++;
      overall.falseSignals++;
    }
  }
  for (const k of kinds) {
    const e = perKind[k];
    e.rate = e.signals > 0 ? e.falseSignals / e.signals : NaN;
  }
  overall.rate = overall.signals > 0 ? overall.falseSignals / overall.signals : NaN;
  return { horizonBars: h, perKind, overall };
}

// ---------------------------------------------------------------------------------------------
// Confluences: shaped into the price and volume path, verified with the true indicators

/** Confluences `createFeatureConfluences` can create. */
export const CONFLUENCE_TYPES = [
  'bearish_divergence',
  'bullish_divergence',
  'macd_cross',
  'bollinger_squeeze',
  'support_test_volume',
] as const;

/** A confluence type. */
export type ConfluenceType = (typeof CONFLUENCE_TYPES)[number];

/** What was checked for a confluence, with the indicator values that decided it. */
export interface ConfluenceCheck {
  /** The confluence checked. */
  type: ConfluenceType;
  /** Whether the true indicators show it. */
  present: boolean;
  /** Candle indices (in the pattern's candles) the check looked at. */
  at: number[];
  /** The values compared (price, RSI, bandwidth percentile, volume z-score ...). */
  values: Record<string, number>;
}

/** Result of `createFeatureConfluences`. */
export interface ConfluenceResult {
  /** The pattern reshaped to carry the confluence. */
  pattern: GeneratedPattern;
  /** The true indicators of its candles. */
  indicators: IndicatorSet;
  /** The check that confirmed the confluence. */
  check: ConfluenceCheck;
  /** Base-noise draws tried until the true indicators showed the confluence. */
  attempts: number;
}

/** Index in the pattern's candles of the bar a key point closes. */
function keyIndex(g: GeneratedPattern, timeMs: number): number {
  const barMs = TIMEFRAME_MS[g.timeframe];
  const t0 = g.candles.openTime[0];
  return Math.round((timeMs - barMs - t0) / barMs);
}

const PEAK_ROLES: ReadonlySet<KeyRole> = new Set<KeyRole>(['peak', 'head', 'shoulder', 'pole']);
const TROUGH_ROLES: ReadonlySet<KeyRole> = new Set<KeyRole>(['trough', 'touch', 'neckline']);

/** The last two extremes of one side among a pattern's key points (before completion). */
function lastTwoExtremes(g: GeneratedPattern, highs: boolean): [number, number] | null {
  const pts = g.label.keyPoints.filter((p) => p.role !== 'completion' && p.role !== 'start');
  const idx: number[] = [];
  for (let k = 0; k < pts.length; k++) {
    const p = pts[k];
    const prev = k > 0 ? pts[k - 1].price : g.label.keyPoints[0].price;
    const next = k + 1 < pts.length ? pts[k + 1].price : p.price;
    const isExt = highs ? p.price >= prev && p.price >= next : p.price <= prev && p.price <= next;
    const roleOk = highs ? PEAK_ROLES.has(p.role) : TROUGH_ROLES.has(p.role);
    if (isExt && roleOk) idx.push(keyIndex(g, p.timeMs));
  }
  return idx.length >= 2 ? [idx[idx.length - 2], idx[idx.length - 1]] : null;
}

/**
 * Checks a confluence on a pattern's candles with the true indicators:
 * - `bearish_divergence`: the last two tops: the later close is at least as high, its RSI lower;
 * - `bullish_divergence`: the last two bottoms: the later close at least as low, its RSI higher;
 * - `macd_cross`: the MACD line crosses its signal line, in the pattern's expected direction,
 *   within 4 bars of the completion (the trend change);
 * - `bollinger_squeeze`: the bandwidth within the 6 bars before completion is in the lowest 15%
 *   of the 60 bars before, and the completion closes outside the band it breaks;
 * - `support_test_volume`: the last test of the support/the last trough carries a volume z-score
 *   (20 bars) of at least 1.5.
 */
export function checkConfluence(
  g: GeneratedPattern,
  confluenceType: ConfluenceType,
  indicators?: IndicatorSet,
): ConfluenceCheck {
  const ind = indicators ?? calculateRealisticIndicators(g.candles);
  const c = g.candles.close;
  const done = g.completionIndex;
  const fail = (at: number[], values: Record<string, number>): ConfluenceCheck => ({
    type: confluenceType,
    present: false,
    at,
    values,
  });
  switch (confluenceType) {
    case 'bearish_divergence':
    case 'bullish_divergence': {
      const highs = confluenceType === 'bearish_divergence';
      const pair = lastTwoExtremes(g, highs);
      if (pair === null) return fail([], {});
      const [a, b] = pair;
      const d = highs ? 1 : -1;
      const values = { priceA: c[a], priceB: c[b], rsiA: ind.rsi[a], rsiB: ind.rsi[b] };
      const present = d * (c[b] - c[a]) >= 0 && d * (ind.rsi[b] - ind.rsi[a]) < -1;
      return { type: confluenceType, present, at: [a, b], values };
    }
    case 'macd_cross': {
      const dir = g.label.expectedDirection;
      for (let i = Math.max(1, done - 4); i <= Math.min(c.length - 1, done + 4); i++) {
        const d0 = ind.macd[i - 1] - ind.macd_signal[i - 1];
        const d1 = ind.macd[i] - ind.macd_signal[i];
        if (d0 === d0 && d1 === d1 && d0 <= 0 !== d1 <= 0 && (dir === 0 || Math.sign(d1) === dir))
          return { type: confluenceType, present: true, at: [i], values: { lagBars: i - done } };
      }
      return fail([done], {});
    }
    case 'bollinger_squeeze': {
      const w = ind.bb_width;
      const hist: number[] = [];
      for (let k = Math.max(0, done - 66); k < done - 6; k++) if (w[k] === w[k]) hist.push(w[k]);
      if (hist.length < 20) return fail([done], {});
      hist.sort((x, y) => x - y);
      let low = Infinity;
      for (let k = done - 6; k < done; k++) low = Math.min(low, w[k]);
      let rank = 0;
      while (rank < hist.length && hist[rank] < low) rank++;
      const percentile = rank / hist.length;
      const dir = g.label.expectedDirection;
      const outside = dir >= 0 ? c[done] > ind.bb_upper[done] : c[done] < ind.bb_lower[done];
      return {
        type: confluenceType,
        present: percentile <= 0.15 && outside,
        at: [done],
        values: { bandwidthPercentile: percentile, closeOutsideBand: outside ? 1 : 0 },
      };
    }
    case 'support_test_volume': {
      const pair = lastTwoExtremes(g, false);
      if (pair === null) return fail([], {});
      const t = pair[1];
      let z = -Infinity;
      for (let k = t; k <= Math.min(done, t + 1); k++) z = Math.max(z, ind.volume_z[k]);
      return { type: confluenceType, present: z >= 1.5, at: [t], values: { volumeZ: z } };
    }
  }
}

/** Makes a skeleton show a confluence (the price and volume shaping of `createFeatureConfluences`). */
function shapeForConfluence(sk: PatternSkeleton, type: ConfluenceType): PatternSkeleton {
  const out: PatternSkeleton = {
    ...sk,
    points: sk.points.map((p) => ({ ...p })),
    volume: [...sk.volume],
    levels: [...sk.levels],
  };
  const pts = out.points;
  if (type === 'bearish_divergence' || type === 'bullish_divergence') {
    // The last top (bottom) edges past the previous one, but is reached in a slow, choppy climb
    // (decline) so the RSI makes a lower high (higher low); the previous one is reached steeply.
    const d = type === 'bearish_divergence' ? 1 : -1;
    // Tops (bottoms): key points above (below) both neighbours.
    const ext = pts
      .map((p, k) => ({ p, k }))
      .filter(({ p, k }) => {
        if (p.role === 'shape' || p.role === 'completion' || p.fromEnd !== undefined) return false;
        const prev = k > 0 ? pts[k - 1].y : 0;
        const next = k + 1 < pts.length ? pts[k + 1].y : p.y;
        return d * (p.y - prev) > 0 && d * (p.y - next) > 0;
      });
    if (ext.length < 2)
      throw new DataValidationError({
        source: 'confluence',
        field: 'confluenceType',
        reason: `${sk.type} has fewer than two ${d > 0 ? 'tops' : 'bottoms'} to diverge`,
      });
    const a = ext[ext.length - 2];
    const b = ext[ext.length - 1];
    b.p.y = d > 0 ? Math.max(b.p.y, a.p.y + 0.25) : Math.min(b.p.y, a.p.y - 0.25);
    // The point before b: the trough (peak) between; add a choppy climb into b.
    const prev = pts[b.k - 1];
    const span = b.p.x - prev.x;
    const leg = b.p.y - prev.y;
    const extra: SkeletonPoint[] = [
      { x: prev.x + 0.4 * span, y: prev.y + 0.55 * leg, role: 'shape' },
      { x: prev.x + 0.6 * span, y: prev.y + 0.3 * leg, role: 'shape' },
      { x: prev.x + 0.85 * span, y: prev.y + 0.8 * leg, role: 'shape' },
    ];
    pts.splice(b.k, 0, ...extra);
    // A steep approach to a: drop the shape points of its leg.
    const aPrev = a.k - 1;
    if (aPrev >= 0 && pts[aPrev].role === 'shape') pts.splice(aPrev, 1);
  } else if (type === 'bollinger_squeeze') {
    const [x0] = out.consolidation ?? [0.5, 0.95];
    out.consolidation = [Math.max(0.15, x0), 0.95];
    out.consolidationScale = Math.min(out.consolidationScale, 0.4);
  } else if (type === 'support_test_volume') {
    for (const p of pts)
      if (TROUGH_ROLES.has(p.role))
        out.volume.push({
          kind: 'spike',
          x0: p.fromEnd !== undefined ? 1 - 1e-9 : p.x,
          x1: p.x,
          factor: 2.8,
        });
  } else if (type === 'macd_cross') {
    // A sharper turn: the last extreme before completion moves one step closer to it.
    for (let k = pts.length - 2; k >= 0; k--) {
      if (pts[k].role !== 'shape' && pts[k].fromEnd === undefined) {
        pts[k].x = Math.min(0.9, pts[k].x + 0.05);
        break;
      }
    }
  }
  return out;
}

/** Options of `createFeatureConfluences`. */
export interface ConfluenceOptions {
  /** Draws of the base noise to try before giving up (default 12). */
  maxAttempts?: number;
}

/**
 * Creates an indicator confluence in a generated pattern by shaping its price and volume path
 * (see `checkConfluence` for each type's definition): a divergence reaches the last top (bottom)
 * in a slow, choppy climb (decline) that edges past the previous one; a Bollinger squeeze contracts
 * the volatility of the consolidation before the breakout; a support test gets a volume spike; a
 * MACD cross comes from a sharper turn. The pattern is regenerated on fresh draws of the base
 * noise until the true indicators, computed from the candles, show the confluence.
 * @param basePattern a pattern from `generatePattern` or the generate* functions
 * @returns the reshaped pattern, its indicators, the check, and the attempts used
 * @throws {DataValidationError} when the confluence cannot be shaped into this pattern (e.g. a
 *   divergence in a pattern with a single top) or did not appear within `maxAttempts`
 */
export function createFeatureConfluences(
  basePattern: GeneratedPattern,
  confluenceType: ConfluenceType,
  options: ConfluenceOptions = {},
): ConfluenceResult {
  if (!(CONFLUENCE_TYPES as readonly string[]).includes(confluenceType))
    throw new DataValidationError({
      source: 'confluence',
      field: 'confluenceType',
      reason: `unknown confluence "${String(confluenceType)}" (one of ${CONFLUENCE_TYPES.join(', ')})`,
    });
  const skeleton = shapeForConfluence(basePattern.skeleton, confluenceType);
  const maxAttempts = options.maxAttempts ?? 12;
  const seed0 = basePattern.request.options.seed ?? 0;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const pattern = generatePattern({
      ...basePattern.request,
      options: { ...basePattern.request.options, seed: seed0 + 7919 * attempt },
      skeleton,
    });
    const indicators = calculateRealisticIndicators(pattern.candles);
    const check = checkConfluence(pattern, confluenceType, indicators);
    if (check.present) return { pattern, indicators, check, attempts: attempt };
  }
  throw new DataValidationError({
    source: 'confluence',
    field: 'confluenceType',
    reason: `${confluenceType} did not appear in ${basePattern.label.type} within ${maxAttempts} draws`,
  });
}

/** Parameters of `generatePatternWithIndicators`. */
export interface PatternWithIndicatorsParams {
  /** Candles of the primary timeframe (default 80). */
  length?: number;
  /** Primary timeframe of the pattern. Default 15m. */
  timeframe?: Timeframe;
  /** Seed of everything random. Default 0. */
  seed?: number;
  /** Noise between waypoints (0.05 = the base's own). Default 0.05. */
  noiseLevel?: number;
  /** Character of the noise between waypoints. Default market_like. */
  noiseProfile?: NoiseProfile;
  /** Strength of support/resistance reactions. Default strong. */
  strength?: Strength;
  /** Base-process parameters. Default the shipped BTC calibration. */
  params?: BaseProcessParams;
  /** Confluences to create (shaped and verified); default none. */
  confluences?: readonly ConfluenceType[];
}

/** Result of `generatePatternWithIndicators`. */
export interface PatternWithIndicators {
  /** The generated pattern (with any confluences shaped in). */
  pattern: GeneratedPattern;
  /** The true indicators of the pattern's candles, or null when not asked for. */
  indicators: IndicatorSet | null;
  /** The confluences this pattern type usually carries, checked on its indicators. */
  confluences: ConfluenceCheck[];
}

/** Confluences a trader expects with each family of pattern. */
function naturalConfluences(type: PatternType, direction: number): ConfluenceType[] {
  const family = patternFamily(type);
  if (family === 'reversal')
    return [direction < 0 ? 'bearish_divergence' : 'bullish_divergence', 'macd_cross'];
  if (family === 'continuation') return ['bollinger_squeeze', 'macd_cross'];
  if (family === 'support_resistance') return ['support_test_volume'];
  return ['macd_cross'];
}

/**
 * Generates a pattern with the indicator behaviour that goes with it: the pattern on the base
 * process, its true indicators, and the confluences a trader expects with it (divergence and a
 * MACD cross for reversals, a squeeze before continuation breakouts, volume at support tests)
 * checked on those indicators. Confluences listed in `params.confluences` are created first
 * (`createFeatureConfluences`).
 * @param patternType any pattern type
 * @param includeIndicators return the indicator columns (default true)
 * @throws {DataValidationError} for an unknown pattern type or a confluence that cannot be created
 */
export function generatePatternWithIndicators(
  patternType: PatternType,
  params: PatternWithIndicatorsParams = {},
  includeIndicators = true,
): PatternWithIndicators {
  if (!isPatternType(patternType))
    throw new DataValidationError({
      source: 'pattern generator',
      field: 'patternType',
      reason: `unknown pattern type "${String(patternType)}"`,
    });
  const rng = new Rng(params.seed ?? 0);
  const skeleton = patternSkeleton(patternType, rng.fork('skeleton'), {
    strength: params.strength,
  });
  let pattern = generatePattern({
    type: patternType,
    length: params.length ?? 80,
    options: {
      timeframe: params.timeframe,
      seed: params.seed,
      noiseLevel: params.noiseLevel,
      noiseProfile: params.noiseProfile,
      params: params.params,
    },
    volatilityScale: 1,
    skeletonOptions: { strength: params.strength },
    skeleton,
  });
  for (const c of params.confluences ?? []) pattern = createFeatureConfluences(pattern, c).pattern;
  const indicators = calculateRealisticIndicators(pattern.candles);
  const wanted = new Set<ConfluenceType>([
    ...naturalConfluences(patternType, pattern.label.expectedDirection),
    ...(params.confluences ?? []),
  ]);
  const confluences = [...wanted].map((c) => checkConfluence(pattern, c, indicators));
  return { pattern, indicators: includeIndicators ? indicators : null, confluences };
}

// ---------------------------------------------------------------------------------------------
// Augmentations (dataset copies only)

/** Options of `simulateIndicatorLag`. */
export interface IndicatorLagOptions {
  /** Bars of extra delay per indicator name (default: 1 bar for every lagging indicator). */
  lagBars?: Readonly<Record<string, number>> | number;
}

/**
 * Data augmentation: delays lagging indicators (moving-average based, `LAGGING_INDICATORS`, and
 * any `sma_*` / `ema_*`) by extra bars, as a slower feed or a slower setting would, so a model
 * does not rely on their exact timing. Leading indicators (RSI, volume z-score, %B) are left as
 * they are. Causal: bar i takes the value of bar i − k. Returns new arrays; the input is not
 * changed. Never used on what the env or backtester compute.
 * @param priceData the candles the indicators belong to (checked for length)
 * @throws {DataValidationError} when an indicator's length differs from the candles'
 */
export function simulateIndicatorLag(
  priceData: Candles,
  indicators: IndicatorSet,
  options: IndicatorLagOptions = {},
): IndicatorSet {
  const n = priceData.close.length;
  const out: IndicatorSet = {};
  for (const [name, col] of Object.entries(indicators)) {
    if (col.length !== n)
      throw new DataValidationError({
        source: 'simulateIndicatorLag',
        field: name,
        reason: `length ${col.length} differs from the candles' ${n}`,
      });
    const lagging = LAGGING_INDICATORS.includes(name) || /^(sma|ema)_\d+$/.test(name);
    const lag =
      typeof options.lagBars === 'number'
        ? lagging
          ? options.lagBars
          : 0
        : (options.lagBars?.[name] ?? (lagging ? 1 : 0));
    out[name] = lagColumn(col, lag);
  }
  return out;
}

/** A column delayed by `lag` bars (the first `lag` values NaN). */
export function lagColumn(col: ArrayLike<number>, lag: number): Float64Array {
  const out = new Float64Array(col.length);
  for (let i = 0; i < col.length; i++) out[i] = i - lag >= 0 ? col[i - lag] : NaN;
  return out;
}

/** Noise levels of `addIndicatorNoise` as a share of each indicator's typical bar-to-bar change. */
export const INDICATOR_NOISE_LEVELS: Readonly<Record<'low' | 'realistic' | 'high', number>> =
  Object.freeze({
    low: 0.15,
    realistic: 0.35,
    high: 0.7,
  });

/** Result of `addIndicatorNoise`. */
export interface IndicatorNoiseResult {
  /** The noisy indicator columns (new arrays; the input is untouched). */
  indicators: IndicatorSet;
  /**
   * Extra crossings the noise created, per indicator, relative to the clean one: crossings of the
   * column's own median (for MACD, of zero; for RSI, of 30 and 70) added over those removed.
   */
  extraCrossings: Record<string, number>;
}

/**
 * Data augmentation: adds persistent (AR(1), φ = 0.6) noise to indicators, scaled to each
 * indicator's own typical bar-to-bar change so that it blurs but does not invalidate the signal,
 * and reports how many extra crossings (false signals) it created. Bounded oscillators stay in
 * their range (RSI in [0, 100]). Returns new arrays; seeded; never used on what the env or
 * backtester compute.
 * @param noiseLevel low | realistic | high, or a share of the typical change
 */
export function addIndicatorNoise(
  indicators: IndicatorSet,
  noiseLevel: 'low' | 'realistic' | 'high' | number = 'realistic',
  options: { seed?: number } = {},
): IndicatorNoiseResult {
  const level = typeof noiseLevel === 'number' ? noiseLevel : INDICATOR_NOISE_LEVELS[noiseLevel];
  if (!(level >= 0 && Number.isFinite(level)))
    throw new DataValidationError({
      source: 'addIndicatorNoise',
      field: 'noiseLevel',
      reason: `must be low, realistic, high or a number >= 0, got ${String(noiseLevel)}`,
    });
  const rng = new Rng(options.seed ?? 0);
  const out: IndicatorSet = {};
  const extraCrossings: Record<string, number> = {};
  for (const [name, col] of Object.entries(indicators)) {
    const scale = level * typicalChange(col);
    const r = rng.fork(name);
    const noisy = new Float64Array(col.length);
    let e = 0;
    const phi = 0.6;
    const innov = Math.sqrt(1 - phi * phi);
    for (let i = 0; i < col.length; i++) {
      e = phi * e + innov * r.normal();
      let v = col[i] + scale * e;
      if (name === 'rsi' && v === v) v = Math.min(100, Math.max(0, v));
      noisy[i] = v;
    }
    out[name] = noisy;
    const level0 = name === 'rsi' ? [30, 70] : name.startsWith('macd') ? [0] : [median(col)];
    extraCrossings[name] = crossings(noisy, level0) - crossings(col, level0);
  }
  return { indicators: out, extraCrossings };
}

function typicalChange(col: ArrayLike<number>): number {
  const d: number[] = [];
  for (let i = 1; i < col.length; i++) {
    const x = col[i] - col[i - 1];
    if (x === x) d.push(Math.abs(x));
  }
  if (d.length === 0) return 0;
  d.sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)] * 1.4826;
}

function median(col: ArrayLike<number>): number {
  const v: number[] = [];
  for (let i = 0; i < col.length; i++) if (col[i] === col[i]) v.push(col[i]);
  if (v.length === 0) return 0;
  v.sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
}

function crossings(col: ArrayLike<number>, levels: readonly number[]): number {
  let n = 0;
  for (const l of levels)
    for (let i = 1; i < col.length; i++) {
      const a = col[i - 1] - l;
      const b = col[i] - l;
      if (a === a && b === b && a <= 0 !== b <= 0) n++;
    }
  return n;
}
