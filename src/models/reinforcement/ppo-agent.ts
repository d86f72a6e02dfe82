// PPO (the spec's ppo_agent.py), readable top to bottom like CleanRL's ppo.py, with every detail of
// "The 37 Implementation Details of PPO" that applies here, each marked (#n) where it is done:
//   #1 vectorised envs, #2 orthogonal init (hidden √2, policy head 0.01, value head 1), #3 Adam
//   epsilon 1e-5, #4 optional learning-rate annealing, #5 GAE(λ), #6 minibatches × epochs over a
//   shuffled rollout, #7 advantage normalisation per minibatch, #8 clipped surrogate objective,
//   #9 optional clipped value loss, #10 entropy bonus, #11 global grad-norm clip, #12 approx-KL and
//   clip fraction logged with an optional target-KL stop, separate actor and critic networks (SB3's
//   MlpPolicy), tanh hidden layers, running observation normalisation (kept in the agent, saved
//   with it) and optional reward scaling by the discounted return's deviation, truncation
//   bootstrapped with γ·V(final observation) (as SB3; CleanRL treats it as termination), discrete
//   actions with action masks (masked logits never sampled) or a continuous target position in
//   [-1, 1] (a tanh-squashed Gaussian with a state-independent log std).
// Networks are the typed-array MLPs of models/common (mlp.ts), gradients written out by hand.
// Defaults follow Stable-Baselines3's PPO where the spec and the issue are silent. Never reads the
// env's internals: observations, rewards, flags, infos and masks only.

import { CheckpointError, ConfigError } from '../../errors.js';
import type { Config } from '../../utils/config.js';
import type { Progress } from '../../utils/progress.js';
import { Rng } from '../../utils/random.js';
import {
  checkpointTensor,
  readCheckpoint,
  writeCheckpoint,
  writeInferenceCheckpoint,
  type CheckpointContent,
  type CheckpointTensor,
} from '../common/checkpoint.js';
import { Mlp, type MlpWorkspace } from '../common/mlp.js';
import { RewardScaler, RunningMeanStd } from '../common/normalization.js';
import { Adam, arrayParameter, type Parameter, type ParameterGroup } from '../common/optimizer.js';
import { Box, Discrete, type EnvSnapshot } from './spaces.js';
import { ObservationRecorder } from './buffers.js';
import type { VecEnv } from './vec-env.js';

/** The `ppo` config section. */
export type PpoConfig = Config['ppo'];

/** Hyperparameters of a `PPOAgent` (the `ppo` config section without the run-level keys). */
export interface PpoHyperparameters {
  /** Env steps per env per rollout (SB3: 2048). */
  nSteps: number;
  /** Minibatch size (SB3: 64). */
  batchSize: number;
  /** Passes over each rollout (SB3: 10). */
  nEpochs: number;
  /** Discount (SB3: 0.99). */
  gamma: number;
  /** GAE λ (SB3: 0.95). */
  gaeLambda: number;
  /** Clip range of the probability ratio (SB3: 0.2). */
  clipRange: number;
  /** Clip range of the value update around the old value; null = no value clipping (SB3). */
  clipRangeVf: number | null;
  /** Normalise advantages per minibatch (SB3: true). */
  normalizeAdvantage: boolean;
  /** Entropy coefficient (SB3: 0). */
  entCoef: number;
  /** Value-loss coefficient (SB3: 0.5). */
  vfCoef: number;
  /** Global gradient-norm clip (SB3: 0.5). */
  maxGradNorm: number;
  /** Stop an update's epochs once the approximate KL exceeds 1.5 × this; null = never (SB3). */
  targetKl: number | null;
  /** Anneal the learning rate linearly to 0 over training (CleanRL; SB3: constant). */
  annealLearningRate: boolean;
  /** Hidden layers of the actor and of the critic (each `hiddenDim` wide). */
  hiddenLayers: number;
  /** Hidden activation (SB3's MlpPolicy: tanh). */
  activation: 'tanh' | 'relu';
  /** `discrete`: one logit per position level; `continuous`: a target in [-1, 1]. */
  actionType: 'discrete' | 'continuous';
  /** Initial log standard deviation of the continuous policy (SB3: 0). */
  logStdInit: number;
  /** Running mean/std normalisation of observations inside the agent. */
  normalizeObservations: boolean;
  /** Clip of normalised observations. */
  observationClip: number;
  /** Scale rewards by the running deviation of the discounted return (SB3's norm_reward). */
  normalizeRewards: boolean;
  /** Clip of scaled rewards. */
  rewardClip: number;
  /** Adam's epsilon (#3: 1e-5). */
  adamEpsilon: number;
}

/** Stable-Baselines3's PPO defaults, with observation normalisation on. */
export const PPO_DEFAULTS: Readonly<PpoHyperparameters> = Object.freeze({
  nSteps: 2048,
  batchSize: 64,
  nEpochs: 10,
  gamma: 0.99,
  gaeLambda: 0.95,
  clipRange: 0.2,
  clipRangeVf: null,
  normalizeAdvantage: true,
  entCoef: 0,
  vfCoef: 0.5,
  maxGradNorm: 0.5,
  targetKl: null,
  annealLearningRate: false,
  hiddenLayers: 2,
  activation: 'tanh',
  actionType: 'discrete',
  logStdInit: 0,
  normalizeObservations: true,
  observationClip: 10,
  normalizeRewards: false,
  rewardClip: 10,
  adamEpsilon: 1e-5,
});

/** The hyperparameters of config section `ppo`. */
export function ppoHyperparameters(section: PpoConfig): PpoHyperparameters {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(PPO_DEFAULTS)) out[k] = (section as Record<string, unknown>)[k];
  return out as unknown as PpoHyperparameters;
}

/**
 * Checks hyperparameters that cannot work together, before anything is built (with `numEnvs`, also
 * that a minibatch fits in a rollout).
 * @throws {ConfigError} naming the `ppo.<key>` at fault.
 */
