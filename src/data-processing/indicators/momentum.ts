// Momentum oscillators: RSI, MACD, Stochastic, Williams %R, CCI and ROC. Each is a streaming class
// (one candle at a time) plus a batch function that runs that class over typed arrays, so both
// agree bit for bit. Arithmetic and seeding follow TA-Lib step by step (Wilder smoothing for RSI,
// SMA-seeded EMAs for MACD), and warm-up rows are NaN exactly where TA-Lib gives no output. Never
// reads a candle after the one being updated.

import { checkPeriod, commonLength, outputArray, outputRecord } from './common.js';
import { RollingMax, RollingMin, RollingSum } from './rolling.js';

/** TA-Lib's test for "zero" in denominators (TA_IS_ZERO: |v| < 1e-14). */
const TA_EPSILON = 1e-14;

/**
 * Streaming Relative Strength Index (Wilder), 0..100. The first value averages the first `period`
 * gains and losses; then `avg = (avg * (period - 1) + x) / period`. As TA-Lib, a window with no
 * movement (average gain + loss below 1e-14) gives 0.
 * Warm-up: NaN for the first `period` closes.
 */
export class RsiStream {
  /** Period in bars. */
  readonly period: number;
  /** Number of leading NaN outputs (`period`). */
  readonly lookback: number;
  private count = 0;
  private prev = 0;
  private gain = 0;
  private loss = 0;

  /** @throws {RangeError} when `period` is not an integer >= 2. */
  constructor(period = 14) {
    checkPeriod('rsi period', period, 2);
    this.period = period;
    this.lookback = period;
  }

  /** Adds the next close and returns the RSI (NaN during warm-up). */
  update(close: number): number {
    // The same steps as `updateRange`, on fields (kept in step by the batch == stream tests).
    const n = this.count++;
    const p = this.period;
    const d = close - this.prev;
    this.prev = close;
    if (n > p) {
      let loss = this.loss * (p - 1);
      let gain = this.gain * (p - 1);
      if (d < 0) loss -= d;
      else gain += d;
      this.loss = loss / p;
      this.gain = gain / p;
    } else {
      if (n > 0) {
        if (d < 0) this.loss -= d;
        else this.gain += d;
      }
      if (n < p) return NaN;
      this.loss /= p;
      this.gain /= p;
    }
    const total = this.gain + this.loss;
    return total > -TA_EPSILON && total < TA_EPSILON ? 0 : 100 * (this.gain / total);
  }

  /**
   * Adds `close[start..end)` in order and writes each RSI to `out` at the same row: the same as
   * calling `update` on each row (the batch path; `out` may be `close` itself).
   */
  updateRange(close: Float64Array, out: Float64Array, start: number, end: number): void {
    const p = this.period;
    let count = this.count;
    let prev = this.prev;
    let gain = this.gain;
    let loss = this.loss;
    for (let i = start; i < end; i++) {
      const x = close[i];
      const n = count++;
      const d = x - prev;
      prev = x;
      if (n > p) {
        loss *= p - 1;
        gain *= p - 1;
        if (d < 0) loss -= d;
        else gain += d;
        loss /= p;
        gain /= p;
      } else {
        if (n > 0) {
          if (d < 0) loss -= d;
          else gain += d;
        }
        if (n < p) {
          out[i] = NaN;
          continue;
        }
        loss /= p;
        gain /= p;
      }
      const total = gain + loss;
      out[i] = total > -TA_EPSILON && total < TA_EPSILON ? 0 : 100 * (gain / total);
    }
    this.count = count;
    this.prev = prev;
    this.gain = gain;
    this.loss = loss;
  }
}

/**
 * Relative Strength Index (TA-Lib RSI, Wilder smoothing), 0..100.
 * Warm-up: rows `0 .. period-1` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} when `period` is not an integer >= 2 or `out` has the wrong length.
 */
export function rsi(close: Float64Array, period = 14, out?: Float64Array): Float64Array {
  const s = new RsiStream(period);
  const o = outputArray('rsi', out, close.length);
  s.updateRange(close, o, 0, close.length);
  return o;
}

/** Periods of MACD in bars. */
export interface MacdOptions {
  /** Fast EMA period (default 12). */
  fastPeriod?: number;
  /** Slow EMA period (default 26), greater than `fastPeriod`. */
  slowPeriod?: number;
  /** Signal EMA period (default 9). */
  signalPeriod?: number;
}

