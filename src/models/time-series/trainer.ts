// Training of the sequence model (the spec's train_time_series_model): Adam (the core optimizer)
// with gradient clipping and class weights, cosine or plateau learning-rate schedules, optional
// weight averaging, early stopping with best-weights restore, per-epoch metrics, and atomic
// checkpoints (the core format) that a killed run resumes from with the same weights, optimizer
// state, random stream and data order. Never fits anything on validation or test rows.

import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import type { SequenceDataset } from '../../data-processing/window-datasets.js';
import { specMismatch } from '../../data-processing/window-datasets.js';
import { CheckpointError } from '../../errors.js';
import { writeFileAtomicSync } from '../../utils/fs.js';
import { logger as rootLogger, type Logger } from '../../utils/logger.js';
import { createProgress } from '../../utils/progress.js';
import { Rng, type RngState } from '../../utils/random.js';
import type { Config } from '../../utils/config.js';
import type { Run } from '../../utils/runs.js';
import {
  checkpointTensor,
  readCheckpoint,
  writeCheckpoint,
  type CheckpointTensor,
} from '../common/checkpoint.js';
import { Adam } from '../common/optimizer.js';
import { learningRateAt, type LearningRateSchedule } from '../common/schedules.js';
import { variableParameter } from '../common/tensors.js';
import { evaluateTimeSeriesModel, toTensors } from './evaluation.js';
import type { MultiTimeframeModel } from './model.js';

// ---------------------------------------------------------------------------------------------
// Training

/** Options of `trainTimeSeriesModel`. */
export interface TrainOptions {
  /** Maximum number of passes over the training data. */
  epochs: number;
  /** Samples per optimizer step (the last partial batch of an epoch is dropped). */
  batchSize: number;
  /** Base learning rate (peak of the cosine schedule, start of the plateau one). */
  learningRate: number;
  /** Seed of the data order and dropout. */
  seed: number;
  /** Decoupled (AdamW) weight decay per step, scaled by the learning rate. Default 0. */
  weightDecay?: number;
  /**
   * Decay of the exponential moving average of the weights (Polyak averaging); 0 = off (default).
   * When on, validation, best-weights restore and the returned model use the averaged weights.
   */
  averageDecay?: number;
  /** Global gradient-norm clip; 0 = off. Default 1. */
  clipNorm?: number;
  /** `balanced` = N / (3 · count_c) from the training labels; or explicit weights (down, flat, up). */
  classWeights?: 'balanced' | 'none' | readonly number[];
  /** Learning-rate schedule. Default constant. */
  schedule?: LearningRateSchedule;
  /** Stop after `patience` epochs without a validation-loss improvement of `minDelta`. */
  earlyStopping?: { patience: number; minDelta: number } | null;
  /**
   * Validation figure that picks the best epoch and drives early stopping and the plateau
   * schedule: `loss` (total, default), `directionLoss` (direction head only) or `accuracy`.
   */
  monitor?: TrainMonitor;
  /** Restore the weights of the best validation epoch at the end. Default true. */
  restoreBestWeights?: boolean;
  /** Checkpoint directory and interval (optimizer steps); also written at every epoch end. */
  checkpoint?: { dir: string; everySteps: number } | null;
  /** Continue from the checkpoint in `checkpoint.dir` when there is one. */
  resume?: boolean;
  /** Run that receives history lines (per epoch and every `logEverySteps`). */
  run?: Run | null;
  /** Training-loss lines in history every this many steps (0 = per epoch only). Default 50. */
  logEverySteps?: number;
  /** Cap on optimizer steps per epoch (quick runs); default: the whole training set. */
  maxStepsPerEpoch?: number;
  /** Set the model's normaliser and target scale from the training data. Default true. */
  fitScales?: boolean;
  /** Progress bar (default: on a TTY). */
  progress?: boolean;
  /** Called after each epoch. */
  onEpochEnd?: (metrics: EpochMetrics) => void;
  /** Logger for progress lines (default: the root logger's `trainer` child). */
  logger?: Logger;
}

/** Validation figure monitored by early stopping, best-weights restore and the plateau schedule. */
export type TrainMonitor = 'loss' | 'directionLoss' | 'accuracy';