export function validatePpoHyperparameters(h: PpoHyperparameters, numEnvs?: number): void {
  const bad = (key: keyof PpoHyperparameters, why: string): never => {
    throw new ConfigError(`ppo.${key}`, why);
  };
  if (!(h.gamma > 0 && h.gamma <= 1)) bad('gamma', `must be in (0, 1], got ${h.gamma}`);
  if (!(h.gaeLambda >= 0 && h.gaeLambda <= 1))
    bad('gaeLambda', `must be in [0, 1], got ${h.gaeLambda}`);
  if (!(h.clipRange > 0)) bad('clipRange', `must be > 0, got ${h.clipRange}`);
  if (numEnvs !== undefined && h.batchSize > h.nSteps * numEnvs)
    bad(
      'batchSize',
      `${h.batchSize} is larger than a rollout (ppo.nSteps ${h.nSteps} x ${numEnvs} envs)`,
    );
  if (h.normalizeAdvantage && h.batchSize < 2)
    bad('batchSize', 'must be >= 2 when advantages are normalised per minibatch');
}

// ---------------------------------------------------------------------------------------------
// Pure pieces (tested on hand-made numbers)

/**
 * GAE(λ) (#5) over a rollout of T steps of N envs (arrays [T, N], step-major). `ended[t, i]` = 1
 * when env i's episode ended at step t (terminated or truncated); `bootstrap[t, i]` is the value the
 * ended step bootstraps from: V(final observation) when truncated, 0 when terminated. `lastValues`
 * [N] are V of the observations after the last step. Writes advantages and returns (advantages +
 * values).
 */
export function computeGae(
  rewards: Float32Array,
  values: Float32Array,
  ended: Uint8Array,
  bootstrap: Float32Array,
  lastValues: Float32Array,
  T: number,
  N: number,
  gamma: number,
  lambda: number,
  advantages: Float32Array,
  returns: Float32Array,
): void {
  for (let i = 0; i < N; i++) {
    let gae = 0;
    for (let t = T - 1; t >= 0; t--) {
      const k = t * N + i;
      const done = ended[k] === 1;
      const nextValue = done ? bootstrap[k] : t === T - 1 ? lastValues[i] : values[k + N];
      const delta = rewards[k] + gamma * nextValue - values[k];
      gae = delta + (done ? 0 : gamma * lambda * gae);
      advantages[k] = gae;
      returns[k] = gae + values[k];
    }
  }
}

/** The clipped surrogate loss of one sample (#8): max(−A·r, −A·clip(r, 1 − ε, 1 + ε)). */
export function clippedSurrogate(ratio: number, advantage: number, clip: number): number {
  const c = ratio < 1 - clip ? 1 - clip : ratio > 1 + clip ? 1 + clip : ratio;
  const a = -advantage * ratio;
  const b = -advantage * c;
  return a > b ? a : b;
}

/** d/d(ratio) of `clippedSurrogate` (0 where the clipped branch binds). */
export function clippedSurrogateGrad(ratio: number, advantage: number, clip: number): number {
  const c = ratio < 1 - clip ? 1 - clip : ratio > 1 + clip ? 1 + clip : ratio;
  return -advantage * ratio >= -advantage * c ? -advantage : 0;
}

/**
 * The value loss of one sample (#9): (v − R)², or with `clipVf` the larger of (v − R)² and
 * (v_old + clip(v − v_old, ±clipVf) − R)². Returns [loss, d loss / d v].
 */
export function valueLoss(
  v: number,
  target: number,
  oldValue: number,
  clipVf: number | null,
): [number, number] {
  const e = v - target;
  if (clipVf === null) return [e * e, 2 * e];
  const d = v - oldValue;
  const clipped = oldValue + (d < -clipVf ? -clipVf : d > clipVf ? clipVf : d);
  const ec = clipped - target;
  if (e * e >= ec * ec) return [e * e, 2 * e];
  // The clipped branch: its gradient flows only while v - v_old is inside the clip range.
  return [ec * ec, d > -clipVf && d < clipVf ? 2 * ec : 0];
}

/**
 * Masked log-softmax of `A` logits at `offset` into `out` (masked actions get −Infinity); returns
 * log Σ exp over the allowed ones.
 */
export function maskedLogSoftmax(
  logits: Float32Array,
  offset: number,
  A: number,
  mask: Uint8Array | null,
  maskOffset: number,
  out: Float64Array,
): number {
  let max = -Infinity;
  for (let a = 0; a < A; a++)
    if ((mask === null || mask[maskOffset + a] === 1) && logits[offset + a] > max)
      max = logits[offset + a];
  let sum = 0;
  for (let a = 0; a < A; a++)
    if (mask === null || mask[maskOffset + a] === 1) sum += Math.exp(logits[offset + a] - max);
  const lse = max + Math.log(sum);
  for (let a = 0; a < A; a++)
    out[a] = mask === null || mask[maskOffset + a] === 1 ? logits[offset + a] - lse : -Infinity;
  return lse;
}

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

// ---------------------------------------------------------------------------------------------
// The agent

/** Options of `PPOAgent` beyond the spec's positional arguments. */
export interface PpoAgentOptions extends Partial<PpoHyperparameters> {
  /** Seed of the weights, sampling and minibatch order. Default 0. */
  seed?: number;
  /**
   * Further parameter groups trained with the actor and critic (e.g. a pretrained encoder, frozen
   * or fine-tuned at its own rate); their gradients come from `PpoInputHooks.backward`.
   */
  extraGroups?: readonly ParameterGroup[];
}

/**
 * How an update computes the agent's inputs when they come from a trainable encoder (transfer,
 * fine-tuning phase): `inputs` writes the normalised inputs of the minibatch's samples (rollout
 * indices; the rollout's `records` say which observation each was) with the encoder's current
 * weights; `backward` receives dL/d(inputs) and writes the
 * gradients of the extra parameter groups (flat order of their parameters).
 */
export interface PpoInputHooks {
  inputs(roll: Rollout, indices: Int32Array, out: Float32Array): void;
  backward(dInputs: Float32Array, rows: number, grads: Float32Array[]): void;
}