/** MACD outputs, each the input's length, in price units. */
export interface MacdOutput {
  /** MACD line: fast EMA - slow EMA. */
  macd: Float64Array;
  /** Signal line: EMA of the MACD line. */
  signal: Float64Array;
  /** Histogram: MACD line - signal line. */
  histogram: Float64Array;
}

const MACD_KEYS = ['macd', 'signal', 'histogram'] as const;

/**
 * Streaming MACD with TA-Lib's seeding: the slow EMA is seeded with the SMA of bars
 * `0 .. slow-1`; the fast EMA starts on the same bar, seeded with the SMA of the last `fast` closes
 * (bars `slow-fast .. slow-1`, not the first `fast`); the signal EMA is seeded with the SMA of the
 * first `signal` MACD values. All three outputs start together, as in TA-Lib.
 * Warm-up: NaN for the first `slow + signal - 2` closes (33 with 12/26/9).
 */
export class MacdStream {
  /** Fast EMA period. */
  readonly fastPeriod: number;
  /** Slow EMA period. */
  readonly slowPeriod: number;
  /** Signal EMA period. */
  readonly signalPeriod: number;
  /** Number of leading NaN outputs (`slow + signal - 2`). */
  readonly lookback: number;
  /** Signal line after the last update (NaN during warm-up). */
  signal = NaN;
  /** Histogram after the last update (NaN during warm-up). */
  histogram = NaN;
  private readonly kFast: number;
  private readonly kSlow: number;
  private readonly kSignal: number;
  private readonly recent: Float64Array;
  private count = 0;
  private slowSum = 0;
  private signalSum = 0;
  private fast = NaN;
  private slow = NaN;
  private signalEma = NaN;

  /** @throws {RangeError} when a period is not an integer >= 1 or `fastPeriod >= slowPeriod`. */
  constructor(options: MacdOptions = {}) {
    const fast = options.fastPeriod ?? 12;
    const slow = options.slowPeriod ?? 26;
    const signal = options.signalPeriod ?? 9;
    checkPeriod('macd fastPeriod', fast);
    checkPeriod('macd slowPeriod', slow);
    checkPeriod('macd signalPeriod', signal);
    if (fast >= slow) {
      throw new RangeError(`macd fastPeriod (${fast}) must be below slowPeriod (${slow})`);
    }
    this.fastPeriod = fast;
    this.slowPeriod = slow;
    this.signalPeriod = signal;
    this.lookback = slow + signal - 2;
    this.kFast = 2 / (fast + 1);
    this.kSlow = 2 / (slow + 1);
    this.kSignal = 2 / (signal + 1);
    this.recent = new Float64Array(fast);
  }

  /** Adds the next close and returns the MACD line (NaN during warm-up); sets `signal`, `histogram`. */
  update(close: number): number {
    // The same steps as `updateRange`, on fields (kept in step by the batch == stream tests).
    const n = ++this.count;
    const slowP = this.slowPeriod;
    if (n > slowP) {
      this.slow = (close - this.slow) * this.kSlow + this.slow;
      this.fast = (close - this.fast) * this.kFast + this.fast;
    } else {
      const fastP = this.fastPeriod;
      this.recent[(n - 1) % fastP] = close;
      this.slowSum += close;
      if (n < slowP) return NaN;
      this.slow = this.slowSum / slowP;
      let sum = 0;
      for (let k = 0; k < fastP; k++) sum += this.recent[(n + k) % fastP];
      this.fast = sum / fastP;
    }
    const line = this.fast - this.slow;
    const m = n - slowP + 1;
    const sigP = this.signalPeriod;
    if (m > sigP) {
      this.signalEma = (line - this.signalEma) * this.kSignal + this.signalEma;
    } else {
      this.signalSum += line;
      if (m < sigP) return NaN;
      this.signalEma = this.signalSum / sigP;
    }
    this.signal = this.signalEma;
    this.histogram = line - this.signalEma;
    return line;
  }

