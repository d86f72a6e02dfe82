// Volatility and channel indicators: true range, ATR (Wilder), Bollinger Bands (+ %B, bandwidth),
// Keltner and Donchian channels, rolling standard deviation and z-score, and realised volatility
// of log returns. Each is a streaming class plus a batch function that runs that class, so both
// agree bit for bit; TA-Lib conventions (ATR seeded with the SMA of the first true ranges,
// population standard deviation in the bands); warm-up rows are NaN. Never reads a candle after the
// one being updated.

import { checkFinite, checkPeriod, commonLength, outputArray, outputRecord } from './common.js';
import { EmaStream } from './moving-averages.js';
import { RollingMax, RollingMin, RollingMoments } from './rolling.js';

/**
 * Streaming true range: `max(high - low, |high - prevClose|, |low - prevClose|)`, in price units.
 * Warm-up: NaN for the first bar (no previous close), as TA-Lib TRANGE.
 */
export class TrueRangeStream {
  /** Number of leading NaN outputs (1). */
  readonly lookback = 1;
  private prevClose = NaN;

  /** Adds the next candle and returns its true range (NaN on the first bar). */
  update(high: number, low: number, close: number): number {
    const pc = this.prevClose;
    this.prevClose = close;
    let tr = high - low;
    const a = Math.abs(high - pc);
    if (a > tr) tr = a;
    const b = Math.abs(low - pc);
    if (b > tr) tr = b;
    return pc === pc ? tr : NaN;
  }
}

/**
 * True range (TA-Lib TRANGE), price units.
 * Warm-up: row 0 is NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} when the inputs differ in length or `out` has the wrong length.
 */
export function trueRange(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  out?: Float64Array,
): Float64Array {
  const n = commonLength('trueRange', high, low, close);
  const s = new TrueRangeStream();
  const o = outputArray('trueRange', out, n);
  for (let i = 0; i < n; i++) o[i] = s.update(high[i], low[i], close[i]);
  return o;
}

/**
 * Streaming Average True Range (Wilder, TA-Lib ATR): the first value is the SMA of the true ranges
 * of bars `1 .. period`; then `atr = (atr * (period - 1) + tr) / period`. Price units.
 * Warm-up: NaN for the first `period` bars.
 */
export class AtrStream {
  /** Period in bars. */
  readonly period: number;
  /** Number of leading NaN outputs (`period`). */
  readonly lookback: number;
  private count = 0;
  private prevClose = NaN;
  private value = NaN;
  private seedSum = 0;

  /** @throws {RangeError} when `period` is not an integer >= 1. */
  constructor(period = 14) {
    checkPeriod('atr period', period);
    this.period = period;
    this.lookback = period;
  }

  /** Adds the next candle and returns the ATR (NaN during warm-up). */
  update(high: number, low: number, close: number): number {
    // The same steps as `updateRange`, on fields (kept in step by the batch == stream tests).
    const n = this.count++;
    const p = this.period;
    let tr = high - low;
    const a = Math.abs(high - this.prevClose);
    if (a > tr) tr = a;
    const b = Math.abs(low - this.prevClose);
    if (b > tr) tr = b;
    this.prevClose = close;
    if (n > p) {
      let v = this.value * (p - 1);
      v += tr;
      this.value = v / p;
    } else if (n > 0) {
      this.seedSum += tr;
      if (n === p) this.value = this.seedSum / p;
    }
    return this.value;
  }

  /**
   * Adds candles `start..end-1` in order and writes each ATR to `out` at the same row: the same as
   * calling `update` on each row (the batch path; `out` may be an input column).
   */
  updateRange(
    high: Float64Array,
    low: Float64Array,
    close: Float64Array,
    out: Float64Array,
    start: number,
    end: number,
  ): void {
    const p = this.period;
    let count = this.count;
    let prevClose = this.prevClose;
    let value = this.value;
    let seedSum = this.seedSum;
    for (let i = start; i < end; i++) {
      const h = high[i];
      const l = low[i];
      const c = close[i];
      const n = count++;
      let tr = h - l;
      const a = Math.abs(h - prevClose);
      if (a > tr) tr = a;
      const b = Math.abs(l - prevClose);
      if (b > tr) tr = b;
      prevClose = c;
      if (n > p) {
        value *= p - 1;
        value += tr;
        value /= p;
      } else if (n > 0) {
        seedSum += tr;
        if (n === p) value = seedSum / p;
      }
      out[i] = value;
    }
    this.count = count;
    this.prevClose = prevClose;
    this.value = value;
    this.seedSum = seedSum;
  }
}

