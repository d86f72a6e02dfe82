// Support and resistance from confirmed swing highs and lows, as a streaming class plus a batch
// function that runs it (identical output). A swing at bar j is known only at bar j + rightBars,
// when its confirmation bars have closed; at every bar the nearest level above and below the close,
// how many swings cluster at it, and the distance to it use only swings known at that bar and that
// bar's ATR. Must never read a candle after the one being updated.

import { checkFinite, checkPeriod, commonLength, outputRecord } from './common.js';
import { AtrStream } from './volatility.js';

/** Parameters of swing-based support/resistance. */
export interface SupportResistanceOptions {
  /** Bars before a swing that must be strictly lower (highs) / higher (lows), default 5. */
  leftBars?: number;
  /** Bars after a swing that must not exceed it: its confirmation delay, default 5. */
  rightBars?: number;
  /** Swings older than this many bars (by the swing's own bar) are forgotten, default 300. */
  lookback?: number;
  /** ATR period used for the tolerance and for distances in ATR units, default 14. */
  atrPeriod?: number;
  /** Two swing prices within this many ATRs count as touches of one level, default 0.5. */
  touchTolerance?: number;
  /** Distance unit: `atr` (price distance / ATR, default) or `fraction` (price distance / close). */
  distanceUnit?: 'atr' | 'fraction';
  /** Distances are capped here, and take this value when no level exists; default 10 (atr) or 0.1 (fraction). */
  maxDistance?: number;
  /**
   * When true (default), any swing price can be resistance or support (a broken support becomes
   * resistance); when false, resistance comes only from swing highs and support only from swing lows.
   */
  roleReversal?: boolean;
}

/** Support/resistance outputs, each the input's length. */
export interface SupportResistanceOutput {
  /** Nearest level at or above the close, price units; NaN during warm-up or when none is known. */
  resistance: Float64Array;
  /** Nearest level at or below the close, price units; NaN during warm-up or when none is known. */
  support: Float64Array;
  /** Number of known swings within `touchTolerance` ATRs of the resistance (0 when none). */
  resistanceTouches: Float64Array;
  /** Number of known swings within `touchTolerance` ATRs of the support (0 when none). */
  supportTouches: Float64Array;
  /** `(resistance - close)` in the distance unit, in `[0, maxDistance]` (`maxDistance` when none). */
  resistanceDistance: Float64Array;
  /** `(close - support)` in the distance unit, in `[0, maxDistance]` (`maxDistance` when none). */
  supportDistance: Float64Array;
}

const SR_KEYS = [
  'resistance',
  'support',
  'resistanceTouches',
  'supportTouches',
  'resistanceDistance',
  'supportDistance',
] as const;

const KIND_HIGH = 1;
const KIND_LOW = 2;

/**
 * Streaming swing support/resistance. A swing high at bar j: `high[j]` is strictly above the highs
 * of the `leftBars` bars before it and at least the highs of the `rightBars` bars after it (so of
 * equal highs, the first counts); a swing low mirrors it. It becomes known at bar `j + rightBars`
 * and is kept while `j >= i - lookback`. At bar i: resistance = the lowest known level `>= close`,
 * support = the highest known level `<= close`; touches = known swings within
 * `touchTolerance × ATR(i)` of that level (itself included); distances in ATRs of bar i (or as a
 * fraction of the close), capped at `maxDistance`.
 * Warm-up: every output NaN for the first `atrPeriod` bars (the ATR's warm-up); after it, bars
 * with no level known give NaN prices, 0 touches and `maxDistance`.
 */
export class SupportResistanceStream {
  /** Number of leading NaN outputs (`atrPeriod`). */
  readonly lookback: number;
  /** Nearest level at or above the close after the last update. */
  resistance = NaN;
  /** Nearest level at or below the close after the last update. */
  support = NaN;
  /** Touches of the resistance after the last update. */
  resistanceTouches = NaN;
  /** Touches of the support after the last update. */
  supportTouches = NaN;
  /** Distance to the resistance after the last update. */
  resistanceDistance = NaN;
  /** Distance to the support after the last update. */
  supportDistance = NaN;
  private readonly left: number;
  private readonly right: number;
  private readonly memory: number;
  private readonly tolerance: number;
  private readonly fraction: boolean;
  private readonly maxDistance: number;
  private readonly roleReversal: boolean;
  private readonly atr: AtrStream;
  private readonly highs: Float64Array;
  private readonly lows: Float64Array;
  private readonly levelPrice: Float64Array;
  private readonly levelBar: Float64Array;
  private readonly levelKind: Uint8Array;
  private head = 0;
  private size = 0;
  private count = 0;

