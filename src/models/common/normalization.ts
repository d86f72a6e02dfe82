// Running statistics for the agents' input normalisation (SB3's VecNormalize, kept inside the
// agent so the backtester and the live loop see the same numbers the agent trained on): a running
// mean and variance per column (Chan et al.'s parallel update, float64), frozen at evaluation time,
// and the discounted-return scaler PPO's optional reward scaling uses. Saved with the agent.

import { CheckpointError } from '../../errors.js';
import type { CheckpointTensor } from './checkpoint.js';

/** Running mean and variance of each of `size` columns. */
export class RunningMeanStd {
  /** Columns. */
  readonly size: number;
  /** Running mean per column. */
  readonly mean: Float64Array;
  /** Running (population) variance per column. */
  readonly variance: Float64Array;
  /** Observations counted (starts at `epsilon`, as SB3, so the first update is well defined). */
  count: number;
  private ok = new Uint8Array(0);

  constructor(size: number, epsilon = 1e-4) {
    this.size = size;
    this.mean = new Float64Array(size);
    this.variance = new Float64Array(size).fill(1);
    this.count = epsilon;
  }

  /** Adds `rows` observations ([rows, size] row-major); a row holding a non-finite value is skipped. */
  update(x: ArrayLike<number>, rows: number): void {
    const n = this.size;
    let valid = 0;
    if (this.ok.length < rows) this.ok = new Uint8Array(rows);
    const ok = this.ok;
    for (let r = 0; r < rows; r++) {
      let finite = 1;
      for (let j = 0; j < n && finite === 1; j++) if (!Number.isFinite(x[r * n + j])) finite = 0;
      ok[r] = finite;
      valid += finite;
    }
    if (valid === 0) return;
    const total = this.count + valid;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let r = 0; r < rows; r++) if (ok[r] === 1) s += x[r * n + j];
      const bm = s / valid;
      let ss = 0;
      for (let r = 0; r < rows; r++)
        if (ok[r] === 1) ss += (x[r * n + j] - bm) * (x[r * n + j] - bm);
      // Chan's parallel combination of (mean, var, count) with the batch's.
      const delta = bm - this.mean[j];
      const m2 = this.variance[j] * this.count + ss + (delta * delta * this.count * valid) / total;
      this.mean[j] += (delta * valid) / total;
      this.variance[j] = m2 / total;
    }
    this.count = total;
  }

  /**
   * Writes (x − mean) / sqrt(var + epsilon), clipped to ±clip, into `out` ([rows, size]); a
   * non-finite input becomes 0.
   */
  normalize(
    x: ArrayLike<number>,
    rows: number,
    out: Float32Array,
    clip = 10,
    epsilon = 1e-8,
  ): Float32Array {
    const n = this.size;
    for (let j = 0; j < n; j++) {
      const m = this.mean[j];
      const inv = 1 / Math.sqrt(this.variance[j] + epsilon);
      for (let r = 0; r < rows; r++) {
        const v = x[r * n + j];
        const z = Number.isFinite(v) ? (v - m) * inv : 0;
        out[r * n + j] = z > clip ? clip : z < -clip ? -clip : z;
      }
    }
    return out;
  }

  /** The statistics as checkpoint tensors `<prefix>.mean`, `.variance`, `.count`. */
  tensors(prefix: string): Map<string, CheckpointTensor> {
    return new Map<string, CheckpointTensor>([
      [`${prefix}.mean`, this.mean.slice()],
      [`${prefix}.variance`, this.variance.slice()],
      [`${prefix}.count`, Float64Array.of(this.count)],
    ]);
  }

  /**
   * Restores statistics saved by `tensors`.
   * @throws {CheckpointError} naming `source` when a tensor is missing or of another size.
   */
  load(tensors: ReadonlyMap<string, CheckpointTensor>, prefix: string, source: string): void {
    const get = (name: string, len: number): Float64Array => {
      const t = tensors.get(`${prefix}.${name}`);
      if (!(t instanceof Float64Array) || t.length !== len)
        throw new CheckpointError(
          source,
          `normalisation statistics ${prefix}.${name} missing or of another size (expected ${len})`,
        );
      return t;
    };
    this.mean.set(get('mean', this.size));
    this.variance.set(get('variance', this.size));
    this.count = get('count', 1)[0];
  }
}

/**
 * Reward scaling of PPO (SB3's VecNormalize `norm_reward`): rewards are divided by the running
 * standard deviation of the discounted return, which is reset at episode ends.
 */
export class RewardScaler {
  /** Statistics of the discounted return. */
  readonly stats = new RunningMeanStd(1);
  private readonly returns: Float64Array;

  constructor(
    numEnvs: number,
    private readonly gamma: number,
  ) {
    this.returns = new Float64Array(numEnvs);
  }

  /** The scaler's state as checkpoint tensors. */
  tensors(prefix: string): Map<string, CheckpointTensor> {
    const m = this.stats.tensors(`${prefix}.stats`);
    m.set(`${prefix}.returns`, this.returns.slice());
    return m;
  }

  /**
   * Restores the state saved by `tensors`.
   * @throws {CheckpointError} naming `source` when a tensor is missing or of another size.
   */
  load(tensors: ReadonlyMap<string, CheckpointTensor>, prefix: string, source: string): void {
    this.stats.load(tensors, `${prefix}.stats`, source);
    const r = tensors.get(`${prefix}.returns`);
    if (!(r instanceof Float64Array) || r.length !== this.returns.length)
      throw new CheckpointError(
        source,
        `reward scaler ${prefix}.returns missing or of another size`,
      );
    this.returns.set(r);
  }

  /** Scales `rewards` in place (one per env), updating the statistics; `dones` reset the return. */
  scale(rewards: Float32Array, dones: Uint8Array, clip = 10, epsilon = 1e-8): void {
    const n = this.returns.length;
    for (let i = 0; i < n; i++) this.returns[i] = this.returns[i] * this.gamma + rewards[i];
    this.stats.update(this.returns, n);
    const sd = Math.sqrt(this.stats.variance[0] + epsilon);
    for (let i = 0; i < n; i++) {
      const r = rewards[i] / sd;
      rewards[i] = r > clip ? clip : r < -clip ? -clip : r;
      if (dones[i] === 1) this.returns[i] = 0;
    }
  }
}
