// Fixed-window rolling state shared by the indicators: sums, mean/variance and extremes over the
// last N values, updated one value at a time in O(1) amortised with no allocation after
// construction. Owns numerical care: every rolling sum is recomputed exactly from its window each
// time the ring buffer wraps (every N pushes), so error never accumulates over long series, and
// variances use sums of deviations from a recent mean rather than raw squares, so they do not
// cancel catastrophically at high price levels or after an outlier leaves the window (they are
// recomputed when cancellation would cost 6 digits). Never looks at a value before it is pushed.

import { checkPeriod } from './common.js';

/**
 * Sum of the last `size` pushed values. Exact recomputation from the window each time the ring
 * wraps bounds the rounding error to that of one window's worth of additions.
 * @example const s = new RollingSum(3); s.push(1); s.push(2); s.push(3); s.push(4); // 9
 */
export class RollingSum {
  /** Window length in values. */
  readonly size: number;
  /** Sum of the values currently in the window. */
  sum = 0;
  /** Number of values in the window (grows to `size`, then stays). */
  count = 0;
  private readonly buf: Float64Array;
  private pos = 0;

  /** @throws {RangeError} when `size` is not an integer >= 1. */
  constructor(size: number) {
    checkPeriod('rolling window size', size);
    this.size = size;
    this.buf = new Float64Array(size);
  }

  /** Pushes `x` (evicting the oldest value once full) and returns the window sum. */
  push(x: number): number {
    const pos = this.pos;
    if (this.count < this.size) {
      this.sum += x;
      this.count++;
    } else {
      this.sum += x - this.buf[pos];
    }
    this.buf[pos] = x;
    if (pos + 1 === this.size) this.wrap();
    else this.pos = pos + 1;
    return this.sum;
  }

  /** The buffer now holds the window oldest-first: restart at slot 0 and recompute the sum exactly. */
  private wrap(): void {
    const buf = this.buf;
    this.pos = 0;
    let s = 0;
    for (let k = 0; k < this.size; k++) s += buf[k];
    this.sum = s;
  }
}

/**
 * Sum, mean and variance of the last `size` pushed values. The plain sum follows exactly the
 * same arithmetic as {@link RollingSum} (so a mean from here equals `RollingSum.sum / size` bit for
 * bit); the variance comes from sums of deviations from a shift that is reset to the window mean
 * at every wrap, which keeps it accurate when the values are large compared with their spread.
 */
export class RollingMoments {
  /** Window length in values. */
  readonly size: number;
  /** Sum of the values currently in the window. */
  sum = 0;
  /** Number of values in the window (grows to `size`, then stays). */
  count = 0;
  private readonly buf: Float64Array;
  private pos = 0;
  private shift = 0;
  private s1 = 0;
  private s2 = 0;

  /** @throws {RangeError} when `size` is not an integer >= 1. */
  constructor(size: number) {
    checkPeriod('rolling window size', size);
    this.size = size;
    this.buf = new Float64Array(size);
  }

  /** Pushes `x` (evicting the oldest value once full). */
  push(x: number): void {
    const pos = this.pos;
    if (this.count < this.size) {
      this.fill(x);
    } else {
      const old = this.buf[pos];
      const d = x - this.shift;
      const od = old - this.shift;
      this.sum += x - old;
      this.s1 += d - od;
      this.s2 += d * d - od * od;
    }
    this.buf[pos] = x;
    if (pos + 1 === this.size) {
      this.wrap();
    } else {
      this.pos = pos + 1;
      // Squared deviations from a shift far from the current mean (e.g. just after an outlier
      // left the window) cancel in s2 - s1^2/n: recentre as soon as 6 digits would be lost.
      if (this.s1 * this.s1 > this.s2 * this.count * 0.999999) this.recentre();
    }
  }

  /** Adds `x` while the window is still filling. */
  private fill(x: number): void {
    if (this.count === 0) this.shift = x;
    const d = x - this.shift;
    this.sum += x;
    this.s1 += d;
    this.s2 += d * d;
    this.count++;
  }