/** What `selectAction` returns (the spec's "sample action from policy"). */
export interface PpoAction {
  /** Discrete: the action index; continuous: the target in [-1, 1] (tanh of the sample). */
  action: number;
  /** Log-probability of the sample under the current policy (continuous: of the pre-tanh value). */
  logProb: number;
  /** The critic's value of the state. */
  value: number;
}

/** Statistics of one update. */
export interface PpoUpdateStats {
  /** Clipped surrogate loss (mean over the minibatches run). */
  policyLoss: number;
  /** Value loss. */
  valueLoss: number;
  /** Mean entropy of the policy. */
  entropy: number;
  /** Mean approximate KL (E[(r − 1) − log r]). */
  approxKl: number;
  /** Fraction of samples whose ratio left [1 − ε, 1 + ε]. */
  clipFraction: number;
  /** 1 − Var(R − V) / Var(R) of the rollout before the update. */
  explainedVariance: number;
  /** Epochs run (fewer than nEpochs when the target KL stopped them). */
  epochs: number;
  /** Ratio of the first minibatch of the first epoch (1 up to float rounding: a check). */
  firstRatio: number;
  /** Mean global gradient norm before clipping. */
  gradNorm: number;
}

/** Kind tag of a saved PPO agent. */
export const PPO_AGENT_KIND = 'ppo-agent';
/** The checkpoint kind of a PPO training run. */
export const PPO_TRAINING_KIND = 'ppo-training';

/** What is saved to rebuild a PPO agent. */
export interface PpoAgentDescription {
  stateDim: number;
  actionDim: number;
  hiddenDim: number;
  learningRate: number;
  hyperparameters: PpoHyperparameters;
}

/**
 * The PPO agent: separate actor and critic MLPs over (normalised) observations. `selectAction`
 * and `train` are the spec's; `learn` runs rollouts and updates on a vectorised env.
 * @example
 * const agent = new PPOAgent(obsSize, 3, 64, 3e-4, { seed: 1 });
 * agent.learn({ env: vec, totalTimesteps: 100_000 });
 */
export class PPOAgent {
  /** Observation floats. */
  readonly stateDim: number;
  /** Discrete actions, or 1 for the continuous target. */
  readonly actionDim: number;
  /** Width of each hidden layer. */
  readonly hiddenDim: number;
  /** Adam's initial learning rate. */
  readonly learningRate: number;
  /** Hyperparameters in force. */
  readonly hyperparameters: Readonly<PpoHyperparameters>;
  /** Policy network: logits (discrete) or the mean of the pre-tanh Gaussian (continuous). */
  readonly actor: Mlp;
  /** Value network. */
  readonly critic: Mlp;
  /** Log standard deviation of the continuous policy (length 1; unused when discrete). */
  readonly logStd: Float32Array;
  /** Optimizer over actor, critic (and log std). */
  readonly optimizer: Adam;
  /** Running observation statistics (null when off). */
  readonly observationStats: RunningMeanStd | null;
  /** Sampling and shuffling stream. */
  readonly rng: Rng;
  private readonly wsAct: MlpWorkspace;
  /** Workspace of the critic's acting passes. */
  readonly wsCritic: MlpWorkspace;
  private readonly wsTrainA: MlpWorkspace;
  private readonly wsTrainC: MlpWorkspace;
  private readonly actorGrads: Float32Array[];
  private readonly criticGrads: Float32Array[];
  private readonly logStdGrad = new Float32Array(1);
  private readonly allGrads: Float32Array[];
  /** Parameters of the extra groups (saved with the agent). */
  private readonly extraParams: readonly Parameter[];
  /** Gradients of the extra parameter groups (filled by the input hooks). */
  private readonly extraGrads: Float32Array[];
  private readonly logp: Float64Array;
  private norm = new Float32Array(0);

  /**
   * The spec's `PPOAgent(state_dim, action_dim, hidden_dim, learning_rate=0.0003)`.
   * @throws {ConfigError} on hyperparameters that cannot work (naming the `ppo.*` key).
   */
  constructor(
    stateDim: number,
    actionDim: number,
    hiddenDim: number,
    learningRate = 3e-4,
    options: PpoAgentOptions = {},
  ) {
    const { seed, extraGroups, ...over } = options;
    const h: PpoHyperparameters = { ...PPO_DEFAULTS, ...over };
    validatePpoHyperparameters(h);
    const A = h.actionType === 'continuous' ? 1 : actionDim;
    if (!(Number.isInteger(stateDim) && stateDim > 0))
      throw new RangeError(`PPOAgent: stateDim must be a whole number > 0, got ${stateDim}`);
    if (h.actionType === 'discrete' && !(Number.isInteger(actionDim) && actionDim >= 2))
      throw new RangeError(`PPOAgent: a discrete policy needs >= 2 actions, got ${actionDim}`);
    this.stateDim = stateDim;
    this.actionDim = A;
    this.hiddenDim = hiddenDim;
    this.learningRate = learningRate;
    this.hyperparameters = Object.freeze(h);
    this.rng = new Rng(seed ?? 0);
    const init = this.rng.fork('ppo-init');
    const hidden = Array.from({ length: h.hiddenLayers }, () => hiddenDim);
    // #2: orthogonal init, √2 on hidden layers, 0.01 on the policy head, 1 on the value head.
    this.actor = Mlp.create(
      { sizes: [stateDim, ...hidden, A], activation: h.activation, outputGain: 0.01 },
      init,
    );
    this.critic = Mlp.create(
      { sizes: [stateDim, ...hidden, 1], activation: h.activation, outputGain: 1 },
      init,
    );
    this.logStd = Float32Array.of(h.logStdInit);
    const params = [...this.actor.parameters('actor'), ...this.critic.parameters('critic')];
    if (h.actionType === 'continuous') params.push(arrayParameter('logStd', this.logStd));
    // #3: Adam with epsilon 1e-5; #11: global grad-norm clipping.
    this.optimizer = new Adam([{ name: 'policy', params, learningRate }, ...(extraGroups ?? [])], {
      clipNorm: h.maxGradNorm,
      epsilon: h.adamEpsilon,
    });
    this.actorGrads = this.actor.gradientBuffers();
    this.criticGrads = this.critic.gradientBuffers();
    this.extraParams = (extraGroups ?? []).flatMap((g) => g.params);
    this.extraGrads = this.extraParams.map((p) => new Float32Array(p.size));
    this.allGrads = [
      ...this.actorGrads,
      ...this.criticGrads,
      ...(h.actionType === 'continuous' ? [this.logStdGrad] : []),
      ...this.extraGrads,
    ];
    this.observationStats = h.normalizeObservations ? new RunningMeanStd(stateDim) : null;
    this.wsAct = this.actor.workspace();
    this.wsCritic = this.critic.workspace();
    this.wsTrainA = this.actor.workspace();
    this.wsTrainC = this.critic.workspace();
    this.logp = new Float64Array(Math.max(A, 1));
  }

