// Experience storage of the agents: DQN's circular replay buffer (preallocated typed arrays, sized
// once, observations kept as compact records that the env's codec rebuilds when a batch is sampled),
// proportional prioritised replay on a sum tree and a min tree (Schaul et al. 2016), and the n-step
// accumulator that turns single steps into n-step transitions per env, stopping sums at episode
// ends: a terminated transition never bootstraps, a truncated one bootstraps from its final
// observation. Never allocates per step once constructed.

import type { CheckpointTensor } from '../common/checkpoint.js';
import { CheckpointError } from '../../errors.js';
import type { Rng } from '../../utils/random.js';
import type { ObservationCodec } from './spaces.js';
import type { VecEnv, VecStepResult } from './vec-env.js';

// ---------------------------------------------------------------------------------------------
// Segment trees of priorities

/**
 * A binary tree over `capacity` leaves (rounded up to a power of two) holding priorities, with the
 * sum (or minimum) of every subtree at its node: set a leaf in O(log n), total or minimum in O(1),
 * and for the sum tree the leaf where a prefix sum falls in O(log n).
 */
export class SegmentTree {
  /** Leaves (a power of two >= the requested capacity). */
  readonly leaves: number;
  /** Node values, root at 1, leaf i at `leaves + i`. */
  readonly nodes: Float64Array;
  private readonly isSum: boolean;
  private readonly neutral: number;

  constructor(capacity: number, kind: 'sum' | 'min') {
    let n = 1;
    while (n < capacity) n *= 2;
    this.leaves = n;
    this.isSum = kind === 'sum';
    this.neutral = this.isSum ? 0 : Infinity;
    this.nodes = new Float64Array(2 * n).fill(this.neutral);
  }

  /** Sets leaf `i` to `value` and updates its ancestors. */
  set(i: number, value: number): void {
    let k = i + this.leaves;
    this.nodes[k] = value;
    k >>= 1;
    while (k >= 1) {
      const a = this.nodes[2 * k];
      const b = this.nodes[2 * k + 1];
      this.nodes[k] = this.isSum ? a + b : a < b ? a : b;
      k >>= 1;
    }
  }

  /** Leaf `i`'s value. */
  get(i: number): number {
    return this.nodes[i + this.leaves];
  }

  /** Sum (sum tree) or minimum (min tree) of all leaves. */
  get root(): number {
    return this.nodes[1];
  }

  /** Sum tree: the smallest leaf index whose prefix sum (inclusive) exceeds `mass`. */
  find(mass: number): number {
    let k = 1;
    let m = mass;
    while (k < this.leaves) {
      const left = this.nodes[2 * k];
      if (m < left) k = 2 * k;
      else {
        m -= left;
        k = 2 * k + 1;
      }
    }
    return k - this.leaves;
  }
}

// ---------------------------------------------------------------------------------------------
// Replay buffer

/** Options of `ReplayBuffer`. */
export interface ReplayBufferOptions {
  /** Transitions kept (the oldest is overwritten first). */
  capacity: number;
  /** Floats per observation record (the codec's size, or the observation's when copied). */
  recordSize: number;
  /** Discrete actions (for the next state's action mask); 0 = no masks stored. */
  maskSize: number;
  /** Prioritised replay (proportional). Default false: uniform sampling. */
  prioritized?: boolean;
  /** Priority exponent α (0 = uniform); default 0.6 as in Rainbow. */
  alpha?: number;
}

/** A sampled batch's indices and importance weights (reused buffers). */
export interface ReplaySample {
  /** Buffer indices of the samples. */
  indices: Int32Array;
  /** Importance-sampling weights, normalised to max 1 (all 1 with uniform sampling). */
  weights: Float32Array;
}

/**
 * A circular replay buffer of (n-step) transitions: observation record, action, return, discount
 * (γ^k, or 0 after a termination), next observation record and the next state's action mask, each
 * in one preallocated typed array; `slots` keeps which env a transition came from so its records
 * decode against that env's market.
 */
