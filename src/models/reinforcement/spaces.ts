// Gymnasium-style spaces (Box, Discrete, Dict) and the Env contract every environment, vectorised
// env, checker and agent in this package speaks. Spaces only describe and sample values; they never
// hold state of an episode. Sampling takes the package's seeded Rng, never Math.random.

import type { Rng } from '../../utils/random.js';

/** Element type of a space's values. */
export type SpaceDtype = 'float32' | 'float64' | 'int32';

/** A set of values with a shape, a membership test and seeded sampling. */
export interface Space<T> {
  /** Shape of one value (`[]` for a scalar, as in Gymnasium's Discrete). */
  readonly shape: readonly number[];
  /** Element type of values. */
  readonly dtype: SpaceDtype;
  /** Whether `x` is a member: right type, dtype, shape, inside the bounds, no NaN. */
  contains(x: unknown): boolean;
  /** A value drawn with `rng` (uniform where bounded). */
  sample(rng: Rng): T;
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function toBounds(v: number | ArrayLike<number>, n: number, name: string): Float64Array {
  const out = new Float64Array(n);
  if (typeof v === 'number') out.fill(v);
  else {
    if (v.length !== n)
      throw new RangeError(`Box: ${name} has ${v.length} values, shape needs ${n}`);
    for (let i = 0; i < n; i++) out[i] = v[i];
  }
  for (let i = 0; i < n; i++)
    if (Number.isNaN(out[i])) throw new RangeError(`Box: ${name}[${i}] is NaN`);
  return out;
}

/**
 * A box in R^n: every element in [low, high] (bounds may be +-Infinity). Values are typed arrays
 * of `dtype` (Float32Array for float32) of `size` elements, row-major over `shape`.
 * @example const obs = new Box(-Infinity, Infinity, [64, 12]); obs.contains(new Float32Array(768));
 */
export class Box implements Space<Float32Array | Float64Array> {
  /** Shape of one value (row-major). */
  readonly shape: readonly number[];
  /** Element type: float32 (Float32Array values) or float64 (Float64Array). */
  readonly dtype: 'float32' | 'float64';
  /** Number of elements. */
  readonly size: number;
  /** Lower bound per element (may be -Infinity). */
  readonly low: Float64Array;
  /** Upper bound per element (may be +Infinity). */
  readonly high: Float64Array;

  /** @throws {RangeError} on a bad shape, NaN bounds, bound arrays of the wrong length or low > high. */
  constructor(
    low: number | ArrayLike<number>,
    high: number | ArrayLike<number>,
    shape: readonly number[],
    dtype: 'float32' | 'float64' = 'float32',
  ) {
    if (!shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new RangeError(`Box: bad shape [${shape.join(', ')}]`);
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = product(shape);
    this.low = toBounds(low, this.size, 'low');
    this.high = toBounds(high, this.size, 'high');
    for (let i = 0; i < this.size; i++)
      if (this.low[i] > this.high[i]) throw new RangeError(`Box: low[${i}] > high[${i}]`);
  }

  /**
   * True for a typed array of this dtype and size whose elements lie in [low, high] (NaN never
   * does), or for a number when the box has one element.
   */
  contains(x: unknown): boolean {
    if (typeof x === 'number') return this.size === 1 && x >= this.low[0] && x <= this.high[0];
    const ok = this.dtype === 'float32' ? x instanceof Float32Array : x instanceof Float64Array;
    if (!ok) return false;
    const a = x as Float32Array | Float64Array;
    if (a.length !== this.size) return false;
    const lo = this.low;
    const hi = this.high;
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (!(v >= lo[i] && v <= hi[i])) return false;
    }
    return true;
  }

  /** Index of the first element outside the bounds (or NaN), -1 when none; for diagnostics. */
  firstViolation(x: ArrayLike<number>): number {
    for (let i = 0; i < x.length && i < this.size; i++) {
      const v = x[i];
      if (!(v >= this.low[i] && v <= this.high[i])) return i;
    }
    return -1;
  }