  /**
   * Adds `close[start..end)` in order and writes the outputs that are given at the same rows: the
   * same as calling `update` on each row (the batch path; `line` may be `close` itself).
   */
  updateRange(
    close: Float64Array,
    start: number,
    end: number,
    line?: Float64Array,
    signal?: Float64Array,
    histogram?: Float64Array,
  ): void {
    const slowP = this.slowPeriod;
    const fastP = this.fastPeriod;
    const sigP = this.signalPeriod;
    const kFast = this.kFast;
    const kSlow = this.kSlow;
    const kSignal = this.kSignal;
    const recent = this.recent;
    let count = this.count;
    let slowSum = this.slowSum;
    let signalSum = this.signalSum;
    let fast = this.fast;
    let slow = this.slow;
    let sig = this.signalEma;
    for (let i = start; i < end; i++) {
      const x = close[i];
      const n = ++count;
      let value = NaN;
      let sigValue = NaN;
      let histValue = NaN;
      if (n > slowP) {
        slow = (x - slow) * kSlow + slow;
        fast = (x - fast) * kFast + fast;
      } else {
        recent[(n - 1) % fastP] = x;
        slowSum += x;
        if (n === slowP) {
          slow = slowSum / slowP;
          // Sum the last `fast` closes oldest first, as TA-Lib's seed loop does.
          let sum = 0;
          for (let k = 0; k < fastP; k++) sum += recent[(n + k) % fastP];
          fast = sum / fastP;
        }
      }
      if (n >= slowP) {
        const macdLine = fast - slow;
        const m = n - slowP + 1;
        if (m > sigP) {
          sig = (macdLine - sig) * kSignal + sig;
        } else {
          signalSum += macdLine;
          if (m === sigP) sig = signalSum / sigP;
        }
        if (m >= sigP) {
          value = macdLine;
          sigValue = sig;
          histValue = macdLine - sig;
        }
      }
      if (line !== undefined) line[i] = value;
      if (signal !== undefined) signal[i] = sigValue;
      if (histogram !== undefined) histogram[i] = histValue;
    }
    this.count = count;
    this.slowSum = slowSum;
    this.signalSum = signalSum;
    this.fast = fast;
    this.slow = slow;
    this.signalEma = sig;
  }
}

/**
 * Moving Average Convergence/Divergence (TA-Lib MACD conventions, see {@link MacdStream}).
 * Warm-up: rows `0 .. slow+signal-3` are NaN in all three outputs (33 rows with 12/26/9).
 * @param out - optional preallocated outputs: only the buffers given are filled (and only those
 *   outputs computed); without `out` all are allocated. Returns `out` itself when given.
 * @throws {RangeError} on a bad period (see {@link MacdStream}) or an `out` buffer of the wrong length.
 */
export function macd(close: Float64Array, options?: MacdOptions): MacdOutput;
/** MACD into the caller's buffers (only those given are filled); returns `out`. */
export function macd<T extends Partial<MacdOutput>>(
  close: Float64Array,
  options: MacdOptions,
  out: T,
): T;
export function macd(
  close: Float64Array,
  options: MacdOptions = {},
  out?: Partial<MacdOutput>,
): Partial<MacdOutput> {
  const s = new MacdStream(options);
  const o = outputRecord('macd', MACD_KEYS, out, close.length);
  s.updateRange(close, 0, close.length, o.macd, o.signal, o.histogram);
  return o;
}

/** Periods of the Stochastic oscillator in bars (TA-Lib STOCH defaults 5/3/3, SMA smoothing). */
export interface StochasticOptions {
  /** Look-back of the raw %K (highest high / lowest low window), default 5. */
  fastKPeriod?: number;
  /** SMA period turning raw %K into slow %K, default 3 (1 gives the fast stochastic). */
  slowKPeriod?: number;
  /** SMA period of slow %K giving %D, default 3. */
  slowDPeriod?: number;
}

/** Stochastic outputs, 0..100, each the input's length. */
export interface StochasticOutput {
  /** Slow %K: SMA(slowKPeriod) of `100 * (close - lowest low) / (highest high - lowest low)`. */
  k: Float64Array;
  /** Slow %D: SMA(slowDPeriod) of slow %K. */
  d: Float64Array;
}

const STOCH_KEYS = ['k', 'd'] as const;

/**
 * Streaming Stochastic oscillator (TA-Lib STOCH with SMA smoothing). The raw %K is 0 when the
 * window's high equals its low (TA-Lib's convention). Both outputs start on the same bar, as in
 * TA-Lib.
 * Warm-up: NaN for the first `fastK + slowK + slowD - 3` bars (8 with 5/3/3).
 */