export class ReplayBuffer {
  /** Transitions the buffer holds at most. */
  readonly capacity: number;
  /** Floats per observation record. */
  readonly recordSize: number;
  /** Flags per next-state action mask (0 = none stored). */
  readonly maskSize: number;
  /** Whether sampling is prioritised. */
  readonly prioritized: boolean;
  /** Priority exponent α. */
  readonly alpha: number;
  /** Observation records [capacity, recordSize]. */
  readonly obs: Float32Array;
  /** Next-observation records [capacity, recordSize]. */
  readonly nextObs: Float32Array;
  /** Env slot of each transition. */
  readonly slots: Int32Array;
  /** Action index of each transition. */
  readonly actions: Int32Array;
  /** Discounted sum of the n rewards of each transition. */
  readonly returns: Float32Array;
  /** Discount applied to the bootstrap value: γ^k, or 0 when the episode terminated. */
  readonly discounts: Float32Array;
  /** Allowed actions in the next state [capacity, maskSize] (1 = allowed). */
  readonly nextMasks: Uint8Array;
  /** Transitions stored (<= capacity). */
  size = 0;
  /** Index the next transition is written to. */
  cursor = 0;
  /** Largest priority given so far (new transitions get it). */
  maxPriority = 1;
  private readonly sum: SegmentTree | null;
  private readonly min: SegmentTree | null;
  private readonly sample: ReplaySample = {
    indices: new Int32Array(0),
    weights: new Float32Array(0),
  };

  /** @throws {RangeError} on a capacity or record size below 1, or α outside [0, 1]. */
  constructor(options: ReplayBufferOptions) {
    const { capacity, recordSize, maskSize } = options;
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new RangeError(`replay buffer capacity must be a whole number >= 1, got ${capacity}`);
    if (!(Number.isInteger(recordSize) && recordSize >= 1))
      throw new RangeError(`replay record size must be >= 1, got ${recordSize}`);
    this.capacity = capacity;
    this.recordSize = recordSize;
    this.maskSize = maskSize;
    this.prioritized = options.prioritized ?? false;
    this.alpha = options.alpha ?? 0.6;
    if (!(this.alpha >= 0 && this.alpha <= 1))
      throw new RangeError(`priority exponent alpha must be in [0, 1], got ${this.alpha}`);
    this.obs = new Float32Array(capacity * recordSize);
    this.nextObs = new Float32Array(capacity * recordSize);
    this.slots = new Int32Array(capacity);
    this.actions = new Int32Array(capacity);
    this.returns = new Float32Array(capacity);
    this.discounts = new Float32Array(capacity);
    this.nextMasks = new Uint8Array(capacity * maskSize);
    this.sum = this.prioritized ? new SegmentTree(capacity, 'sum') : null;
    this.min = this.prioritized ? new SegmentTree(capacity, 'min') : null;
  }

  /** Bytes the buffer's arrays take (to check a capacity against memory before allocating). */
  static bytesFor(capacity: number, recordSize: number, maskSize: number): number {
    return capacity * (8 * recordSize + 4 * 4 + maskSize + 32);
  }

