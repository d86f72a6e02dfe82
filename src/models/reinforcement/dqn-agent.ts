// DQN (the spec's dqn_agent.py), readable top to bottom like CleanRL's single-file DQN, with the
// improvements that mattered most in the Rainbow ablation switchable and on by default:
//   - experience replay in preallocated typed arrays (buffers.ts), observations kept as compact
//     records the env rebuilds at sampling time (a trading-env observation is 5 floats, not 5,000);
//   - a target network, synced hard every `targetUpdateInterval` env steps or by Polyak τ;
//   - linear ε-greedy exploration, restricted to the env's allowed actions (action masks);
//   - n-step returns (stopping at episode ends; a terminated transition never bootstraps, a
//     truncated one bootstraps from its final observation);
//   - prioritised replay (proportional, α 0.6, β annealed to 1, importance weights);
//   - Double DQN (the online net picks the next action, the target net values it);
//   - a dueling head (Q = V + A − mean A);
//   - Huber loss, Adam, global grad-norm clipping, learning starts, train frequency, gradient steps.
// Observation normalisation (running mean/std) lives inside the agent and is saved with it, so a
// backtest or the live loop feeds raw observations. Networks are the typed-array MLPs of
// models/common (mlp.ts). Defaults follow Stable-Baselines3's DQN where the spec and issue are silent.
// Never reads the environment's internals: only observations, rewards, flags, infos and masks.

import { CheckpointError, ConfigError } from '../../errors.js';
import { Rng } from '../../utils/random.js';
import type { Config } from '../../utils/config.js';
import {
  checkpointTensor,
  readCheckpoint,
  writeCheckpoint,
  writeInferenceCheckpoint,
  type CheckpointContent,
  type CheckpointTensor,
} from '../common/checkpoint.js';
import { Mlp, type MlpSpec, type MlpWorkspace } from '../common/mlp.js';
import { RunningMeanStd } from '../common/normalization.js';
import { Adam } from '../common/optimizer.js';
import { linearSchedule } from '../common/schedules.js';
import {
  NStepAccumulator,
  ObservationRecorder,
  ReplayBuffer,
  type TransitionSink,
} from './buffers.js';
import { Discrete, type EnvSnapshot } from './spaces.js';
import type { VecEnv } from './vec-env.js';
import type { Progress } from '../../utils/progress.js';

/** The `dqn` config section: every hyperparameter of DQN, named once. */
export type DqnConfig = Config['dqn'];

/** Hyperparameters of a `DQNAgent` (the `dqn` config section without the run-level keys). */
export interface DqnHyperparameters {
  /** Transitions the replay buffer keeps (SB3: 1,000,000). */
  bufferSize: number;
  /** Env steps of random actions before learning starts (SB3: 100). */
  learningStarts: number;
  /** Transitions per gradient step (SB3: 32). */
  batchSize: number;
  /** Target update coefficient: 1 = hard copy every `targetUpdateInterval` steps (SB3: 1). */
  tau: number;
  /** Discount factor in (0, 1] (SB3: 0.99). */
  gamma: number;
  /** Env steps between gradient updates (SB3: 4). */
  trainFrequency: number;
  /** Gradient steps per update (SB3: 1). */
  gradientSteps: number;
  /** Env steps between target-network updates (SB3: 10,000). */
  targetUpdateInterval: number;
  /** Fraction of training over which ε falls linearly (SB3: 0.1). */
  explorationFraction: number;
  /** ε at the start (SB3: 1). */
  explorationInitialEps: number;
  /** ε after the exploration fraction (SB3: 0.05). */
  explorationFinalEps: number;
  /** Global gradient-norm clip (SB3: 10). */
  maxGradNorm: number;
  /** Steps summed per transition (1 = plain one-step TD). */
  nSteps: number;
  /** Prioritised replay. */
  prioritizedReplay: boolean;
  /** Priority exponent α. */
  priorityAlpha: number;
  /** Importance-sampling exponent β at the start (annealed linearly to 1 by the end). */
  priorityBetaStart: number;
  /** Added to |TD error| to form a priority. */
  priorityEpsilon: number;
  /** Double DQN targets. */
  doubleQ: boolean;
  /** Dueling head. */
  dueling: boolean;
  /** Hidden layers of the Q-network (each `hiddenDim` wide). */
  hiddenLayers: number;
  /** Hidden activation. */
  activation: 'relu' | 'tanh';
  /** Keep a running mean/std of observations and feed the network normalised inputs. */
  normalizeObservations: boolean;
  /** Clip of the normalised observations (SB3's VecNormalize: 10). */
  observationClip: number;
  /** Adam's epsilon. */
  adamEpsilon: number;
  /**
   * Rewards are multiplied by this before they are stored (Q-values are in scaled units; the greedy
   * action is unchanged). Per-bar log returns are ~1e-3: at that scale Adam's steps swamp the
   * differences between actions, so trading envs want ~100.
   */
  rewardScale: number;
}