/** Metrics of one epoch. */
export interface EpochMetrics {
  /** Epoch index, 0-based. */
  epoch: number;
  /** Optimizer steps so far. */
  step: number;
  /** Learning rate of the epoch's last optimizer step. */
  learningRate: number;
  /** Mean total training loss over the epoch's samples. */
  trainLoss: number;
  /** Direction accuracy on the epoch's training samples (fraction, dropout on). */
  trainAccuracy: number;
  /** Mean total loss on the validation set. */
  valLoss: number;
  /** Mean class-weighted cross-entropy of the direction head on the validation set. */
  valDirectionLoss: number;
  /** Direction accuracy on the validation set (fraction). */
  valAccuracy: number;
  /** Macro F1 of the direction head on the validation set. */
  valMacroF1: number;
  /** Multi-class Brier score on the validation set (lower is better). */
  valBrier: number;
  /** Pearson correlation of predicted and realised forward returns on the validation set. */
  valReturnCorrelation: number;
  /** Mean global gradient norm (before clipping). */
  gradNorm: number;
  /** Wall-clock seconds of the epoch's training steps (validation excluded). */
  seconds: number;
}

/** What training returns. */
export interface TrainResult {
  /** The trained model (the best epoch's weights when `restoreBestWeights`). */
  model: MultiTimeframeModel;
  /** Metrics of every epoch run, in order. */
  history: EpochMetrics[];
  /** 0-based epoch the monitored figure chose as best (-1 when no epoch finished). */
  bestEpoch: number;
  /** Validation loss of the best epoch (the epoch the monitored figure chose). */
  bestValLoss: number;
  /** True when early stopping ended training before `epochs`. */
  stoppedEarly: boolean;
  /** Optimizer steps taken in total (resumed steps included). */
  steps: number;
  /** Whether this call resumed from a checkpoint, and from which step. */
  resumedFromStep: number | null;
}

interface TrainState {
  globalStep: number;
  epoch: number;
  batchInEpoch: number;
  learningRate: number;
  plateauBest: number;
  plateauBad: number;
  /** Best monitored validation figure so far (lower is better). */
  bestMonitored: number;
  bestEpoch: number;
  badEpochs: number;
  stoppedEarly: boolean;
  dropoutRng: RngState;
  epochLossSum: number;
  epochCorrect: number;
  epochCount: number;
  epochGradSum: number;
  epochSteps: number;
  epochSeconds: number;
  history: EpochMetrics[];
  historyLines: Record<string, number | string | null>[];
}

/** Class weights from labels: N / (3 · count_c), 0-count classes get weight 0. */
export function balancedClassWeights(labels: Int32Array): Float32Array {
  const counts = new Float64Array(3);
  for (const y of labels) counts[y]++;
  return Float32Array.from(counts, (c) => (c > 0 ? labels.length / (3 * c) : 0));
}

/**
 * Training options of config section `model.train` (checkpointing, run and resume are the
 * caller's).
 */
export function trainOptionsFromSection(
  section: Config['model']['train'],
  seed: number,
): TrainOptions {
  const schedule: LearningRateSchedule =
    section.schedule === 'cosine'
      ? {
          type: 'cosine',
          warmupSteps: section.warmupSteps,
          minLearningRate: section.minLearningRate,
        }
      : section.schedule === 'plateau'
        ? {
            type: 'plateau',
            factor: section.plateauFactor,
            patience: section.plateauPatience,
            minLearningRate: section.minLearningRate,
          }
        : { type: 'constant' };
  return {
    epochs: section.epochs,
    batchSize: section.batchSize,
    learningRate: section.learningRate,
    seed,
    weightDecay: section.weightDecay,
    averageDecay: section.averageDecay,
    clipNorm: section.clipNorm,
    classWeights: section.classWeights,
    schedule,
    earlyStopping:
      section.earlyStoppingPatience > 0
        ? { patience: section.earlyStoppingPatience, minDelta: section.minDelta }
        : null,
    monitor: section.monitor,
    logEverySteps: section.logEverySteps,
    ...(section.maxStepsPerEpoch === null ? {} : { maxStepsPerEpoch: section.maxStepsPerEpoch }),
  };
}

const CHECKPOINT_KIND = 'sequence-model-training';

/** Saves the training state, weights, optimizer and best weights (one core checkpoint). */
function saveTrainingCheckpoint(
  dir: string,
  state: TrainState,
  model: MultiTimeframeModel,
  opt: Adam,
  best: Map<string, Float32Array> | null,
  settings: unknown,
): void {
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, w] of model.getWeights()) tensors.set(`weights.${name}`, w);
  for (const [name, t] of opt.stateTensors('optimizer')) tensors.set(name, t);
  if (best !== null) for (const [name, w] of best) tensors.set(`best.${name}`, w);
  writeCheckpoint(dir, {
    kind: CHECKPOINT_KIND,
    settings,
    counters: { step: state.globalStep },
    rng: { dropout: state.dropoutRng },
    state: { ...state, hasBest: best !== null },
    tensors,
  });
}