/**
 * Average True Range (TA-Lib ATR, Wilder smoothing), price units.
 * Warm-up: rows `0 .. period-1` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} on a bad period, inputs of different lengths or an `out` of the wrong length.
 */
export function atr(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  period = 14,
  out?: Float64Array,
): Float64Array {
  const n = commonLength('atr', high, low, close);
  const s = new AtrStream(period);
  const o = outputArray('atr', out, n);
  s.updateRange(high, low, close, o, 0, n);
  return o;
}

/** Parameters of Bollinger Bands. */
export interface BollingerOptions {
  /** SMA and standard-deviation window in bars, default 20. */
  period?: number;
  /** Standard deviations above the middle band, default 2. */
  stdDevUp?: number;
  /** Standard deviations below the middle band, default 2. */
  stdDevDown?: number;
}

/** Bollinger Band outputs, each the input's length. */
export interface BollingerOutput {
  /** Upper band, price units. */
  upper: Float64Array;
  /** Middle band: SMA(period), price units (equal bit for bit to `sma(close, period)`). */
  middle: Float64Array;
  /** Lower band, price units. */
  lower: Float64Array;
  /** %B: `(close - lower) / (upper - lower)` (0.5 when the bands coincide); 0 at the lower band, 1 at the upper. */
  percentB: Float64Array;
  /** Bandwidth: `(upper - lower) / middle`, a fraction (0 when the middle is 0). */
  bandwidth: Float64Array;
}

const BB_KEYS = ['upper', 'middle', 'lower', 'percentB', 'bandwidth'] as const;

/**
 * Streaming Bollinger Bands: SMA(period) ± k × population standard deviation of the same window
 * (TA-Lib BBANDS with SMA), plus %B and bandwidth.
 * Warm-up: NaN for the first `period - 1` bars.
 */
export class BollingerStream {
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  /** Upper band after the last update (NaN during warm-up). */
  upper = NaN;
  /** Lower band after the last update (NaN during warm-up). */
  lower = NaN;
  /** Middle band after the last update (NaN during warm-up). */
  middle = NaN;
  private readonly period: number;
  private readonly up: number;
  private readonly down: number;
  private readonly buf: Float64Array;
  private close = NaN;
  private pos = 0;
  private count = 0;
  private sum = 0;
  private shift = 0;
  private s1 = 0;
  private s2 = 0;
  /** One-row input and outputs through which `update` runs `updateRange` (the one kernel). */
  private readonly row = new Float64Array(1);
  private readonly rowUpper = new Float64Array(1);
  private readonly rowLower = new Float64Array(1);

  /** @throws {RangeError} when `period` is not an integer >= 1 or a multiplier is not finite. */
  constructor(options: BollingerOptions = {}) {
    const period = options.period ?? 20;
    const up = options.stdDevUp ?? 2;
    const down = options.stdDevDown ?? 2;
    checkPeriod('bollinger period', period);
    checkFinite('bollinger stdDevUp', up);
    checkFinite('bollinger stdDevDown', down);
    this.period = period;
    this.up = up;
    this.down = down;
    this.lookback = period - 1;
    this.buf = new Float64Array(period);
  }

  /** Adds the next close and returns the middle band (NaN during warm-up); sets `upper`, `lower`. */
  update(close: number): number {
    const row = this.row;
    row[0] = close;
    this.updateRange(row, 0, 1, this.rowUpper, row, this.rowLower);
    this.close = close;
    if (this.count < this.period) return NaN;
    this.upper = this.rowUpper[0];
    this.lower = this.rowLower[0];
    this.middle = row[0];
    return row[0];
  }