  /** Whether actions are discrete levels. */
  get discrete(): boolean {
    return this.hyperparameters.actionType === 'discrete';
  }

  /** Normalised copies of `rows` raw observations into `out` (frozen statistics). */
  normalize(x: Float32Array, rows: number, out: Float32Array): Float32Array {
    if (this.observationStats === null) {
      for (let k = 0; k < rows * this.stateDim; k++) out[k] = x[k];
      return out;
    }
    return this.observationStats.normalize(x, rows, out, this.hyperparameters.observationClip);
  }

  private normalized(x: Float32Array, rows: number): Float32Array {
    if (this.norm.length < rows * this.stateDim) this.norm = new Float32Array(rows * this.stateDim);
    return this.normalize(x, rows, this.norm);
  }

  /**
   * Deterministic action scores of raw observations [rows, actionDim]: logits (discrete) or the
   * Gaussian mean (continuous; the action is its tanh). Reused buffer.
   */
  scores(states: Float32Array, rows: number): Float32Array {
    return this.actor.forward(this.normalized(states, rows), rows, this.wsAct);
  }

  /** Critic values of raw observations [rows] (reused buffer). */
  values(states: Float32Array, rows: number): Float32Array {
    return this.critic.forward(this.normalized(states, rows), rows, this.wsCritic);
  }

  /**
   * The spec's `select_action(state)`: a sample of the policy for one raw observation, with its
   * log-probability and the critic's value. `mask` restricts discrete actions.
   */
  selectAction(state: Float32Array, mask: Uint8Array | null = null): PpoAction {
    const x = this.normalized(state, 1);
    const out = this.sampleNormalized(x, 1, mask, new Float32Array(1), new Float32Array(1));
    const value = this.critic.forward(x, 1, this.wsCritic)[0];
    return {
      action: this.discrete ? out.actions[0] : Math.tanh(out.actions[0]),
      logProb: out.logProbs[0],
      value,
    };
  }

  /**
   * Samples actions for `rows` normalised observations: discrete indices (masked logits never
   * sampled) or pre-tanh Gaussian values, with their log-probabilities.
   */
  sampleNormalized(
    x: Float32Array,
    rows: number,
    masks: Uint8Array | null,
    actions: Float32Array,
    logProbs: Float32Array,
  ): { actions: Float32Array; logProbs: Float32Array } {
    const A = this.actionDim;
    const out = this.actor.forward(x, rows, this.wsAct);
    for (let i = 0; i < rows; i++) {
      if (this.discrete) {
        maskedLogSoftmax(out, i * A, A, masks, i * A, this.logp);
        let u = this.rng.next();
        let pick = -1;
        for (let a = 0; a < A; a++) {
          if (this.logp[a] === -Infinity) continue;
          pick = a;
          u -= Math.exp(this.logp[a]);
          if (u < 0) break;
        }
        actions[i] = pick;
        logProbs[i] = this.logp[pick];
      } else {
        const std = Math.exp(this.logStd[0]);
        const z = this.rng.normal();
        actions[i] = out[i] + std * z;
        logProbs[i] = -0.5 * z * z - this.logStd[0] - LOG_SQRT_2PI;
      }
    }
    return { actions, logProbs };
  }

  /**
   * The spec's `train(states, actions, rewards, next_states, dones)` for one trajectory of T steps
   * of a single env: `dones[t]` = the episode terminated at step t; `options.truncated[t]` = it was
   * cut short there (it then bootstraps from `nextStates` row t, its final observation);
   * `options.oldLogProbs` are the log-probabilities recorded when acting (required: PPO's ratio is
   * relative to the policy that acted). Values are recomputed with the current critic, the
   * advantages by GAE, then one update (epochs × minibatches).
   * @throws {RangeError} when the arrays disagree in length.
   */
  train(
    states: Float32Array,
    actions: ArrayLike<number>,
    rewards: ArrayLike<number>,
    nextStates: Float32Array,
    dones: ArrayLike<boolean | number>,
    options: {
      oldLogProbs: ArrayLike<number>;
      truncated?: ArrayLike<boolean | number>;
      masks?: Uint8Array | null;
    },
  ): PpoUpdateStats {
    const T = rewards.length;
    const D = this.stateDim;
    if (states.length !== T * D || nextStates.length !== T * D || actions.length !== T)
      throw new RangeError('PPOAgent.train: states, nextStates and actions must hold T rows');
    const roll = new Rollout(T, 1, D, this.discrete ? this.actionDim : 0);
    const x = new Float32Array(T * D);
    this.normalize(states, T, x);
    roll.obs.set(x);
    const v = this.critic.forward(x, T, this.wsCritic);
    roll.values.set(v.subarray(0, T));
    const xn = new Float32Array(T * D);
    this.normalize(nextStates, T, xn);
    const vn = Float32Array.from(this.critic.forward(xn, T, this.wsCritic).subarray(0, T));
    for (let t = 0; t < T; t++) {
      roll.actions[t] = actions[t];
      roll.logProbs[t] = options.oldLogProbs[t];
      roll.rewards[t] = rewards[t];
      const term = Number(dones[t]) === 1;
      const trunc = options.truncated !== undefined && Number(options.truncated[t]) === 1;
      roll.ended[t] = term || trunc ? 1 : 0;
      roll.bootstrap[t] = trunc && !term ? vn[t] : 0;
    }
    if (options.masks) roll.masks.set(options.masks);
    const last = Float32Array.of(roll.ended[T - 1] === 1 ? 0 : vn[T - 1]);
    return this.update(roll, last);
  }

