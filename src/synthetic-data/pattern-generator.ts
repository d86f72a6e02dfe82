// Chart patterns imposed on the realistic base process. A pattern is a skeleton of waypoints in
// price and time (prices in ATR units of its primary timeframe, times in that timeframe's bars);
// the base path is conditioned on the waypoints (`conditionOnWaypoints`, a bridge with the path's
// own time-varying volatility), so between waypoints the path keeps the base's heavy-tailed
// shocks, jumps and volatility clustering. Volume is the base volume times a pattern envelope
// (rising into breakouts and ahead of them, declining in consolidations, spiking at key levels).
// Owns the pattern catalogue, the planting engine and the spec's generate* functions.
// It never edits the base process, never writes outside the returned arrays, and never uses an
// unseeded random number; OHLC validity comes from `buildCandlesFromPath` and is checked.

import { DataValidationError } from '../errors.js';
import {
  sliceCandles,
  TIMEFRAME_MS,
  validateCandles,
  lowerBound,
  makeCandles,
  type Candles,
  type Timeframe,
} from '../data-processing/candles.js';
import { resample } from '../data-processing/resample.js';
import { Rng } from '../utils/random.js';
import {
  aggregateFineCandles,
  buildCandlesFromPath,
  conditionOnWaypoints,
  simulateBasePath,
  type BasePath,
  type BaseProcessParams,
  type FineTimeframe,
  type Waypoint,
} from './base-process.js';
import { loadCalibration } from './calibration.js';

// ---------------------------------------------------------------------------------------------
// Catalogue

/** Trend patterns (`generateTrendPattern`). */
export const TREND_TYPES = ['uptrend', 'downtrend', 'sideways'] as const;
/** Reversal patterns (`generateReversalPattern`). */
export const REVERSAL_TYPES = [
  'double_top',
  'double_bottom',
  'head_shoulders',
  'inverse_head_shoulders',
  'triple_top',
  'triple_bottom',
  'v_top',
  'v_bottom',
  'rounding_top',
  'rounding_bottom',
] as const;
/** Continuation patterns (`generateContinuationPattern`). */
export const CONTINUATION_TYPES = [
  'bull_flag',
  'bear_flag',
  'ascending_triangle',
  'descending_triangle',
  'symmetric_triangle',
  'rising_wedge',
  'falling_wedge',
] as const;
/** Support/resistance reactions (`generateSupportResistanceReaction`): `<level>_<reaction>`. */
export const SUPPORT_RESISTANCE_TYPES = [
  'support_bounce',
  'resistance_bounce',
  'resistance_breakout',
  'support_breakout',
  'resistance_false_breakout',
  'support_false_breakout',
  'resistance_retest',
  'support_retest',
] as const;

/** A trend type. */
export type TrendType = (typeof TREND_TYPES)[number];
/** A reversal pattern type. */
export type ReversalType = (typeof REVERSAL_TYPES)[number];
/** A continuation pattern type. */
export type ContinuationType = (typeof CONTINUATION_TYPES)[number];
/** A support/resistance reaction pattern type. */
export type SupportResistanceType = (typeof SUPPORT_RESISTANCE_TYPES)[number];
/** Every planted pattern type. */
export type PatternType = TrendType | ReversalType | ContinuationType | SupportResistanceType;

/** Every pattern type, in label order (the dataset's pattern class k is `PATTERN_TYPES[k - 1]`). */
export const PATTERN_TYPES: readonly PatternType[] = Object.freeze([
  ...TREND_TYPES,
  ...REVERSAL_TYPES,
  ...CONTINUATION_TYPES,
  ...SUPPORT_RESISTANCE_TYPES,
]);

/** Family of a pattern type. */
export type PatternFamily = 'trend' | 'reversal' | 'continuation' | 'support_resistance';

/** Family of each pattern type. */
export function patternFamily(type: PatternType): PatternFamily {
  if ((TREND_TYPES as readonly string[]).includes(type)) return 'trend';
  if ((REVERSAL_TYPES as readonly string[]).includes(type)) return 'reversal';
  if ((CONTINUATION_TYPES as readonly string[]).includes(type)) return 'continuation';
  return 'support_resistance';
}

/** True when `s` names a pattern type. */
export function isPatternType(s: string): s is PatternType {
  return (PATTERN_TYPES as readonly string[]).includes(s);
}

/** Direction of a move: -1 down, 0 none, 1 up. */
export type Direction = -1 | 0 | 1;
/** Strength of a support/resistance level (how exact and how often it is respected). */
export type Strength = 'weak' | 'medium' | 'strong';
/** Character of the noise between waypoints (`addRealisticNoise`). */
export type NoiseProfile = 'market_like' | 'choppy' | 'trending';
/** Volatility level of a generated trend. */
export type VolatilityProfile = 'low' | 'medium' | 'high';
/** Volume behaviour over a pattern on top of its textbook events. */
export type VolumeProfile = 'natural' | 'increasing' | 'decreasing' | 'spike';
/** Role of a skeleton point. */
export type KeyRole =
  | 'start'
  | 'peak'
  | 'trough'
  | 'head'
  | 'shoulder'
  | 'neckline'
  | 'touch'
  | 'pole'
  | 'swing'
  | 'shape'
  | 'prebreak'
  | 'poke'
  | 'completion';
/** Kind of a horizontal or sloped level of a pattern. */
export type LevelKind = 'support' | 'resistance' | 'neckline' | 'upper' | 'lower';

/** The noise levels the spec's generate* functions take: 0.05 is the base's natural noise. */
export const NATURAL_NOISE_LEVEL = 0.05;

/**
 * A point of a skeleton: `x` in [0, 1] is the position in the pattern span (0 = onset, 1 = the
 * completion bar), unless `fromEnd` places it that many bars before the completion bar; `y` is
 * the log-price offset from the level at onset in ATR units of the primary timeframe.
 */
export interface SkeletonPoint {
  /**
   * Position in the pattern span, in [0, 1] (0 = onset, 1 = completion bar); ignored when `fromEnd`
   * is set.
   */
  x: number;
  /** Log-price offset from the level at onset, ATR units of the primary timeframe. */
  y: number;
  /** What the point is in the pattern (peak, neckline, touch, completion, ...). */
  role: KeyRole;
  /** Places the point this many primary bars before the completion bar instead of at `x`. */
  fromEnd?: number;
}

/** A volume event of a skeleton, positions as in `SkeletonPoint.x`. */
export interface SkeletonVolumeEvent {
  /** spike: one bar (and a decaying tail); ramp: rises to `factor` over [x0, x1]; level: moves to `factor` over [x0, x1], then back. */
  kind: 'spike' | 'ramp' | 'level';
  /** Start of the event as a position in the span, in [0, 1] (the bar of a spike). */
  x0: number;
  /** End of the event as a position in the span, in [0, 1]. */
  x1: number;
  /** Volume multiplier the event reaches (1 = the base volume). */
  factor: number;
}

/** A line of a skeleton: y = y0 + slope·(x − x0) in ATR units, e.g. a neckline or a support. */
export interface SkeletonLevel {
  /** What the line is (support, resistance, neckline, channel upper or lower). */
  kind: LevelKind;
  /** Reference position of the line in the span, in [0, 1]. */
  x0: number;
  /** Line's log-price offset at `x0`, ATR units. */
  y0: number;
  /** ATR units per unit of x (0 for a horizontal level). */
  slope: number;
}

/** The textbook shape of a pattern, before it is laid on bars. */
export interface PatternSkeleton {
  /** Pattern type the skeleton draws. */
  type: PatternType;
  /** Waypoints in span order. */
  points: SkeletonPoint[];
  /** Textbook direction of the move after completion (-1, 0, 1). */
  expectedDirection: Direction;
  /** Move after the completion bar (ATR units, signed) that the textbook resolution makes. */
  resolutionY: number;
  /** Span [x0, x1] of the consolidation, where volatility contracts to `consolidationScale`. */
  consolidation: [number, number] | null;
  /** Volatility multiplier inside `consolidation` (1 = none, < 1 contracts). */
  consolidationScale: number;
  /** The pattern's lines (necklines, supports, channel bounds). */
  levels: SkeletonLevel[];
  /** Volume events over the span (spikes, ramps, level shifts). */
  volume: SkeletonVolumeEvent[];
  /**
   * How exact and how decisive support/resistance reactions are (read by the support/resistance
   * skeletons).
   */
  strength: Strength;
}

/** Spans (bars) below which trends use two swings instead of three. */
export const COMPACT_SPAN_BARS = 20;

/** Options of `patternSkeleton`. */
export interface SkeletonOptions {
  /** Bars the pattern will span (short spans get compact trend skeletons). */
  spanBars?: number;
  /** Strength of support/resistance reactions. Default strong. */
  strength?: Strength;
  /** Breakout direction of a symmetric triangle (default: drawn at random). */
  breakoutDirection?: 1 | -1;
  /** Volume behaviour laid over the textbook volume events. Default natural. */
  volumeProfile?: VolumeProfile;
}

/**
 * The textbook skeleton of a pattern with seeded jitter (every call with the same rng state gives
 * the same skeleton). Sizes are in ATR units of the primary timeframe.
 * @throws {DataValidationError} for an unknown pattern type.
 */
export function patternSkeleton(
  type: PatternType,
  rng: Rng,
  options: SkeletonOptions = {},
): PatternSkeleton {
  const strength = options.strength ?? 'strong';
  const u = (lo: number, hi: number): number => rng.uniform(lo, hi);
  let sk: PatternSkeleton;
  switch (type) {
    case 'uptrend':
    case 'downtrend':
      sk = trendSkeleton(type, u, (options.spanBars ?? Infinity) < COMPACT_SPAN_BARS);
      break;
    case 'sideways':
      sk = sidewaysSkeleton(u);
      break;
    case 'double_top':
    case 'double_bottom':
      sk = mirrorIf(type === 'double_bottom', doubleTop(u), type);
      break;
    case 'head_shoulders':
    case 'inverse_head_shoulders':
      sk = mirrorIf(type === 'inverse_head_shoulders', headShoulders(u), type);
      break;
    case 'triple_top':
    case 'triple_bottom':
      sk = mirrorIf(type === 'triple_bottom', tripleTop(u), type);
      break;
    case 'v_top':
    case 'v_bottom':
      sk = mirrorIf(type === 'v_bottom', vTop(u), type);
      break;
    case 'rounding_top':
    case 'rounding_bottom':
      sk = mirrorIf(type === 'rounding_bottom', roundingTop(u), type);
      break;
    case 'bull_flag':
    case 'bear_flag':
      sk = mirrorIf(type === 'bear_flag', bullFlag(u), type);
      break;
    case 'ascending_triangle':
    case 'descending_triangle':
      sk = mirrorIf(type === 'descending_triangle', ascendingTriangle(u), type);
      break;
    case 'symmetric_triangle': {
      const d = options.breakoutDirection ?? (rng.next() < 0.5 ? 1 : -1);
      sk = mirrorIf(d < 0, symmetricTriangle(u), type);
      break;
    }
    case 'falling_wedge':
    case 'rising_wedge':
      sk = mirrorIf(
        type === 'falling_wedge',
        risingWedge(u, (options.spanBars ?? Infinity) < 24),
        type,
      );
      break;
    default: {
      if (!(SUPPORT_RESISTANCE_TYPES as readonly string[]).includes(type))
        throw new DataValidationError({
          source: 'pattern generator',
          field: 'patternType',
          reason: `unknown pattern type "${String(type)}" (one of ${PATTERN_TYPES.join(', ')})`,
        });
      const [level, reaction] = type.split('_', 2) as ['support' | 'resistance', string];
      const sr = supportReaction(reaction === 'false' ? 'false_breakout' : reaction, strength, u);
      sk = mirrorIf(level === 'resistance', sr, type);
    }
  }
  sk.strength = strength;
  applyVolumeProfile(sk, options.volumeProfile ?? 'natural');
  return sk;
}