  /** %B of the last close (computed on read; NaN during warm-up, 0.5 when the bands coincide). */
  get percentB(): number {
    const width = this.upper - this.lower;
    return width !== 0 ? (this.close - this.lower) / width : 0.5;
  }

  /** Bandwidth after the last update (computed on read; NaN during warm-up, 0 when the middle is 0). */
  get bandwidth(): number {
    return this.middle !== 0 ? (this.upper - this.lower) / this.middle : 0;
  }

  /**
   * Adds `close[start..end)` in order and writes the outputs that are given at the same rows: the
   * same as calling `update` on each row and reading its fields (the batch path; `middle` may be
   * `close` itself). The window sums follow {@link RollingMoments} step for step, inlined because
   * this is the benchmarked batch kernel.
   */
  updateRange(
    close: Float64Array,
    start: number,
    end: number,
    upper?: Float64Array,
    middle?: Float64Array,
    lower?: Float64Array,
    percentB?: Float64Array,
    bandwidth?: Float64Array,
  ): void {
    const p = this.period;
    const up = this.up;
    const down = this.down;
    const buf = this.buf;
    let pos = this.pos;
    let count = this.count;
    let sum = this.sum;
    let shift = this.shift;
    let s1 = this.s1;
    let s2 = this.s2;
    for (let i = start; i < end; i++) {
      const x = close[i];
      if (count < p) {
        if (count === 0) shift = x;
        const d = x - shift;
        sum += x;
        s1 += d;
        s2 += d * d;
        count++;
      } else {
        const old = buf[pos];
        const d = x - shift;
        const od = old - shift;
        sum += x - old;
        s1 += d - od;
        s2 += d * d - od * od;
      }
      buf[pos] = x;
      let recentre: boolean;
      if (pos + 1 === p) {
        pos = 0;
        let total = 0;
        for (let k = 0; k < p; k++) total += buf[k];
        sum = total;
        recentre = true;
      } else {
        pos++;
        recentre = s1 * s1 > s2 * count * 0.999999;
      }
      if (recentre) {
        const c = sum / count;
        let a = 0;
        let b = 0;
        for (let k = 0; k < count; k++) {
          const e = buf[k] - c;
          a += e;
          b += e * e;
        }
        shift = c;
        s1 = a;
        s2 = b;
      }
      let m = NaN;
      let u = NaN;
      let l = NaN;
      if (count === p) {
        m = sum / p;
        const v = (s2 - s1 * (s1 / count)) / count;
        const sd = Math.sqrt(v > 0 ? v : v === v ? 0 : v);
        u = m + up * sd;
        l = m - down * sd;
      }
      if (upper !== undefined) upper[i] = u;
      if (lower !== undefined) lower[i] = l;
      if (percentB !== undefined) {
        const width = u - l;
        percentB[i] = width !== 0 ? (x - l) / width : 0.5;
      }
      if (bandwidth !== undefined) bandwidth[i] = m !== 0 ? (u - l) / m : 0;
      if (middle !== undefined) middle[i] = m;
    }
    this.pos = pos;
    this.count = count;
    this.sum = sum;
    this.shift = shift;
    this.s1 = s1;
    this.s2 = s2;
  }
}

/**
 * Bollinger Bands (TA-Lib BBANDS conventions: SMA middle, population standard deviation) with
 * %B and bandwidth.
 * Warm-up: rows `0 .. period-2` are NaN in every output.
 * @param out - optional preallocated outputs: only the buffers given are filled (and only those
 *   outputs computed); without `out` all are allocated. Returns `out` itself when given.
 * @throws {RangeError} on a bad period or multiplier, or an `out` buffer of the wrong length.
 */
export function bollingerBands(close: Float64Array, options?: BollingerOptions): BollingerOutput;
/** Bollinger Bands into the caller's buffers (only those given are filled); returns `out`. */
export function bollingerBands<T extends Partial<BollingerOutput>>(
  close: Float64Array,
  options: BollingerOptions,
  out: T,
): T;
export function bollingerBands(
  close: Float64Array,
  options: BollingerOptions = {},
  out?: Partial<BollingerOutput>,
): Partial<BollingerOutput> {
  const s = new BollingerStream(options);
  const o = outputRecord('bollingerBands', BB_KEYS, out, close.length);
  s.updateRange(close, 0, close.length, o.upper, o.middle, o.lower, o.percentB, o.bandwidth);
  return o;
}