/** Stable-Baselines3's DQN defaults, plus the Rainbow components (on). */
export const DQN_DEFAULTS: Readonly<DqnHyperparameters> = Object.freeze({
  bufferSize: 1_000_000,
  learningStarts: 100,
  batchSize: 32,
  tau: 1,
  gamma: 0.99,
  trainFrequency: 4,
  gradientSteps: 1,
  targetUpdateInterval: 10_000,
  explorationFraction: 0.1,
  explorationInitialEps: 1,
  explorationFinalEps: 0.05,
  maxGradNorm: 10,
  nSteps: 3,
  prioritizedReplay: true,
  priorityAlpha: 0.6,
  priorityBetaStart: 0.4,
  priorityEpsilon: 1e-6,
  doubleQ: true,
  dueling: true,
  hiddenLayers: 2,
  activation: 'relu',
  normalizeObservations: true,
  observationClip: 10,
  adamEpsilon: 1e-8,
  rewardScale: 100,
});

/** The hyperparameters of config section `dqn`. */
export function dqnHyperparameters(section: DqnConfig): DqnHyperparameters {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(DQN_DEFAULTS)) out[k] = (section as Record<string, unknown>)[k];
  return out as unknown as DqnHyperparameters;
}

/**
 * Checks hyperparameters that cannot work together, before anything is built.
 * @throws {ConfigError} naming the `dqn.<key>` at fault.
 */
export function validateDqnHyperparameters(h: DqnHyperparameters): void {
  const bad = (key: keyof DqnHyperparameters, why: string): never => {
    throw new ConfigError(`dqn.${key}`, why);
  };
  if (!(h.gamma > 0 && h.gamma <= 1)) bad('gamma', `must be in (0, 1], got ${h.gamma}`);
  if (!(h.tau > 0 && h.tau <= 1)) bad('tau', `must be in (0, 1], got ${h.tau}`);
  if (h.bufferSize < h.batchSize)
    bad('bufferSize', `${h.bufferSize} is smaller than one batch (dqn.batchSize ${h.batchSize})`);
  if (h.learningStarts < 0) bad('learningStarts', 'must be >= 0');
  if (!(h.explorationFraction > 0 && h.explorationFraction <= 1))
    bad('explorationFraction', `must be in (0, 1], got ${h.explorationFraction}`);
  for (const k of ['explorationInitialEps', 'explorationFinalEps'] as const)
    if (!(h[k] >= 0 && h[k] <= 1)) bad(k, `must be in [0, 1], got ${h[k]}`);
  if (!(h.priorityAlpha >= 0 && h.priorityAlpha <= 1))
    bad('priorityAlpha', `must be in [0, 1], got ${h.priorityAlpha}`);
  if (!(h.priorityBetaStart >= 0 && h.priorityBetaStart <= 1))
    bad('priorityBetaStart', `must be in [0, 1], got ${h.priorityBetaStart}`);
}

/** A batch for `DQNAgent.train` (the spec's `train(batch)`): raw observations, not normalised. */
export interface DqnBatch {
  /** Samples B. */
  size: number;
  /** Observations [B, stateDim]. */
  states: Float32Array;
  /** Action indices [B]. */
  actions: Int32Array;
  /** n-step discounted returns [B]. */
  returns: Float32Array;
  /** Bootstrap discounts γ^k, 0 after a termination [B]. */
  discounts: Float32Array;
  /** Next observations [B, stateDim] (the final observation for a truncated episode). */
  nextStates: Float32Array;
  /** Allowed actions in the next state [B, actionDim] (1 = allowed); null = all allowed. */
  nextMasks: Uint8Array | null;
  /** Importance-sampling weights [B]; null = all 1. */
  weights: Float32Array | null;
}

/** What one gradient step did. */
export interface DqnTrainResult {
  /** Weighted Huber loss. */
  loss: number;
  /** Mean Q(s, a) of the batch. */
  meanQ: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** TD errors Q(s, a) − target per sample (reused buffer: the new priorities come from them). */
  tdErrors: Float32Array;
}

/**
 * TD targets y = R + discount · Q_target(s', a*) with a* = argmax over allowed actions of
 * Q_online(s', ·) (Double DQN, when `qNextOnline` is given) or of Q_target(s', ·) (plain DQN).
 * A discount of 0 (terminated) makes y = R. Writes `out[b]`.
 */
export function tdTargets(
  qNextTarget: Float32Array,
  qNextOnline: Float32Array | null,
  returns: Float32Array,
  discounts: Float32Array,
  nextMasks: Uint8Array | null,
  actionDim: number,
  size: number,
  out: Float32Array,
): Float32Array {
  for (let b = 0; b < size; b++) {
    const d = discounts[b];
    if (d === 0) {
      out[b] = returns[b];
      continue;
    }
    const pick = qNextOnline ?? qNextTarget;
    let best = -1;
    let bestQ = -Infinity;
    for (let a = 0; a < actionDim; a++) {
      if (nextMasks !== null && nextMasks[b * actionDim + a] === 0) continue;
      const q = pick[b * actionDim + a];
      if (best < 0 || q > bestQ) {
        bestQ = q;
        best = a;
      }
    }
    out[b] = returns[b] + d * (best < 0 ? 0 : qNextTarget[b * actionDim + best]);
  }
  return out;
}