type U = (lo: number, hi: number) => number;

function base(type: PatternType, expectedDirection: Direction): PatternSkeleton {
  return {
    type,
    points: [],
    expectedDirection,
    resolutionY: 0,
    consolidation: null,
    consolidationScale: 1,
    levels: [],
    volume: [],
    strength: 'strong',
  };
}

/** Mirrors a skeleton vertically (a top becomes a bottom) when `flip`, and renames it. */
function mirrorIf(flip: boolean, sk: PatternSkeleton, type: PatternType): PatternSkeleton {
  sk.type = type;
  if (!flip) return sk;
  const swap: Partial<Record<KeyRole, KeyRole>> = { peak: 'trough', trough: 'peak' };
  const swapLevel: Partial<Record<LevelKind, LevelKind>> = {
    support: 'resistance',
    resistance: 'support',
    upper: 'lower',
    lower: 'upper',
  };
  sk.points = sk.points.map((p) => ({ ...p, y: -p.y, role: swap[p.role] ?? p.role }));
  sk.levels = sk.levels.map((l) => ({
    ...l,
    kind: swapLevel[l.kind] ?? l.kind,
    y0: -l.y0,
    slope: -l.slope,
  }));
  sk.expectedDirection = -sk.expectedDirection as Direction;
  sk.resolutionY = -sk.resolutionY;
  return sk;
}

function trendSkeleton(type: 'uptrend' | 'downtrend', u: U, compact: boolean): PatternSkeleton {
  const d: Direction = type === 'uptrend' ? 1 : -1;
  const sk = base(type, d);
  // Impulses and pullbacks (higher highs and higher lows), then a fresh extreme: three swings, or
  // two when the span is short.
  const xs = compact ? [0.25, 0.45, 0.65, 0.82] : [0.18, 0.33, 0.5, 0.64, 0.78, 0.88];
  let y = 0;
  xs.forEach((x, k) => {
    const impulse = k % 2 === 0;
    y += impulse ? d * u(2.9, 3.8) : -d * u(1.8, 2.3);
    const high = impulse === d > 0;
    sk.points.push({ x: x + u(-0.02, 0.02), y, role: high ? 'peak' : 'trough' });
  });
  sk.points.push({
    x: 1,
    y: sk.points[xs.length - 2].y + d * u(0.6, 1.1),
    role: 'completion',
  });
  sk.resolutionY = d * u(1.8, 2.8);
  sk.volume.push({ kind: 'ramp', x0: 0, x1: 1, factor: 1.25 });
  return sk;
}

function sidewaysSkeleton(u: U): PatternSkeleton {
  const sk = base('sideways', 0);
  const half = u(1.8, 2.4);
  const mid = u(-0.3, 0.3);
  const xs = [0.12, 0.3, 0.48, 0.66, 0.84];
  let up = u(0, 1) < 0.5;
  for (const x of xs) {
    sk.points.push({
      x: x + u(-0.03, 0.03),
      y: mid + (up ? half : -half) * u(0.85, 1.05),
      role: up ? 'peak' : 'trough',
    });
    up = !up;
  }
  sk.points.push({ x: 1, y: mid + u(-0.4, 0.4), role: 'completion' });
  sk.levels.push({ kind: 'resistance', x0: 0, y0: mid + half, slope: 0 });
  sk.levels.push({ kind: 'support', x0: 0, y0: mid - half, slope: 0 });
  sk.resolutionY = u(-0.4, 0.4);
  sk.consolidation = [0.05, 1];
  sk.consolidationScale = 0.8;
  sk.volume.push({ kind: 'level', x0: 0.05, x1: 1, factor: 0.75 });
  return sk;
}

/** A break of `level` at completion: a point just inside the level one bar before, then beyond. */
function breakAt(
  sk: PatternSkeleton,
  levelY: number,
  d: Direction,
  u: U,
  beyond = u(0.9, 1.4),
): void {
  sk.points.push({ x: 1, y: levelY - d * u(0.25, 0.5), role: 'prebreak', fromEnd: 1 });
  sk.points.push({ x: 1, y: levelY + d * beyond, role: 'completion' });
  sk.volume.push({ kind: 'ramp', x0: 0.86, x1: 0.97, factor: 1.5 });
  sk.volume.push({ kind: 'spike', x0: 1, x1: 1, factor: 2.2 });
}

function doubleTop(u: U): PatternSkeleton {
  const sk = base('double_top', -1);
  const t = u(4.5, 6.5);
  const depth = u(3, 4.2);
  const neck = t - depth;
  sk.points.push({ x: 0.14, y: t * u(0.45, 0.55), role: 'shape' });
  sk.points.push({ x: 0.3, y: t, role: 'peak' });
  sk.points.push({ x: 0.51, y: neck, role: 'neckline' });
  sk.points.push({ x: 0.72, y: t + u(-0.35, 0.25), role: 'peak' });
  breakAt(sk, neck, -1, u);
  sk.levels.push({ kind: 'neckline', x0: 0.51, y0: neck, slope: 0 });
  sk.levels.push({ kind: 'resistance', x0: 0.3, y0: t, slope: 0 });
  sk.resolutionY = -depth * u(0.7, 1.1);
  sk.volume.push({ kind: 'spike', x0: 0.3, x1: 0.3, factor: 1.7 });
  sk.volume.push({ kind: 'spike', x0: 0.72, x1: 0.72, factor: 1.25 });
  return sk;
}

function tripleTop(u: U): PatternSkeleton {
  const sk = base('triple_top', -1);
  const t = u(4.5, 6);
  const depth = u(2.8, 3.8);
  const neck = t - depth;
  sk.points.push({ x: 0.1, y: t * u(0.45, 0.55), role: 'shape' });
  sk.points.push({ x: 0.2, y: t, role: 'peak' });
  sk.points.push({ x: 0.35, y: neck + u(-0.2, 0.2), role: 'neckline' });
  sk.points.push({ x: 0.5, y: t + u(-0.3, 0.25), role: 'peak' });
  sk.points.push({ x: 0.65, y: neck + u(-0.2, 0.2), role: 'neckline' });
  sk.points.push({ x: 0.8, y: t + u(-0.35, 0.2), role: 'peak' });
  breakAt(sk, neck, -1, u);
  sk.levels.push({ kind: 'neckline', x0: 0.35, y0: neck, slope: 0 });
  sk.levels.push({ kind: 'resistance', x0: 0.2, y0: t, slope: 0 });
  sk.resolutionY = -depth * u(0.7, 1.1);
  sk.volume.push({ kind: 'spike', x0: 0.2, x1: 0.2, factor: 1.6 });
  sk.volume.push({ kind: 'spike', x0: 0.5, x1: 0.5, factor: 1.35 });
  sk.volume.push({ kind: 'spike', x0: 0.8, x1: 0.8, factor: 1.15 });
  return sk;
}

function headShoulders(u: U): PatternSkeleton {
  const sk = base('head_shoulders', -1);
  const t = u(4, 5.5);
  const depth = u(2.6, 3.4);
  const head = t + u(1.6, 2.6);
  const n1 = t - depth;
  const n2 = n1 + u(-0.4, 0.4);
  const slope = (n2 - n1) / (0.66 - 0.33);
  const neckAt = (x: number): number => n1 + slope * (x - 0.33);
  sk.points.push({ x: 0.09, y: t * u(0.45, 0.55), role: 'shape' });
  sk.points.push({ x: 0.18, y: t, role: 'shoulder' });
  sk.points.push({ x: 0.33, y: n1, role: 'neckline' });
  sk.points.push({ x: 0.5, y: head, role: 'head' });
  sk.points.push({ x: 0.66, y: n2, role: 'neckline' });
  sk.points.push({ x: 0.8, y: t + u(-0.5, 0.3), role: 'shoulder' });
  breakAt(sk, neckAt(1), -1, u);
  sk.levels.push({ kind: 'neckline', x0: 0.33, y0: n1, slope });
  sk.resolutionY = -(head - n1) * u(0.55, 0.85);
  sk.volume.push({ kind: 'spike', x0: 0.18, x1: 0.18, factor: 1.6 });
  sk.volume.push({ kind: 'spike', x0: 0.5, x1: 0.5, factor: 1.4 });
  sk.volume.push({ kind: 'spike', x0: 0.8, x1: 0.8, factor: 1.1 });
  return sk;
}

function vTop(u: U): PatternSkeleton {
  const sk = base('v_top', -1);
  const h = u(6, 8);
  const px = u(0.55, 0.62);
  sk.points.push({ x: px * 0.4, y: h * u(0.2, 0.3), role: 'shape' });
  sk.points.push({ x: px * 0.75, y: h * u(0.55, 0.65), role: 'shape' });
  sk.points.push({ x: px, y: h, role: 'peak' });
  sk.points.push({ x: px + (1 - px) * 0.15, y: h * u(0.78, 0.84), role: 'shape' });
  sk.points.push({ x: px + (1 - px) * 0.5, y: h * u(0.5, 0.6), role: 'shape' });
  sk.points.push({ x: 1, y: h * u(0.2, 0.32), role: 'completion' });
  sk.resolutionY = -h * u(0.25, 0.4);
  sk.volume.push({ kind: 'ramp', x0: px * 0.5, x1: px, factor: 1.6 });
  sk.volume.push({ kind: 'spike', x0: px, x1: px, factor: 2 });
  sk.volume.push({ kind: 'level', x0: px, x1: 1, factor: 1.4 });
  return sk;
}

function roundingTop(u: U): PatternSkeleton {
  const sk = base('rounding_top', -1);
  const a = u(3.5, 4.8);
  const end = 0.86;
  const n = 8;
  for (let k = 1; k < n; k++) {
    const x = (end * k) / n;
    const role: KeyRole = k === n / 2 ? 'peak' : 'shape';
    sk.points.push({ x, y: a * Math.sin((Math.PI * x) / end) + u(-0.12, 0.12), role });
  }
  sk.points.push({ x: end, y: u(0.1, 0.4), role: 'shape' });
  sk.points.push({ x: 1, y: -u(0.9, 1.4), role: 'completion' });
  sk.levels.push({ kind: 'neckline', x0: 0, y0: 0, slope: 0 });
  sk.resolutionY = -a * u(0.5, 0.8);
  sk.consolidation = [0.15, end];
  sk.consolidationScale = 0.75;
  sk.volume.push({ kind: 'level', x0: 0.1, x1: 0.45, factor: 0.7 });
  sk.volume.push({ kind: 'ramp', x0: 0.5, x1: 0.95, factor: 1.5 });
  sk.volume.push({ kind: 'spike', x0: 1, x1: 1, factor: 2 });
  return sk;
}