  /** @throws {RangeError} on a non-integer or too small bar count, `lookback < rightBars`, or a non-finite or negative tolerance or cap. */
  constructor(options: SupportResistanceOptions = {}) {
    const left = options.leftBars ?? 5;
    const right = options.rightBars ?? 5;
    const memory = options.lookback ?? 300;
    const unit = options.distanceUnit ?? 'atr';
    const tolerance = options.touchTolerance ?? 0.5;
    const maxDistance = options.maxDistance ?? (unit === 'atr' ? 10 : 0.1);
    checkPeriod('supportResistance leftBars', left);
    checkPeriod('supportResistance rightBars', right);
    checkPeriod('supportResistance lookback', memory, right);
    checkFinite('supportResistance touchTolerance', tolerance);
    checkFinite('supportResistance maxDistance', maxDistance);
    if (tolerance < 0 || maxDistance <= 0) {
      throw new RangeError('supportResistance touchTolerance must be >= 0 and maxDistance > 0');
    }
    if (unit !== 'atr' && unit !== 'fraction') {
      throw new RangeError(
        `supportResistance distanceUnit must be 'atr' or 'fraction', got ${String(unit)}`,
      );
    }
    this.left = left;
    this.right = right;
    this.memory = memory;
    this.tolerance = tolerance;
    this.fraction = unit === 'fraction';
    this.maxDistance = maxDistance;
    this.roleReversal = options.roleReversal ?? true;
    this.atr = new AtrStream(options.atrPeriod ?? 14);
    this.lookback = this.atr.lookback;
    this.highs = new Float64Array(left + right + 1);
    this.lows = new Float64Array(left + right + 1);
    // Swings of one kind are more than min(left, right) bars apart, so this many always fit.
    const capacity = 2 * (Math.floor(memory / (Math.min(left, right) + 1)) + 2);
    this.levelPrice = new Float64Array(capacity);
    this.levelBar = new Float64Array(capacity);
    this.levelKind = new Uint8Array(capacity);
  }

  /** Adds the next candle and returns the resistance distance (NaN during warm-up); sets every output. */
  update(high: number, low: number, close: number): number {
    const i = this.count++;
    const w = this.highs.length;
    this.highs[i % w] = high;
    this.lows[i % w] = low;
    this.forget(i);
    if (i >= w - 1) this.confirm(i - this.right);
    const atr = this.atr.update(high, low, close);
    if (i < this.lookback) return NaN;
    this.nearest(close, atr);
    return this.resistanceDistance;
  }

  /** Drops swings whose bar is older than `i - lookback`. */
  private forget(i: number): void {
    const cap = this.levelPrice.length;
    while (this.size > 0 && this.levelBar[this.head] < i - this.memory) {
      this.head = this.head + 1 === cap ? 0 : this.head + 1;
      this.size--;
    }
  }

  /** Records bar j as a swing high and/or low if its window (now complete) says so. */
  private confirm(j: number): void {
    const w = this.highs.length;
    const hj = this.highs[j % w];
    const lj = this.lows[j % w];
    let isHigh = true;
    let isLow = true;
    for (let m = j - this.left; m < j; m++) {
      if (!(hj > this.highs[m % w])) isHigh = false;
      if (!(lj < this.lows[m % w])) isLow = false;
    }
    for (let m = j + 1; m <= j + this.right; m++) {
      if (!(hj >= this.highs[m % w])) isHigh = false;
      if (!(lj <= this.lows[m % w])) isLow = false;
    }
    if (isHigh) this.add(hj, j, KIND_HIGH);
    if (isLow) this.add(lj, j, KIND_LOW);
  }