/** Index of the largest q among allowed actions (`mask` null = all allowed); ties go to the lowest. */
export function maskedArgmax(
  q: Float32Array,
  offset: number,
  n: number,
  mask: Uint8Array | null,
  maskOffset: number,
): number {
  let best = -1;
  let bestQ = -Infinity;
  for (let a = 0; a < n; a++) {
    if (mask !== null && mask[maskOffset + a] === 0) continue;
    const v = q[offset + a];
    if (best < 0 || v > bestQ) {
      bestQ = v;
      best = a;
    }
  }
  return best < 0 ? 0 : best;
}

/**
 * The Q-network: an MLP trunk and either one linear head (Q) or the dueling pair (V and A,
 * Q = V + A − mean A). `forward` returns Q [rows, actions] in the trunk workspace's scratch.
 */
class QNetwork {
  readonly trunk: Mlp;
  readonly value: Mlp | null;
  readonly advantage: Mlp | null;
  readonly actionDim: number;

  constructor(trunk: Mlp, value: Mlp | null, advantage: Mlp | null, actionDim: number) {
    this.trunk = trunk;
    this.value = value;
    this.advantage = advantage;
    this.actionDim = actionDim;
  }

  static create(
    stateDim: number,
    actionDim: number,
    hiddenDim: number,
    h: DqnHyperparameters,
    rng: Rng,
  ): QNetwork {
    const hidden = Array.from({ length: h.hiddenLayers }, () => hiddenDim);
    if (!h.dueling) {
      const spec: MlpSpec = { sizes: [stateDim, ...hidden, actionDim], activation: h.activation };
      return new QNetwork(Mlp.create(spec, rng), null, null, actionDim);
    }
    const trunk = Mlp.create(
      { sizes: [stateDim, ...hidden], activation: h.activation, outputActivation: h.activation },
      rng,
    );
    const value = Mlp.create({ sizes: [hiddenDim, 1], activation: h.activation }, rng);
    const advantage = Mlp.create({ sizes: [hiddenDim, actionDim], activation: h.activation }, rng);
    return new QNetwork(trunk, value, advantage, actionDim);
  }

  /** Every MLP, in parameter order. */
  get parts(): Mlp[] {
    return [this.trunk, ...(this.value === null ? [] : [this.value, this.advantage!])];
  }

  workspace(): QWorkspace {
    return {
      trunk: this.trunk.workspace(),
      value: this.value?.workspace() ?? null,
      advantage: this.advantage?.workspace() ?? null,
      q: new Float32Array(0),
      dValue: new Float32Array(0),
      dAdvantage: new Float32Array(0),
      dFromValue: new Float32Array(0),
      dFromAdvantage: new Float32Array(0),
    };
  }

  forward(x: Float32Array, rows: number, ws: QWorkspace): Float32Array {
    const h = this.trunk.forward(x, rows, ws.trunk);
    if (this.value === null || this.advantage === null) return h;
    const A = this.actionDim;
    const v = this.value.forward(h, rows, ws.value!);
    const adv = this.advantage.forward(h, rows, ws.advantage!);
    if (ws.q.length < rows * A) ws.q = new Float32Array(rows * A * 2);
    const q = ws.q;
    for (let b = 0; b < rows; b++) {
      let mean = 0;
      for (let a = 0; a < A; a++) mean += adv[b * A + a];
      mean /= A;
      for (let a = 0; a < A; a++) q[b * A + a] = v[b] + adv[b * A + a] - mean;
    }
    return q.subarray(0, rows * A);
  }

  /** Backward of the last forward on `ws` for dL/dQ, into `grads` (parameter order). */
  backward(ws: QWorkspace, dQ: Float32Array, rows: number, grads: Float32Array[]): void {
    const nT = this.trunk.weights.length;
    const trunkGrads = grads.slice(0, nT);
    if (this.value === null || this.advantage === null) {
      this.trunk.backward(ws.trunk, dQ, trunkGrads);
      return;
    }
    const A = this.actionDim;
    const H = this.trunk.outputSize;
    if (ws.dValue.length < rows) {
      ws.dValue = new Float32Array(rows);
      ws.dAdvantage = new Float32Array(rows * A);
      ws.dFromValue = new Float32Array(rows * H);
      ws.dFromAdvantage = new Float32Array(rows * H);
    }
    // Q_a = V + A_a − mean(A): dV = Σ_a dQ_a, dA_a = dQ_a − mean_a dQ.
    for (let b = 0; b < rows; b++) {
      let s = 0;
      for (let a = 0; a < A; a++) s += dQ[b * A + a];
      ws.dValue[b] = s;
      for (let a = 0; a < A; a++) ws.dAdvantage[b * A + a] = dQ[b * A + a] - s / A;
    }
    const nV = this.value.weights.length;
    this.value.backward(ws.value!, ws.dValue, grads.slice(nT, nT + nV), ws.dFromValue);
    this.advantage.backward(ws.advantage!, ws.dAdvantage, grads.slice(nT + nV), ws.dFromAdvantage);
    // Both heads read the trunk's output: their input gradients add up.
    const d = ws.dFromValue;
    for (let i = 0; i < rows * H; i++) d[i] += ws.dFromAdvantage[i];
    this.trunk.backward(ws.trunk, d, trunkGrads);
  }
}