function bullFlag(u: U): PatternSkeleton {
  const sk = base('bull_flag', 1);
  const pole = u(5.5, 7.5);
  const px = u(0.26, 0.32);
  const slope = -u(2, 3); // ATR per unit x of the flag's channel
  const width = u(1.3, 1.8);
  const upper = (x: number): number => pole + slope * (x - px);
  sk.points.push({ x: px * 0.5, y: pole * u(0.4, 0.55), role: 'shape' });
  sk.points.push({ x: px, y: pole, role: 'pole' });
  const xs = [0.42, 0.55, 0.68, 0.8, 0.9];
  let low = true;
  for (const x of xs) {
    const y = low ? upper(x) - width * u(0.9, 1.1) : upper(x) - u(0, 0.2);
    sk.points.push({ x, y, role: low ? 'trough' : 'peak' });
    low = !low;
  }
  sk.points.push({ x: 1, y: upper(1) + u(0.8, 1.3), role: 'completion' });
  sk.levels.push({ kind: 'upper', x0: px, y0: pole, slope });
  sk.levels.push({ kind: 'lower', x0: px, y0: pole - width, slope });
  sk.resolutionY = pole * u(0.45, 0.7);
  sk.consolidation = [px + 0.03, 0.93];
  sk.consolidationScale = 0.65;
  sk.volume.push({ kind: 'level', x0: 0.02, x1: px, factor: 1.7 });
  sk.volume.push({ kind: 'level', x0: px, x1: 0.9, factor: 0.6 });
  sk.volume.push({ kind: 'ramp', x0: 0.9, x1: 0.97, factor: 1.6 });
  sk.volume.push({ kind: 'spike', x0: 1, x1: 1, factor: 2.4 });
  return sk;
}

function ascendingTriangle(u: U): PatternSkeleton {
  const sk = base('ascending_triangle', 1);
  const r = u(3.5, 4.8);
  const tol = 0.15;
  sk.points.push({ x: 0.18, y: r + u(-tol, tol), role: 'peak' });
  sk.points.push({ x: 0.31, y: r - u(3, 3.5), role: 'trough' });
  sk.points.push({ x: 0.45, y: r + u(-tol, tol), role: 'peak' });
  sk.points.push({ x: 0.58, y: r - u(2, 2.4), role: 'trough' });
  sk.points.push({ x: 0.71, y: r + u(-tol, tol), role: 'peak' });
  sk.points.push({ x: 0.83, y: r - u(1.1, 1.4), role: 'trough' });
  breakAt(sk, r, 1, u);
  sk.levels.push({ kind: 'resistance', x0: 0.18, y0: r, slope: 0 });
  sk.levels.push({ kind: 'support', x0: 0.31, y0: r - 3.25, slope: (3.25 - 1.25) / (0.83 - 0.31) });
  sk.resolutionY = u(2.2, 3.2);
  sk.consolidation = [0.2, 0.92];
  sk.consolidationScale = 0.6;
  sk.volume.push({ kind: 'level', x0: 0.2, x1: 0.88, factor: 0.6 });
  sk.volume.push({ kind: 'spike', x0: 0.18, x1: 0.18, factor: 1.4 });
  return sk;
}

function symmetricTriangle(u: U): PatternSkeleton {
  const sk = base('symmetric_triangle', 1);
  const p = u(4, 5);
  const mid0 = p - 2.2;
  const amp0 = u(2.2, 2.6);
  const amp = (x: number): number => amp0 * (1 - (x - 0.2) / 0.9);
  const xs = [0.33, 0.46, 0.58, 0.7, 0.8];
  sk.points.push({ x: 0.1, y: p * u(0.4, 0.55), role: 'shape' });
  sk.points.push({ x: 0.2, y: mid0 + amp(0.2), role: 'peak' });
  let low = true;
  for (const x of xs) {
    sk.points.push({
      x,
      y: mid0 + (low ? -1 : 1) * amp(x) * u(0.92, 1.04),
      role: low ? 'trough' : 'peak',
    });
    low = !low;
  }
  breakAt(sk, mid0 + amp(1), 1, u, u(0.8, 1.2));
  sk.levels.push({ kind: 'upper', x0: 0.2, y0: mid0 + amp0, slope: -amp0 / 0.9 });
  sk.levels.push({ kind: 'lower', x0: 0.2, y0: mid0 - amp0, slope: amp0 / 0.9 });
  sk.resolutionY = u(2, 3);
  sk.consolidation = [0.22, 0.92];
  sk.consolidationScale = 0.6;
  sk.volume.push({ kind: 'level', x0: 0.2, x1: 0.88, factor: 0.6 });
  return sk;
}

function risingWedge(u: U, compact: boolean): PatternSkeleton {
  const sk = base('rising_wedge', -1);
  const lo0 = u(-0.2, 0.2);
  const loSlope = u(5.5, 6.5);
  const hi0 = lo0 + u(3.4, 3.9);
  // Converging lines; a short wedge converges less, so its last swings still stand out.
  const hiSlope = loSlope - (compact ? u(1.6, 1.9) : u(2.4, 2.9));
  const lower = (x: number): number => lo0 + loSlope * x;
  const upper = (x: number): number => hi0 + hiSlope * x;
  // Alternate touches of the two converging lines, upper first and last (the final push that
  // fails before the break down): seven, or five when the span is short.
  const xs = compact ? [0.12, 0.32, 0.52, 0.7, 0.86] : [0.08, 0.2, 0.32, 0.45, 0.58, 0.7, 0.83];
  let high = true;
  for (const x of xs) {
    sk.points.push({
      x,
      y: high ? upper(x) - u(0, 0.15) : lower(x) + u(0, 0.15),
      role: high ? 'peak' : 'trough',
    });
    high = !high;
  }
  breakAt(sk, lower(1), -1, u, u(1, 1.4));
  sk.levels.push({ kind: 'upper', x0: 0, y0: hi0, slope: hiSlope });
  sk.levels.push({ kind: 'lower', x0: 0, y0: lo0, slope: loSlope });
  sk.resolutionY = -u(2.5, 3.5);
  sk.consolidation = [0.1, 0.92];
  sk.consolidationScale = 0.75;
  sk.volume.push({ kind: 'level', x0: 0.1, x1: 0.88, factor: 0.65 });
  return sk;
}

function supportReaction(reaction: string, strength: Strength, u: U): PatternSkeleton {
  const tol = strength === 'strong' ? 0.12 : strength === 'medium' ? 0.3 : 0.5;
  const bounce =
    strength === 'strong' ? u(1.6, 2.2) : strength === 'medium' ? u(1.3, 1.7) : u(1, 1.3);
  const spike = strength === 'strong' ? 2 : strength === 'medium' ? 1.6 : 1.3;
  const s = -u(2.6, 3.4); // the support level, below the onset level
  const touch = (): number => s + u(-tol, tol);
  const type = `support_${reaction}` as PatternType;
  let sk: PatternSkeleton;
  switch (reaction) {
    case 'bounce':
      sk = base(type, 1);
      sk.points.push({ x: 0.2, y: touch(), role: 'touch' });
      sk.points.push({ x: 0.37, y: s + u(2.6, 3.4), role: 'peak' });
      sk.points.push({ x: 0.55, y: touch(), role: 'touch' });
      sk.points.push({ x: 0.72, y: s + u(2.4, 3.2), role: 'peak' });
      sk.points.push({ x: 1, y: touch(), role: 'touch', fromEnd: 1 });
      sk.points.push({ x: 1, y: s + bounce, role: 'completion' });
      sk.resolutionY = u(1.6, 2.6);
      sk.volume.push({ kind: 'spike', x0: 0.2, x1: 0.2, factor: spike });
      sk.volume.push({ kind: 'spike', x0: 0.55, x1: 0.55, factor: spike });
      sk.volume.push({ kind: 'spike', x0: 1, x1: 1, factor: spike * 1.1 });
      break;
    case 'breakout':
      sk = base(type, -1);
      sk.points.push({ x: 0.22, y: touch(), role: 'touch' });
      sk.points.push({ x: 0.42, y: s + u(2.6, 3.4), role: 'peak' });
      sk.points.push({ x: 0.62, y: touch(), role: 'touch' });
      sk.points.push({ x: 0.8, y: s + u(1.8, 2.6), role: 'peak' });
      breakAt(sk, s, -1, u, u(1, 1.5));
      sk.resolutionY = -u(2, 3);
      sk.volume.push({ kind: 'spike', x0: 0.22, x1: 0.22, factor: spike });
      sk.volume.push({ kind: 'spike', x0: 0.62, x1: 0.62, factor: spike });
      break;
    case 'false_breakout':
      sk = base(type, 1);
      sk.points.push({ x: 0.22, y: touch(), role: 'touch' });
      sk.points.push({ x: 0.42, y: s + u(2.6, 3.4), role: 'peak' });
      sk.points.push({ x: 0.62, y: touch(), role: 'touch' });
      sk.points.push({ x: 0.78, y: s + u(1.8, 2.6), role: 'peak' });
      sk.points.push({ x: 1, y: s - u(0.9, 1.3), role: 'poke', fromEnd: 2 });
      sk.points.push({ x: 1, y: s - u(0.2, 0.5), role: 'shape', fromEnd: 1 });
      sk.points.push({ x: 1, y: s + u(0.8, 1.2), role: 'completion' });
      sk.resolutionY = u(1.8, 2.8);
      sk.volume.push({ kind: 'spike', x0: 0.22, x1: 0.22, factor: spike });
      sk.volume.push({ kind: 'spike', x0: 0.62, x1: 0.62, factor: spike });
      sk.volume.push({ kind: 'ramp', x0: 0.8, x1: 0.9, factor: 1.5 });
      sk.volume.push({ kind: 'spike', x0: 1, x1: 1, factor: 1.8 });
      break;
    case 'retest':
      sk = base(type, -1);
      sk.points.push({ x: 0.16, y: touch(), role: 'touch' });
      sk.points.push({ x: 0.3, y: s + u(2.4, 3), role: 'peak' });
      sk.points.push({ x: 0.44, y: touch(), role: 'touch' });
      sk.points.push({ x: 0.54, y: s + u(1.8, 2.4), role: 'peak' });
      sk.points.push({ x: 0.64, y: s - u(2, 2.6), role: 'trough' });
      sk.points.push({ x: 1, y: s - u(0.05, 0.3), role: 'touch', fromEnd: 1 });
      sk.points.push({ x: 1, y: s - u(1.1, 1.5), role: 'completion' });
      sk.resolutionY = -u(1.8, 2.8);
      sk.volume.push({ kind: 'spike', x0: 0.16, x1: 0.16, factor: spike });
      sk.volume.push({ kind: 'spike', x0: 0.44, x1: 0.44, factor: spike });
      sk.volume.push({ kind: 'spike', x0: 0.6, x1: 0.6, factor: 2.2 });
      sk.volume.push({ kind: 'level', x0: 0.66, x1: 0.9, factor: 0.7 });
      break;
    default:
      throw new DataValidationError({
        source: 'pattern generator',
        field: 'reactionType',
        reason: `unknown reaction "${reaction}" (bounce, breakout, false_breakout, retest)`,
      });
  }
  sk.levels.push({ kind: 'support', x0: 0, y0: s, slope: 0 });
  return sk;
}