  private add(price: number, bar: number, kind: number): void {
    const cap = this.levelPrice.length;
    let at = this.head + this.size;
    if (at >= cap) at -= cap;
    this.levelPrice[at] = price;
    this.levelBar[at] = bar;
    this.levelKind[at] = kind;
    this.size++;
  }

  /** Sets the outputs from the known swings, the close and the ATR of the current bar. */
  private nearest(close: number, atr: number): void {
    const cap = this.levelPrice.length;
    const any = this.roleReversal;
    let resistance = Infinity;
    let support = -Infinity;
    let slot = this.head;
    for (let k = 0; k < this.size; k++) {
      const price = this.levelPrice[slot];
      const kind = this.levelKind[slot];
      if (price >= close && price < resistance && (any || kind === KIND_HIGH)) resistance = price;
      if (price <= close && price > support && (any || kind === KIND_LOW)) support = price;
      slot = slot + 1 === cap ? 0 : slot + 1;
    }
    const band = this.tolerance * atr;
    let rTouches = 0;
    let sTouches = 0;
    slot = this.head;
    for (let k = 0; k < this.size; k++) {
      const price = this.levelPrice[slot];
      const kind = this.levelKind[slot];
      if (Math.abs(price - resistance) <= band && (any || kind === KIND_HIGH)) rTouches++;
      if (Math.abs(price - support) <= band && (any || kind === KIND_LOW)) sTouches++;
      slot = slot + 1 === cap ? 0 : slot + 1;
    }
    const found = resistance !== Infinity;
    const foundS = support !== -Infinity;
    this.resistance = found ? resistance : NaN;
    this.support = foundS ? support : NaN;
    this.resistanceTouches = rTouches;
    this.supportTouches = sTouches;
    this.resistanceDistance = found
      ? this.distance(resistance - close, close, atr)
      : this.maxDistance;
    this.supportDistance = foundS ? this.distance(close - support, close, atr) : this.maxDistance;
  }

  /** A non-negative price gap in the chosen unit, capped at `maxDistance`. */
  private distance(gap: number, close: number, atr: number): number {
    const scale = this.fraction ? close : atr;
    const d = scale > 0 ? gap / scale : gap > 0 ? Infinity : 0;
    return d < this.maxDistance ? d : this.maxDistance;
  }
}

/**
 * Support and resistance from confirmed swing highs/lows (see {@link SupportResistanceStream}):
 * per bar, the nearest level above and below the close known at that bar, its touches and the
 * distance to it. Uses only candles up to each row: truncating the input never changes earlier rows.
 * Warm-up: rows `0 .. atrPeriod-1` are NaN in every output.
 * @param out - optional preallocated outputs: only the buffers given are filled (and only those
 *   outputs computed); without `out` all are allocated. Returns `out` itself when given.
 * @throws {RangeError} on a bad option (see the stream), inputs of different lengths or an `out` of the wrong length.
 */
export function supportResistance(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  options?: SupportResistanceOptions,
): SupportResistanceOutput;
/** Support/resistance into the caller's buffers (only those given are filled); returns `out`. */
export function supportResistance<T extends Partial<SupportResistanceOutput>>(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  options: SupportResistanceOptions,
  out: T,
): T;
export function supportResistance(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  options: SupportResistanceOptions = {},
  out?: Partial<SupportResistanceOutput>,
): Partial<SupportResistanceOutput> {
  const n = commonLength('supportResistance', high, low, close);
  const s = new SupportResistanceStream(options);
  const o = outputRecord('supportResistance', SR_KEYS, out, n);
  const {
    resistance,
    support,
    resistanceTouches,
    supportTouches,
    resistanceDistance,
    supportDistance,
  } = o;
  for (let i = 0; i < n; i++) {
    const v = s.update(high[i], low[i], close[i]);
    if (resistanceDistance !== undefined) resistanceDistance[i] = v;
    if (resistance !== undefined) resistance[i] = s.resistance;
    if (support !== undefined) support[i] = s.support;
    if (resistanceTouches !== undefined) resistanceTouches[i] = s.resistanceTouches;
    if (supportTouches !== undefined) supportTouches[i] = s.supportTouches;
    if (supportDistance !== undefined) supportDistance[i] = s.supportDistance;
  }
  return o;
}