/** Parameters of Keltner channels. */
export interface KeltnerOptions {
  /** EMA period of the middle line, default 20. */
  emaPeriod?: number;
  /** ATR period of the band width, default 10. */
  atrPeriod?: number;
  /** ATR multiples between the middle line and each band, default 2. */
  multiplier?: number;
}

/** Channel outputs (Keltner, Donchian), price units, each the input's length. */
export interface ChannelOutput {
  /** Upper band. */
  upper: Float64Array;
  /** Middle line. */
  middle: Float64Array;
  /** Lower band. */
  lower: Float64Array;
}

const CHANNEL_KEYS = ['upper', 'middle', 'lower'] as const;

/**
 * Streaming Keltner channels: middle = EMA(close, emaPeriod) (SMA-seeded), bands = middle ±
 * multiplier × ATR(atrPeriod) (Wilder). Defaults 20 / 10 / 2 (StockCharts' modern Keltner).
 * Warm-up: NaN for the first `max(emaPeriod - 1, atrPeriod)` bars.
 */
export class KeltnerStream {
  /** Number of leading NaN outputs. */
  readonly lookback: number;
  /** Upper band after the last update. */
  upper = NaN;
  /** Lower band after the last update. */
  lower = NaN;
  private readonly ema: EmaStream;
  private readonly atr: AtrStream;
  private readonly multiplier: number;

  /** @throws {RangeError} when a period is not an integer >= 1 or the multiplier is not finite. */
  constructor(options: KeltnerOptions = {}) {
    const multiplier = options.multiplier ?? 2;
    checkFinite('keltner multiplier', multiplier);
    this.ema = new EmaStream(options.emaPeriod ?? 20);
    this.atr = new AtrStream(options.atrPeriod ?? 10);
    this.multiplier = multiplier;
    this.lookback = Math.max(this.ema.lookback, this.atr.lookback);
  }

  /** Adds the next candle and returns the middle line (NaN during warm-up); sets the bands. */
  update(high: number, low: number, close: number): number {
    const middle = this.ema.update(close);
    const range = this.atr.update(high, low, close);
    if (middle !== middle || range !== range) return NaN;
    this.upper = middle + this.multiplier * range;
    this.lower = middle - this.multiplier * range;
    return middle;
  }
}

/**
 * Keltner channels (EMA middle, ATR bands), price units.
 * Warm-up: rows before `max(emaPeriod - 1, atrPeriod)` are NaN.
 * @param out - optional preallocated outputs: only the buffers given are filled (and only those
 *   outputs computed); without `out` all are allocated. Returns `out` itself when given.
 * @throws {RangeError} on a bad parameter, inputs of different lengths or an `out` of the wrong length.
 */
export function keltnerChannels(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  options?: KeltnerOptions,
): ChannelOutput;
/** Keltner channels into the caller's buffers (only those given are filled); returns `out`. */
export function keltnerChannels<T extends Partial<ChannelOutput>>(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  options: KeltnerOptions,
  out: T,
): T;
export function keltnerChannels(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  options: KeltnerOptions = {},
  out?: Partial<ChannelOutput>,
): Partial<ChannelOutput> {
  const n = commonLength('keltnerChannels', high, low, close);
  const s = new KeltnerStream(options);
  const o = outputRecord('keltnerChannels', CHANNEL_KEYS, out, n);
  const { upper, middle, lower } = o;
  for (let i = 0; i < n; i++) {
    const m = s.update(high[i], low[i], close[i]);
    if (middle !== undefined) middle[i] = m;
    if (upper !== undefined) upper[i] = s.upper;
    if (lower !== undefined) lower[i] = s.lower;
  }
  return o;
}

/**
 * Streaming Donchian channel: highest high and lowest low of the last `period` bars (the current
 * bar included) and their midpoint.
 * Warm-up: NaN for the first `period - 1` bars.
 */
export class DonchianStream {
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  /** Upper band (highest high) after the last update. */
  upper = NaN;
  /** Lower band (lowest low) after the last update. */
  lower = NaN;
  private readonly highest: RollingMax;
  private readonly lowest: RollingMin;
  private count = 0;

