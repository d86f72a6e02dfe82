// Moving averages (SMA, EMA, WMA), each as a streaming class that takes one value at a time and a
// batch function over a Float64Array that runs exactly that class, so both agree bit for bit.
// Conventions follow TA-Lib: the EMA is seeded with the SMA of its first `period` values; warm-up
// rows are NaN. Never reads a value after the one being updated.

import { checkPeriod, outputArray } from './common.js';
import { RollingSum } from './rolling.js';

/**
 * Streaming simple moving average: mean of the last `period` values.
 * Warm-up: `update` returns NaN for the first `period - 1` values.
 * @example const s = new SmaStream(3); [1, 2, 3, 4].map((x) => s.update(x)); // [NaN, NaN, 2, 3]
 */
export class SmaStream {
  /** Window length in values. */
  readonly period: number;
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  private readonly window: RollingSum;

  /** @throws {RangeError} when `period` is not an integer >= 1. */
  constructor(period: number) {
    checkPeriod('sma period', period);
    this.period = period;
    this.lookback = period - 1;
    this.window = new RollingSum(period);
  }

  /** Adds the next value and returns the average (NaN during warm-up). */
  update(value: number): number {
    const sum = this.window.push(value);
    return this.window.count < this.period ? NaN : sum / this.period;
  }
}

/**
 * Simple moving average over `period` values, in the input's units.
 * Warm-up: rows `0 .. period-2` are NaN (TA-Lib SMA lookback `period - 1`).
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} when `period` is not an integer >= 1 or `out` has the wrong length.
 */
export function sma(values: Float64Array, period: number, out?: Float64Array): Float64Array {
  const s = new SmaStream(period);
  const o = outputArray('sma', out, values.length);
  for (let i = 0; i < values.length; i++) o[i] = s.update(values[i]);
  return o;
}

/**
 * Streaming exponential moving average with smoothing `k = 2 / (period + 1)`, seeded (TA-Lib
 * default) with the SMA of the first `period` values: `ema = (x - prev) * k + prev`.
 * Warm-up: NaN for the first `period - 1` values.
 */
export class EmaStream {
  /** Period in values. */
  readonly period: number;
  /** Smoothing factor `2 / (period + 1)`. */
  readonly k: number;
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  private count = 0;
  private seedSum = 0;
  private value = NaN;

  /** @throws {RangeError} when `period` is not an integer >= 1. */
  constructor(period: number) {
    checkPeriod('ema period', period);
    this.period = period;
    this.k = 2 / (period + 1);
    this.lookback = period - 1;
  }

  /** Adds the next value and returns the EMA (NaN during warm-up). */
  update(x: number): number {
    const n = ++this.count;
    if (n > this.period) {
      this.value = (x - this.value) * this.k + this.value;
    } else {
      this.seedSum += x;
      if (n === this.period) this.value = this.seedSum / this.period;
    }
    return this.value;
  }
}

/**
 * Exponential moving average (TA-Lib EMA: seeded with the SMA of the first `period` values,
 * `k = 2 / (period + 1)`), in the input's units.
 * Warm-up: rows `0 .. period-2` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} when `period` is not an integer >= 1 or `out` has the wrong length.
 */
export function ema(values: Float64Array, period: number, out?: Float64Array): Float64Array {
  const s = new EmaStream(period);
  const o = outputArray('ema', out, values.length);
  for (let i = 0; i < values.length; i++) o[i] = s.update(values[i]);
  return o;
}

/**
 * Streaming linearly weighted moving average: weights `1, 2, ..., period` from oldest to newest,
 * divided by `period * (period + 1) / 2`. The weighted sum is updated in O(1) and recomputed
 * exactly every `period` values.
 * Warm-up: NaN for the first `period - 1` values.
 */
export class WmaStream {
  /** Window length in values. */
  readonly period: number;
  /** Number of leading NaN outputs (`period - 1`). */
  readonly lookback: number;
  private readonly buf: Float64Array;
  private readonly divider: number;
  private pos = 0;
  private count = 0;
  private sum = 0;
  private weighted = 0;

  /** @throws {RangeError} when `period` is not an integer >= 1. */
  constructor(period: number) {
    checkPeriod('wma period', period);
    this.period = period;
    this.lookback = period - 1;
    this.buf = new Float64Array(period);
    this.divider = (period * (period + 1)) / 2;
  }

  /** Adds the next value and returns the WMA (NaN during warm-up). */
  update(x: number): number {
    const p = this.period;
    const buf = this.buf;
    const pos = this.pos;
    if (this.count < p) {
      this.count++;
      this.weighted += this.count * x;
      this.sum += x;
    } else {
      // Shift every weight down by one (subtract the previous window's sum), add x at weight p.
      this.weighted += p * x - this.sum;
      this.sum += x - buf[pos];
    }
    buf[pos] = x;
    if (pos + 1 === p) {
      this.pos = 0;
      let s = 0;
      let w = 0;
      for (let k = 0; k < p; k++) {
        s += buf[k];
        w += (k + 1) * buf[k];
      }
      this.sum = s;
      this.weighted = w;
    } else {
      this.pos = pos + 1;
    }
    return this.count < p ? NaN : this.weighted / this.divider;
  }
}

/**
 * Linearly weighted moving average (TA-Lib WMA), in the input's units.
 * Warm-up: rows `0 .. period-2` are NaN.
 * @param out - optional preallocated output of the input's length (returned).
 * @throws {RangeError} when `period` is not an integer >= 1 or `out` has the wrong length.
 */
export function wma(values: Float64Array, period: number, out?: Float64Array): Float64Array {
  const s = new WmaStream(period);
  const o = outputArray('wma', out, values.length);
  for (let i = 0; i < values.length; i++) o[i] = s.update(values[i]);
  return o;
}