export class StochasticStream {
  /** Number of leading NaN outputs (`fastK + slowK + slowD - 3`). */
  readonly lookback: number;
  /** Slow %D after the last update (NaN during warm-up). */
  d = NaN;
  private readonly highest: RollingMax;
  private readonly lowest: RollingMin;
  private readonly kSum: RollingSum;
  private readonly dSum: RollingSum;
  private readonly fastKPeriod: number;
  private readonly slowKPeriod: number;
  private readonly slowDPeriod: number;
  private count = 0;

  /** @throws {RangeError} when a period is not an integer >= 1. */
  constructor(options: StochasticOptions = {}) {
    const fk = options.fastKPeriod ?? 5;
    const sk = options.slowKPeriod ?? 3;
    const sd = options.slowDPeriod ?? 3;
    checkPeriod('stochastic fastKPeriod', fk);
    checkPeriod('stochastic slowKPeriod', sk);
    checkPeriod('stochastic slowDPeriod', sd);
    this.fastKPeriod = fk;
    this.slowKPeriod = sk;
    this.slowDPeriod = sd;
    this.lookback = fk + sk + sd - 3;
    this.highest = new RollingMax(fk);
    this.lowest = new RollingMin(fk);
    this.kSum = new RollingSum(sk);
    this.dSum = new RollingSum(sd);
  }

  /** Adds the next candle and returns slow %K (NaN during warm-up); sets `d`. */
  update(high: number, low: number, close: number): number {
    const n = ++this.count;
    const hh = this.highest.push(high);
    const ll = this.lowest.push(low);
    if (n < this.fastKPeriod) return NaN;
    const diff = (hh - ll) / 100;
    const rawK = diff !== 0 ? (close - ll) / diff : 0;
    const kTotal = this.kSum.push(rawK);
    if (n < this.fastKPeriod + this.slowKPeriod - 1) return NaN;
    const k = kTotal / this.slowKPeriod;
    const dTotal = this.dSum.push(k);
    if (n <= this.lookback) return NaN;
    this.d = dTotal / this.slowDPeriod;
    return k;
  }
}

/**
 * Stochastic oscillator %K/%D (TA-Lib STOCH, SMA smoothing, defaults 5/3/3), 0..100.
 * Warm-up: rows `0 .. fastK+slowK+slowD-4` are NaN in both outputs.
 * @param out - optional preallocated outputs: only the buffers given are filled (and only those
 *   outputs computed); without `out` all are allocated. Returns `out` itself when given.
 * @throws {RangeError} on a bad period, inputs of different lengths or an `out` of the wrong length.
 */
export function stochastic(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  options?: StochasticOptions,
): StochasticOutput;
/** Stochastic into the caller's buffers (only those given are filled); returns `out`. */
export function stochastic<T extends Partial<StochasticOutput>>(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  options: StochasticOptions,
  out: T,
): T;
export function stochastic(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  options: StochasticOptions = {},
  out?: Partial<StochasticOutput>,
): Partial<StochasticOutput> {
  const n = commonLength('stochastic', high, low, close);
  const s = new StochasticStream(options);
  const o = outputRecord('stochastic', STOCH_KEYS, out, n);
  const { k, d } = o;
  for (let i = 0; i < n; i++) {
    const v = s.update(high[i], low[i], close[i]);
    if (k !== undefined) k[i] = v;
    if (d !== undefined) d[i] = s.d;
  }
  return o;
}

/**
 * Streaming Williams %R, -100..0: `-100 * (highest high - close) / (highest high - lowest low)`
 * over the last `period` bars; 0 when the window's high equals its low (TA-Lib's convention).
 * Warm-up: NaN for the first `period - 1` bars.
 */
export class WilliamsRStream {
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  private readonly highest: RollingMax;
  private readonly lowest: RollingMin;
  private count = 0;

  /** @throws {RangeError} when `period` is not an integer >= 1. */
  constructor(period = 14) {
    checkPeriod('williamsR period', period);
    this.lookback = period - 1;
    this.highest = new RollingMax(period);
    this.lowest = new RollingMin(period);
  }

