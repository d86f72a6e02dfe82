// A synchronous vectorised env: N copies stepped together into one batched Float32Array, with
// auto-reset (SB3 / Gymnasium < 1.0 "same-step" style: when an episode ends its final observation
// is kept in `finalObservations` and the batch slot already holds the next episode's first
// observation). Envs that accept an external observation buffer write straight into their slot;
// others are copied. Never allocates per step.

import { Box, Discrete, type Env, type EnvSnapshot, type Space } from './spaces.js';

/** What `VecEnv.step` returns (one reused object: valid until the next step or reset). */
export interface VecStepResult<I> {
  /** N x size observations, env-major; slot i holds env i's next observation (after auto-reset). */
  observations: Float32Array;
  /** Reward of env i's step, in slot i. */
  rewards: Float32Array;
  /** 1 where env i's episode terminated this step. */
  terminated: Uint8Array;
  /** 1 where env i's episode was truncated this step. */
  truncated: Uint8Array;
  /** 1 where env i's episode ended (terminated or truncated) and the env was reset. */
  dones: Uint8Array;
  /**
   * Env i's info of this step (for an ended episode: the info of its final step, whose
   * `finalObservation`, when the info has that field, is set to `finalObservations[i]`).
   */
  infos: I[];
  /** View i holds env i's final observation; meaningful only where `dones[i]` is 1. */
  finalObservations: Float32Array[];
}

type AnyAction = number | Float32Array | Float64Array;

/**
 * Steps N environments as one. Envs must share observation size and action space kind.
 * @example
 * const vec = new VecEnv(Array.from({ length: 8 }, () => new CryptoTradingEnv(features)));
 * let obs = vec.reset(42);
 * const { rewards, dones, finalObservations } = vec.step(actions);
 * @throws {RangeError} when given no envs or envs of different shapes.
 */
export class VecEnv<I extends object = Record<string, unknown>> {
  /** Number of environments (N). */
  readonly numEnvs: number;
  /** The environments, in slot order. */
  readonly envs: ReadonlyArray<Env<Float32Array, AnyAction, I>>;
  /** Floats per observation of one env. */
  readonly observationSize: number;
  /** One env's observation and action spaces. */
  readonly observationSpace: Space<unknown>;
  /** One env's action space. */
  readonly actionSpace: Space<AnyAction>;
  private readonly batch: Float32Array;
  private readonly finals: Float32Array;
  private readonly attached: boolean[];
  private readonly actionBuf: Float32Array;
  private readonly actionViews: Float32Array[];
  private readonly actionSize: number;
  private readonly discrete: boolean;
  private readonly maskBuf: Uint8Array | null;
  private readonly result: VecStepResult<I>;
  /**
   * Info of each env's latest reset (`reset`, or the auto-reset after an episode ended): the info
   * that came with the observation now in the batch for envs that were just reset.
   */
  readonly resetInfos: I[];

  /**
   * @param envs - the copies to step together; same observation shape and action space type.
   * @throws {RangeError} when `envs` is empty or the envs' shapes or action spaces differ.
   */
  constructor(envs: ReadonlyArray<Env<Float32Array, AnyAction, I>>) {
    if (envs.length === 0) throw new RangeError('VecEnv: no envs');
    this.numEnvs = envs.length;
    this.envs = envs;
    const first = envs[0];
    const obsShape = first.observationSpace.shape;
    const size = obsShape.reduce((a, b) => a * b, 1);
    for (const e of envs) {
      if (e.observationSpace.shape.join(',') !== obsShape.join(','))
        throw new RangeError('VecEnv: envs have different observation shapes');
      if (e.actionSpace.constructor !== first.actionSpace.constructor)
        throw new RangeError('VecEnv: envs have different action spaces');
    }
    this.observationSize = size;
    this.observationSpace = first.observationSpace;
    this.actionSpace = first.actionSpace;
    this.discrete = first.actionSpace instanceof Discrete;
    this.actionSize = first.actionSpace instanceof Box ? first.actionSpace.size : 1;
    const n = this.numEnvs;
    this.batch = new Float32Array(n * size);
    this.finals = new Float32Array(n * size);
    this.attached = envs.map((e, i) => {
      if (e.useObservationBuffer === undefined) return false;
      e.useObservationBuffer(this.batch.subarray(i * size, (i + 1) * size));
      return true;
    });
    this.actionBuf = new Float32Array(n * this.actionSize);
    this.actionViews = envs.map((_, i) =>
      this.actionBuf.subarray(i * this.actionSize, (i + 1) * this.actionSize),
    );
    const nActions = first.actionSpace instanceof Discrete ? first.actionSpace.n : 0;
    this.maskBuf =
      nActions > 0 && first.actionMasks !== undefined ? new Uint8Array(n * nActions) : null;
    this.result = {
      observations: this.batch,
      rewards: new Float32Array(n),
      terminated: new Uint8Array(n),
      truncated: new Uint8Array(n),
      dones: new Uint8Array(n),
      infos: new Array<I>(n),
      finalObservations: envs.map((_, i) => this.finals.subarray(i * size, (i + 1) * size)),
    };
    this.resetInfos = new Array<I>(n);
  }