  /** The buffer holds the window oldest-first: restart at slot 0, recompute every sum exactly. */
  private wrap(): void {
    const buf = this.buf;
    this.pos = 0;
    let s = 0;
    for (let k = 0; k < this.size; k++) s += buf[k];
    this.sum = s;
    this.recentre();
  }

  /** Resets the shift to the window mean and recomputes the deviation sums exactly. */
  private recentre(): void {
    const buf = this.buf;
    const n = this.count;
    const c = this.sum / n;
    let a = 0;
    let b = 0;
    for (let k = 0; k < n; k++) {
      const e = buf[k] - c;
      a += e;
      b += e * e;
    }
    this.shift = c;
    this.s1 = a;
    this.s2 = b;
  }

  /** Mean of the window (`sum / count`); NaN when empty. */
  mean(): number {
    return this.sum / this.count;
  }

  /**
   * Variance of the window with `count - ddof` in the denominator (ddof 0: population, 1: sample),
   * clamped at 0 against rounding. NaN when `count <= ddof`.
   */
  variance(ddof: number): number {
    const n = this.count;
    if (n <= ddof) return NaN;
    const v = (this.s2 - this.s1 * (this.s1 / n)) / (n - ddof);
    return v > 0 ? v : v === v ? 0 : v;
  }
}

/**
 * Maximum of the last `size` pushed values, exact. Keeps the position of the current maximum and
 * rescans the window only when that value leaves it (amortised O(1) for market data; O(size) per
 * push in the worst case of a strictly falling series).
 */
export class RollingMax {
  /** Window length in values. */
  readonly size: number;
  /** Maximum of the values currently in the window (-Infinity before the first push). */
  value = -Infinity;
  private readonly buf: Float64Array;
  private pos = 0;
  private pushed = 0;
  private at = -1;

  /** @throws {RangeError} when `size` is not an integer >= 1. */
  constructor(size: number) {
    checkPeriod('rolling window size', size);
    this.size = size;
    this.buf = new Float64Array(size);
  }

  /** Pushes `x` and returns the window maximum. */
  push(x: number): number {
    const i = this.pushed++;
    this.buf[this.pos] = x;
    this.pos = this.pos + 1 === this.size ? 0 : this.pos + 1;
    if (this.at < 0 || this.at <= i - this.size) this.rescan(i);
    else if (x >= this.value) {
      this.value = x;
      this.at = i;
    }
    return this.value;
  }

  /** The extreme left the window (or none yet): find it again among the values of rows <= i. */
  private rescan(i: number): void {
    const size = this.size;
    const buf = this.buf;
    const filled = i + 1 < size ? i + 1 : size;
    const start = i - filled + 1;
    let slot = start % size;
    let best = buf[slot];
    let bestAt = start;
    for (let k = 1; k < filled; k++) {
      slot = slot + 1 === size ? 0 : slot + 1;
      if (buf[slot] >= best) {
        best = buf[slot];
        bestAt = start + k;
      }
    }
    this.value = best;
    this.at = bestAt;
  }
}

/**
 * Minimum of the last `size` pushed values, exact: a {@link RollingMax} of the negated values
 * (negation is exact, and ties resolve to the latest value in both, so this is the mirror image of
 * `RollingMax` bit for bit).
 */
export class RollingMin {
  /** Window length in values. */
  readonly size: number;
  /** Minimum of the values currently in the window (+Infinity before the first push). */
  value = Infinity;
  private readonly negated: RollingMax;

  /** @throws {RangeError} when `size` is not an integer >= 1. */
  constructor(size: number) {
    this.negated = new RollingMax(size);
    this.size = size;
  }

  /** Pushes `x` and returns the window minimum. */
  push(x: number): number {
    const v = -this.negated.push(-x);
    this.value = v;
    return v;
  }
}