function applyVolumeProfile(sk: PatternSkeleton, profile: VolumeProfile): void {
  if (profile === 'increasing') sk.volume.push({ kind: 'ramp', x0: 0, x1: 1, factor: 1.35 });
  else if (profile === 'decreasing')
    sk.volume.push({ kind: 'level', x0: 0, x1: 0.97, factor: 0.7 });
  else if (profile === 'spike') {
    for (const p of sk.points)
      if (p.role === 'peak' || p.role === 'trough' || p.role === 'touch' || p.role === 'head')
        sk.volume.push({ kind: 'spike', x0: p.x, x1: p.x, factor: 1.5 });
  }
}

// ---------------------------------------------------------------------------------------------
// Plans: skeletons laid on the fine steps of a base path

/** A point of a plan: the close of primary bar `bar` (counted from the onset bar) at `y` ATRs. */
export interface PlanPoint {
  /** Primary bar of the waypoint, counted from the onset bar (0 = onset). */
  bar: number;
  /** Log-price offset from the anchor at that bar's close, ATR units (before `amplitudeScale`). */
  y: number;
  /** What the point is in the pattern. */
  role: KeyRole;
}

/** A pattern laid on the fine steps of a base path, ready to be planted. */
export interface PatternPlan {
  /** Pattern type planted. */
  type: PatternType;
  /** Timeframe the pattern is drawn on (its bars and ATR). */
  primaryTimeframe: Timeframe;
  /** First fine step of the onset bar (the first bar of the pattern). */
  onsetStep: number;
  /** Fine steps per primary bar. */
  barSteps: number;
  /** Bars from the onset bar to the completion bar, inclusive. */
  spanBars: number;
  /** Waypoints on primary bars, in bar order. */
  points: PlanPoint[];
  /** Bar (from onset) whose close the resolution waypoint pins, or -1 for none. */
  resolutionBar: number;
  /**
   * Primary bars after the completion bar before the resolution starts: the path keeps its own
   * returns in them (no move toward the resolution shows yet); the resolution move is measured
   * from the close at their end. 0 = the resolution starts right after completion.
   */
  delayBars: number;
  /** Resolution move from the completion close (or the end of the delay), in ATR units (signed). */
  resolutionY: number;
  /** The resolution moves of both outcomes: textbook (with `expectedDirection`) and failed. */
  outcomeY: { textbook: number; failed: number };
  /** Textbook direction of the move after completion (-1, 0, 1). */
  expectedDirection: Direction;
  /** True when the resolution goes against `expectedDirection` on purpose (an adversarial look-alike). */
  adversarial: boolean;
  /**
   * The higher timeframes' confluence at onset when the outcome was decided from it (see
   * `plantPatterns`' `outcome` and `htfOutcomeRule`): the mean of their trends relative to
   * `expectedDirection`, 1 = all confirm, -1 = all contradict, 0 = flat or split; NaN when not
   * consulted.
   */
  htfAlignment: number;
  /** Strength of support/resistance reactions (from the skeleton). */
  strength: Strength;
  /** Multiplies every y: `spanScale(spanBars)` times any visibility growth. */
  amplitudeScale: number;
  /** Multiplies the fine-step shocks inside the span (1 = the base's own noise). */
  noiseScale: number;
  /** Character of the noise between waypoints (market_like keeps the base's own). */
  noiseProfile: NoiseProfile;
  /** Span [x0, x1] (positions in [0, 1]) where volatility contracts, or null. */
  consolidation: [number, number] | null;
  /** Volatility multiplier inside `consolidation`. */
  consolidationScale: number;
  /** The pattern's lines (from the skeleton; x in [0, 1], y in ATR units). */
  levels: SkeletonLevel[];
  /** Volume events over the span (from the skeleton). */
  volume: SkeletonVolumeEvent[];
  /** Fine step of the last bar the plan shapes (resolution bar, or completion bar). */
  endStep: number;
  /** Extra log-price drift (per primary bar) laid under the plan's waypoints (timeframe confluences). */
  tiltPerBar: number;
}

/** Options of `planPattern`. */
export interface PlanOptions {
  /** Bars of the resolution after completion (0: no resolution waypoint). */
  resolutionBars: number;
  /** Bars after completion before the resolution starts (default 0; < `resolutionBars`). */
  delayBars?: number;
  /** Resolve against `expectedDirection` (the failed outcome). Default false. */
  adversarial?: boolean;
  /** Size multiplier of every y, on top of `spanScale(spanBars)`. Default 1. */
  amplitudeScale?: number;
  /**
   * Noise between waypoints, 0.05 = the base's own (sets `noiseScale` = level / 0.05); > 0. Default
   * 0.05.
   */
  noiseLevel?: number;
  /** Character of the noise between waypoints. Default market_like. */
  noiseProfile?: NoiseProfile;
}

/** Minimum span of a pattern in primary bars. */
export const MIN_SPAN_BARS = 12;
/**
 * Span (primary bars) at which skeleton sizes are meant literally; a pattern spanning S bars is
 * scaled by `spanScale(S)`, as the typical move over S bars grows with √S, so that patterns of
 * any length stand out from the noise alike.
 */
export const REFERENCE_SPAN_BARS = 26;

/**
 * Size factor of a pattern spanning `spanBars` bars: √(S / 26), at least 1 because short
 * patterns have few bars per leg, where one bar's noise weighs more.
 */
export function spanScale(spanBars: number): number {
  return Math.sqrt(Math.max(spanBars, REFERENCE_SPAN_BARS) / REFERENCE_SPAN_BARS);
}

/**
 * Lays a skeleton on bars: `spanBars` primary bars starting at fine step `onsetStep`, each
 * `barSteps` fine steps long, with the resolution `resolutionBars` after the completion bar.
 * @throws {DataValidationError} when the span is shorter than `MIN_SPAN_BARS` or than the skeleton needs.
 */
export function planPattern(
  skeleton: PatternSkeleton,
  primaryTimeframe: Timeframe,
  onsetStep: number,
  barSteps: number,
  spanBars: number,
  options: PlanOptions,
): PatternPlan {
  const needed = Math.max(MIN_SPAN_BARS, skeleton.points.length + 1);
  if (!(Number.isInteger(spanBars) && spanBars >= needed))
    throw new DataValidationError({
      source: 'pattern generator',
      field: 'spanBars',
      reason: `${skeleton.type} needs at least ${needed} bars, got ${spanBars}`,
    });
  const last = spanBars - 1;
  // A short span has too few bars for the points that only straighten legs: keep the key points.
  const curve = skeleton.type === 'rounding_top' || skeleton.type === 'rounding_bottom';
  const keep =
    spanBars < 1.8 * skeleton.points.length && !curve
      ? skeleton.points.filter((p) => p.role !== 'shape')
      : skeleton.points;
  const raw = keep.map((p) => ({
    bar: p.fromEnd !== undefined ? last - p.fromEnd : Math.round(p.x * last),
    y: p.y,
    role: p.role,
  }));
  // Strictly increasing bars, leaving room for the points still to come.
  const points: PlanPoint[] = [];
  let prev = -1;
  for (let k = 0; k < raw.length; k++) {
    const room = last - (raw.length - 1 - k);
    const bar = Math.min(Math.max(raw[k].bar, prev + 1), room);
    points.push({ bar, y: raw[k].y, role: raw[k].role });
    prev = bar;
  }
  const noiseLevel = options.noiseLevel ?? NATURAL_NOISE_LEVEL;
  if (!(noiseLevel > 0 && Number.isFinite(noiseLevel)))
    throw new DataValidationError({
      source: 'pattern generator',
      field: 'noiseLevel',
      reason: `must be a positive number, got ${noiseLevel}`,
    });
  const amplitude = options.amplitudeScale ?? 1;
  if (!(amplitude > 0 && Number.isFinite(amplitude)))
    throw new DataValidationError({
      source: 'pattern generator',
      field: 'amplitudeScale',
      reason: `must be a positive number, got ${amplitude}`,
    });
  const adversarial = options.adversarial ?? false;
  const resolutionBar = options.resolutionBars > 0 ? last + options.resolutionBars : -1;
  const delayBars = options.delayBars ?? 0;
  if (!(
    Number.isInteger(delayBars) &&
    delayBars >= 0 &&
    (delayBars === 0 || delayBars < options.resolutionBars)
  ))
    throw new DataValidationError({
      source: 'pattern generator',
      field: 'delayBars',
      reason: `must be a whole number >= 0 below resolutionBars (${options.resolutionBars}), got ${delayBars}`,
    });
  const outcomeY = {
    textbook: skeleton.resolutionY,
    failed: -Math.sign(skeleton.resolutionY || 1) * failedMove(skeleton),
  };
  const resolutionY = adversarial ? outcomeY.failed : outcomeY.textbook;
  return {
    type: skeleton.type,
    primaryTimeframe,
    onsetStep,
    barSteps,
    spanBars,
    points,
    resolutionBar,
    delayBars,
    resolutionY,
    outcomeY,
    expectedDirection: skeleton.expectedDirection,
    adversarial,
    htfAlignment: NaN,
    strength: skeleton.strength,
    amplitudeScale: amplitude * spanScale(spanBars),
    noiseScale: noiseLevel / NATURAL_NOISE_LEVEL,
    noiseProfile: options.noiseProfile ?? 'market_like',
    consolidation: skeleton.consolidation,
    consolidationScale: skeleton.consolidationScale,
    levels: skeleton.levels,
    volume: skeleton.volume,
    endStep: onsetStep + ((resolutionBar >= 0 ? resolutionBar : last) + 1) * barSteps - 1,
    tiltPerBar: 0,
  };
}

/** Size of the move of a failed pattern: back through the pattern against its direction. */
function failedMove(sk: PatternSkeleton): number {
  let lo = 0;
  let hi = 0;
  for (const p of sk.points) {
    lo = Math.min(lo, p.y);
    hi = Math.max(hi, p.y);
  }
  const completion = sk.points[sk.points.length - 1].y;
  // Retrace the breakout and most of the pattern: a failed double top rallies back to its peaks.
  const room = sk.expectedDirection < 0 ? hi - completion : completion - lo;
  return Math.max(Math.abs(sk.resolutionY), 0.8 * room);
}

/**
 * The plan with the given outcome: `failed` resolves against its expected direction (back through
 * the pattern, as an adversarial look-alike does), else the textbook way.
 */
export function withOutcome(plan: PatternPlan, failed: boolean): PatternPlan {
  return {
    ...plan,
    adversarial: failed,
    resolutionY: failed ? plan.outcomeY.failed : plan.outcomeY.textbook,
  };
}

/** The first bar (from onset) of a plan's points whose role is `completion` (the last point). */
export function completionBar(plan: PatternPlan): number {
  return plan.spanBars - 1;
}

// ---------------------------------------------------------------------------------------------
// Planting

/** A pattern planted in a path: its plan, its anchor and its absolute waypoints. */
export interface PlantedPattern {
  /** The plan as planted (after any visibility shift or growth). */
  plan: PatternPlan;
  /** Log close of the bar before onset: the level every y is measured from. */
  anchorLogPrice: number;
  /** ATR of the primary timeframe at onset, in log units (fraction of price). */
  atrLog: number;
  /** The waypoints imposed (fine steps, absolute log prices), in step order. */
  waypoints: Waypoint[];
  /** Clarity on the primary timeframe (see `patternClarity`). */
  clarity: number;
}