interface QWorkspace {
  trunk: MlpWorkspace;
  value: MlpWorkspace | null;
  advantage: MlpWorkspace | null;
  /** Q of the dueling combination. */
  q: Float32Array;
  dValue: Float32Array;
  dAdvantage: Float32Array;
  dFromValue: Float32Array;
  dFromAdvantage: Float32Array;
}

/** Options of `DQNAgent` beyond the spec's positional arguments. */
export interface DqnAgentOptions extends Partial<DqnHyperparameters> {
  /** Seed of the weights, exploration and replay sampling. Default 0. */
  seed?: number;
}

/**
 * The DQN agent. `selectAction` and `train` are the spec's; `learn` (agent-training.ts) runs the
 * whole loop on a vectorised env.
 * @example
 * const agent = new DQNAgent(obsSize, 3, 64, 1e-4, { seed: 1 });
 * const a = agent.selectAction(obs, 0.05);
 */
export class DQNAgent {
  /** Observation floats. */
  readonly stateDim: number;
  /** Discrete actions. */
  readonly actionDim: number;
  /** Width of each hidden layer. */
  readonly hiddenDim: number;
  /** Adam's learning rate. */
  readonly learningRate: number;
  /** Hyperparameters in force. */
  readonly hyperparameters: Readonly<DqnHyperparameters>;
  /** Online network. */
  readonly online: QNetwork;
  /** Target network. */
  readonly target: QNetwork;
  /** The optimizer of the online network. */
  readonly optimizer: Adam;
  /** Running observation statistics (null when normalisation is off). */
  readonly observationStats: RunningMeanStd | null;
  /** Exploration and sampling stream. */
  readonly rng: Rng;
  /** Gradient steps taken. */
  gradientSteps = 0;
  private readonly grads: Float32Array[];
  private readonly wsOnline: QWorkspace;
  private readonly wsNextOnline: QWorkspace;
  private readonly wsTarget: QWorkspace;
  private readonly wsAct: QWorkspace;
  private norm = new Float32Array(0);
  private normNext = new Float32Array(0);
  private targets = new Float32Array(0);
  private dQ = new Float32Array(0);
  private td = new Float32Array(0);
  private readonly one = new Int32Array(1);

  /**
   * The spec's `DQNAgent(state_dim, action_dim, hidden_dim, learning_rate=0.001)`.
   * @throws {ConfigError} on hyperparameters that cannot work (naming the `dqn.*` key).
   */
  constructor(
    stateDim: number,
    actionDim: number,
    hiddenDim: number,
    learningRate = 0.001,
    options: DqnAgentOptions = {},
  ) {
    const { seed, ...over } = options;
    const h: DqnHyperparameters = { ...DQN_DEFAULTS, ...over };
    validateDqnHyperparameters(h);
    if (!(
      Number.isInteger(stateDim) &&
      stateDim > 0 &&
      Number.isInteger(actionDim) &&
      actionDim > 1
    ))
      throw new RangeError(
        `DQNAgent: stateDim ${stateDim} and actionDim ${actionDim} must be whole numbers (actionDim >= 2)`,
      );
    this.stateDim = stateDim;
    this.actionDim = actionDim;
    this.hiddenDim = hiddenDim;
    this.learningRate = learningRate;
    this.hyperparameters = Object.freeze(h);
    this.rng = new Rng(seed ?? 0);
    const init = this.rng.fork('dqn-init');
    this.online = QNetwork.create(stateDim, actionDim, hiddenDim, h, init);
    this.target = QNetwork.create(stateDim, actionDim, hiddenDim, h, init);
    this.syncTarget(1);
    this.optimizer = new Adam(
      [
        {
          name: 'q',
          params: this.online.parts.flatMap((m, k) => m.parameters(`q${k}`)),
          learningRate,
        },
      ],
      { clipNorm: h.maxGradNorm, epsilon: h.adamEpsilon },
    );
    this.grads = this.online.parts.flatMap((m) => m.gradientBuffers());
    this.observationStats = h.normalizeObservations ? new RunningMeanStd(stateDim) : null;
    this.wsOnline = this.online.workspace();
    this.wsNextOnline = this.online.workspace();
    this.wsTarget = this.target.workspace();
    this.wsAct = this.online.workspace();
  }

  /** Copies (τ = 1) or moves (τ < 1) the target network towards the online one. */
  syncTarget(tau = this.hyperparameters.tau): void {
    const src = this.online.parts;
    this.target.parts.forEach((m, k) =>
      tau >= 1 ? m.copyFrom(src[k]) : m.polyakFrom(src[k], tau),
    );
  }

  /** ε at `progress` (fraction of training done) of the linear schedule. */
  epsilonAt(progress: number): number {
    const h = this.hyperparameters;
    return linearSchedule(
      h.explorationInitialEps,
      h.explorationFinalEps,
      progress / h.explorationFraction,
    );
  }

  /** Normalised copies of `rows` raw observations (the agent's own statistics; frozen here). */
  normalize(x: Float32Array, rows: number, out: Float32Array): Float32Array {
    if (this.observationStats === null) {
      out.set(x.subarray(0, rows * this.stateDim));
      return out;
    }
    return this.observationStats.normalize(x, rows, out, this.hyperparameters.observationClip);
  }

