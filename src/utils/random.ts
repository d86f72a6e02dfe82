// The one seeded random number generator. Every random thing in the package takes an `Rng` (or a
// seed to make one); `Math.random` never appears. Same seed, same sequence, on every platform.
// Generator: xoshiro128** (32-bit state words, fast in JS), seeded through SplitMix32.

/** Mixes a 32-bit value (SplitMix32 finaliser); used for seeding and for deriving child seeds. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Hashes a string to a 32-bit value (FNV-1a), for deriving named child streams. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Serializable generator state (four 32-bit words plus any cached normal variate), for checkpoints. */
export interface RngState {
  /** The four 32-bit state words of xoshiro128** (unsigned). */
  words: [number, number, number, number];
  /** The cached second variate of the last Marsaglia polar pair, or null when none is cached. */
  spareNormal: number | null;
}

/**
 * Seeded pseudo-random generator (xoshiro128**). Not cryptographic.
 * @example const rng = new Rng(42); const u = rng.next(); const z = rng.normal();
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare = 0;
  private hasSpare = false;

  /** Creates a generator from an integer seed (any JS number; only its low 53 bits matter). */
  constructor(seed: number) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    let x = mix32(lo ^ mix32(hi));
    this.s0 = x = mix32(x);
    this.s1 = x = mix32(x);
    this.s2 = x = mix32(x);
    this.s3 = mix32(x);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform double in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n) without modulo bias. @throws {RangeError} if n is not a positive integer < 2^32. */
  int(n: number): number {
    if (!(n > 0 && n <= 4294967296 && Number.isInteger(n)))
      throw new RangeError(`Rng.int: bad bound ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** Standard normal variate (Marsaglia polar method). */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * this.next() - 1;
      v = 2 * this.next() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * m;
    this.hasSpare = true;
    return u * m;
  }

  /** Exponential variate with rate 1. */
  exponential(): number {
    return -Math.log(1 - this.next());
  }

  /** Gamma(shape, 1) variate (Marsaglia–Tsang; boosted for shape < 1). */
  gamma(shape: number): number {
    if (shape < 1)
      return this.gamma(shape + 1) * Math.pow(this.next() || Number.MIN_VALUE, 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Student-t variate with `nu` degrees of freedom (unit scale, variance nu/(nu-2)). */
  studentT(nu: number): number {
    return this.normal() / Math.sqrt((2 * this.gamma(nu / 2)) / nu);
  }

  /** Bernoulli trial with success probability p. */
  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A new independent generator derived from this one's seed stream and a label. */
  fork(label: string | number): Rng {
    const h = typeof label === 'number' ? mix32(label >>> 0) : hashString(label);
    return new Rng((this.nextU32() ^ h) + 4294967296 * (this.nextU32() >>> 11));
  }

  /** The generator's state, for checkpoints. */
  getState(): RngState {
    return {
      words: [this.s0, this.s1, this.s2, this.s3],
      spareNormal: this.hasSpare ? this.spare : null,
    };
  }

  /** Restores a state from `getState`; the sequence continues exactly where it was saved. */
  setState(state: RngState): void {
    [this.s0, this.s1, this.s2, this.s3] = state.words;
    this.hasSpare = state.spareNormal !== null;
    this.spare = state.spareNormal ?? 0;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