  /**
   * Gymnasium's sampling: uniform on bounded dimensions, low + Exp(1) / high - Exp(1) on
   * half-bounded ones, Normal(0, 1) on unbounded ones. Writes into `out` when given.
   */
  sample(rng: Rng, out?: Float32Array | Float64Array): Float32Array | Float64Array {
    const a =
      out ?? (this.dtype === 'float32' ? new Float32Array(this.size) : new Float64Array(this.size));
    for (let i = 0; i < this.size; i++) {
      const lo = this.low[i];
      const hi = this.high[i];
      const loFinite = Number.isFinite(lo);
      const hiFinite = Number.isFinite(hi);
      let v: number;
      if (loFinite && hiFinite) v = lo + (hi - lo) * rng.next();
      else if (loFinite) v = lo + rng.exponential();
      else if (hiFinite) v = hi - rng.exponential();
      else v = rng.normal();
      if (this.dtype === 'float32') {
        // Rounding to float32 may step just outside a bound: clamp.
        v = Math.fround(v);
        if (v < lo) v = lo;
        if (v > hi) v = hi;
      }
      a[i] = v;
    }
    return a;
  }

  /** Whether every bound is finite. */
  get bounded(): boolean {
    for (let i = 0; i < this.size; i++)
      if (!Number.isFinite(this.low[i]) || !Number.isFinite(this.high[i])) return false;
    return true;
  }
}

/**
 * The integers {start, ..., start + n - 1}; values are plain numbers.
 * @example const a = new Discrete(3); a.sample(rng); // 0, 1 or 2
 */
export class Discrete implements Space<number> {
  /** Always `[]` (a scalar). */
  readonly shape: readonly number[] = Object.freeze([]);
  /** Always int32. */
  readonly dtype = 'int32' as const;
  /** Number of values. */
  readonly n: number;
  /** Smallest value. */
  readonly start: number;

  /** @throws {RangeError} when n is not a positive integer or start not an integer. */
  constructor(n: number, start = 0) {
    if (!(Number.isInteger(n) && n > 0)) throw new RangeError(`Discrete: n must be >= 1, got ${n}`);
    if (!Number.isInteger(start)) throw new RangeError(`Discrete: start must be an integer`);
    this.n = n;
    this.start = start;
  }

  /** True for an integer number in [start, start + n). */
  contains(x: unknown): boolean {
    return (
      typeof x === 'number' && Number.isInteger(x) && x >= this.start && x < this.start + this.n
    );
  }

  /**
   * A uniform value; with `mask` (one flag per value, 1 = allowed) uniform among the allowed ones.
   * @throws {RangeError} when the mask allows nothing or has the wrong length.
   */
  sample(rng: Rng, mask?: Uint8Array): number {
    if (mask === undefined) return this.start + rng.int(this.n);
    if (mask.length !== this.n)
      throw new RangeError(`Discrete.sample: mask has ${mask.length} flags, space has ${this.n}`);
    let allowed = 0;
    for (let i = 0; i < this.n; i++) if (mask[i] !== 0) allowed++;
    if (allowed === 0) throw new RangeError('Discrete.sample: the mask allows no action');
    let k = rng.int(allowed);
    for (let i = 0; i < this.n; i++) {
      if (mask[i] !== 0 && k-- === 0) return this.start + i;
    }
    return this.start;
  }
}

/** Values of a Dict space: one value per key. */
export type DictValue = Readonly<Record<string, unknown>>;

/**
 * A dictionary of named sub-spaces; values are plain objects with exactly those keys.
 * @example new Dict({ '15m': new Box(-Infinity, Infinity, [64, 12]), account: new Box(-1, 1, [4]) })
 */
export class Dict implements Space<DictValue> {
  /** Always `[]` (shapes are per sub-space). */
  readonly shape: readonly number[] = Object.freeze([]);
  /** Nominal element type (sub-spaces carry their own). */
  readonly dtype = 'float32' as const;
  /** Sub-spaces by name, in key order. */
  readonly spaces: Readonly<Record<string, Space<unknown>>>;

  /** @param spaces - the sub-spaces by name (copied; key order is kept). */
  constructor(spaces: Record<string, Space<unknown>>) {
    this.spaces = Object.freeze({ ...spaces });
  }

  /** Names of the sub-spaces, in insertion order. */
  get keys(): string[] {
    return Object.keys(this.spaces);
  }