  private normalized(x: Float32Array, rows: number, which: 'a' | 'b'): Float32Array {
    const need = rows * this.stateDim;
    if (which === 'a') {
      if (this.norm.length < need) this.norm = new Float32Array(need);
      return this.normalize(x, rows, this.norm);
    }
    if (this.normNext.length < need) this.normNext = new Float32Array(need);
    return this.normalize(x, rows, this.normNext);
  }

  /** Q-values [rows, actionDim] of raw observations (reused buffer). */
  qValues(states: Float32Array, rows: number): Float32Array {
    return this.online.forward(this.normalized(states, rows, 'a'), rows, this.wsAct);
  }

  /**
   * The spec's `select_action(state, epsilon)`: with probability ε a uniformly random allowed
   * action, else the greedy one. `mask` (actionDim flags, 1 = allowed) restricts both.
   */
  selectAction(state: Float32Array, epsilon: number, mask: Uint8Array | null = null): number {
    this.selectActions(state, 1, epsilon, mask, this.one);
    return this.one[0];
  }

  /** ε-greedy actions for `rows` observations into `out` (masks [rows, actionDim] or null). */
  selectActions(
    states: Float32Array,
    rows: number,
    epsilon: number,
    masks: Uint8Array | null,
    out: Int32Array,
  ): void {
    const A = this.actionDim;
    let q: Float32Array | null = null;
    for (let i = 0; i < rows; i++) {
      if (epsilon > 0 && this.rng.next() < epsilon) {
        let allowed = 0;
        for (let a = 0; a < A; a++) if (masks === null || masks[i * A + a] === 1) allowed++;
        let k = this.rng.int(Math.max(1, allowed));
        let pick = 0;
        for (let a = 0; a < A; a++)
          if (masks === null || masks[i * A + a] === 1) {
            if (k === 0) {
              pick = a;
              break;
            }
            k--;
          }
        out[i] = pick;
        continue;
      }
      // Greedy: one batched forward pass for all rows, computed once when first needed.
      q ??= this.qValues(states, rows);
      out[i] = maskedArgmax(q, i * A, A, masks, i * A);
    }
  }

  /**
   * The spec's `train(batch)`: one gradient step on a batch of (n-step) transitions: TD targets
   * from the target network (Double DQN: actions picked by the online net), importance-weighted
   * Huber loss on Q(s, a), Adam with global-norm clipping.
   */
  train(batch: DqnBatch): DqnTrainResult {
    const B = batch.size;
    const A = this.actionDim;
    const h = this.hyperparameters;
    if (this.targets.length < B) {
      this.targets = new Float32Array(B);
      this.dQ = new Float32Array(B * A);
      this.td = new Float32Array(B);
    }
    // Targets: no gradient flows through them.
    const next = this.normalized(batch.nextStates, B, 'b');
    const qNextTarget = this.target.forward(next, B, this.wsTarget);
    const qNextOnline = h.doubleQ ? this.online.forward(next, B, this.wsNextOnline) : null;
    tdTargets(
      qNextTarget,
      qNextOnline,
      batch.returns,
      batch.discounts,
      batch.nextMasks,
      A,
      B,
      this.targets,
    );
    // Online Q(s, a), Huber loss weighted by the importance weights, dL/dQ.
    const q = this.online.forward(this.normalized(batch.states, B, 'a'), B, this.wsOnline);
    const dQ = this.dQ;
    dQ.fill(0, 0, B * A);
    let loss = 0;
    let meanQ = 0;
    for (let b = 0; b < B; b++) {
      const qa = q[b * A + batch.actions[b]];
      const e = qa - this.targets[b];
      const w = batch.weights === null ? 1 : batch.weights[b];
      const ae = Math.abs(e);
      loss += w * (ae < 1 ? 0.5 * e * e : ae - 0.5);
      dQ[b * A + batch.actions[b]] = (w * (e > 1 ? 1 : e < -1 ? -1 : e)) / B;
      this.td[b] = e;
      meanQ += qa;
    }
    this.online.backward(this.wsOnline, dQ, B, this.grads);
    const gradNorm = this.optimizer.apply(this.grads);
    this.gradientSteps++;
    return { loss: loss / B, meanQ: meanQ / B, gradNorm, tdErrors: this.td.subarray(0, B) };
  }

  /**
   * Trains on a vectorised env for `totalTimesteps` env steps (see `learnDqn`).
   * @throws {ConfigError} when the replay buffer would not fit in memory (naming dqn.bufferSize).
   * @throws {RangeError} when the env's spaces do not match the agent.
   * @throws {CheckpointError} when resuming from a checkpoint of other settings.
   */
  learn<I extends object>(options: DqnLearnOptions<I>): DqnLearnResult {
    return learnDqn(this, options);
  }