/** A path with patterns planted in it. */
export interface PlantedPath {
  /** The conditioned path (same timing as the input; new arrays). */
  path: BasePath;
  /** Every pattern planted, in planting order. */
  planted: PlantedPattern[];
}

/** Options of `plantPatterns`. */
export interface PlantOptions {
  /**
   * Visibility search: a plan whose clarity on its primary timeframe is worse than
   * `clarityTarget` is moved by up to this many primary bars either way (within the room its
   * neighbours leave), then grown up to `maxAmplitudeScale`. 0 (default) plants plans as given.
   */
  maxShiftBars?: number;
  /** Alternatively (the larger wins), the largest move as a share of each plan's span. */
  maxShiftFraction?: number;
  /** Clarity a placement must reach to stop the search (default `CLEAR_PATTERN`). */
  clarityTarget?: number;
  /** Largest amplitude growth of the search, relative to the plan's own (default `MAX_AMPLITUDE_SCALE`). */
  maxAmplitudeScale?: number;
  /** Which plans the search applies to (default: all). */
  searchFilter?: (plan: PatternPlan) => boolean;
  /**
   * Decides each plan's outcome from the market before it: called once per plan, in time order,
   * before it is placed, with the path as planted so far (`logReturn[i]` is final for every step
   * before the plan's onset, `anchorLogPrice` the log close just before it); returns the plan to
   * plant (e.g. `withOutcome(plan, failed)`). Default: plans keep their outcome.
   */
  outcome?: (plan: PatternPlan, history: PlantHistory) => PatternPlan;
}

/** The path before a plan's onset, as `PlantOptions.outcome` sees it. */
export interface PlantHistory {
  /** Fine-step log returns; entries before `plan.onsetStep` are final (do not modify). */
  logReturn: Float64Array;
  /** Log close of step `plan.onsetStep - 1`. */
  anchorLogPrice: number;
}

/** Clarity at or below which a pattern counts as clearly visible on its primary timeframe. */
export const CLEAR_PATTERN = 0.2;
/** Largest growth of a pattern's size for visibility. */
export const MAX_AMPLITUDE_SCALE = 1.3;

/** Constant relating the diffusive volatility of a bar to its expected true range. */
const ATR_PER_SIGMA = 1.65;

/**
 * ATR of bars of `barSteps` fine steps, in log units, estimated from the path's step volatility
 * over the `bars` bars that end before fine step `step`: 1.65·mean(√Σσ²). This is the unit every
 * skeleton size is measured in.
 */
export function estimateAtrLog(
  sigma: Float64Array,
  step: number,
  barSteps: number,
  bars = 14,
): number {
  let sum = 0;
  let count = 0;
  for (let b = 1; b <= bars; b++) {
    const from = step - b * barSteps;
    if (from < 0) break;
    let v = 0;
    for (let i = from; i < from + barSteps; i++) v += sigma[i] * sigma[i];
    sum += Math.sqrt(v);
    count++;
  }
  if (count === 0) {
    let v = 0;
    const to = Math.min(sigma.length, step + barSteps);
    for (let i = step; i < to; i++) v += sigma[i] * sigma[i];
    return ATR_PER_SIGMA * Math.sqrt((v * barSteps) / Math.max(1, to - step));
  }
  return (ATR_PER_SIGMA * sum) / count;
}

function fail(field: string, reason: string): never {
  throw new DataValidationError({ source: 'pattern generator', field, reason });
}

/** A plan moved by `bars` primary bars. */
export function shiftPlan(plan: PatternPlan, bars: number): PatternPlan {
  const d = bars * plan.barSteps;
  return { ...plan, onsetStep: plan.onsetStep + d, endStep: plan.endStep + d };
}

/**
 * Waypoints of a plan measured from `anchor` with ATR `atrLog` (absolute steps). With a delay the
 * close at its end is pinned where the plan's own returns `r` (index 0 = onset step) take it from
 * the completion close, so the delay keeps them unchanged, and the resolution is measured from it.
 */
function planWaypoints(
  plan: PatternPlan,
  anchor: number,
  atrLog: number,
  r: Float64Array,
): Waypoint[] {
  const scale = atrLog * plan.amplitudeScale;
  const barEnd = (bar: number): number => plan.onsetStep + (bar + 1) * plan.barSteps - 1;
  const wps: Waypoint[] = plan.points.map((p) => ({
    step: barEnd(p.bar),
    logPrice: anchor + p.y * scale + plan.tiltPerBar * (p.bar + 1),
  }));
  if (plan.resolutionBar >= 0) {
    const last = plan.spanBars - 1;
    let from = wps[wps.length - 1];
    if (plan.delayBars > 0) {
      const step = barEnd(last + plan.delayBars);
      let move = 0;
      for (let i = from.step + 1; i <= step; i++) move += r[i - plan.onsetStep];
      from = { step, logPrice: from.logPrice + move };
      wps.push(from);
    }
    wps.push({
      step: barEnd(plan.resolutionBar),
      logPrice:
        from.logPrice +
        plan.resolutionY * scale +
        plan.tiltPerBar * (plan.resolutionBar - last - plan.delayBars),
    });
  }
  return wps;
}

/** One placement of a plan: its shaped and conditioned returns over [onsetStep, endStep]. */
interface Placement {
  plan: PatternPlan;
  planted: PlantedPattern;
  logReturn: Float64Array;
  sigma: Float64Array;
}

/** Shapes and conditions a plan locally (steps [onsetStep, endStep] of the global arrays). */
function place(
  plan: PatternPlan,
  logReturn: Float64Array,
  sigma: Float64Array,
  anchor: number,
): Placement {
  const from = plan.onsetStep;
  const len = plan.endStep - from + 1;
  const r = logReturn.slice(from, from + len);
  const sg = sigma.slice(from, from + len);
  shapeVolatility(plan, r, sg);
  if (plan.noiseProfile !== 'market_like') shapeNoise(r, 0, len, plan.noiseProfile, plan.barSteps);
  const atrLog = estimateAtrLog(sigma, from, plan.barSteps);
  const waypoints = planWaypoints(plan, anchor, atrLog, r);
  const local = conditionOnWaypoints(
    { logReturn: r, sigma: sg, initialLogPrice: anchor },
    waypoints.map((w) => ({ step: w.step - from, logPrice: w.logPrice })),
  );
  const planted: PlantedPattern = { plan, anchorLogPrice: anchor, atrLog, waypoints, clarity: 0 };
  planted.clarity = patternClarity(planted, local, plan.barSteps, from);
  return { plan, planted, logReturn: local, sigma: sg };
}

/**
 * Plants patterns in a base path. For each plan, in time order: the level the path has reached at
 * its onset is its anchor (pinned there, so nothing before moves), its ATR is measured over the 14
 * primary bars before onset, the volatility inside its span is shaped (consolidations contract,
 * `noiseScale`, `noiseProfile`), its steps are conditioned on its waypoints with the path's own
 * shocks (`conditionOnWaypoints`), and its volume is multiplied by its envelope; after its last
 * waypoint the path continues with its own returns. With `maxShiftBars` > 0 an unclear plan is
 * moved and grown until it reads clearly (see `PlantOptions`); with `outcome` each plan's outcome
 * is first decided from the path before it. The input path is not modified.
 * @throws {DataValidationError} when plans are not in time order, overlap, start at step 0 or end
 *   after the path.
 */
export function plantPatterns(
  path: BasePath,
  plans: readonly PatternPlan[],
  options: PlantOptions = {},
): PlantedPath {
  const n = path.logReturn.length;
  const logReturn = Float64Array.from(path.logReturn);
  const sigma = Float64Array.from(path.sigma);
  const volume = Float64Array.from(path.volume);
  let prevEnd = 0;
  for (const plan of plans) {
    if (!(plan.onsetStep >= 1 && plan.onsetStep > prevEnd))
      fail(
        'plans',
        `${plan.type} at step ${plan.onsetStep} overlaps the previous pattern or starts at 0`,
      );
    if (plan.endStep >= n)
      fail('plans', `${plan.type} ends at step ${plan.endStep}, after the path (${n} steps)`);
    prevEnd = plan.endStep;
  }
  const maxShift = options.maxShiftBars ?? 0;
  const target = options.clarityTarget ?? CLEAR_PATTERN;
  const maxAmp = options.maxAmplitudeScale ?? MAX_AMPLITUDE_SCALE;
  const planted: PlantedPattern[] = [];
  let level = path.initialLogPrice;
  let cursor = 0; // first step whose return is not yet summed into `level`
  let lastEnd = 0;
  // Prefix sums of the (unshaped) returns give the level at any onset in O(1).
  for (let k = 0; k < plans.length; k++) {
    const nextOnset = k + 1 < plans.length ? plans[k + 1].onsetStep : n;
    const levelAt = (onset: number): number => {
      let l = level;
      for (let i = cursor; i < onset; i++) l += logReturn[i];
      return l;
    };
    const anchor = levelAt(plans[k].onsetStep);
    const decided = options.outcome?.(plans[k], { logReturn, anchorLogPrice: anchor }) ?? plans[k];
    let best = place(decided, logReturn, sigma, anchor);
    const shiftK = Math.max(
      maxShift,
      Math.floor((options.maxShiftFraction ?? 0) * decided.spanBars),
    );
    const search = shiftK > 0 && (options.searchFilter?.(decided) ?? true);
    if (search && best.planted.clarity > target) {
      for (let d = 1; d <= shiftK && best.planted.clarity > target; d++) {
        for (const shift of [d, -d]) {
          const moved = shiftPlan(decided, shift);
          if (moved.onsetStep <= lastEnd + 1 || moved.endStep >= nextOnset) continue;
          const p = place(moved, logReturn, sigma, levelAt(moved.onsetStep));
          if (p.planted.clarity < best.planted.clarity) best = p;
          if (best.planted.clarity <= target) break;
        }
      }
      const baseAmp = best.plan.amplitudeScale;
      for (
        let amp = baseAmp * 1.1;
        amp <= baseAmp * maxAmp + 1e-9 && best.planted.clarity > target;
        amp *= 1.1
      ) {
        const grown = { ...best.plan, amplitudeScale: amp };
        const p = place(grown, logReturn, sigma, best.planted.anchorLogPrice);
        if (p.planted.clarity < best.planted.clarity) best = p;
      }
    }
    // Commit: the plan's steps take their conditioned returns and shaped volatility and volume.
    const plan = best.plan;
    logReturn.set(best.logReturn, plan.onsetStep);
    sigma.set(best.sigma, plan.onsetStep);
    shapeVolume(plan, volume);
    planted.push(best.planted);
    const lastWp = best.planted.waypoints[best.planted.waypoints.length - 1];
    level = levelAt(plan.onsetStep);
    for (let i = plan.onsetStep; i <= lastWp.step; i++) level += logReturn[i];
    cursor = lastWp.step + 1;
    lastEnd = plan.endStep;
  }
  return { path: { ...path, logReturn, sigma, volume }, planted };
}

/** Position of fine step i in bars of a plan: the end of bar b is b (continuous). */
function stepBar(plan: PatternPlan, i: number): number {
  return (i - plan.onsetStep + 1) / plan.barSteps - 1;
}

/** Position of skeleton x in bars of a plan (as `planPattern` maps points). */
function xBar(plan: PatternPlan, x: number): number {
  return x * (plan.spanBars - 1);
}

