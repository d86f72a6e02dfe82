// Volume indicators: OBV, MFI, VWAP (rolling N-bar and anchored, per UTC day by default) and the
// volume z-score. Each is a streaming class plus a batch function that runs that class, so both
// agree bit for bit. OBV and MFI follow TA-Lib; warm-up rows are NaN. Never reads a candle after
// the one being updated.

import { checkPeriod, commonLength, outputArray } from './common.js';
import { RollingSum } from './rolling.js';
import { ZScoreStream } from './volatility.js';

/**
 * Streaming On-Balance Volume (TA-Lib OBV): starts at the first bar's volume, then adds the bar's
 * volume when the close rises, subtracts it when the close falls. Base-currency units; a running
 * level (depends on where the series starts), so use its changes, not its level, as a feature.
 * Warm-up: none.
 */
export class ObvStream {
  /** Number of leading NaN outputs (0). */
  readonly lookback = 0;
  private started = false;
  private prevClose = 0;
  private value = 0;

  /** Adds the next close and volume and returns the OBV. */
  update(close: number, volume: number): number {
    if (!this.started) {
      this.started = true;
      this.value = volume;
    } else if (close > this.prevClose) {
      this.value += volume;
    } else if (close < this.prevClose) {
      this.value -= volume;
    }
    this.prevClose = close;
    return this.value;
  }
}

/**
 * On-Balance Volume (TA-Lib OBV), base-currency units.
 * Warm-up: none (row 0 is the first volume).
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} when the inputs differ in length or `out` has the wrong length.
 */
export function obv(close: Float64Array, volume: Float64Array, out?: Float64Array): Float64Array {
  const n = commonLength('obv', close, volume);
  const s = new ObvStream();
  const o = outputArray('obv', out, n);
  for (let i = 0; i < n; i++) o[i] = s.update(close[i], volume[i]);
  return o;
}

/**
 * Streaming Money Flow Index, 0..100 (TA-Lib MFI): typical price `tp = (high + low + close) / 3`,
 * money flow `tp × volume`, positive when tp rose from the previous bar and negative when it fell;
 * MFI = 100 × positive / (positive + negative) over the last `period` bars. When the window holds
 * no money flow at all it is 0. (TA-Lib gives 0 whenever the total flow is below 1 quote unit,
 * a unit-dependent guard; here only a window without flow does.)
 * Warm-up: NaN for the first `period` bars.
 */
export class MfiStream {
  /** Number of leading NaN outputs (`period`). */
  readonly lookback: number;
  private readonly period: number;
  private readonly positive: RollingSum;
  private readonly negative: RollingSum;
  private readonly withFlow: RollingSum;
  private count = 0;
  private prevTp = 0;

  /** @throws {RangeError} when `period` is not an integer >= 1. */
  constructor(period = 14) {
    checkPeriod('mfi period', period);
    this.period = period;
    this.lookback = period;
    this.positive = new RollingSum(period);
    this.negative = new RollingSum(period);
    this.withFlow = new RollingSum(period);
  }

  /** Adds the next candle and returns the MFI (NaN during warm-up). */
  update(high: number, low: number, close: number, volume: number): number {
    const tp = (high + low + close) / 3;
    const d = tp - this.prevTp;
    this.prevTp = tp;
    if (this.count++ === 0) return NaN;
    const flow = tp * volume;
    const pos = this.positive.push(d > 0 ? flow : 0);
    const neg = this.negative.push(d < 0 ? flow : 0);
    const bars = this.withFlow.push(d !== 0 && flow !== 0 ? 1 : 0);
    if (this.positive.count < this.period) return NaN;
    if (bars === 0) return 0;
    return 100 * (pos / (pos + neg));
  }
}

/**
 * Money Flow Index (TA-Lib MFI), 0..100.
 * Warm-up: rows `0 .. period-1` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} on a bad period, inputs of different lengths or an `out` of the wrong length.
 */
export function mfi(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  volume: Float64Array,
  period = 14,
  out?: Float64Array,
): Float64Array {
  const n = commonLength('mfi', high, low, close, volume);
  const s = new MfiStream(period);
  const o = outputArray('mfi', out, n);
  for (let i = 0; i < n; i++) o[i] = s.update(high[i], low[i], close[i], volume[i]);
  return o;
}

/**
 * Streaming rolling VWAP over the last `period` bars: `Σ tp × volume / Σ volume` with typical price
 * `tp = (high + low + close) / 3`, price units. A window with zero total volume gives the plain
 * mean of its typical prices (the limit of equal weights).
 * Warm-up: NaN for the first `period - 1` bars.
 */
export class VwapStream {
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  private readonly period: number;
  private readonly priceVolume: RollingSum;
  private readonly volume: RollingSum;
  private readonly price: RollingSum;
  private readonly traded: RollingSum;

  /** @throws {RangeError} when `period` is not an integer >= 1. */
  constructor(period = 96) {
    checkPeriod('vwap period', period);
    this.period = period;
    this.lookback = period - 1;
    this.priceVolume = new RollingSum(period);
    this.volume = new RollingSum(period);
    this.price = new RollingSum(period);
    this.traded = new RollingSum(period);
  }