/** Restores a checkpoint written by `saveTrainingCheckpoint`, or returns null when there is none. */
function loadTrainingCheckpoint(
  dir: string,
  model: MultiTimeframeModel,
  opt: Adam,
  settings: unknown,
): { state: TrainState; best: Map<string, Float32Array> | null } | null {
  const c = readCheckpoint<TrainState & { hasBest: boolean }>(dir, {
    kind: CHECKPOINT_KIND,
    settings,
  });
  if (c === null) return null;
  const vars = model.trainableVariables;
  const names = model.weightNames;
  const weights = new Map<string, Float32Array>();
  names.forEach((name, k) =>
    weights.set(name, checkpointTensor(dir, c, `weights.${name}`, Float32Array, vars[k].size)),
  );
  model.setWeights(weights);
  opt.loadStateTensors(dir, c, 'optimizer');
  let best: Map<string, Float32Array> | null = null;
  if (c.state.hasBest) {
    best = new Map();
    for (const [k, name] of names.entries())
      best.set(name, checkpointTensor(dir, c, `best.${name}`, Float32Array, vars[k].size));
  }
  const { hasBest: _hasBest, ...state } = c.state;
  return { state, best };
}

/** Mean and standard deviation of the training forward returns (the return head's target scale). */
function returnScale(returns: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const r of returns) s += r;
  const mean = s / Math.max(returns.length, 1);
  let ss = 0;
  for (const r of returns) ss += (r - mean) * (r - mean);
  const std = Math.sqrt(ss / Math.max(returns.length, 1));
  return { mean, std: std > 0 ? std : 1 };
}

/**
 * Trains a model (the spec's `train_time_series_model`): Adam on the multi-task loss with class
 * weights and gradient clipping, a learning-rate schedule, optional weight averaging, validation
 * after every epoch, early stopping on the validation loss with best-weights restore. With
 * `checkpoint`, state is saved atomically every `everySteps` optimizer steps and at each epoch end;
 * with `resume`, training continues from that state with the same data order and random stream, so
 * the result equals an uninterrupted run.
 * @throws {CheckpointError} when resuming from a checkpoint of other data, settings or architecture.
 * @throws {RangeError} when the datasets do not match the model's spec.
 */