  /** True for an object with exactly the space's keys, each value inside its sub-space. */
  contains(x: unknown): boolean {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
    const obj = x as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length !== this.keys.length) return false;
    for (const k of keys) {
      const s = this.spaces[k];
      if (s === undefined || !s.contains(obj[k])) return false;
    }
    return true;
  }

  /** A value with every sub-space sampled. */
  sample(rng: Rng): DictValue {
    const out: Record<string, unknown> = {};
    for (const k of this.keys) out[k] = this.spaces[k].sample(rng);
    return out;
  }
}

/** Options of `Env.reset`, as in Gymnasium. */
export interface ResetOptions {
  /** Reseeds the env's random generator; without it the generator continues its stream. */
  seed?: number;
  /** Env-specific options (e.g. `startRow` for the trading env). */
  options?: Readonly<Record<string, unknown>>;
}

/** What `reset` returns: the first observation and an info object. */
export type ResetResult<O, I> = [observation: O, info: I];

/**
 * What `step` returns, as in Gymnasium: observation, reward, terminated (the episode reached a
 * terminal state of the MDP: ruin, liquidation), truncated (cut short from outside: data end, step
 * limit), info.
 */
export type StepResult<O, I> = [
  observation: O,
  reward: number,
  terminated: boolean,
  truncated: boolean,
  info: I,
];

/**
 * The environment contract (Gymnasium semantics). Observations returned by `reset` and `step` may
 * be buffers the env reuses: they are valid until the next call.
 */
export interface Env<O, A, I extends object = Record<string, unknown>> {
  /** Space of the observations. */
  readonly observationSpace: Space<unknown>;
  /** Space of the actions. */
  readonly actionSpace: Space<A>;
  /** Starts an episode; returns the first observation and info. */
  reset(options?: ResetOptions): ResetResult<O, I>;
  /** Applies one action; returns observation, reward, terminated, truncated and info. */
  step(action: A): StepResult<O, I>;
  /** A text rendering of the current state. */
  render?(): string;
  /**
   * An action under which the episode can never be `terminated` (e.g. staying flat), used by the
   * env checker to verify that running out of data truncates rather than terminates.
   */
  readonly neutralAction?: A;
  /** Per-action flags (1 = allowed) for Discrete action spaces; null when nothing is masked. */
  actionMasks?(): Uint8Array | null;
  /**
   * Makes the env write its observations into `buffer` (of the observation's size) from now on,
   * so a vectorised env can batch them without a copy.
   */
  useObservationBuffer?(buffer: Float32Array): void;
  /**
   * A compact record of observations (see `ObservationCodec`), so replay buffers store a few
   * numbers per transition instead of whole multi-timeframe windows. Absent: records are copies.
   */
  observationCodec?(): ObservationCodec<I>;
  /**
   * The env's whole state (episode in progress, random generator), JSON-serialisable, for
   * checkpoints; `restore` puts the env back into exactly that state (its next observations,
   * rewards and random draws are those the saved env would have produced).
   */
  snapshot?(): EnvSnapshot;
  /** Restores a state from `snapshot` (observation written into the attached buffer, if any). */
  restore?(snapshot: EnvSnapshot): void;
}

/** The JSON state of an env (see `Env.snapshot`). */
export type EnvSnapshot = Readonly<Record<string, unknown>>;

/**
 * Encodes the observation an env produced into `size` floats and rebuilds it bit for bit from them
 * (e.g. the trading env's base row and account state: five floats instead of thousands). `encode`
 * reads the info of the step (or reset) that produced the observation, so a final observation can
 * be encoded after a vectorised env has already reset the episode.
 */
export interface ObservationCodec<I> {
  /** Floats per record. */
  readonly size: number;
  /** Writes the record of the observation that came with `info` into `out[offset ... + size)`. */
  encode(info: I, out: Float32Array, offset: number): void;
  /** Writes the record of the env's current observation (e.g. after `restore`). */
  current(out: Float32Array, offset: number): void;
  /** Rebuilds the observation of a record into `out[outOffset ... + observation size)`. */
  decode(record: Float32Array, offset: number, out: Float32Array, outOffset: number): void;
}