  /** Adds the next candle and returns the VWAP (NaN during warm-up). */
  update(high: number, low: number, close: number, volume: number): number {
    const tp = (high + low + close) / 3;
    const pv = this.priceVolume.push(tp * volume);
    const v = this.volume.push(volume);
    const p = this.price.push(tp);
    const traded = this.traded.push(volume !== 0 ? 1 : 0);
    if (this.price.count < this.period) return NaN;
    return traded > 0 ? pv / v : p / this.period;
  }
}

/**
 * Rolling VWAP over `period` bars (default 96 = one day of 15m bars), price units.
 * Warm-up: rows `0 .. period-2` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} on a bad period, inputs of different lengths or an `out` of the wrong length.
 */
export function vwap(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  volume: Float64Array,
  period = 96,
  out?: Float64Array,
): Float64Array {
  const n = commonLength('vwap', high, low, close, volume);
  const s = new VwapStream(period);
  const o = outputArray('vwap', out, n);
  for (let i = 0; i < n; i++) o[i] = s.update(high[i], low[i], close[i], volume[i]);
  return o;
}

/** One UTC day in milliseconds: the default VWAP anchor. */
export const DAY_MS = 86_400_000;

/**
 * Streaming anchored VWAP: `Σ tp × volume / Σ volume` over the bars since the start of the current
 * anchor period, `tp = (high + low + close) / 3`. A bar belongs to period
 * `floor(openTimeMs / anchorMs)` (UTC days by default), so the sums restart on the first bar of
 * each UTC day. Zero volume so far gives the plain mean of the typical prices so far. Price units.
 * Warm-up: none (the first bar of a series starts its period, whatever its time).
 */
export class AnchoredVwapStream {
  /** Number of leading NaN outputs (0). */
  readonly lookback = 0;
  private readonly anchorMs: number;
  private anchor = NaN;
  private priceVolume = 0;
  private volume = 0;
  private price = 0;
  private bars = 0;

  /** @throws {RangeError} when `anchorMs` is not a positive integer. */
  constructor(anchorMs = DAY_MS) {
    checkPeriod('anchoredVwap anchorMs', anchorMs);
    this.anchorMs = anchorMs;
  }

  /** Adds the next candle (open time in UTC ms) and returns the VWAP since the anchor. */
  update(openTimeMs: number, high: number, low: number, close: number, volume: number): number {
    const anchor = Math.floor(openTimeMs / this.anchorMs);
    if (anchor !== this.anchor) {
      this.anchor = anchor;
      this.priceVolume = 0;
      this.volume = 0;
      this.price = 0;
      this.bars = 0;
    }
    const tp = (high + low + close) / 3;
    this.priceVolume += tp * volume;
    this.volume += volume;
    this.price += tp;
    this.bars++;
    return this.volume !== 0 ? this.priceVolume / this.volume : this.price / this.bars;
  }
}

/**
 * VWAP anchored to each UTC day (or any `anchorMs` period), price units (see
 * {@link AnchoredVwapStream}).
 * Warm-up: none.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} on a bad anchor, inputs of different lengths or an `out` of the wrong length.
 */
export function anchoredVwap(
  openTimeMs: Float64Array,
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  volume: Float64Array,
  anchorMs = DAY_MS,
  out?: Float64Array,
): Float64Array {
  const n = commonLength('anchoredVwap', openTimeMs, high, low, close, volume);
  const s = new AnchoredVwapStream(anchorMs);
  const o = outputArray('anchoredVwap', out, n);
  for (let i = 0; i < n; i++) o[i] = s.update(openTimeMs[i], high[i], low[i], close[i], volume[i]);
  return o;
}

/** Parameters of the volume z-score. */
export interface VolumeZScoreOptions {
  /** Window in bars, default 20 (>= 2). */
  period?: number;
  /** Score `ln(1 + volume)` instead of volume (tames the heavy right tail), default false. */
  log?: boolean;
}

/**
 * Streaming volume z-score: `(v - mean) / sd` of the bar's volume (or `ln(1 + volume)`) against
 * the last `period` bars, the current one included; sample standard deviation (ddof 1, as pandas);
 * 0 when the window is constant. Dimensionless.
 * Warm-up: NaN for the first `period - 1` bars.
 */
export class VolumeZScoreStream {
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  private readonly z: ZScoreStream;
  private readonly log: boolean;

  /** @throws {RangeError} when `period` is not an integer >= 2. */
  constructor(options: VolumeZScoreOptions = {}) {
    const period = options.period ?? 20;
    checkPeriod('volumeZScore period', period, 2);
    this.z = new ZScoreStream(period, 1);
    this.log = options.log ?? false;
    this.lookback = this.z.lookback;
  }

  /** Adds the next volume and returns its z-score (NaN during warm-up). */
  update(volume: number): number {
    return this.z.update(this.log ? Math.log1p(volume) : volume);
  }
}

/**
 * Volume z-score against a rolling window (see {@link VolumeZScoreStream}).
 * Warm-up: rows `0 .. period-2` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} on a bad period or an `out` of the wrong length.
 */
export function volumeZScore(
  volume: Float64Array,
  options: VolumeZScoreOptions = {},
  out?: Float64Array,
): Float64Array {
  const s = new VolumeZScoreStream(options);
  const o = outputArray('volumeZScore', out, volume.length);
  for (let i = 0; i < volume.length; i++) o[i] = s.update(volume[i]);
  return o;
}