export async function trainTimeSeriesModel(
  model: MultiTimeframeModel,
  trainData: SequenceDataset,
  valData: SequenceDataset,
  options: TrainOptions,
): Promise<TrainResult> {
  const log = options.logger ?? rootLogger.child({ module: 'trainer' });
  for (const [name, d] of [
    ['training', trainData],
    ['validation', valData],
  ] as const) {
    const why = specMismatch(model.spec, d.spec);
    if (why !== null) throw new RangeError(`${name} data do not match the model: ${why}`);
  }
  if (options.fitScales ?? true) {
    if (trainData.normalizer !== undefined && trainData.normalizer !== null)
      model.setNormalizer(trainData.normalizer);
    model.targetScale = returnScale(trainData.forwardReturns());
  }
  const labels = trainData.directionLabels();
  const classWeights =
    options.classWeights === undefined || options.classWeights === 'balanced'
      ? balancedClassWeights(labels)
      : options.classWeights === 'none'
        ? null
        : Float32Array.from(options.classWeights);
  const schedule = options.schedule ?? { type: 'constant' };
  const batchesPerEpoch = Math.min(
    trainData.numBatches(options.batchSize, true),
    options.maxStepsPerEpoch ?? Infinity,
  );
  if (batchesPerEpoch === 0)
    throw new RangeError(`training data (${trainData.size} samples) is smaller than one batch`);
  const totalSteps = batchesPerEpoch * options.epochs;
  const vars = model.trainableVariables;
  const opt = new Adam(
    [
      {
        name: 'model',
        params: vars.map((v, k) => variableParameter(v, model.weightNames[k])),
        learningRate: options.learningRate,
      },
    ],
    {
      weightDecay: options.weightDecay ?? 0,
      clipNorm: options.clipNorm ?? 1,
      averageDecay: options.averageDecay ?? 0,
    },
  );
  const averaged = (): Map<string, Float32Array> | null => {
    const a = opt.averageWeights();
    return a === null ? null : new Map(model.weightNames.map((name, k) => [name, a[k]]));
  };
  const digest = (bytes: Uint8Array | string): string =>
    createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  // What a resumed run must share with the run that wrote the checkpoint.
  const settings = {
    spec: model.spec,
    weights: model.weightNames,
    samples: { train: trainData.size, validation: valData.size },
    labels: digest(new Uint8Array(labels.buffer, labels.byteOffset, labels.byteLength)),
    normalizer: model.normalizer === null ? null : digest(JSON.stringify(model.normalizer.json)),
    options: {
      ...options,
      run: undefined,
      onEpochEnd: undefined,
      logger: undefined,
      checkpoint: undefined,
      resume: undefined,
      progress: undefined,
    },
  };
  const dropoutRng = new Rng(options.seed).fork('dropout');
  const shuffleSeed = new Rng(options.seed).fork('data-order').nextU32();
  let state: TrainState = {
    globalStep: 0,
    epoch: 0,
    batchInEpoch: 0,
    learningRate: options.learningRate,
    plateauBest: Infinity,
    plateauBad: 0,
    bestMonitored: Infinity,
    bestEpoch: -1,
    badEpochs: 0,
    stoppedEarly: false,
    dropoutRng: dropoutRng.getState(),
    epochLossSum: 0,
    epochCorrect: 0,
    epochCount: 0,
    epochGradSum: 0,
    epochSteps: 0,
    epochSeconds: 0,
    history: [],
    historyLines: [],
  };
  let best: Map<string, Float32Array> | null = null;
  let resumedFromStep: number | null = null;
  const ckpt = options.checkpoint ?? null;
  if (options.resume === true) {
    if (ckpt === null) throw new CheckpointError('(none)', 'resume needs a checkpoint directory');
    const restored = loadTrainingCheckpoint(ckpt.dir, model, opt, settings);
    if (restored !== null) {
      state = restored.state;
      best = restored.best;
      dropoutRng.setState(state.dropoutRng);
      resumedFromStep = state.globalStep;
      log.info(
        { step: state.globalStep, epoch: state.epoch, batch: state.batchInEpoch },
        'resuming from checkpoint',
      );
      // History lines after the checkpoint were never confirmed: rewrite the file from the state.
      if (options.run) {
        writeFileAtomicSync(
          options.run.path('history.jsonl'),
          state.historyLines.map((l) => JSON.stringify(l) + '\n').join(''),
        );
      }
    }
  }
  const logLine = (metrics: Record<string, number | string | null>): void => {
    if (!options.run) return;
    options.run.logHistory(state.globalStep, metrics);
    state.historyLines.push({ step: state.globalStep, ...metrics });
  };
  const save = (): void => {
    if (ckpt === null) return;
    state.dropoutRng = dropoutRng.getState();
    saveTrainingCheckpoint(ckpt.dir, state, model, opt, best, settings);
  };
  const logEvery = options.logEverySteps ?? 50;
  const restoreBest = options.restoreBestWeights ?? true;
  const monitor: TrainMonitor = options.monitor ?? 'loss';

  while (state.epoch < options.epochs && !state.stoppedEarly) {
    const epoch = state.epoch;
    const bar = createProgress(`epoch ${epoch + 1}/${options.epochs}`, batchesPerEpoch, {
      unit: 'steps',
      ...(options.progress === undefined ? {} : { enabled: options.progress }),
    });
    bar.update(state.batchInEpoch);
    let t0 = performance.now();
    for await (const batch of trainData.batches({
      batchSize: options.batchSize,
      shuffleSeed,
      epoch,
      startBatch: state.batchInEpoch,
      dropLast: true,
    })) {
      if (state.batchInEpoch >= batchesPerEpoch) break;
      const lr = learningRateAt(
        schedule,
        options.learningRate,
        state.globalStep,
        totalSteps,
        state.learningRate,
      );
      const xs = toTensors(model.spec, batch);
      const targets = {
        direction: batch.direction,
        forwardReturn: batch.forwardReturn,
        pattern: batch.pattern,
      };
      let logits: tf.Tensor | null = null;
      const { value, grads } = tf.variableGrads(() => {
        const l = model.loss(xs, targets, classWeights, dropoutRng);
        logits = tf.keep(l.directionLogits);
        return l.total;
      }, vars);
      const gradList = vars.map((v) => grads[v.name]);
      opt.setLearningRate(lr);
      const norm = opt.apply(gradList.map((g) => g.dataSync() as Float32Array));
      const loss = value.dataSync()[0];
      const lg = (logits as tf.Tensor | null)!.dataSync();
      let correct = 0;
      for (let b = 0; b < batch.size; b++) {
        let k = 0;
        for (let c = 1; c < 3; c++) if (lg[b * 3 + c] > lg[b * 3 + k]) k = c;
        if (k === batch.direction[b]) correct++;
      }
      tf.dispose([value, ...Object.values(grads), ...xs, logits!]);
      if (Number.isNaN(norm))
        log.warn({ step: state.globalStep }, 'non-finite gradient: update skipped');
      state.globalStep++;
      state.batchInEpoch++;
      state.epochLossSum += loss * batch.size;
      state.epochCorrect += correct;
      state.epochCount += batch.size;
      state.epochGradSum += Number.isNaN(norm) ? 0 : norm;
      state.epochSteps++;
      if (logEvery > 0 && state.globalStep % logEvery === 0)
        logLine({ epoch, trainLoss: loss, learningRate: lr, gradNorm: norm });
      bar.tick();
      if (
        ckpt !== null &&
        state.globalStep % ckpt.everySteps === 0 &&
        state.batchInEpoch < batchesPerEpoch
      ) {
        state.epochSeconds += (performance.now() - t0) / 1000;
        t0 = performance.now();
        save();
      }
    }
    bar.stop();
    state.epochSeconds += (performance.now() - t0) / 1000;
    // With weight averaging, the epoch is judged (and kept as best) by its averaged weights.
    const average = averaged();
    const current = average === null ? null : model.getWeights();
    if (average !== null) model.setWeights(average);
    const val = await evaluateTimeSeriesModel(model, valData, {
      batchSize: Math.max(options.batchSize, 256),
      classWeights,
    });
    if (current !== null) model.setWeights(current);
    const lrNow = learningRateAt(
      schedule,
      options.learningRate,
      Math.max(0, state.globalStep - 1),
      totalSteps,
      state.learningRate,
    );
    const metrics: EpochMetrics = {
      epoch,
      step: state.globalStep,
      learningRate: lrNow,
      trainLoss: state.epochLossSum / Math.max(state.epochCount, 1),
      trainAccuracy: state.epochCorrect / Math.max(state.epochCount, 1),
      valLoss: val.loss,
      valDirectionLoss: val.directionLoss,
      valAccuracy: val.accuracy,
      valMacroF1: val.macroF1,
      valBrier: val.brier,
      valReturnCorrelation: val.returnCorrelation,
      gradNorm: state.epochGradSum / Math.max(state.epochSteps, 1),
      seconds: state.epochSeconds,
    };
    state.history.push(metrics);
    const minDelta = options.earlyStopping?.minDelta ?? 0;
    // The monitored figure, lower is better.
    const monitored =
      monitor === 'accuracy'
        ? -val.accuracy
        : monitor === 'directionLoss'
          ? val.directionLoss
          : val.loss;
    if (monitored < state.bestMonitored - minDelta) {
      state.bestMonitored = monitored;
      state.bestEpoch = epoch;
      state.badEpochs = 0;
      if (restoreBest) best = average ?? model.getWeights();
    } else {
      state.badEpochs++;
      if (options.earlyStopping && state.badEpochs >= options.earlyStopping.patience)
        state.stoppedEarly = true;
    }
    if (schedule.type === 'plateau') {
      if (monitored < state.plateauBest - minDelta) {
        state.plateauBest = monitored;
        state.plateauBad = 0;
      } else if (++state.plateauBad >= schedule.patience) {
        state.learningRate = Math.max(
          schedule.minLearningRate,
          state.learningRate * schedule.factor,
        );
        state.plateauBad = 0;
      }
    }
    log.info(
      {
        epoch: epoch + 1,
        trainLoss: round(metrics.trainLoss),
        valLoss: round(metrics.valLoss),
        valAccuracy: round(metrics.valAccuracy),
        valMacroF1: round(metrics.valMacroF1),
        seconds: round(metrics.seconds),
      },
      'epoch',
    );
    logLine({ ...metrics });
    state.epoch++;
    state.batchInEpoch = 0;
    state.epochLossSum = 0;
    state.epochCorrect = 0;
    state.epochCount = 0;
    state.epochGradSum = 0;
    state.epochSteps = 0;
    state.epochSeconds = 0;
    save();
    options.onEpochEnd?.(metrics);
  }
  const final = restoreBest && best !== null ? best : averaged();
  if (final !== null) model.setWeights(final);
  if (options.run)
    writeFileAtomicSync(
      options.run.path('history.json'),
      JSON.stringify(state.history, null, 1) + '\n',
    );
  return {
    model,
    history: state.history,
    bestEpoch: state.bestEpoch,
    bestValLoss: state.bestEpoch >= 0 ? state.history[state.bestEpoch].valLoss : Infinity,
    stoppedEarly: state.stoppedEarly,
    steps: state.globalStep,
    resumedFromStep,
  };
}

function round(x: number): number {
  return Number(x.toPrecision(5));
}
