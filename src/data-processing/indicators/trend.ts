// Trend strength: ADX with +DI/-DI (Wilder's directional movement), as a streaming class plus a
// batch function that runs it, so both agree bit for bit. Follows TA-Lib's ADX / PLUS_DI /
// MINUS_DI step by step (Wilder sums seeded over the first period - 1 bars, the first ADX the mean
// of the first `period` DX values, no rounding). Never reads a candle after the one being updated.

import { checkPeriod, commonLength, outputRecord } from './common.js';

/** TA-Lib's test for "zero" in denominators (TA_IS_ZERO: |v| < 1e-14). */
const TA_EPSILON = 1e-14;

/** ADX outputs, 0..100, each the input's length. */
export interface AdxOutput {
  /** Average Directional Index (warm-up `2 * period - 1` rows). */
  adx: Float64Array;
  /** +DI: 100 × smoothed +DM / smoothed TR (warm-up `period` rows). */
  plusDi: Float64Array;
  /** -DI: 100 × smoothed -DM / smoothed TR (warm-up `period` rows). */
  minusDi: Float64Array;
}

const ADX_KEYS = ['adx', 'plusDi', 'minusDi'] as const;

/**
 * Streaming ADX with +DI and -DI (TA-Lib conventions). +DM counts when the high rises more than the
 * low falls (and rises at all); -DM the mirror image. DM and true range are Wilder-smoothed sums:
 * the first `period - 1` bars are summed, then `s = s - s / period + x`. DI is 0 while the
 * smoothed TR is below 1e-14; a DX that cannot be computed leaves the ADX unchanged, as TA-Lib.
 * Warm-up: +DI/-DI NaN for the first `period` bars, ADX for the first `2 * period - 1`.
 */
export class AdxStream {
  /** Period in bars. */
  readonly period: number;
  /** Number of leading NaN ADX outputs (`2 * period - 1`). */
  readonly lookback: number;
  /** +DI after the last update (NaN during its warm-up). */
  plusDi = NaN;
  /** -DI after the last update (NaN during its warm-up). */
  minusDi = NaN;
  private count = 0;
  private prevHigh = 0;
  private prevLow = 0;
  private prevClose = 0;
  private plusDm = 0;
  private minusDm = 0;
  private tr = 0;
  private sumDx = 0;
  private adx = NaN;

  /** @throws {RangeError} when `period` is not an integer >= 2. */
  constructor(period = 14) {
    checkPeriod('adx period', period, 2);
    this.period = period;
    this.lookback = 2 * period - 1;
  }

  /** Adds the next candle and returns the ADX (NaN during warm-up); sets `plusDi` and `minusDi`. */
  update(high: number, low: number, close: number): number {
    const n = this.count++;
    const p = this.period;
    if (n === 0) {
      this.prevHigh = high;
      this.prevLow = low;
      this.prevClose = close;
      return NaN;
    }
    const diffP = high - this.prevHigh;
    const diffM = this.prevLow - low;
    this.prevHigh = high;
    this.prevLow = low;
    let tr = high - low;
    const a = Math.abs(high - this.prevClose);
    if (a > tr) tr = a;
    const b = Math.abs(low - this.prevClose);
    if (b > tr) tr = b;
    this.prevClose = close;
    if (n < p) {
      if (diffM > 0 && diffP < diffM) this.minusDm += diffM;
      else if (diffP > 0 && diffP > diffM) this.plusDm += diffP;
      this.tr += tr;
      return NaN;
    }
    this.minusDm -= this.minusDm / p;
    this.plusDm -= this.plusDm / p;
    if (diffM > 0 && diffP < diffM) this.minusDm += diffM;
    else if (diffP > 0 && diffP > diffM) this.plusDm += diffP;
    this.tr = this.tr - this.tr / p + tr;
    let dx = NaN;
    if (this.tr > -TA_EPSILON && this.tr < TA_EPSILON) {
      this.minusDi = 0;
      this.plusDi = 0;
    } else {
      const minusDi = 100 * (this.minusDm / this.tr);
      const plusDi = 100 * (this.plusDm / this.tr);
      this.minusDi = minusDi;
      this.plusDi = plusDi;
      const sum = minusDi + plusDi;
      if (!(sum > -TA_EPSILON && sum < TA_EPSILON)) dx = 100 * (Math.abs(minusDi - plusDi) / sum);
    }
    if (n < 2 * p) {
      if (dx === dx) this.sumDx += dx;
      if (n === 2 * p - 1) this.adx = this.sumDx / p;
    } else if (dx === dx) {
      this.adx = (this.adx * (p - 1) + dx) / p;
    }
    return this.adx;
  }
}

/**
 * Average Directional Index with +DI and -DI (TA-Lib ADX, PLUS_DI, MINUS_DI), 0..100.
 * Warm-up: +DI/-DI rows `0 .. period-1` are NaN; ADX rows `0 .. 2*period-2`.
 * @param out - optional preallocated outputs: only the buffers given are filled (and only those
 *   outputs computed); without `out` all are allocated. Returns `out` itself when given.
 * @throws {RangeError} on a period below 2, inputs of different lengths or an `out` of the wrong length.
 */
export function adx(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  period?: number,
): AdxOutput;
/** ADX into the caller's buffers (only those given are filled); returns `out`. */
export function adx<T extends Partial<AdxOutput>>(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  period: number,
  out: T,
): T;
export function adx(
  high: Float64Array,
  low: Float64Array,
  close: Float64Array,
  period = 14,
  out?: Partial<AdxOutput>,
): Partial<AdxOutput> {
  const n = commonLength('adx', high, low, close);
  const s = new AdxStream(period);
  const o = outputRecord('adx', ADX_KEYS, out, n);
  const { adx: a, plusDi, minusDi } = o;
  for (let i = 0; i < n; i++) {
    const v = s.update(high[i], low[i], close[i]);
    if (a !== undefined) a[i] = v;
    if (plusDi !== undefined) plusDi[i] = s.plusDi;
    if (minusDi !== undefined) minusDi[i] = s.minusDi;
  }
  return o;
}