  /**
   * One PPO update on a filled rollout (#5-#12): GAE, then `nEpochs` passes of shuffled
   * minibatches (the target KL may stop them early).
   */
  update(
    roll: Rollout,
    lastValues: Float32Array,
    hooks: PpoInputHooks | null = null,
  ): PpoUpdateStats {
    const h = this.hyperparameters;
    const T = roll.steps;
    const N = roll.envs;
    const M = T * N;
    const D = this.stateDim;
    const A = this.actionDim;
    computeGae(
      roll.rewards,
      roll.values,
      roll.ended,
      roll.bootstrap,
      lastValues,
      T,
      N,
      h.gamma,
      h.gaeLambda,
      roll.advantages,
      roll.returns,
    );
    const explainedVariance = explainedVarianceOf(roll.values, roll.returns, M);
    const B = Math.min(h.batchSize, M);
    const order = Int32Array.from({ length: M }, (_, i) => i);
    const xb = new Float32Array(B * D);
    const dxActor = hooks === null ? undefined : new Float32Array(B * D);
    const dxCritic = hooks === null ? undefined : new Float32Array(B * D);
    const idx = new Int32Array(B);
    const dOut = new Float32Array(B * A);
    const dV = new Float32Array(B);
    const adv = new Float64Array(B);
    let sums = { pg: 0, v: 0, ent: 0, kl: 0, clip: 0, norm: 0, batches: 0 };
    let firstRatio = NaN;
    let epochs = 0;
    let stop = false;
    for (let epoch = 0; epoch < h.nEpochs && !stop; epoch++) {
      epochs++;
      this.rng.shuffle(order);
      for (let start = 0; start + B <= M; start += B) {
        // Gather the minibatch (#6).
        for (let b = 0; b < B; b++) {
          const k = order[start + b];
          idx[b] = k;
          if (hooks === null) for (let j = 0; j < D; j++) xb[b * D + j] = roll.obs[k * D + j];
          adv[b] = roll.advantages[k];
        }
        // With a trainable encoder the inputs are recomputed with its current weights.
        if (hooks !== null) hooks.inputs(roll, idx, xb);
        // #7: advantages normalised per minibatch.
        if (h.normalizeAdvantage) {
          let mean = 0;
          for (let b = 0; b < B; b++) mean += adv[b];
          mean /= B;
          let sq = 0;
          for (let b = 0; b < B; b++) sq += (adv[b] - mean) ** 2;
          const std = Math.sqrt(sq / (B - 1)); // torch.std is unbiased
          for (let b = 0; b < B; b++) adv[b] = (adv[b] - mean) / (std + 1e-8);
        }
        const out = this.actor.forward(xb, B, this.wsTrainA);
        const values = this.critic.forward(xb, B, this.wsTrainC);
        let pg = 0;
        let vl = 0;
        let ent = 0;
        let kl = 0;
        let clipped = 0;
        this.logStdGrad[0] = 0;
        for (let b = 0; b < B; b++) {
          const k = order[start + b];
          let newLogProb: number;
          let entropy: number;
          if (this.discrete) {
            maskedLogSoftmax(
              out,
              b * A,
              A,
              roll.maskSize > 0 ? roll.masks : null,
              k * A,
              this.logp,
            );
            const a = roll.actions[k];
            newLogProb = this.logp[a];
            entropy = 0;
            for (let j = 0; j < A; j++)
              if (this.logp[j] > -Infinity) entropy -= Math.exp(this.logp[j]) * this.logp[j];
          } else {
            const mu = out[b];
            const ls = this.logStd[0];
            const z = (roll.actions[k] - mu) / Math.exp(ls);
            newLogProb = -0.5 * z * z - ls - LOG_SQRT_2PI;
            entropy = 0.5 + LOG_SQRT_2PI + ls;
          }
          const logRatio = newLogProb - roll.logProbs[k];
          const ratio = Math.exp(logRatio);
          if (epoch === 0 && start === 0 && b === 0) firstRatio = ratio;
          pg += clippedSurrogate(ratio, adv[b], h.clipRange);
          kl += ratio - 1 - logRatio; // #12: the low-variance KL estimator
          if (Math.abs(ratio - 1) > h.clipRange) clipped++;
          ent += entropy;
          // d(total)/d(newLogProb) = d(pg)/d(ratio) · ratio / B.
          const dLogProb = (clippedSurrogateGrad(ratio, adv[b], h.clipRange) * ratio) / B;
          if (this.discrete) {
            // dlogπ(a)/dz_j = 1[j = a] − p_j; d(−H)/dz_j = p_j (log p_j + H).
            const a = roll.actions[k];
            for (let j = 0; j < A; j++) {
              const lp = this.logp[j];
              const p = lp === -Infinity ? 0 : Math.exp(lp);
              const dEnt = p === 0 ? 0 : (h.entCoef * p * (lp + entropy)) / B;
              dOut[b * A + j] = dLogProb * ((j === a ? 1 : 0) - p) + dEnt;
            }
          } else {
            const std = Math.exp(this.logStd[0]);
            const z = (roll.actions[k] - out[b]) / std;
            dOut[b] = (dLogProb * z) / std; // dlogN/dμ = z / σ
            // dlogN/dlogσ = z² − 1; the entropy bonus −entCoef·H has d/dlogσ = −entCoef.
            this.logStdGrad[0] += dLogProb * (z * z - 1) - h.entCoef / B;
          }
          const [l, dl] = valueLoss(values[b], roll.returns[k], roll.values[k], h.clipRangeVf);
          vl += l;
          dV[b] = (h.vfCoef * dl) / B;
        }
        this.actor.backward(this.wsTrainA, dOut, this.actorGrads, dxActor);
        this.critic.backward(this.wsTrainC, dV, this.criticGrads, dxCritic);
        if (hooks !== null && dxActor !== undefined && dxCritic !== undefined) {
          for (let k = 0; k < B * D; k++) dxActor[k] += dxCritic[k];
          hooks.backward(dxActor, B, this.extraGrads);
        }
        const norm = this.optimizer.apply(this.allGrads);
        sums = {
          pg: sums.pg + pg / B,
          v: sums.v + vl / B,
          ent: sums.ent + ent / B,
          kl: sums.kl + kl / B,
          clip: sums.clip + clipped / B,
          norm: sums.norm + (Number.isNaN(norm) ? 0 : norm),
          batches: sums.batches + 1,
        };
        // #12: stop the update once the policy moved too far (SB3 checks every minibatch).
        if (h.targetKl !== null && kl / B > 1.5 * h.targetKl) {
          stop = true;
          break;
        }
      }
    }
    const n = Math.max(1, sums.batches);
    return {
      policyLoss: sums.pg / n,
      valueLoss: sums.v / n,
      entropy: sums.ent / n,
      approxKl: sums.kl / n,
      clipFraction: sums.clip / n,
      explainedVariance,
      epochs,
      firstRatio,
      gradNorm: sums.norm / n,
    };
  }