  /** Weights, optimizer and statistics as checkpoint tensors. */
  tensors(): Map<string, CheckpointTensor> {
    const m = new Map<string, CheckpointTensor>();
    this.online.parts.forEach((p, k) =>
      p.weights.forEach((w, j) => m.set(`online.${k}.${p.names[j]}`, w)),
    );
    this.target.parts.forEach((p, k) =>
      p.weights.forEach((w, j) => m.set(`target.${k}.${p.names[j]}`, w)),
    );
    for (const [k, v] of this.optimizer.stateTensors('optimizer')) m.set(k, v);
    if (this.observationStats !== null)
      for (const [k, v] of this.observationStats.tensors('obs')) m.set(k, v);
    m.set('agent.gradientSteps', Float64Array.of(this.gradientSteps));
    return m;
  }

  /**
   * Restores the state saved by `tensors` (weights; optimizer unless `weightsOnly`).
   * @throws {CheckpointError} naming `dir` when a tensor is missing or of another shape.
   */
  loadTensors(dir: string, c: CheckpointContent<unknown>, weightsOnly = false): void {
    for (const [net, name] of [
      [this.online, 'online'],
      [this.target, 'target'],
    ] as const)
      net.parts.forEach((p, k) =>
        p.weights.forEach((w, j) =>
          w.set(checkpointTensor(dir, c, `${name}.${k}.${p.names[j]}`, Float32Array, w.length)),
        ),
      );
    if (this.observationStats !== null) this.observationStats.load(c.tensors, 'obs', dir);
    if (weightsOnly) return;
    this.optimizer.loadStateTensors(dir, c, 'optimizer');
    this.gradientSteps = checkpointTensor(dir, c, 'agent.gradientSteps', Float64Array, 1)[0];
  }

  /** Creates the replay buffer of these hyperparameters for records of `recordSize` floats. */
  createReplayBuffer(recordSize: number): ReplayBuffer {
    const h = this.hyperparameters;
    return new ReplayBuffer({
      capacity: h.bufferSize,
      recordSize,
      maskSize: this.actionDim,
      prioritized: h.prioritizedReplay,
      alpha: h.priorityAlpha,
    });
  }

  /** The description saved beside the weights (to rebuild the agent). */
  describe(): AgentDescription {
    return {
      stateDim: this.stateDim,
      actionDim: this.actionDim,
      hiddenDim: this.hiddenDim,
      learningRate: this.learningRate,
      hyperparameters: { ...this.hyperparameters },
    };
  }

  /**
   * Saves the agent (weights, statistics, description; no optimizer) into `dir` in the checkpoint
   * format (kind `dqn-agent`).
   */
  save(dir: string, extra: Record<string, unknown> = {}): void {
    writeInferenceCheckpoint(dir, {
      kind: DQN_AGENT_KIND,
      settings: this.describe(),
      counters: { gradientSteps: this.gradientSteps },
      state: extra,
      tensors: this.tensors(),
    });
  }

  /**
   * Loads an agent saved with `save`.
   * @throws {CheckpointError} when `dir` holds no saved DQN agent.
   */
  static load(dir: string): { agent: DQNAgent; extra: Record<string, unknown> } {
    const c = readCheckpoint<Record<string, unknown>>(dir, { kind: DQN_AGENT_KIND });
    if (c === null) throw new CheckpointError(dir, 'no saved DQN agent here (no checkpoint.json)');
    const d = c.settings as AgentDescription;
    const agent = new DQNAgent(
      d.stateDim,
      d.actionDim,
      d.hiddenDim,
      d.learningRate,
      d.hyperparameters,
    );
    agent.loadTensors(dir, c, true);
    return { agent, extra: c.state };
  }
}

/** Kind tag of a saved DQN agent. */
export const DQN_AGENT_KIND = 'dqn-agent';

/** What is saved to rebuild an agent. */
export interface AgentDescription {
  stateDim: number;
  actionDim: number;
  hiddenDim: number;
  learningRate: number;
  hyperparameters: DqnHyperparameters;
}

// ---------------------------------------------------------------------------------------------
// The training loop

/** Options of `DQNAgent.learn`. */
export interface DqnLearnOptions<I extends object> {
  /** The vectorised env (Discrete actions of `actionDim`, observations of `stateDim`). */
  env: VecEnv<I>;
  /** Env steps to train for (all envs together). */
  totalTimesteps: number;
  /** Seed of the envs' first reset (env i gets seed + i). Default the agent's seed stream. */
  envSeed?: number;
  /** Env steps between history lines. Default 1,000. */
  logEvery?: number;
  /** Receives each history line (step, ε, loss, mean Q, episode return, ...). */
  onLog?: (line: Record<string, number | null>) => void;
  /** Progress bar (advanced by env steps; its status shows episode return, loss and ε). */
  progress?: Progress | null;
  /**
   * Checkpoints: written atomically every `everySteps` env steps and at the end, into `dir`;
   * `settings` (resolved config, data fingerprint, observation layout) must match on resume.
   */
  checkpoint?: { dir: string; everySteps: number; settings: unknown } | null;
  /** Continue from the checkpoint in `checkpoint.dir` when there is one. */
  resume?: boolean;
  /** Called when a resume rewrote the history: the lines confirmed by the checkpoint. */
  onResume?: (history: ReadonlyArray<Record<string, number | null>>, step: number) => void;
}