/**
 * Multiplies returns and step volatility of a plan's steps by its volatility envelope; the arrays
 * hold the plan's steps from `onsetStep` on (index 0 = onsetStep).
 */
function shapeVolatility(plan: PatternPlan, logReturn: Float64Array, sigma: Float64Array): void {
  const len = plan.endStep - plan.onsetStep + 1;
  const last = plan.spanBars - 1;
  const cons = plan.consolidation;
  const c0 = cons === null ? 0 : xBar(plan, cons[0]);
  const c1 = cons === null ? 0 : xBar(plan, cons[1]);
  const c = plan.consolidationScale;
  for (let k = 0; k < len; k++) {
    const u = stepBar(plan, plan.onsetStep + k);
    // Noise scale: full inside the span, ramping in over two bars and out over the resolution.
    const inRamp = Math.min(1, (u + 1) / 2);
    const outRamp = u <= last ? 1 : Math.max(0, 1 - (u - last) / 2);
    let m = 1 + (plan.noiseScale - 1) * Math.min(inRamp, outRamp);
    if (cons !== null) {
      // Contract over the first quarter of the consolidation, expand again after it.
      if (u >= c0 && u <= c1)
        m *= 1 + (c - 1) * Math.min(1, (u - c0) / Math.max(1, 0.25 * (c1 - c0)));
      else if (u > c1) m *= Math.min(1.25, c + (1.25 - c) * (u - c1));
    }
    logReturn[k] *= m;
    sigma[k] *= m;
  }
}

/** Multiplies the volume of a plan's steps (global indices) by its volume envelope. */
function shapeVolume(plan: PatternPlan, volume: Float64Array): void {
  for (let i = plan.onsetStep; i <= plan.endStep; i++) {
    const u = stepBar(plan, i);
    let m = 1;
    for (const e of plan.volume) {
      const b0 = Math.round(xBar(plan, e.x0));
      const b1 = Math.round(xBar(plan, e.x1));
      if (e.kind === 'spike') {
        // The bar of the event and a decaying tail over the next two bars.
        const d = u - b0;
        if (d > -1 && d <= 0) m *= e.factor;
        else if (d > 0 && d <= 2) m *= 1 + (e.factor - 1) * 0.5 * (1 - d / 2);
      } else if (e.kind === 'ramp') {
        // Rises ahead of the bar it leads to (volume precedes price), holds on that bar.
        if (u > b0 - 1 && u <= b1) m *= 1 + ((e.factor - 1) * (u - b0 + 1)) / (b1 - b0 + 1);
        else if (u > b1 && u <= b1 + 1) m *= e.factor;
      } else if (u > b0 - 1 && u <= b1) {
        m *= 1 + ((e.factor - 1) * (u - b0 + 1)) / (b1 - b0 + 1);
      } else if (u > b1 && u <= b1 + 2) {
        m *= e.factor + ((1 - e.factor) * (u - b1)) / 2;
      }
    }
    volume[i] *= m;
  }
}

/**
 * Reshapes fine-step returns in [from, to) in place at the bar scale: each step's return gets
 * -0.5 (`choppy`: moves partly undone in the next bar, bar-return autocorrelation about -0.4) or
 * +0.5 (`trending`: moves that carry on, about +0.4) times the return one bar earlier; the total
 * variance is kept. `market_like` leaves them unchanged.
 */
export function shapeNoise(
  logReturn: Float64Array,
  from: number,
  to: number,
  profile: NoiseProfile,
  barSteps: number,
): void {
  if (profile === 'market_like') return;
  const c = profile === 'choppy' ? -0.5 : 0.5;
  const out = new Float64Array(to - from);
  let sumSq = 0;
  let sumSqNew = 0;
  for (let i = from; i < to; i++) {
    const r = logReturn[i];
    const e = r + (i - barSteps >= from ? c * logReturn[i - barSteps] : 0);
    out[i - from] = e;
    sumSq += r * r;
    sumSqNew += e * e;
  }
  const k = sumSqNew > 0 ? Math.sqrt(sumSq / sumSqNew) : 1;
  for (let i = from; i < to; i++) logReturn[i] = out[i - from] * k;
}

// ---------------------------------------------------------------------------------------------
// Labels and clarity

/** A key point of a planted pattern in time and price. */
export interface KeyPoint {
  /** Close time of the bar (UTC ms). */
  timeMs: number;
  /** The close the bar was pinned at (quote currency). */
  price: number;
  /** What the point is in the pattern (`start` is the onset level at the onset bar's open time). */
  role: KeyRole;
}

/** A level of a planted pattern in price: price(t) = price0 · exp(slope · (t − time0)). */
export interface KeyLevel {
  /** What the line is (support, resistance, neckline, channel upper or lower). */
  kind: LevelKind;
  /** UTC ms of the reference time. */
  timeMs: number;
  /** Level price at `timeMs`, quote currency. */
  price: number;
  /** Log-price slope per ms (0 for horizontal). */
  slopePerMs: number;
}

/** What a planted pattern is, where and when: the label of every sample that carries it. */
export interface PatternLabel {
  /** Pattern type planted. */
  type: PatternType;
  /** Family of the type (trend, reversal, continuation, support_resistance). */
  family: PatternFamily;
  /** Timeframe the pattern is drawn on. */
  primaryTimeframe: Timeframe;
  /** Open time of the first bar of the pattern (UTC ms). */
  onsetTimeMs: number;
  /** Close time of the completion bar (UTC ms): the earliest decision time at which the pattern is complete. */
  completionTimeMs: number;
  /** Close time of the bar the resolution was pinned at (UTC ms), or NaN when none was planted. */
  resolutionTimeMs: number;
  /** Textbook direction of the move after completion (-1, 0, 1). */
  expectedDirection: Direction;
  /** True when the pattern was made to resolve against `expectedDirection`. */
  adversarial: boolean;
  /**
   * The higher timeframes' confluence at onset relative to `expectedDirection` when it decided the
   * outcome (`htfOutcomeRule`): 1 = all confirm, -1 = all contradict, 0 = flat or split; NaN when
   * the outcome did not depend on it.
   */
  htfAlignment: number;
  /** Strength of support/resistance reactions. */
  strength: Strength;
  /** ATR of the primary timeframe at onset (quote currency): the unit of every size. */
  atr: number;
  /** Pattern height (highest minus lowest key point) in ATRs. */
  heightAtr: number;
  /** The onset level, then every waypoint, in time order. */
  keyPoints: KeyPoint[];
  /** The pattern's lines in price and time. */
  levels: KeyLevel[];
}

/** The label of a planted pattern (times from the path's start and the plan's fine steps). */
export function plantedLabel(
  planted: PlantedPattern,
  path: Pick<BasePath, 'startTimeMs' | 'fineTimeframe'>,
): PatternLabel {
  const { plan, anchorLogPrice, atrLog } = planted;
  const stepMs = TIMEFRAME_MS[path.fineTimeframe];
  const barMs = plan.barSteps * stepMs;
  const onsetTimeMs = path.startTimeMs + plan.onsetStep * stepMs;
  const barClose = (bar: number): number => onsetTimeMs + (bar + 1) * barMs;
  const scale = atrLog * plan.amplitudeScale;
  let lo = 0;
  let hi = 0;
  const keyPoints: KeyPoint[] = [
    { timeMs: onsetTimeMs, price: Math.exp(anchorLogPrice), role: 'start' },
  ];
  for (let k = 0; k < plan.points.length; k++) {
    const p = plan.points[k];
    lo = Math.min(lo, p.y);
    hi = Math.max(hi, p.y);
    keyPoints.push({
      timeMs: barClose(p.bar),
      price: Math.exp(planted.waypoints[k].logPrice),
      role: p.role,
    });
  }
  const spanMs = plan.spanBars * barMs;
  const levels: KeyLevel[] = plan.levels.map((l) => ({
    kind: l.kind,
    timeMs: onsetTimeMs + l.x0 * spanMs,
    price: Math.exp(anchorLogPrice + l.y0 * scale + plan.tiltPerBar * (l.x0 * plan.spanBars)),
    slopePerMs: (l.slope * scale) / spanMs + plan.tiltPerBar / barMs,
  }));
  return {
    type: plan.type,
    family: patternFamily(plan.type),
    primaryTimeframe: plan.primaryTimeframe,
    onsetTimeMs,
    completionTimeMs: barClose(plan.spanBars - 1),
    resolutionTimeMs: plan.resolutionBar >= 0 ? barClose(plan.resolutionBar) : NaN,
    expectedDirection: plan.expectedDirection,
    adversarial: plan.adversarial,
    htfAlignment: plan.htfAlignment,
    strength: plan.strength,
    atr: Math.exp(anchorLogPrice) * (Math.exp(atrLog) - 1),
    heightAtr: (hi - lo) * plan.amplitudeScale,
    keyPoints,
    levels,
  };
}

/** Roles of the skeleton points that are local extremes of the shape (what the eye reads). */
const EXTREME_ROLES: ReadonlySet<KeyRole> = new Set<KeyRole>([
  'peak',
  'trough',
  'head',
  'shoulder',
  'neckline',
  'touch',
  'pole',
  'poke',
]);

/**
 * How clearly a planted pattern shows in bars of `barSteps` fine steps (its primary timeframe by
 * default): for every key point that is an extreme of the skeleton (a peak, trough, touch, ...),
 * how far the bar closes of its two adjacent legs overshoot it, divided by the shorter adjacent
 * leg, and for every leg the largest move of the closes back against it, divided by the leg; the
 * worst of these. 0 means every key point is the extreme of its legs, as in
 * the textbook drawing; 0.25 means a close overshoots a peak by a quarter of its legs; above about
 * 0.5 the shape no longer reads as the pattern. `offset` is the fine step of `logReturn[0]`.
 */