  /** Weights, optimizer and statistics as checkpoint tensors. */
  tensors(): Map<string, CheckpointTensor> {
    const m = new Map<string, CheckpointTensor>();
    this.actor.weights.forEach((w, j) => m.set(`actor.${this.actor.names[j]}`, w));
    this.critic.weights.forEach((w, j) => m.set(`critic.${this.critic.names[j]}`, w));
    m.set('logStd', this.logStd);
    for (const p of this.extraParams) m.set(`extra.${p.name}`, Float32Array.from(p.read()));
    for (const [k, v] of this.optimizer.stateTensors('optimizer')) m.set(k, v);
    if (this.observationStats !== null)
      for (const [k, v] of this.observationStats.tensors('obs')) m.set(k, v);
    return m;
  }

  /**
   * Restores the state saved by `tensors` (weights and statistics; the optimizer unless
   * `weightsOnly`).
   * @throws {CheckpointError} naming `dir` when a tensor is missing or of another shape.
   */
  loadTensors(dir: string, c: CheckpointContent<unknown>, weightsOnly = false): void {
    for (const [net, name] of [
      [this.actor, 'actor'],
      [this.critic, 'critic'],
    ] as const)
      net.weights.forEach((w, j) =>
        w.set(checkpointTensor(dir, c, `${name}.${net.names[j]}`, Float32Array, w.length)),
      );
    this.logStd.set(checkpointTensor(dir, c, 'logStd', Float32Array, 1));
    for (const p of this.extraParams)
      p.write(checkpointTensor(dir, c, `extra.${p.name}`, Float32Array, p.size).slice());
    if (this.observationStats !== null) this.observationStats.load(c.tensors, 'obs', dir);
    if (!weightsOnly) this.optimizer.loadStateTensors(dir, c, 'optimizer');
  }

  /** The description saved beside the weights (to rebuild the agent). */
  describe(): PpoAgentDescription {
    return {
      stateDim: this.stateDim,
      actionDim: this.actionDim,
      hiddenDim: this.hiddenDim,
      learningRate: this.learningRate,
      hyperparameters: { ...this.hyperparameters },
    };
  }

  /** Saves the agent (weights, statistics, description; no optimizer) into `dir`. */
  save(dir: string, extra: Record<string, unknown> = {}): void {
    writeInferenceCheckpoint(dir, {
      kind: PPO_AGENT_KIND,
      settings: this.describe(),
      counters: {},
      state: extra,
      tensors: this.tensors(),
    });
  }

  /**
   * Loads an agent saved with `save`; `extraGroups` are the groups it was trained with (a transfer
   * agent's encoder), whose saved weights are written back into them.
   * @throws {CheckpointError} when `dir` holds no saved PPO agent.
   */
  static load(
    dir: string,
    extraGroups: readonly ParameterGroup[] = [],
  ): { agent: PPOAgent; extra: Record<string, unknown> } {
    const c = readCheckpoint<Record<string, unknown>>(dir, { kind: PPO_AGENT_KIND });
    if (c === null) throw new CheckpointError(dir, 'no saved PPO agent here (no checkpoint.json)');
    const d = c.settings as PpoAgentDescription;
    const agent = new PPOAgent(d.stateDim, d.actionDim, d.hiddenDim, d.learningRate, {
      ...d.hyperparameters,
      extraGroups,
    });
    agent.loadTensors(dir, c, true);
    return { agent, extra: c.state };
  }

  /**
   * Trains on a vectorised env for `totalTimesteps` env steps (see `learnPpo`).
   * @throws {RangeError} when the env's spaces do not match the agent.
   * @throws {CheckpointError} when resuming from a checkpoint of other settings.
   */
  learn<I extends object>(options: PpoLearnOptions<I>): PpoLearnResult {
    return learnPpo(this, options);
  }
}

/** 1 − Var(returns − values) / Var(returns) (NaN when the returns do not vary). */
function explainedVarianceOf(values: Float32Array, returns: Float32Array, n: number): number {
  let mr = 0;
  let md = 0;
  for (let k = 0; k < n; k++) {
    mr += returns[k];
    md += returns[k] - values[k];
  }
  mr /= n;
  md /= n;
  let vr = 0;
  let vd = 0;
  for (let k = 0; k < n; k++) {
    vr += (returns[k] - mr) ** 2;
    vd += (returns[k] - values[k] - md) ** 2;
  }
  return vr === 0 ? NaN : 1 - vd / vr;
}