/** What `learn` returns. */
export interface DqnLearnResult {
  /** Env steps taken (all envs, resumed ones included). */
  steps: number;
  /** Episodes finished. */
  episodes: number;
  /** Gradient steps taken. */
  gradientSteps: number;
  /** Mean return of the last (up to) 100 finished episodes; NaN when none finished. */
  meanEpisodeReturn: number;
  /** The env step a resume started from, or null. */
  resumedFromStep: number | null;
}

interface LearnState {
  step: number;
  episodes: number;
  episodeReturns: number[];
  episodeLengths: number[];
  recentReturns: number[];
  history: Record<string, number | null>[];
  window: { loss: number; meanQ: number; updates: number; returns: number; finished: number };
  envs: EnvSnapshot[];
}

/** The checkpoint kind of a DQN training run. */
export const DQN_TRAINING_KIND = 'dqn-training';

/** Largest replay buffer allocated without complaint (bytes). */
const MAX_REPLAY_BYTES = 8 * 1024 ** 3;

/**
 * Trains `agent` on `env` for `totalTimesteps` env steps (the CleanRL loop): ε-greedy actions over
 * the allowed ones, n-step transitions into replay, a gradient step every `trainFrequency` env steps
 * after `learningStarts`, target sync every `targetUpdateInterval`, observation statistics updated
 * from every observation seen. With `checkpoint`, resumable bit for bit.
 * @throws {ConfigError} when the replay buffer would not fit in memory (naming dqn.bufferSize).
 * @throws {RangeError} when the env's spaces do not match the agent.
 * @throws {CheckpointError} when resuming from a checkpoint of other settings.
 */