  /** Adds the next candle and returns %R (NaN during warm-up). */
  update(high: number, low: number, close: number): number {
    const hh = this.highest.push(high);
    const ll = this.lowest.push(low);
    if (this.count++ < this.lookback) return NaN;
    const diff = (hh - ll) / -100;
    return diff !== 0 ? (hh - close) / diff : 0;
  }
}

/**
 * Williams %R (TA-Lib WILLR), -100..0.
 * Warm-up: rows `0 .. period-2` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} on a bad period, inputs of different lengths or an `out` of the wrong length.
 */
export function williamsR(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  period = 14,
  out?: Float64Array,
): Float64Array {
  const n = commonLength('williamsR', high, low, close);
  const s = new WilliamsRStream(period);
  const o = outputArray('williamsR', out, n);
  for (let i = 0; i < n; i++) o[i] = s.update(high[i], low[i], close[i]);
  return o;
}

/**
 * Streaming Commodity Channel Index: `(tp - mean(tp)) / (0.015 * meanAbsDev(tp))` over the last
 * `period` typical prices `tp = (high + low + close) / 3`; 0 when the numerator or the deviation is
 * 0 (TA-Lib's convention). The mean and deviation are recomputed from the window each bar, in
 * TA-Lib's order, so there is no drift. Unbounded (usually within ±300).
 * Warm-up: NaN for the first `period - 1` bars.
 */
export class CciStream {
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  private readonly period: number;
  private readonly buf: Float64Array;
  private pos = 0;
  private count = 0;

  /** @throws {RangeError} when `period` is not an integer >= 1. */
  constructor(period = 14) {
    checkPeriod('cci period', period);
    this.period = period;
    this.lookback = period - 1;
    this.buf = new Float64Array(period);
  }

  /** Adds the next candle and returns the CCI (NaN during warm-up). */
  update(high: number, low: number, close: number): number {
    const p = this.period;
    const buf = this.buf;
    const tp = (high + low + close) / 3;
    buf[this.pos] = tp;
    this.pos = this.pos + 1 === p ? 0 : this.pos + 1;
    if (this.count++ < this.lookback) return NaN;
    let mean = 0;
    for (let j = 0; j < p; j++) mean += buf[j];
    mean /= p;
    let dev = 0;
    for (let j = 0; j < p; j++) dev += Math.abs(buf[j] - mean);
    const num = tp - mean;
    return num !== 0 && dev !== 0 ? num / (0.015 * (dev / p)) : 0;
  }
}

/**
 * Commodity Channel Index (TA-Lib CCI).
 * Warm-up: rows `0 .. period-2` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} on a bad period, inputs of different lengths or an `out` of the wrong length.
 */
export function cci(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  period = 14,
  out?: Float64Array,
): Float64Array {
  const n = commonLength('cci', high, low, close);
  const s = new CciStream(period);
  const o = outputArray('cci', out, n);
  for (let i = 0; i < n; i++) o[i] = s.update(high[i], low[i], close[i]);
  return o;
}

/**
 * Streaming Rate of Change in percent: `(x / x[period bars ago] - 1) * 100`; 0 when the old value
 * is 0 (TA-Lib's convention).
 * Warm-up: NaN for the first `period` values.
 */
export class RocStream {
  /** Number of leading NaN outputs (`period`). */
  readonly lookback: number;
  private readonly buf: Float64Array;
  private pos = 0;
  private count = 0;

  /** @throws {RangeError} when `period` is not an integer >= 1. */
  constructor(period = 10) {
    checkPeriod('roc period', period);
    this.lookback = period;
    this.buf = new Float64Array(period);
  }

  /** Adds the next value and returns the ROC in percent (NaN during warm-up). */
  update(value: number): number {
    const pos = this.pos;
    const old = this.buf[pos];
    this.buf[pos] = value;
    this.pos = pos + 1 === this.lookback ? 0 : pos + 1;
    if (this.count++ < this.lookback) return NaN;
    return old !== 0 ? (value / old - 1) * 100 : 0;
  }
}

/**
 * Rate of Change (TA-Lib ROC), percent.
 * Warm-up: rows `0 .. period-1` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} when `period` is not an integer >= 1 or `out` has the wrong length.
 */
export function roc(values: Float64Array, period = 10, out?: Float64Array): Float64Array {
  const s = new RocStream(period);
  const o = outputArray('roc', out, values.length);
  for (let i = 0; i < values.length; i++) o[i] = s.update(values[i]);
  return o;
}
