// An RL agent as a `Policy` (evaluation/policy.ts), the form the backtester, `ctm compare` and the
// live loop run: raw observations in (the agent normalises them itself), the greedy action among the
// allowed ones, mapped to its position level. One adapter for DQN (Q-values) and discrete PPO
// (logits). Never explores and never learns: a deployed agent is deterministic.

import type { ObservationSpec, Policy } from '../../evaluation/policy.js';
import { maskedArgmax } from './dqn-agent.js';

/** Scores [rows, actions] of raw observations (higher = preferred); a reused buffer is fine. */
export type ActionScorer = (observations: Float32Array, rows: number) => Float32Array;

/**
 * A discrete agent as a Policy: `out[i] = levels[argmax over allowed actions of scores]`.
 * @throws {RangeError} on fewer than two levels.
 */
export class DiscreteAgentPolicy implements Policy {
  /** What the agent reads (the layout of the env it was trained in). */
  readonly observation: ObservationSpec;
  /** Target position of each action. */
  readonly levels: Float64Array;
  private readonly score: ActionScorer;

  constructor(observation: ObservationSpec, levels: readonly number[], score: ActionScorer) {
    if (levels.length < 2) throw new RangeError('an agent policy needs at least two levels');
    this.observation = observation;
    this.levels = Float64Array.from(levels);
    this.score = score;
  }

  /** Greedy levels of `numEnvs` observations into `out`; `mask` [numEnvs, levels] restricts them. */
  act(obs: Float32Array, numEnvs: number, out: Float32Array, mask?: Uint8Array): void {
    const A = this.levels.length;
    const scores = this.score(obs, numEnvs);
    for (let i = 0; i < numEnvs; i++)
      out[i] = this.levels[maskedArgmax(scores, i * A, A, mask ?? null, i * A)];
  }
}
