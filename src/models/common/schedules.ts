// Schedules of learning rates and other annealed hyperparameters (ε of DQN, PPO's clip range),
// shared by every trainer: constant, linear warm-up then cosine decay, reduce-on-plateau, and linear
// annealing. Pure functions of the step (the plateau rate is the caller's state), so a resumed run
// computes the same values as an uninterrupted one.

/** Learning-rate schedule. */
export type LearningRateSchedule =
  | {
      /** The base learning rate at every step. */
      type: 'constant';
    }
  /** Linear warm-up, then cosine decay to `minLearningRate` at the last step. */
  | {
      /** Warm-up then cosine decay. */
      type: 'cosine';
      /** Optimizer steps of linear warm-up from lr / warmupSteps to the base learning rate. */
      warmupSteps: number;
      /** Learning rate reached at the last optimizer step. */
      minLearningRate: number;
    }
  /** Multiply by `factor` after `patience` epochs without a validation improvement. */
  | {
      /** Reduce on plateau of the monitored validation figure. */
      type: 'plateau';
      /** Multiplier applied to the learning rate at each reduction, in (0, 1). */
      factor: number;
      /** Epochs without improvement of the monitored figure before a reduction. */
      patience: number;
      /** Floor of the learning rate. */
      minLearningRate: number;
    }
  /** Linear annealing from the base rate to `minLearningRate` at the last step (PPO's default). */
  | {
      /** Linear decay. */
      type: 'linear';
      /** Learning rate reached at the last step (0 in SB3/CleanRL PPO). */
      minLearningRate: number;
    };

/**
 * The learning rate at optimizer step `step` (0-based) of `totalSteps`. `plateauLr` is the current
 * rate of a plateau schedule (the trainer's state); other schedules ignore it.
 */
export function learningRateAt(
  schedule: LearningRateSchedule,
  base: number,
  step: number,
  totalSteps: number,
  plateauLr: number = base,
): number {
  if (schedule.type === 'constant') return base;
  if (schedule.type === 'plateau') return plateauLr;
  if (schedule.type === 'linear')
    return linearSchedule(base, schedule.minLearningRate, step / Math.max(1, totalSteps));
  if (step < schedule.warmupSteps) return (base * (step + 1)) / schedule.warmupSteps;
  const span = Math.max(1, totalSteps - schedule.warmupSteps);
  const progress = Math.min(1, (step - schedule.warmupSteps) / span);
  return (
    schedule.minLearningRate +
    0.5 * (base - schedule.minLearningRate) * (1 + Math.cos(Math.PI * progress))
  );
}

/**
 * Linear interpolation from `start` (progress 0) to `end` (progress >= 1), clamped: DQN's ε
 * schedule (`end` reached at `explorationFraction` of training) and PPO's annealing.
 */
export function linearSchedule(start: number, end: number, progress: number): number {
  const p = progress <= 0 ? 0 : progress >= 1 ? 1 : progress;
  return start + (end - start) * p;
}