export function patternClarity(
  planted: PlantedPattern,
  logReturn: Float64Array,
  barSteps = planted.plan.barSteps,
  offset = 0,
): number {
  const { plan, waypoints } = planted;
  const from = plan.onsetStep;
  const spanEnd = plan.onsetStep + plan.spanBars * plan.barSteps - 1;
  // Bar closes (log) from the bar before onset to the completion bar, on bars of `barSteps`.
  // `logReturn[i - offset]` is the return of fine step i.
  const closes: number[] = [planted.anchorLogPrice];
  const closeSteps: number[] = [from - 1];
  let level = planted.anchorLogPrice;
  for (let i = from; i <= spanEnd; i++) {
    level += logReturn[i - offset];
    if ((i - from + 1) % barSteps === 0 || i === spanEnd) {
      closes.push(level);
      closeSteps.push(i);
    }
  }
  // Skeleton vertices: the anchor, then every non-shape waypoint up to completion.
  const vStep: number[] = [from - 1];
  const vLog: number[] = [planted.anchorLogPrice];
  const vRole: KeyRole[] = ['start'];
  for (let k = 0; k < plan.points.length; k++) {
    if (plan.points[k].role === 'shape') continue;
    vStep.push(waypoints[k].step);
    vLog.push(waypoints[k].logPrice);
    vRole.push(plan.points[k].role);
  }
  let worst = 0;
  // Inside each leg between consecutive vertices: the largest move back against the leg (a
  // counter-swing the eye would read as a turn), relative to the leg.
  for (let k = 1; k < vStep.length; k++) {
    const leg = vLog[k] - vLog[k - 1];
    if (Math.abs(leg) < 1e-12) continue;
    const d = Math.sign(leg);
    let extreme = vLog[k - 1];
    let back = 0;
    for (let b = 0; b < closes.length; b++) {
      const st = closeSteps[b];
      if (st <= vStep[k - 1] || st > vStep[k]) continue;
      if (d * (closes[b] - extreme) > 0) extreme = closes[b];
      back = Math.max(back, d * (extreme - closes[b]));
    }
    worst = Math.max(worst, back / Math.abs(leg));
  }
  for (let k = 1; k < vStep.length - 1; k++) {
    if (!EXTREME_ROLES.has(vRole[k])) continue;
    const up = vLog[k] >= vLog[k - 1] && vLog[k] >= vLog[k + 1];
    const down = vLog[k] <= vLog[k - 1] && vLog[k] <= vLog[k + 1];
    if (!up && !down) continue;
    const leg = Math.min(Math.abs(vLog[k] - vLog[k - 1]), Math.abs(vLog[k] - vLog[k + 1]));
    if (!(leg > 0)) continue;
    let over = 0;
    for (let b = 0; b < closes.length; b++) {
      const st = closeSteps[b];
      if (st <= vStep[k - 1] || st >= vStep[k + 1] || st === vStep[k]) continue;
      over = Math.max(over, up ? closes[b] - vLog[k] : vLog[k] - closes[b]);
    }
    worst = Math.max(worst, over / leg);
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------
// The spec's generate* functions

/** A generated pattern: candles of its primary timeframe plus every timeframe and its label. */
export interface GeneratedPattern {
  /** `length` candles of the primary timeframe that contain the pattern. */
  candles: Candles;
  /** Primary timeframe of `candles`. */
  timeframe: Timeframe;
  /** Index in `candles` of the onset bar and of the completion bar. */
  onsetIndex: number;
  /** Index in `candles` of the completion bar. */
  completionIndex: number;
  /** What was planted, where and when. */
  label: PatternLabel;
  /** Every timeframe of the generated market (exact aggregates of the fine candles). */
  frames: { fine: Candles; m15: Candles; h4: Candles; d1: Candles };
  /** The planted path, and the base path it was planted in (before any pattern shaping). */
  planted: PlantedPath;
  /** The base path before the pattern was planted in it. */
  basePath: BasePath;
  /** The skeleton that was planted, and how the pattern was asked for (to reshape it). */
  skeleton: PatternSkeleton;
  /** The request that generated it (pass a modified copy to `generatePattern` to reshape it). */
  request: StandaloneRequest;
  /** Clarity of the pattern on its primary timeframe (see `patternClarity`). */
  clarity: number;
}

/** Options shared by the generate* functions. */
export interface GenerateOptions {
  /** Noise between waypoints relative to the base's own (0.05 = natural; 0.1 = twice as noisy). */
  noiseLevel?: number;
  /** Primary timeframe of the pattern (default 15m). */
  timeframe?: Timeframe;
  /** Seed of everything random (default 0). */
  seed?: number;
  /** Base-process parameters (default: the shipped BTC calibration). */
  params?: BaseProcessParams;
  /** Bars of the primary timeframe generated before the returned candles (default 14: the ATR look-back). */
  historyBars?: number;
  /** Character of the noise between waypoints. Default market_like. */
  noiseProfile?: NoiseProfile;
  /** Start of the generated market (UTC midnight, default 2024-01-01). */
  startTimeMs?: number;
}

/** Options of `generateTrendPattern`. */
export interface TrendPatternOptions extends GenerateOptions {
  /** Volatility of the trend: low 0.6x, medium 1x, high 1.6x the base's. Default medium. */
  volatilityProfile?: VolatilityProfile;
}

/** Options of `generateReversalPattern` and `generateContinuationPattern`. */
export interface ReversalPatternOptions extends GenerateOptions {
  /**
   * Volume behaviour over the pattern. Default increasing for reversals, natural for continuations.
   */
  volumeProfile?: VolumeProfile;
}

/** Options of `generateSupportResistanceReaction`. */
export interface SupportResistanceReactionOptions extends GenerateOptions {
  /** Which level price reacts to (default support). */
  level?: 'support' | 'resistance';
  /** Breakout direction of a symmetric triangle (continuation only). */
  breakoutDirection?: 1 | -1;
}

const FINE: FineTimeframe = '5m';
const DAY_MS = 86_400_000;
const VOLATILITY_SCALE: Record<VolatilityProfile, number> = { low: 0.6, medium: 1, high: 1.6 };

let cachedBtc: BaseProcessParams | undefined;
/** The shipped BTC calibration (loaded once). */
export function defaultBaseParams(): BaseProcessParams {
  cachedBtc ??= loadCalibration('btc');
  return cachedBtc;
}

/** Fine (5m) steps per bar of `tf`. @throws {DataValidationError} for timeframes below 5m or not a multiple of it. */
export function fineStepsPerBar(tf: Timeframe): number {
  const ms = TIMEFRAME_MS[tf];
  const fine = TIMEFRAME_MS[FINE];
  if (ms === undefined || ms < fine || ms % fine !== 0)
    fail('timeframe', `patterns live on timeframes that are whole multiples of ${FINE}, got ${tf}`);
  return ms / fine;
}

/** How a standalone pattern was asked for (what `generatePattern` takes). */
export interface StandaloneRequest {
  /** Pattern type to generate. */
  type: PatternType;
  /** Candles of the primary timeframe. */
  length: number;
  /** Noise, timeframe, seed, parameters and history of the generation. */
  options: GenerateOptions;
  /** Multiplier of the base's volatility (the trend's volatility profile). */
  volatilityScale: number;
  /** Options of the textbook skeleton (strength, volume profile, breakout direction). */
  skeletonOptions: SkeletonOptions;
  /** A skeleton to plant instead of the textbook one of `type` (a reshaped one). */
  skeleton?: PatternSkeleton;
}

/** Draws of the base noise tried for a clear standalone pattern. */
export const VISIBILITY_ATTEMPTS = 8;

/**
 * Generates one pattern from a request: the base process over the pattern's candles plus their
 * history, the skeleton laid on the primary bars, the clearest of a few draws of the base noise,
 * candles of every timeframe, and the label. The generate* functions call this.
 * @throws {DataValidationError} for a timeframe that is not a multiple of 5m or a length too short
 */
export function generatePattern(req: StandaloneRequest): GeneratedPattern {
  const { type, length, options } = req;
  const tf = options.timeframe ?? '15m';
  const barSteps = fineStepsPerBar(tf);
  if (!(Number.isInteger(length) && length >= MIN_SPAN_BARS + 8))
    fail('length', `a pattern needs at least ${MIN_SPAN_BARS + 8} candles, got ${length}`);
  const seed = options.seed ?? 0;
  const params = options.params ?? defaultBaseParams();
  const history = options.historyBars ?? 14;
  if (!(Number.isInteger(history) && history >= 0))
    fail('historyBars', `must be a whole number >= 0, got ${history}`);
  const pre = Math.max(2, Math.round(0.15 * length));
  const span = Math.max(MIN_SPAN_BARS, Math.round(0.65 * length));
  const post = length - pre - span;
  if (post < 1) fail('length', `${length} candles leave no room after a ${span}-bar pattern`);
  const barMs = TIMEFRAME_MS[tf];
  const totalMs = (history + length + 1) * barMs;
  const days = Math.ceil(totalMs / DAY_MS) + 1;
  const rng = new Rng(seed);
  const onsetStep = (history + pre) * barSteps;
  const textbook = patternSkeleton(type, rng.fork('skeleton'), {
    ...req.skeletonOptions,
    spanBars: span,
  });
  const skeleton = req.skeleton ?? textbook;
  const basePlan = planPattern(skeleton, tf, onsetStep, barSteps, span, {
    resolutionBars: Math.max(1, Math.min(post, Math.round(0.8 * post))),
    noiseLevel: options.noiseLevel,
    noiseProfile: options.noiseProfile,
  });
  // Visibility on the primary timeframe: of a few draws of the base noise keep the clearest, and
  // grow the pattern a little (never beyond what a real chart shows) while it is still unclear.
  const baseRng = rng.fork('base');
  let best: { path: BasePath; planted: PlantedPath } | undefined;
  for (let attempt = 0; attempt < VISIBILITY_ATTEMPTS; attempt++) {
    const candidate = simulateBasePath(params, {
      seed: baseRng.nextU32(),
      days,
      fineTimeframe: FINE,
      startTimeMs: options.startTimeMs,
      volatilityScale: req.volatilityScale,
    });
    const p = plantPatterns(candidate, [basePlan]);
    if (best === undefined || p.planted[0].clarity < best.planted.planted[0].clarity)
      best = { path: candidate, planted: p };
    if (p.planted[0].clarity <= CLEAR_PATTERN) break;
  }
  const found = best as { path: BasePath; planted: PlantedPath };
  const path = found.path;
  let planted = found.planted;
  for (
    let amp = 1.1;
    amp <= MAX_AMPLITUDE_SCALE + 1e-9 && planted.planted[0].clarity > CLEAR_PATTERN;
    amp *= 1.1
  ) {
    const grown = plantPatterns(path, [
      { ...basePlan, amplitudeScale: basePlan.amplitudeScale * amp },
    ]);
    if (grown.planted[0].clarity < planted.planted[0].clarity) planted = grown;
  }
  const clarity = planted.planted[0].clarity;
  const fine = buildCandlesFromPath(planted.path, params, rng.fork('candles'));
  const { m15, h4, d1 } = aggregateFineCandles(fine);
  const frames = { fine, m15, h4, d1 };
  const primary =
    tf === '15m' ? m15 : tf === '4h' ? h4 : tf === '1d' ? d1 : resample(fine, tf).candles;
  validateCandles(primary, { source: `synthetic ${type} (${tf}, seed ${seed})` });
  const start = lowerBound(primary.openTime, path.startTimeMs + history * barMs);
  if (start + length > primary.openTime.length)
    fail('length', `generated ${primary.openTime.length - start} candles, ${length} asked`);
  const candles = sliceCandles(primary, start, start + length);
  const label = plantedLabel(planted.planted[0], path);
  return {
    candles,
    timeframe: tf,
    onsetIndex: pre,
    completionIndex: pre + span - 1,
    label,
    frames,
    planted,
    basePath: path,
    skeleton,
    request: req,
    clarity,
  };
}

function checkType<T extends string>(list: readonly T[], value: string, field: string): T {
  if (!(list as readonly string[]).includes(value))
    fail(field, `unknown ${field} "${value}" (one of ${list.join(', ')})`);
  return value as T;
}

/**
 * Generates candles with a trend (`uptrend`: higher highs and higher lows; `downtrend`; `sideways`:
 * a range between support and resistance) on the realistic base process.
 * @param length number of candles of the primary timeframe (>= 20)
 * @param trendType uptrend | downtrend | sideways
 * @param options noiseLevel (default 0.05 = the base's own noise), volatilityProfile (low | medium |
 *   high: the base's volatility × 0.6 / 1 / 1.6), timeframe (default 15m), seed, params
 * @throws {DataValidationError} for an unknown trend type or a length too short for the pattern
 * @example const g = generateTrendPattern(80, 'uptrend', { timeframe: '4h', seed: 3 }); g.candles.close
 */
export function generateTrendPattern(
  length: number,
  trendType: TrendType,
  options: TrendPatternOptions = {},
): GeneratedPattern {
  const type = checkType(TREND_TYPES, trendType, 'trendType');
  const profile = options.volatilityProfile ?? 'medium';
  const volatilityScale = VOLATILITY_SCALE[profile];
  if (volatilityScale === undefined)
    fail(
      'volatilityProfile',
      `unknown volatility profile "${String(profile)}" (low, medium, high)`,
    );
  return generatePattern({ type, length, options, volatilityScale, skeletonOptions: {} });
}

/**
 * Generates candles with a reversal pattern (double top/bottom, head and shoulders and inverse,
 * triple top/bottom, V top/bottom, rounding top/bottom) after the trend it reverses, completed by
 * the break of its neckline, then the textbook resolution.
 * @param length number of candles of the primary timeframe (>= 20)
 * @param patternType one of `REVERSAL_TYPES`
 * @param options noiseLevel (default 0.05), volumeProfile (default `increasing`), timeframe, seed, params
 * @throws {DataValidationError} for an unknown pattern type or a length too short
 */
export function generateReversalPattern(
  length: number,
  patternType: ReversalType,
  options: ReversalPatternOptions = {},
): GeneratedPattern {
  const type = checkType(REVERSAL_TYPES, patternType, 'patternType');
  return generatePattern({
    type,
    length,
    options,
    volatilityScale: 1,
    skeletonOptions: { volumeProfile: options.volumeProfile ?? 'increasing' },
  });
}

/**
 * Generates candles with a continuation pattern (bull/bear flag, ascending/descending/symmetric
 * triangle, rising/falling wedge): the move before it, the consolidation (volatility and volume
 * contracting), and the breakout with volume that rises ahead of it.
 * @param length number of candles of the primary timeframe (>= 20)
 * @param patternType one of `CONTINUATION_TYPES`
 * @throws {DataValidationError} for an unknown pattern type or a length too short
 */
export function generateContinuationPattern(
  length: number,
  patternType: ContinuationType,
  options: ReversalPatternOptions & { breakoutDirection?: 1 | -1 } = {},
): GeneratedPattern {
  const type = checkType(CONTINUATION_TYPES, patternType, 'patternType');
  return generatePattern({
    type,
    length,
    options,
    volatilityScale: 1,
    skeletonOptions: {
      volumeProfile: options.volumeProfile ?? 'natural',
      breakoutDirection: options.breakoutDirection,
    },
  });
}

/**
 * Generates candles reacting to a support or resistance level that earlier touches established:
 * `bounce` (rejected at the level), `breakout` (closes through it), `false_breakout` (closes
 * through it, then back inside), `retest` (breaks it, comes back to test it from the other side,
 * and is rejected there). A strong level is respected within 0.12 ATR with large bounces and
 * volume spikes at each touch; a weak one within 0.5 ATR with smaller reactions.
 * @param length number of candles of the primary timeframe (>= 20)
 * @param reactionType bounce | breakout | false_breakout | retest
 * @param options strength (default strong), noiseLevel (default 0.05), level (support |
 *   resistance, default support), timeframe, seed, params
 * @throws {DataValidationError} for an unknown reaction or strength, or a length too short
 */
export function generateSupportResistanceReaction(
  length: number,
  reactionType: 'bounce' | 'breakout' | 'false_breakout' | 'retest',
  options: SupportResistanceReactionOptions & { strength?: Strength } = {},
): GeneratedPattern {
  const reaction = checkType(
    ['bounce', 'breakout', 'false_breakout', 'retest'] as const,
    reactionType,
    'reactionType',
  );
  const strength = checkType(
    ['weak', 'medium', 'strong'] as const,
    options.strength ?? 'strong',
    'strength',
  );
  const level = checkType(['support', 'resistance'] as const, options.level ?? 'support', 'level');
  return generatePattern({
    type: `${level}_${reaction}` as SupportResistanceType,
    length,
    options,
    volatilityScale: 1,
    skeletonOptions: { strength },
  });
}

// ---------------------------------------------------------------------------------------------
// Noise and volume on given candles

/** Options of `addRealisticNoise`. */
export interface RealisticNoiseOptions {
  /** Seed of the noise (default 0). */
  seed?: number;
  /** The input closes are kept exactly every `anchorEvery` bars (default: choppy 2, market_like 4, trending 8). */
  anchorEvery?: number;
  /** Base-process parameters whose shocks, volatility clustering and microstructure are used. */
  params?: BaseProcessParams;
  /** Noise size relative to the base's own volatility (default 1). */
  volatilityScale?: number;
  /** Keep the input volume (default true when it has any positive volume). */
  keepVolume?: boolean;
}

/**
 * Adds realistic noise to clean price data: the closes are kept every `anchorEvery` bars and
 * between them the path is the base process's own (heavy-tailed shocks, volatility clustering,
 * intraday seasonality), conditioned through those closes; `choppy` noise partly undoes each move
 * within a bar or two, `trending` noise lets moves persist, `market_like` is the base as it is.
 * Opens, highs and lows are rebuilt from the fine path, so OHLC is always valid.
 * @param priceData gap-free candles on a timeframe that is a whole multiple of 5m
 * @param noiseProfile market_like | choppy | trending
 * @returns new candles, same timeframe and open times
 * @throws {DataValidationError} for gaps, bad prices or an unknown profile
 */
export function addRealisticNoise(
  priceData: Candles,
  noiseProfile: NoiseProfile = 'market_like',
  options: RealisticNoiseOptions = {},
): Candles {
  const profile = checkType(
    ['market_like', 'choppy', 'trending'] as const,
    noiseProfile,
    'noiseProfile',
  );
  const tf = priceData.timeframe;
  const barSteps = fineStepsPerBar(tf);
  const barMs = TIMEFRAME_MS[tf];
  const n = priceData.openTime.length;
  if (n < 2) fail('priceData', `need at least 2 candles, got ${n}`);
  for (let i = 0; i < n; i++) {
    if (i > 0 && priceData.openTime[i] - priceData.openTime[i - 1] !== barMs)
      throw new DataValidationError({
        source: `${priceData.symbol} ${tf}`,
        row: i,
        openTime: priceData.openTime[i],
        field: 'open_time',
        reason: 'addRealisticNoise needs gap-free candles',
      });
    if (!(priceData.close[i] > 0 && Number.isFinite(priceData.close[i])))
      throw new DataValidationError({
        source: `${priceData.symbol} ${tf}`,
        row: i,
        openTime: priceData.openTime[i],
        field: 'close',
        reason: `not a positive price: ${priceData.close[i]}`,
      });
  }
  const every = options.anchorEvery ?? (profile === 'choppy' ? 2 : profile === 'trending' ? 8 : 4);
  if (!(Number.isInteger(every) && every >= 1))
    fail('anchorEvery', `must be a whole number >= 1, got ${every}`);
  const params = options.params ?? defaultBaseParams();
  const t0 = priceData.openTime[0];
  const dayStart = t0 - (t0 % DAY_MS);
  const lead = Math.round((t0 - dayStart) / TIMEFRAME_MS[FINE]);
  const steps = lead + n * barSteps;
  const rng = new Rng(options.seed ?? 0);
  const path = simulateBasePath(params, {
    seed: rng.fork('noise').nextU32(),
    steps,
    startTimeMs: dayStart,
    fineTimeframe: FINE,
    initialPrice: priceData.open[0],
    volatilityScale: options.volatilityScale ?? 1,
  });
  const logReturn = path.logReturn;
  shapeNoise(logReturn, lead, steps, profile, barSteps);
  // Pin the first open (the end of the lead-in) and every `every`-th close, and the last one.
  const wps: Waypoint[] = [];
  if (lead > 0) wps.push({ step: lead - 1, logPrice: Math.log(priceData.open[0]) });
  for (let b = 0; b < n; b++)
    if ((b + 1) % every === 0 || b === n - 1)
      wps.push({ step: lead + (b + 1) * barSteps - 1, logPrice: Math.log(priceData.close[b]) });
  const conditioned = conditionOnWaypoints(path, wps);
  const keep = options.keepVolume ?? priceData.volume.some((v) => v > 0);
  const volume = path.volume;
  if (keep) {
    for (let b = 0; b < n; b++) {
      let s = 0;
      const from = lead + b * barSteps;
      for (let i = from; i < from + barSteps; i++) s += volume[i];
      const k = s > 0 ? priceData.volume[b] / s : 0;
      for (let i = from; i < from + barSteps; i++)
        volume[i] = s > 0 ? volume[i] * k : priceData.volume[b] / barSteps;
    }
  }
  const fine = buildCandlesFromPath(
    { ...path, logReturn: conditioned, volume },
    { symbol: priceData.symbol, microstructure: params.microstructure },
    rng.fork('candles'),
  );
  const tail = sliceCandles(fine, lead, steps);
  const out = tf === FINE ? tail : resample(tail, tf).candles;
  const result = makeCandles(priceData.symbol, tf, {
    openTime: Float64Array.from(out.openTime),
    open: Float64Array.from(out.open),
    high: Float64Array.from(out.high),
    low: Float64Array.from(out.low),
    close: Float64Array.from(out.close),
    volume: Float64Array.from(out.volume),
  });
  validateCandles(result, { source: `addRealisticNoise(${priceData.symbol} ${tf}, ${profile})` });
  return result;
}

/**
 * The volume of a generated pattern as a trader would expect it for `patternType`: the base
 * process's own volume (heavy-tailed, persistent, coupled to volatility) times the pattern's
 * envelope: volume rising into a breakout and ahead of the breakout bar, a spike on it, declining
 * through consolidations (flags, triangles, wedges, rounding), spikes at touches of key levels,
 * and lower volume on the second top of a double top (and the right shoulder) than on the first.
 * For the planted type this is the candles' volume without the trading of their stop-run spikes
 * (`buildCandlesFromPath` adds that on the bars that carry one).
 * @param priceData a generated pattern (its plan gives the positions of the key bars)
 * @param patternType the pattern whose volume to build (default: the one planted)
 * @returns volume per candle of `priceData.candles` (base units)
 */
export function createRealisticVolumeProfile(
  priceData: GeneratedPattern,
  patternType: PatternType = priceData.label.type,
): Float64Array {
  const planted = priceData.planted.planted[0];
  const plan = planted.plan;
  const volume = Float64Array.from(priceData.basePath.volume);
  const volumeEvents =
    patternType === plan.type
      ? plan.volume
      : patternSkeleton(patternType, new Rng(0), { strength: plan.strength }).volume;
  shapeVolume({ ...plan, volume: volumeEvents }, volume);
  const stepMs = TIMEFRAME_MS[priceData.planted.path.fineTimeframe];
  const barMs = TIMEFRAME_MS[priceData.timeframe];
  const c = priceData.candles;
  const out = new Float64Array(c.openTime.length);
  const start = priceData.planted.path.startTimeMs;
  for (let b = 0; b < out.length; b++) {
    const from = Math.round((c.openTime[b] - start) / stepMs);
    const to = from + Math.round(barMs / stepMs);
    let s = 0;
    for (let i = from; i < to && i < volume.length; i++) s += volume[i];
    out[b] = s;
  }
  return out;
}