/** The rollout buffer of one update: T steps of N envs, step-major, preallocated once. */
export class Rollout {
  /** Normalised observations [T·N, D] (what the policy saw). */
  readonly obs: Float32Array;
  /** Discrete indices or pre-tanh continuous samples [T·N]. */
  readonly actions: Float32Array;
  /** Log-probabilities when acting [T·N]. */
  readonly logProbs: Float32Array;
  /** Critic values when acting [T·N]. */
  readonly values: Float32Array;
  /** Rewards (scaled when reward scaling is on) [T·N]. */
  readonly rewards: Float32Array;
  /** 1 where the step ended its episode [T·N]. */
  readonly ended: Uint8Array;
  /** V(final observation) for truncated steps, else 0 [T·N]. */
  readonly bootstrap: Float32Array;
  /** Action masks [T·N, A] (discrete with masks). */
  readonly masks: Uint8Array;
  /** GAE advantages [T·N]. */
  readonly advantages: Float32Array;
  /** Advantages + values [T·N]. */
  readonly returns: Float32Array;
  /** Flags per mask row (0 = no masks). */
  readonly maskSize: number;
  /**
   * Compact observation records [T·N, recordSize] (the envs' codec), kept when an update must
   * rebuild its inputs (a trainable encoder); empty otherwise. Env of sample k: k mod N.
   */
  readonly records: Float32Array;

  constructor(
    readonly steps: number,
    readonly envs: number,
    dim: number,
    maskSize: number,
    readonly recordSize = 0,
  ) {
    const M = steps * envs;
    this.obs = new Float32Array(M * dim);
    this.actions = new Float32Array(M);
    this.logProbs = new Float32Array(M);
    this.values = new Float32Array(M);
    this.rewards = new Float32Array(M);
    this.ended = new Uint8Array(M);
    this.bootstrap = new Float32Array(M);
    this.maskSize = maskSize;
    this.masks = new Uint8Array(M * maskSize).fill(1);
    this.advantages = new Float32Array(M);
    this.returns = new Float32Array(M);
    this.records = new Float32Array(M * recordSize);
  }
}

// ---------------------------------------------------------------------------------------------
// The training loop

/** Options of `PPOAgent.learn`. */
export interface PpoLearnOptions<I extends object> {
  /** The vectorised env (Discrete(actionDim) or Box[-1, 1] of one target). */
  env: VecEnv<I>;
  /** Env steps to train for (all envs together); rounded up to whole rollouts. */
  totalTimesteps: number;
  /** Seed of the envs' first reset (env i gets seed + i). Default the agent's seed stream. */
  envSeed?: number;
  /** Receives one history line per update. */
  onLog?: (line: Record<string, number | null>) => void;
  /** Progress bar (env steps; status shows episode return, losses, KL). */
  progress?: Progress | null;
  /** Checkpoints every `everyUpdates` updates and at the end (resumable bit for bit). */
  checkpoint?: { dir: string; everyUpdates: number; settings: unknown } | null;
  /** Continue from the checkpoint in `checkpoint.dir` when there is one. */
  resume?: boolean;
  /** Called when a resume rewrote the history: the lines confirmed by the checkpoint. */
  onResume?: (history: ReadonlyArray<Record<string, number | null>>, step: number) => void;
  /** Called after every update (e.g. to unfreeze an encoder or evaluate). */
  onUpdate?: (update: number, step: number, stats: PpoUpdateStats) => void;
  /**
   * Input hooks of the next update (asked before each update; null = the stored inputs). When
   * given, the rollout keeps the envs' observation records for them.
   */
  inputHooks?: (update: number) => PpoInputHooks | null;
}

/** What `learn` returns. */
export interface PpoLearnResult {
  /** Env steps taken. */
  steps: number;
  /** Updates run. */
  updates: number;
  /** Episodes finished. */
  episodes: number;
  /** Mean return of the last (up to) 100 finished episodes; NaN when none finished. */
  meanEpisodeReturn: number;
  /** The env step a resume started from, or null. */
  resumedFromStep: number | null;
  /** Statistics of the last update. */
  last: PpoUpdateStats | null;
}

interface PpoLearnState {
  step: number;
  update: number;
  episodes: number;
  episodeReturns: number[];
  recentReturns: number[];
  history: Record<string, number | null>[];
  envs: EnvSnapshot[];
}

/**
 * Trains `agent` on `env` (the CleanRL loop): rollouts of `nSteps` per env with actions sampled
 * from the policy, observation statistics updated from every observation, truncations
 * bootstrapped with V(final observation), then one update per rollout; with `checkpoint`,
 * resumable bit for bit at update boundaries.
 * @throws {RangeError} when the env's spaces do not match the agent.
 * @throws {CheckpointError} when resuming from a checkpoint of other settings.
 */