  /** The batched current observations (N x size; the buffer `reset` and `step` return). */
  get observations(): Float32Array {
    return this.batch;
  }

  /** The infos of the last `reset` or `step` (per env; see `VecStepResult.infos`). */
  get infos(): readonly I[] {
    return this.result.infos;
  }

  /**
   * Snapshots of every env (for checkpoints).
   * @throws {RangeError} when an env cannot snapshot its state.
   */
  snapshot(): EnvSnapshot[] {
    return this.envs.map((e, i) => {
      if (e.snapshot === undefined || e.restore === undefined)
        throw new RangeError(`VecEnv: env ${i} cannot snapshot its state (no snapshot/restore)`);
      return e.snapshot();
    });
  }

  /**
   * Restores every env from `snapshot()`; each writes its current observation into its batch slot.
   * @throws {RangeError} when the count differs or an env cannot restore.
   */
  restore(snapshots: readonly EnvSnapshot[]): void {
    if (snapshots.length !== this.numEnvs)
      throw new RangeError(
        `VecEnv.restore: ${snapshots.length} snapshots for ${this.numEnvs} envs`,
      );
    this.envs.forEach((e, i) => {
      // The restored observation must land in the batch: only envs writing into it can restore.
      if (e.restore === undefined || !this.attached[i])
        throw new RangeError(`VecEnv: env ${i} cannot restore its state into the batch`);
      e.restore(snapshots[i]);
    });
  }

  /**
   * Resets every env (env i seeded `seed + i` when a seed is given) and returns the batched first
   * observations (the reused batch buffer).
   */
  reset(seed?: number): Float32Array {
    const size = this.observationSize;
    for (let i = 0; i < this.numEnvs; i++) {
      const [obs, info] = this.envs[i].reset(seed === undefined ? {} : { seed: seed + i });
      if (!this.attached[i]) this.batch.set(obs, i * size);
      this.result.infos[i] = info;
      this.resetInfos[i] = info;
    }
    this.result.dones.fill(0);
    this.result.terminated.fill(0);
    this.result.truncated.fill(0);
    return this.batch;
  }

  /**
   * Steps env i with `actions[i]` (a discrete index, or for Box actions `actionSize` values per env
   * laid out env-major), auto-resetting envs whose episode ended.
   * @throws {RangeError} when `actions` has the wrong length (and as each env's `step` throws).
   */
  step(actions: ArrayLike<number>): VecStepResult<I> {
    const n = this.numEnvs;
    const k = this.actionSize;
    if (actions.length !== n * k)
      throw new RangeError(`VecEnv.step: expected ${n * k} actions, got ${actions.length}`);
    const size = this.observationSize;
    const r = this.result;
    const scalar = this.discrete || k === 1;
    if (!scalar) for (let j = 0; j < n * k; j++) this.actionBuf[j] = actions[j];
    for (let i = 0; i < n; i++) {
      const env = this.envs[i];
      const out = env.step(scalar ? actions[i] : this.actionViews[i]);
      const obs = out[0];
      r.rewards[i] = out[1];
      const term = out[2];
      const trunc = out[3];
      r.terminated[i] = term ? 1 : 0;
      r.truncated[i] = trunc ? 1 : 0;
      r.infos[i] = out[4];
      if (term || trunc) {
        r.dones[i] = 1;
        const final = r.finalObservations[i];
        final.set(obs);
        const info = out[4] as { finalObservation?: unknown };
        if ('finalObservation' in info) info.finalObservation = final;
        const [first, resetInfo] = env.reset();
        this.resetInfos[i] = resetInfo;
        if (!this.attached[i]) this.batch.set(first, i * size);
      } else {
        r.dones[i] = 0;
        if (!this.attached[i]) this.batch.set(obs, i * size);
      }
    }
    return r;
  }

  /**
   * Allowed actions of every env (N x n flags, env-major), or null when the action space is not
   * Discrete or the envs do not mask. Reused buffer.
   */
  actionMasks(): Uint8Array | null {
    const buf = this.maskBuf;
    if (buf === null) return null;
    const nA = buf.length / this.numEnvs;
    for (let i = 0; i < this.numEnvs; i++) {
      const m = this.envs[i].actionMasks?.();
      if (m === null || m === undefined) buf.fill(1, i * nA, (i + 1) * nA);
      else buf.set(m, i * nA);
    }
    return buf;
  }
}