  /**
   * Stores one transition (records copied from `obs`/`next` at their offsets; `nextMask` null =
   * every action allowed). New transitions get the largest priority seen, so each is sampled soon.
   */
  add(
    slot: number,
    obs: Float32Array,
    obsOffset: number,
    action: number,
    ret: number,
    discount: number,
    next: Float32Array,
    nextOffset: number,
    nextMask: Uint8Array | null,
    maskOffset = 0,
  ): void {
    const i = this.cursor;
    const R = this.recordSize;
    for (let k = 0; k < R; k++) {
      this.obs[i * R + k] = obs[obsOffset + k];
      this.nextObs[i * R + k] = next[nextOffset + k];
    }
    this.slots[i] = slot;
    this.actions[i] = action;
    this.returns[i] = ret;
    this.discounts[i] = discount;
    const M = this.maskSize;
    for (let k = 0; k < M; k++)
      this.nextMasks[i * M + k] = nextMask === null ? 1 : nextMask[maskOffset + k];
    if (this.sum !== null && this.min !== null) {
      const p = Math.pow(this.maxPriority, this.alpha);
      this.sum.set(i, p);
      this.min.set(i, p);
    }
    this.cursor = (i + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }

  private ensureSample(batch: number): ReplaySample {
    if (this.sample.indices.length !== batch) {
      this.sample.indices = new Int32Array(batch);
      this.sample.weights = new Float32Array(batch);
    }
    return this.sample;
  }

  /**
   * Samples `batch` transitions: uniformly with replacement, or (prioritised) proportionally to
   * priority^α by stratified sampling over `batch` equal segments of the total, with importance
   * weights (N · P(i))^−β divided by their largest possible value. Reused result.
   * @throws {RangeError} when the buffer is empty.
   */
  sampleBatch(rng: Rng, batch: number, beta = 0.4): ReplaySample {
    if (this.size === 0) throw new RangeError('cannot sample from an empty replay buffer');
    const out = this.ensureSample(batch);
    if (this.sum === null || this.min === null) {
      for (let b = 0; b < batch; b++) {
        out.indices[b] = rng.int(this.size);
        out.weights[b] = 1;
      }
      return out;
    }
    const total = this.sum.root;
    const segment = total / batch;
    const n = this.size;
    // The largest weight belongs to the smallest priority.
    const maxWeight = Math.pow((n * this.min.root) / total, -beta);
    for (let b = 0; b < batch; b++) {
      let i = this.sum.find((b + rng.next()) * segment);
      if (i >= n) i = n - 1; // float round-off at the right edge
      out.indices[b] = i;
      out.weights[b] = Math.pow((n * this.sum.get(i)) / total, -beta) / maxWeight;
    }
    return out;
  }

  /** Sets the priorities of sampled transitions to |tdError| + epsilon (prioritised only). */
  updatePriorities(indices: Int32Array, tdErrors: ArrayLike<number>, epsilon: number): void {
    if (this.sum === null || this.min === null) return;
    for (let b = 0; b < indices.length; b++) {
      const p = Math.abs(tdErrors[b]) + epsilon;
      if (p > this.maxPriority) this.maxPriority = p;
      const pa = Math.pow(p, this.alpha);
      this.sum.set(indices[b], pa);
      this.min.set(indices[b], pa);
    }
  }

  /** The priority^α of transition `i` (prioritised only; 1 otherwise). */
  priority(i: number): number {
    return this.sum === null ? 1 : this.sum.get(i);
  }

  /** The buffer as checkpoint tensors `<prefix>.*` (the filled part only). */
  tensors(prefix: string): Map<string, CheckpointTensor> {
    const n = this.size;
    const R = this.recordSize;
    const M = this.maskSize;
    const m = new Map<string, CheckpointTensor>([
      [`${prefix}.obs`, this.obs.subarray(0, n * R)],
      [`${prefix}.nextObs`, this.nextObs.subarray(0, n * R)],
      [`${prefix}.slots`, this.slots.subarray(0, n)],
      [`${prefix}.actions`, this.actions.subarray(0, n)],
      [`${prefix}.returns`, this.returns.subarray(0, n)],
      [`${prefix}.discounts`, this.discounts.subarray(0, n)],
      [`${prefix}.nextMasks`, this.nextMasks.subarray(0, n * M)],
      [`${prefix}.state`, Float64Array.of(this.size, this.cursor, this.maxPriority)],
    ]);
    if (this.sum !== null) {
      const p = new Float64Array(n);
      for (let i = 0; i < n; i++) p[i] = this.sum.get(i);
      m.set(`${prefix}.priorities`, p);
    }
    return m;
  }

  /**
   * Restores the buffer from `tensors` of a buffer of the same shape.
   * @throws {CheckpointError} naming `source` when a tensor is missing or of another shape.
   */
  load(tensors: ReadonlyMap<string, CheckpointTensor>, prefix: string, source: string): void {
    const state = tensors.get(`${prefix}.state`);
    if (!(state instanceof Float64Array) || state.length !== 3)
      throw new CheckpointError(source, `replay buffer ${prefix} missing from the checkpoint`);
    const [size, cursor, maxPriority] = state;
    if (size > this.capacity)
      throw new CheckpointError(
        source,
        `replay buffer holds ${size} transitions, this buffer's capacity is ${this.capacity}`,
      );
    const R = this.recordSize;
    const M = this.maskSize;
    const put = (name: string, into: Float32Array | Int32Array | Uint8Array, len: number): void => {
      const t = tensors.get(`${prefix}.${name}`);
      if (t === undefined || t.length !== len || t.constructor !== into.constructor)
        throw new CheckpointError(
          source,
          `replay buffer tensor ${prefix}.${name} has another shape`,
        );
      (into as Float32Array).set(t as Float32Array);
    };
    put('obs', this.obs, size * R);
    put('nextObs', this.nextObs, size * R);
    put('slots', this.slots, size);
    put('actions', this.actions, size);
    put('returns', this.returns, size);
    put('discounts', this.discounts, size);
    put('nextMasks', this.nextMasks, size * M);
    this.size = size;
    this.cursor = cursor;
    this.maxPriority = maxPriority;
    if (this.sum !== null && this.min !== null) {
      const p = tensors.get(`${prefix}.priorities`);
      if (!(p instanceof Float64Array) || p.length !== size)
        throw new CheckpointError(source, `replay buffer ${prefix} lacks its priorities`);
      for (let i = 0; i < size; i++) {
        this.sum.set(i, p[i]);
        this.min.set(i, p[i]);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// n-step returns

/** Receives the n-step transitions an `NStepAccumulator` emits. */
export type TransitionSink = (
  slot: number,
  obs: Float32Array,
  obsOffset: number,
  action: number,
  ret: number,
  discount: number,
  next: Float32Array,
  nextOffset: number,
  nextMask: Uint8Array | null,
) => void;

/**
 * Turns each env's steps into n-step transitions: (s_t, a_t, Σ_{k<n} γ^k r_{t+k}, γ^n, s_{t+n}).
 * At an episode end every pending start is emitted with the rewards up to the end; its discount is
 * 0 when the episode terminated and γ^k (k = steps to the end) when it was truncated, bootstrapping
 * from the final observation. With n = 1 it emits each step as it comes.
 */
export class NStepAccumulator {
  /** Steps summed per transition. */
  readonly n: number;
  /** Discount per step. */
  readonly gamma: number;
  private readonly recordSize: number;
  private readonly obs: Float32Array;
  private readonly actions: Int32Array;
  private readonly rewards: Float64Array;
  private readonly count: Int32Array;
  private readonly head: Int32Array;

  /** @throws {RangeError} on n < 1 or γ outside (0, 1]. */
  constructor(numEnvs: number, n: number, gamma: number, recordSize: number) {
    if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`nSteps must be >= 1, got ${n}`);
    if (!(gamma > 0 && gamma <= 1)) throw new RangeError(`gamma must be in (0, 1], got ${gamma}`);
    this.n = n;
    this.gamma = gamma;
    this.recordSize = recordSize;
    this.obs = new Float32Array(numEnvs * n * recordSize);
    this.actions = new Int32Array(numEnvs * n);
    this.rewards = new Float64Array(numEnvs * n);
    this.count = new Int32Array(numEnvs);
    this.head = new Int32Array(numEnvs);
  }

  /** Emits the transition starting at pending position `j` of env `e`, ending `len` steps later. */
  private emit(
    e: number,
    j: number,
    len: number,
    discount: number,
    next: Float32Array,
    nextOffset: number,
    nextMask: Uint8Array | null,
    sink: TransitionSink,
  ): void {
    const n = this.n;
    let ret = 0;
    let g = 1;
    for (let k = 0; k < len; k++) {
      ret += g * this.rewards[e * n + ((j + k) % n)];
      g *= this.gamma;
    }
    const at = e * n + (j % n);
    sink(
      e,
      this.obs,
      at * this.recordSize,
      this.actions[at],
      ret,
      discount,
      next,
      nextOffset,
      nextMask,
    );
  }

  /**
   * Adds env `e`'s step (observation record, action, reward, next-observation record, whether the
   * episode terminated or was truncated) and emits the transitions it completes into `sink`.
   */
  push(
    e: number,
    obs: Float32Array,
    obsOffset: number,
    action: number,
    reward: number,
    next: Float32Array,
    nextOffset: number,
    nextMask: Uint8Array | null,
    terminated: boolean,
    truncated: boolean,
    sink: TransitionSink,
  ): void {
    const n = this.n;
    const R = this.recordSize;
    const pos = (this.head[e] + this.count[e]) % n;
    const at = e * n + pos;
    for (let k = 0; k < R; k++) this.obs[at * R + k] = obs[obsOffset + k];
    this.actions[at] = action;
    this.rewards[at] = reward;
    this.count[e]++;
    if (terminated || truncated) {
      const c = this.count[e];
      for (let s = 0; s < c; s++) {
        const len = c - s;
        const discount = terminated ? 0 : Math.pow(this.gamma, len);
        this.emit(e, this.head[e] + s, len, discount, next, nextOffset, nextMask, sink);
      }
      this.count[e] = 0;
      this.head[e] = 0;
      return;
    }
    if (this.count[e] === n) {
      this.emit(e, this.head[e], n, Math.pow(this.gamma, n), next, nextOffset, nextMask, sink);
      this.head[e] = (this.head[e] + 1) % n;
      this.count[e]--;
    }
  }

  /** The pending steps as checkpoint tensors. */
  tensors(prefix: string): Map<string, CheckpointTensor> {
    return new Map<string, CheckpointTensor>([
      [`${prefix}.obs`, this.obs],
      [`${prefix}.actions`, this.actions],
      [`${prefix}.rewards`, this.rewards],
      [`${prefix}.count`, this.count],
      [`${prefix}.head`, this.head],
    ]);
  }

  /**
   * Restores the pending steps saved by `tensors`.
   * @throws {CheckpointError} naming `source` when a tensor is missing or of another shape.
   */
  load(tensors: ReadonlyMap<string, CheckpointTensor>, prefix: string, source: string): void {
    for (const [name, into] of [
      ['obs', this.obs],
      ['actions', this.actions],
      ['rewards', this.rewards],
      ['count', this.count],
      ['head', this.head],
    ] as const) {
      const t = tensors.get(`${prefix}.${name}`);
      if (t === undefined || t.length !== into.length || t.constructor !== into.constructor)
        throw new CheckpointError(source, `n-step state ${prefix}.${name} has another shape`);
      (into as Float32Array).set(t as Float32Array);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Observation records of a vectorised env

/**
 * How an agent stores the observations of a VecEnv: through each env's `ObservationCodec` when
 * every env has one (a few floats per observation, rebuilt when sampled), else as plain copies.
 */
export class ObservationRecorder<I extends object> {
  /** Floats per record. */
  readonly size: number;
  private readonly codecs: ObservationCodec<I>[] | null;

  constructor(private readonly vec: VecEnv<I>) {
    const codecs = vec.envs.map((e) => e.observationCodec?.() ?? null);
    this.codecs = codecs.every((c) => c !== null) ? (codecs as ObservationCodec<I>[]) : null;
    this.size = this.codecs?.[0].size ?? vec.observationSize;
  }

  /** Whether records are compact codec records (else copies). */
  get compact(): boolean {
    return this.codecs !== null;
  }

  /** Record of env `i`'s current observation (the one in the batch now). */
  encodeCurrent(i: number, out: Float32Array, offset: number): void {
    if (this.codecs !== null) this.codecs[i].current(out, offset);
    else this.copy(this.vec.observations, i * this.size, out, offset);
  }

  /** Record of env `i`'s current observation right after a reset (its first of the episode). */
  encodeReset(i: number, out: Float32Array, offset: number): void {
    if (this.codecs !== null) this.codecs[i].encode(this.vec.resetInfos[i], out, offset);
    else this.copy(this.vec.observations, i * this.size, out, offset);
  }

  /** Record of the observation env `i`'s last step returned (its final one when the episode ended). */
  encodeStep(i: number, step: VecStepResult<I>, out: Float32Array, offset: number): void {
    if (this.codecs !== null) this.codecs[i].encode(step.infos[i], out, offset);
    else if (step.dones[i] === 1) this.copy(step.finalObservations[i], 0, out, offset);
    else this.copy(step.observations, i * this.size, out, offset);
  }

  /** Rebuilds the observation of a record made from env `slot` into `out` at `outOffset`. */
  decode(
    slot: number,
    record: Float32Array,
    offset: number,
    out: Float32Array,
    outOffset: number,
  ): void {
    if (this.codecs !== null) this.codecs[slot].decode(record, offset, out, outOffset);
    else this.copy(record, offset, out, outOffset);
  }

  private copy(src: Float32Array, from: number, out: Float32Array, offset: number): void {
    const n = this.vec.observationSize;
    for (let k = 0; k < n; k++) out[offset + k] = src[from + k];
  }
}