  /** @throws {RangeError} when `period` is not an integer >= 1. */
  constructor(period = 20) {
    checkPeriod('donchian period', period);
    this.lookback = period - 1;
    this.highest = new RollingMax(period);
    this.lowest = new RollingMin(period);
  }

  /** Adds the next candle and returns the midpoint (NaN during warm-up); sets the bands. */
  update(high: number, low: number): number {
    const hh = this.highest.push(high);
    const ll = this.lowest.push(low);
    if (this.count++ < this.lookback) return NaN;
    this.upper = hh;
    this.lower = ll;
    return (hh + ll) / 2;
  }
}

/**
 * Donchian channel over `period` bars (current bar included), price units.
 * Warm-up: rows `0 .. period-2` are NaN.
 * @param out - optional preallocated outputs: only the buffers given are filled (and only those
 *   outputs computed); without `out` all are allocated. Returns `out` itself when given.
 * @throws {RangeError} on a bad period, inputs of different lengths or an `out` of the wrong length.
 */
export function donchianChannel(
  high: Float64Array,
  low: Float64Array,
  period?: number,
): ChannelOutput;
/** Donchian channel into the caller's buffers (only those given are filled); returns `out`. */
export function donchianChannel<T extends Partial<ChannelOutput>>(
  high: Float64Array,
  low: Float64Array,
  period: number,
  out: T,
): T;
export function donchianChannel(
  high: Float64Array,
  low: Float64Array,
  period = 20,
  out?: Partial<ChannelOutput>,
): Partial<ChannelOutput> {
  const n = commonLength('donchianChannel', high, low);
  const s = new DonchianStream(period);
  const o = outputRecord('donchianChannel', CHANNEL_KEYS, out, n);
  const { upper, middle, lower } = o;
  for (let i = 0; i < n; i++) {
    const m = s.update(high[i], low[i]);
    if (middle !== undefined) middle[i] = m;
    if (upper !== undefined) upper[i] = s.upper;
    if (lower !== undefined) lower[i] = s.lower;
  }
  return o;
}

/**
 * Streaming rolling standard deviation of the last `period` values with `period - ddof` in the
 * denominator (ddof 0: population, as TA-Lib STDDEV; 1: sample, as pandas `rolling().std()`).
 * Warm-up: NaN for the first `period - 1` values.
 */
export class StdDevStream {
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  private readonly period: number;
  private readonly ddof: number;
  private readonly window: RollingMoments;

  /** @throws {RangeError} when `period` is not an integer > ddof or ddof is not 0 or 1. */
  constructor(period: number, ddof = 0) {
    if (ddof !== 0 && ddof !== 1) throw new RangeError(`stdDev ddof must be 0 or 1, got ${ddof}`);
    checkPeriod('stdDev period', period, ddof + 1);
    this.period = period;
    this.ddof = ddof;
    this.lookback = period - 1;
    this.window = new RollingMoments(period);
  }

  /** Adds the next value and returns the standard deviation (NaN during warm-up). */
  update(value: number): number {
    this.window.push(value);
    if (this.window.count < this.period) return NaN;
    return Math.sqrt(this.window.variance(this.ddof));
  }
}

/**
 * Rolling standard deviation over `period` values (ddof 0 population by default), input units.
 * Warm-up: rows `0 .. period-2` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} on a bad period or ddof, or an `out` of the wrong length.
 */
export function rollingStdDev(
  values: Float64Array,
  period: number,
  ddof = 0,
  out?: Float64Array,
): Float64Array {
  const s = new StdDevStream(period, ddof);
  const o = outputArray('rollingStdDev', out, values.length);
  for (let i = 0; i < values.length; i++) o[i] = s.update(values[i]);
  return o;
}

/**
 * Streaming rolling z-score: `(x - mean) / sd` over the last `period` values (the current one
 * included), `sd` with `period - ddof` in the denominator (default ddof 1, as pandas); 0 when the
 * window is constant. Causal: unlike a whole-series z-score, it never sees later values.
 * Warm-up: NaN for the first `period - 1` values.
 */
