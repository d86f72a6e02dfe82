// The sequence model as a Policy for the backtester (and paper trading): it reads the feature
// windows its model was trained on (no account fields), predicts the direction probabilities of
// every env in one batch, and turns them into target positions with a confidence threshold. Never
// looks at anything but the observation it is given.

import type { ObservationSpec, Policy } from '../../evaluation/policy.js';
import { type MultiTimeframeModel } from './model.js';
import { windowSizes } from '../../data-processing/window-datasets.js';

/** How probabilities become positions. */
export type PolicySizing = 'discrete' | 'proportional';

/** Options of `SequenceModelPolicy`. */
export interface SequenceModelPolicyOptions {
  /**
   * Minimum probability of the winning direction: long when P(up) >= threshold and P(up) >
   * P(down), short symmetrically, otherwise flat.
   */
  threshold: number;
  /** discrete: ±1; proportional: P(up) − P(down) (the position when the threshold is met). */
  sizing?: PolicySizing;
}

/** Target position from direction probabilities (down, flat, up). */
export function positionFromProbabilities(
  pDown: number,
  pUp: number,
  threshold: number,
  sizing: PolicySizing,
): number {
  const long = pUp >= threshold && pUp > pDown;
  const short = pDown >= threshold && pDown > pUp;
  if (!long && !short) return 0;
  if (sizing === 'proportional') return Math.max(-1, Math.min(1, pUp - pDown));
  return long ? 1 : -1;
}

/**
 * A trained `MultiTimeframeModel` as a `Policy`: `act` predicts for all envs at once.
 * @example
 * const policy = new SequenceModelPolicy(model, { threshold: 0.45 });
 * const builder = new ObservationBuilder(features, policy.observation);
 */
export class SequenceModelPolicy implements Policy {
  /** The model's windows and features per timeframe, no account fields. */
  readonly observation: ObservationSpec;
  private readonly model: MultiTimeframeModel;
  private readonly threshold: number;
  private readonly sizing: PolicySizing;
  private readonly sizes: number[];
  private buffers: Float32Array[] = [];
  private capacity = 0;

  /** @throws {RangeError} when the threshold is outside [0, 1]. */
  constructor(model: MultiTimeframeModel, options: SequenceModelPolicyOptions) {
    if (!(options.threshold >= 0 && options.threshold <= 1))
      throw new RangeError(`policy threshold ${options.threshold} is outside [0, 1]`);
    this.model = model;
    this.threshold = options.threshold;
    this.sizing = options.sizing ?? 'discrete';
    const spec = model.spec;
    this.observation = {
      timeframes: [...spec.timeframes],
      windows: { ...spec.windows },
      features: Object.fromEntries(spec.timeframes.map((t) => [t, [...spec.features[t]!]])),
      account: false,
    };
    this.sizes = windowSizes(spec);
  }

  /**
   * Predicts direction probabilities for `numEnvs` observations (each the model's windows,
   * timeframe after timeframe) in one batch and writes each env's target position in [-1, 1]
   * to `out` (see {@link positionFromProbabilities}).
   */
  act(obs: Float32Array, numEnvs: number, out: Float32Array): void {
    if (numEnvs > this.capacity) {
      this.buffers = this.sizes.map((s) => new Float32Array(s * numEnvs));
      this.capacity = numEnvs;
    }
    const per = this.sizes.reduce((a, b) => a + b, 0);
    const windows = this.buffers.map((b, j) =>
      numEnvs === this.capacity ? b : b.subarray(0, this.sizes[j] * numEnvs),
    );
    for (let e = 0; e < numEnvs; e++) {
      let off = e * per;
      for (let j = 0; j < this.sizes.length; j++) {
        const s = this.sizes[j];
        windows[j].set(obs.subarray(off, off + s), e * s);
        off += s;
      }
    }
    const { direction } = this.model.predictArrays(windows, numEnvs);
    for (let e = 0; e < numEnvs; e++)
      out[e] = positionFromProbabilities(
        direction[e * 3],
        direction[e * 3 + 2],
        this.threshold,
        this.sizing,
      );
  }
}