export function learnDqn<I extends object>(agent: DQNAgent, o: DqnLearnOptions<I>): DqnLearnResult {
  const h = agent.hyperparameters;
  const vec = o.env;
  const N = vec.numEnvs;
  const A = agent.actionDim;
  const D = agent.stateDim;
  if (!(vec.actionSpace instanceof Discrete) || vec.actionSpace.n !== A)
    throw new RangeError(`DQN with ${A} actions needs a Discrete(${A}) env`);
  if (vec.observationSize !== D)
    throw new RangeError(
      `DQN reads ${D} floats per observation, the env gives ${vec.observationSize}`,
    );
  const rec = new ObservationRecorder(vec);
  const R = rec.size;
  if (ReplayBuffer.bytesFor(h.bufferSize, R, A) > MAX_REPLAY_BYTES)
    throw new ConfigError(
      'dqn.bufferSize',
      `${h.bufferSize} transitions of ${R} floats need ${(ReplayBuffer.bytesFor(h.bufferSize, R, A) / 1024 ** 3).toFixed(1)} GiB; lower it`,
    );
  const buffer = agent.createReplayBuffer(R);
  const nstep = new NStepAccumulator(N, h.nSteps, h.gamma, R);
  const cur = new Float32Array(N * R);
  const next = new Float32Array(N * R);
  const actions = new Int32Array(N);
  const total = o.totalTimesteps;
  const logEvery = o.logEvery ?? 1000;
  const B = h.batchSize;
  const batch: DqnBatch = {
    size: B,
    states: new Float32Array(B * D),
    actions: new Int32Array(B),
    returns: new Float32Array(B),
    discounts: new Float32Array(B),
    nextStates: new Float32Array(B * D),
    nextMasks: new Uint8Array(B * A),
    weights: h.prioritizedReplay ? new Float32Array(B) : null,
  };
  let state: LearnState = {
    step: 0,
    episodes: 0,
    episodeReturns: new Array<number>(N).fill(0),
    episodeLengths: new Array<number>(N).fill(0),
    recentReturns: [],
    history: [],
    window: { loss: 0, meanQ: 0, updates: 0, returns: 0, finished: 0 },
    envs: [],
  };
  let resumedFromStep: number | null = null;
  const ck = o.checkpoint ?? null;
  const restored =
    o.resume === true && ck !== null
      ? readCheckpoint<LearnState>(ck.dir, { kind: DQN_TRAINING_KIND, settings: ck.settings })
      : null;
  if (restored !== null && ck !== null) {
    state = restored.state;
    agent.loadTensors(ck.dir, restored);
    agent.rng.setState(restored.rng.agent);
    buffer.load(restored.tensors, 'replay', ck.dir);
    nstep.load(restored.tensors, 'nstep', ck.dir);
    cur.set(checkpointTensor(ck.dir, restored, 'records', Float32Array, N * R));
    vec.restore(state.envs);
    resumedFromStep = state.step;
    o.onResume?.(state.history, state.step);
  } else {
    vec.reset(o.envSeed ?? agent.rng.fork('env-reset').nextU32());
    for (let i = 0; i < N; i++) rec.encodeReset(i, cur, i * R);
  }
  const save = (): void => {
    if (ck === null) return;
    state.envs = vec.snapshot();
    const tensors = agent.tensors();
    for (const [k, v] of buffer.tensors('replay')) tensors.set(k, v);
    for (const [k, v] of nstep.tensors('nstep')) tensors.set(k, v);
    tensors.set('records', cur);
    writeCheckpoint(ck.dir, {
      kind: DQN_TRAINING_KIND,
      settings: ck.settings,
      counters: { step: state.step },
      rng: { agent: agent.rng.getState() },
      state,
      tensors,
    });
  };
  const sink: TransitionSink = (slot, obs, oo, a, ret, disc, nx, no, mask) =>
    buffer.add(slot, obs, oo, a, ret, disc, nx, no, mask);
  const trainStep = (): void => {
    const beta = linearSchedule(h.priorityBetaStart, 1, state.step / total);
    const s = buffer.sampleBatch(agent.rng, B, beta);
    for (let b = 0; b < B; b++) {
      const idx = s.indices[b];
      const slot = buffer.slots[idx];
      rec.decode(slot, buffer.obs, idx * R, batch.states, b * D);
      rec.decode(slot, buffer.nextObs, idx * R, batch.nextStates, b * D);
      batch.actions[b] = buffer.actions[idx];
      batch.returns[b] = buffer.returns[idx];
      batch.discounts[b] = buffer.discounts[idx];
      for (let a = 0; a < A; a++) batch.nextMasks![b * A + a] = buffer.nextMasks[idx * A + a];
      if (batch.weights !== null) batch.weights[b] = s.weights[b];
    }
    const r = agent.train(batch);
    buffer.updatePriorities(s.indices, r.tdErrors, h.priorityEpsilon);
    state.window.loss += r.loss;
    state.window.meanQ += r.meanQ;
    state.window.updates++;
  };
  const progress = o.progress ?? null;
  progress?.update(state.step);
  let masks = vec.actionMasks();
  // Per-env views of the (reused) mask buffer, made once.
  const maskViews =
    masks === null
      ? null
      : Array.from({ length: N }, (_, i) => masks!.subarray(i * A, (i + 1) * A));
  let epsilon: number;
  while (state.step < total) {
    const obs = vec.observations;
    agent.observationStats?.update(obs, N);
    // Random actions until learning starts (SB3), then the linear ε schedule.
    epsilon = state.step < h.learningStarts ? 1 : agent.epsilonAt(state.step / total);
    agent.selectActions(obs, N, epsilon, masks, actions);
    const r = vec.step(actions);
    masks = vec.actionMasks();
    for (let i = 0; i < N; i++) {
      rec.encodeStep(i, r, next, i * R);
      const done = r.dones[i] === 1;
      // A finished episode's next state is its final one: no mask of it survives the auto-reset.
      nstep.push(
        i,
        cur,
        i * R,
        actions[i],
        r.rewards[i] * h.rewardScale,
        next,
        i * R,
        done || maskViews === null ? null : maskViews[i],
        r.terminated[i] === 1,
        r.truncated[i] === 1,
        sink,
      );
      state.episodeReturns[i] += r.rewards[i];
      state.episodeLengths[i]++;
      if (done) {
        state.episodes++;
        state.window.returns += state.episodeReturns[i];
        state.window.finished++;
        state.recentReturns.push(state.episodeReturns[i]);
        if (state.recentReturns.length > 100) state.recentReturns.shift();
        state.episodeReturns[i] = 0;
        state.episodeLengths[i] = 0;
        rec.encodeReset(i, cur, i * R);
      } else for (let k = 0; k < R; k++) cur[i * R + k] = next[i * R + k];
    }
    const before = state.step;
    state.step += N;
    if (state.step > h.learningStarts && buffer.size >= B) {
      const updates =
        Math.floor(state.step / h.trainFrequency) - Math.floor(before / h.trainFrequency);
      for (let u = 0; u < updates * h.gradientSteps; u++) trainStep();
    }
    if (
      Math.floor(state.step / h.targetUpdateInterval) > Math.floor(before / h.targetUpdateInterval)
    )
      agent.syncTarget();
    if (Math.floor(state.step / logEvery) > Math.floor(before / logEvery) || state.step >= total) {
      const w = state.window;
      const line = {
        step: state.step,
        epsilon,
        loss: w.updates > 0 ? w.loss / w.updates : null,
        meanQ: w.updates > 0 ? w.meanQ / w.updates : null,
        episodeReturn: w.finished > 0 ? w.returns / w.finished : null,
        episodes: state.episodes,
        gradientSteps: agent.gradientSteps,
      };
      state.history.push(line);
      o.onLog?.(line);
      progress?.status(
        `ep.return ${line.episodeReturn === null ? '-' : line.episodeReturn.toFixed(4)} loss ${line.loss === null ? '-' : line.loss.toExponential(2)} ε ${epsilon.toFixed(3)}`,
      );
      state.window = { loss: 0, meanQ: 0, updates: 0, returns: 0, finished: 0 };
    }
    progress?.update(Math.min(state.step, total));
    if (ck !== null && Math.floor(state.step / ck.everySteps) > Math.floor(before / ck.everySteps))
      save();
  }
  if (ck !== null) save();
  progress?.stop();
  const recent = state.recentReturns;
  return {
    steps: state.step,
    episodes: state.episodes,
    gradientSteps: agent.gradientSteps,
    meanEpisodeReturn: recent.length > 0 ? recent.reduce((a, b) => a + b, 0) / recent.length : NaN,
    resumedFromStep,
  };
}