export class ZScoreStream {
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  private readonly period: number;
  private readonly ddof: number;
  private readonly window: RollingMoments;

  /** @throws {RangeError} when `period` is not an integer > ddof or ddof is not 0 or 1. */
  constructor(period: number, ddof = 1) {
    if (ddof !== 0 && ddof !== 1) throw new RangeError(`zScore ddof must be 0 or 1, got ${ddof}`);
    checkPeriod('zScore period', period, ddof + 1);
    this.period = period;
    this.ddof = ddof;
    this.lookback = period - 1;
    this.window = new RollingMoments(period);
  }

  /** Adds the next value and returns its z-score within the window (NaN during warm-up). */
  update(value: number): number {
    const w = this.window;
    w.push(value);
    if (w.count < this.period) return NaN;
    const variance = w.variance(this.ddof);
    if (variance === 0) return 0;
    return (value - w.sum / this.period) / Math.sqrt(variance);
  }
}

/**
 * Rolling z-score of each value against the last `period` values (see {@link ZScoreStream}).
 * Warm-up: rows `0 .. period-2` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} on a bad period or ddof, or an `out` of the wrong length.
 */
export function rollingZScore(
  values: Float64Array,
  period: number,
  ddof = 1,
  out?: Float64Array,
): Float64Array {
  const s = new ZScoreStream(period, ddof);
  const o = outputArray('rollingZScore', out, values.length);
  for (let i = 0; i < values.length; i++) o[i] = s.update(values[i]);
  return o;
}

/** Parameters of realised volatility. */
export interface RealizedVolatilityOptions {
  /** Number of log returns in the window, default 20 (>= 2). */
  period?: number;
  /**
   * Bars per year used to annualise (result × sqrt(barsPerYear)); default 1 = per-bar volatility.
   * E.g. 35040 for 15m bars of a 24/7 market, 2190 for 4h, 365 for 1d.
   */
  barsPerYear?: number;
}

/**
 * Streaming realised volatility: sample standard deviation (ddof 1) of the last `period` log
 * returns `ln(close / prevClose)`, times `sqrt(barsPerYear)`. A fraction (0.6 = 60 % a year when
 * annualised).
 * Warm-up: NaN for the first `period` closes.
 */
export class RealizedVolatilityStream {
  /** Number of leading NaN outputs (`period`). */
  readonly lookback: number;
  private readonly period: number;
  private readonly scale: number;
  private readonly window: RollingMoments;
  private prev = NaN;
  private count = 0;

  /** @throws {RangeError} when `period` is not an integer >= 2 or `barsPerYear` is not > 0. */
  constructor(options: RealizedVolatilityOptions = {}) {
    const period = options.period ?? 20;
    const barsPerYear = options.barsPerYear ?? 1;
    checkPeriod('realizedVolatility period', period, 2);
    if (!(barsPerYear > 0) || !Number.isFinite(barsPerYear)) {
      throw new RangeError(`realizedVolatility barsPerYear must be > 0, got ${barsPerYear}`);
    }
    this.period = period;
    this.lookback = period;
    this.scale = Math.sqrt(barsPerYear);
    this.window = new RollingMoments(period);
  }

  /** Adds the next close and returns the volatility (NaN during warm-up). */
  update(close: number): number {
    const prev = this.prev;
    this.prev = close;
    if (this.count++ === 0) return NaN;
    this.window.push(Math.log(close / prev));
    if (this.window.count < this.period) return NaN;
    return Math.sqrt(this.window.variance(1)) * this.scale;
  }
}

/**
 * Realised volatility of log returns over `period` returns, optionally annualised
 * (see {@link RealizedVolatilityStream}).
 * Warm-up: rows `0 .. period-1` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} on a bad period or barsPerYear, or an `out` of the wrong length.
 */
export function realizedVolatility(
  close: Float64Array,
  options: RealizedVolatilityOptions = {},
  out?: Float64Array,
): Float64Array {
  const s = new RealizedVolatilityStream(options);
  const o = outputArray('realizedVolatility', out, close.length);
  for (let i = 0; i < close.length; i++) o[i] = s.update(close[i]);
  return o;
}