export function learnPpo<I extends object>(agent: PPOAgent, o: PpoLearnOptions<I>): PpoLearnResult {
  const h = agent.hyperparameters;
  const vec = o.env;
  const N = vec.numEnvs;
  const D = agent.stateDim;
  const A = agent.actionDim;
  if (agent.discrete) {
    if (!(vec.actionSpace instanceof Discrete) || vec.actionSpace.n !== A)
      throw new RangeError(`a discrete PPO with ${A} actions needs a Discrete(${A}) env`);
  } else if (!(vec.actionSpace instanceof Box) || vec.actionSpace.size !== 1)
    throw new RangeError('a continuous PPO needs a Box env of one target');
  if (vec.observationSize !== D)
    throw new RangeError(
      `PPO reads ${D} floats per observation, the env gives ${vec.observationSize}`,
    );
  validatePpoHyperparameters(h, N);
  const T = h.nSteps;
  const updates = Math.ceil(o.totalTimesteps / (T * N));
  const total = updates * T * N;
  const maskSize = agent.discrete && vec.actionMasks() !== null ? A : 0;
  const recorder = o.inputHooks !== undefined ? new ObservationRecorder(vec) : null;
  const R = recorder?.size ?? 0;
  const roll = new Rollout(T, N, D, maskSize, R);
  const scaler = h.normalizeRewards ? new RewardScaler(N, h.gamma) : null;
  const xNorm = new Float32Array(N * D);
  const finalNorm = new Float32Array(D);
  const actions = new Float32Array(N);
  const logProbs = new Float32Array(N);
  const envActions = new Float32Array(N);
  const rewards = new Float32Array(N);
  const lastValues = new Float32Array(N);
  let state: PpoLearnState = {
    step: 0,
    update: 0,
    episodes: 0,
    episodeReturns: new Array<number>(N).fill(0),
    recentReturns: [],
    history: [],
    envs: [],
  };
  let resumedFromStep: number | null = null;
  const ck = o.checkpoint ?? null;
  const restored =
    o.resume === true && ck !== null
      ? readCheckpoint<PpoLearnState>(ck.dir, { kind: PPO_TRAINING_KIND, settings: ck.settings })
      : null;
  if (restored !== null && ck !== null) {
    state = restored.state;
    agent.loadTensors(ck.dir, restored);
    agent.rng.setState(restored.rng.agent);
    if (scaler !== null) scaler.load(restored.tensors, 'rewardScaler', ck.dir);
    vec.restore(state.envs);
    resumedFromStep = state.step;
    o.onResume?.(state.history, state.step);
  } else vec.reset(o.envSeed ?? agent.rng.fork('env-reset').nextU32());
  // The current observation's record per env (kept only when input hooks need it).
  const cur = new Float32Array(N * R);
  if (recorder !== null) for (let i = 0; i < N; i++) recorder.encodeCurrent(i, cur, i * R);
  const save = (): void => {
    if (ck === null) return;
    state.envs = vec.snapshot();
    const tensors = agent.tensors();
    if (scaler !== null) for (const [k, v] of scaler.tensors('rewardScaler')) tensors.set(k, v);
    writeCheckpoint(ck.dir, {
      kind: PPO_TRAINING_KIND,
      settings: ck.settings,
      counters: { step: state.step, update: state.update },
      rng: { agent: agent.rng.getState() },
      state,
      tensors,
    });
  };
  const progress = o.progress ?? null;
  progress?.setTotal(total);
  progress?.update(state.step);
  let last: PpoUpdateStats | null = null;
  while (state.update < updates) {
    // #4: learning-rate annealing, linear to 0 over the updates.
    if (h.annealLearningRate)
      agent.optimizer.setLearningRate(agent.learningRate * (1 - state.update / updates));
    let finished = 0;
    let finishedSum = 0;
    for (let t = 0; t < T; t++) {
      const obs = vec.observations;
      agent.observationStats?.update(obs, N);
      agent.normalize(obs, N, xNorm);
      roll.obs.set(xNorm, t * N * D);
      if (recorder !== null)
        for (let i = 0; i < N; i++)
          roll.records.set(cur.subarray(i * R, (i + 1) * R), (t * N + i) * R);
      const masks = maskSize > 0 ? vec.actionMasks() : null;
      if (masks !== null) roll.masks.set(masks, t * N * maskSize);
      agent.sampleNormalized(xNorm, N, masks, actions, logProbs);
      const v = agent.critic.forward(xNorm, N, agent.wsCritic);
      for (let i = 0; i < N; i++) {
        const k = t * N + i;
        roll.actions[k] = actions[i];
        roll.logProbs[k] = logProbs[i];
        roll.values[k] = v[i];
        envActions[i] = agent.discrete ? actions[i] : Math.tanh(actions[i]);
      }
      const r = vec.step(envActions);
      if (recorder !== null)
        for (let i = 0; i < N; i++)
          if (r.dones[i] === 1) recorder.encodeReset(i, cur, i * R);
          else recorder.encodeStep(i, r, cur, i * R);
      for (let i = 0; i < N; i++) rewards[i] = r.rewards[i];
      scaler?.scale(rewards, r.dones, h.rewardClip);
      for (let i = 0; i < N; i++) {
        const k = t * N + i;
        roll.rewards[k] = rewards[i];
        roll.ended[k] = r.dones[i];
        roll.bootstrap[k] = 0;
        state.episodeReturns[i] += r.rewards[i];
        if (r.dones[i] === 1) {
          // Truncation bootstraps from V(final observation) (SB3's timeout handling).
          if (r.truncated[i] === 1 && r.terminated[i] === 0) {
            agent.normalize(r.finalObservations[i], 1, finalNorm);
            roll.bootstrap[k] = agent.critic.forward(finalNorm, 1, agent.wsCritic)[0];
          }
          state.episodes++;
          finished++;
          finishedSum += state.episodeReturns[i];
          state.recentReturns.push(state.episodeReturns[i]);
          if (state.recentReturns.length > 100) state.recentReturns.shift();
          state.episodeReturns[i] = 0;
        }
      }
      state.step += N;
      progress?.update(state.step);
    }
    agent.normalize(vec.observations, N, xNorm);
    lastValues.set(agent.critic.forward(xNorm, N, agent.wsCritic).subarray(0, N));
    last = agent.update(roll, lastValues, o.inputHooks?.(state.update) ?? null);
    state.update++;
    const line = {
      step: state.step,
      update: state.update,
      episodeReturn: finished > 0 ? finishedSum / finished : null,
      episodes: state.episodes,
      policyLoss: last.policyLoss,
      valueLoss: last.valueLoss,
      entropy: last.entropy,
      approxKl: last.approxKl,
      clipFraction: last.clipFraction,
      explainedVariance: Number.isNaN(last.explainedVariance) ? null : last.explainedVariance,
      learningRate: agent.optimizer.learningRate(),
      epochs: last.epochs,
    };
    state.history.push(line);
    o.onLog?.(line);
    progress?.status(
      `ep.return ${line.episodeReturn === null ? '-' : line.episodeReturn.toFixed(4)} pg ${last.policyLoss.toExponential(2)} v ${last.valueLoss.toExponential(2)} kl ${last.approxKl.toExponential(1)}`,
    );
    o.onUpdate?.(state.update, state.step, last);
    if (ck !== null && state.update % ck.everyUpdates === 0) save();
  }
  if (ck !== null && state.update % ck.everyUpdates !== 0) save();
  progress?.stop();
  const recent = state.recentReturns;
  return {
    steps: state.step,
    updates: state.update,
    episodes: state.episodes,
    meanEpisodeReturn: recent.length > 0 ? recent.reduce((a, b) => a + b, 0) / recent.length : NaN,
    resumedFromStep,
    last,
  };
}
