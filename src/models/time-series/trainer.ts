// Training of the sequence model (the spec's train_time_series_model): the dataset interface the
// trainer reads (windows per timeframe, direction / forward-return / pattern labels, a seeded and
// resumable batch order), an in-memory dataset cut from multi-timeframe features with forward-return
// labels and a purged time split (normaliser fitted on training rows only), Adam with gradient
// clipping and class weights, cosine or plateau learning-rate schedules, early stopping with
// best-weights restore, per-epoch metrics, and atomic checkpoints that a killed run resumes from
// with the same weights, optimizer state, random stream and data order. Never lets a label cross
// its split; never fits anything on validation or test rows.

import { existsSync, readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import type { Timeframe } from '../../data-processing/candles.js';
import { timeframeMs } from '../../data-processing/candles.js';
import {
  copyWindow,
  type MultiTimeframeFeatures,
} from '../../data-processing/feature-engineering.js';
import {
  fitNormalizer,
  type FittedNormalizer,
  type NormalizationMethod,
} from '../../data-processing/normalizer.js';
import { CheckpointError, DataValidationError } from '../../errors.js';
import type { DateRange } from '../../evaluation/walk-forward.js';
import { writeFileAtomicSync } from '../../utils/fs.js';
import { logger as rootLogger, type Logger } from '../../utils/logger.js';
import { createProgress } from '../../utils/progress.js';
import { Rng, type RngState } from '../../utils/random.js';
import type { Config } from '../../utils/config.js';
import type { Run } from '../../utils/runs.js';
import {
  assignValues,
  disposeOutputs,
  specMismatch,
  windowSizes,
  type ModelInputSpec,
  type MultiTimeframeModel,
} from './model.js';

// ---------------------------------------------------------------------------------------------
// Dataset interface

/** One batch of labelled windows. */
export interface SequenceBatch {
  /** Number of samples B. */
  readonly size: number;
  /** Raw windows per timeframe (spec order), each [B, T_tf, F_tf] row-major, oldest bar first. */
  readonly windows: readonly Float32Array[];
  /** Direction class per sample: 0 down, 1 flat, 2 up. */
  readonly direction: Int32Array;
  /** Forward log return per sample over the label horizon. */
  readonly forwardReturn: Float32Array;
  /** Pattern class per sample (-1 = none/unknown), when the dataset has pattern labels. */
  readonly pattern?: Int32Array;
  /** Dataset indices of the samples. */
  readonly indices: Int32Array;
}

/** Where and how a pass over a dataset starts. */
export interface BatchOptions {
  /** Samples per batch (> 0). */
  batchSize: number;
  /**
   * Seed of the sample order; each epoch draws its own permutation from (seed, epoch). null or
   * omitted = dataset order.
   */
  shuffleSeed?: number | null;
  /** Epoch number (selects the permutation). Default 0. */
  epoch?: number;
  /** First batch to yield (resuming inside an epoch). Default 0. */
  startBatch?: number;
  /** Drop a last partial batch. Default false. */
  dropLast?: boolean;
}

/**
 * What the trainer reads. The in-memory `WindowDataset` implements it; the dataset builder's
 * on-disk datasets implement it too. Batch order is a pure function of (shuffleSeed, epoch), so a
 * pass can be resumed at any batch.
 */
export interface SequenceDataset {
  /** Timeframes, windows (bars) and feature names of the samples' inputs. */
  readonly spec: ModelInputSpec;
  /** Number of samples. */
  readonly size: number;
  /** Pattern class names when samples carry pattern labels. */
  readonly patternClasses?: readonly string[];
  /** Normaliser fitted on the training rows this dataset belongs to, if it carries one. */
  readonly normalizer?: FittedNormalizer | null;
  /** Direction labels of every sample, in dataset order. */
  directionLabels(): Int32Array;
  /** Forward returns of every sample, in dataset order. */
  forwardReturns(): Float32Array;
  /** Number of batches of one pass. */
  numBatches(batchSize: number, dropLast?: boolean): number;
  /** The batches of one pass, in the order fixed by `options`. */
  batches(options: BatchOptions): AsyncIterableIterator<SequenceBatch>;
}

/** The sample order of one pass: dataset order, or a permutation drawn from (seed, epoch). */
export function sampleOrder(
  size: number,
  shuffleSeed: number | null | undefined,
  epoch: number,
): Int32Array {
  const order = new Int32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  if (shuffleSeed !== null && shuffleSeed !== undefined)
    new Rng(shuffleSeed).fork(`epoch-${epoch}`).shuffle(order);
  return order;
}

// ---------------------------------------------------------------------------------------------
// In-memory dataset cut from features

/** A split's sample rows and labels, with the features they are cut from. */
export class WindowDataset implements SequenceDataset {
  /** Timeframes, windows (bars) and feature names of the samples' inputs. */
  readonly spec: ModelInputSpec;
  /** Number of samples. */
  readonly size: number;
  /** Pattern class names when samples carry pattern labels. */
  readonly patternClasses?: readonly string[];
  /** Normaliser fitted on the training split's rows, or null. */
  readonly normalizer: FittedNormalizer | null;
  /** Base rows (decision rows) of the samples. */
  readonly rows: Int32Array;
  private readonly direction: Int32Array;
  private readonly returns: Float32Array;
  private readonly pattern: Int32Array | undefined;
  private readonly features: MultiTimeframeFeatures;

  /**
   * @param features the features windows are cut from (with `copyWindow`).
   * @param rows base rows of the samples.
   * @param labels per-sample labels, aligned with `rows`.
   */
  constructor(
    features: MultiTimeframeFeatures,
    spec: ModelInputSpec,
    rows: Int32Array,
    labels: { direction: Int32Array; forwardReturn: Float32Array; pattern?: Int32Array },
    normalizer: FittedNormalizer | null,
    patternClasses?: readonly string[],
  ) {
    for (const t of spec.timeframes) {
      const m = features.perTimeframe.get(t);
      if (m === undefined) throw new RangeError(`features lack timeframe ${t}`);
      const names = spec.features[t] ?? [];
      if (names.length !== m.cols || names.some((n, j) => m.names[j] !== n))
        throw new RangeError(`spec features of ${t} must be the matrix columns in order`);
    }
    if (labels.direction.length !== rows.length || labels.forwardReturn.length !== rows.length)
      throw new RangeError('labels and rows differ in length');
    this.features = features;
    this.spec = spec;
    this.rows = rows;
    this.size = rows.length;
    this.direction = labels.direction;
    this.returns = labels.forwardReturn;
    this.pattern = labels.pattern;
    this.normalizer = normalizer;
    if (patternClasses !== undefined) this.patternClasses = patternClasses;
  }

  /**
   * The same samples and windows with other labels (e.g. permuted for a shuffled-label control).
   * @throws {RangeError} when the labels have another length.
   */
  withLabels(labels: {
    direction: Int32Array;
    forwardReturn: Float32Array;
    pattern?: Int32Array;
  }): WindowDataset {
    return new WindowDataset(
      this.features,
      this.spec,
      this.rows,
      labels,
      this.normalizer,
      this.patternClasses,
    );
  }

  /** Direction labels (0 down, 1 flat, 2 up) in dataset order: the dataset's own array, not a copy. */
  directionLabels(): Int32Array {
    return this.direction;
  }

  /** Forward returns in dataset order: the dataset's own array, not a copy. */
  forwardReturns(): Float32Array {
    return this.returns;
  }

  /** Batches of `batchSize` in one pass (the last one partial unless `dropLast`). */
  numBatches(batchSize: number, dropLast = false): number {
    return dropLast ? Math.floor(this.size / batchSize) : Math.ceil(this.size / batchSize);
  }

  /**
   * The batches of one pass (see {@link SequenceDataset.batches}); windows are cut from the
   * feature matrices on the fly, freshly allocated per batch.
   */
  async *batches(options: BatchOptions): AsyncIterableIterator<SequenceBatch> {
    const { batchSize } = options;
    const order = sampleOrder(this.size, options.shuffleSeed, options.epoch ?? 0);
    const n = this.numBatches(batchSize, options.dropLast ?? false);
    const sizes = windowSizes(this.spec);
    const tfs = this.spec.timeframes;
    const lengths = tfs.map((t) => this.spec.windows[t]!);
    for (let k = options.startBatch ?? 0; k < n; k++) {
      const from = k * batchSize;
      const B = Math.min(batchSize, this.size - from);
      const windows = sizes.map((s) => new Float32Array(B * s));
      const direction = new Int32Array(B);
      const forwardReturn = new Float32Array(B);
      const pattern = this.pattern === undefined ? undefined : new Int32Array(B);
      const indices = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        const i = order[from + b];
        indices[b] = i;
        const row = this.rows[i];
        for (let j = 0; j < tfs.length; j++)
          copyWindow(this.features, tfs[j], row, lengths[j], windows[j], b * sizes[j]);
        direction[b] = this.direction[i];
        forwardReturn[b] = this.returns[i];
        if (pattern !== undefined) pattern[b] = this.pattern![i];
      }
      yield {
        size: B,
        windows,
        direction,
        forwardReturn,
        indices,
        ...(pattern ? { pattern } : {}),
      };
    }
  }
}

/**
 * A view of a dataset restricted to some of its timeframes and, optionally, columns (for
 * single-timeframe ablations): same samples, order and labels; batches carry only the chosen
 * windows and columns.
 * @param keepColumn which feature columns of a timeframe to keep (default: all).
 * @throws {RangeError} when a timeframe is not in the dataset or no column of one is kept.
 */
export function timeframeSubset(
  data: SequenceDataset,
  timeframes: readonly Timeframe[],
  keepColumn: (tf: Timeframe, name: string) => boolean = () => true,
): SequenceDataset {
  const parts = timeframes.map((t) => {
    const j = data.spec.timeframes.indexOf(t);
    if (j < 0) throw new RangeError(`dataset has no timeframe ${t}`);
    const names = data.spec.features[t] ?? [];
    const cols = names.map((n, c) => (keepColumn(t, n) ? c : -1)).filter((c) => c >= 0);
    if (cols.length === 0) throw new RangeError(`no column of ${t} is kept`);
    return {
      j,
      steps: data.spec.windows[t]!,
      width: names.length,
      cols: cols.length === names.length ? null : Int32Array.from(cols),
      names: cols.map((c) => names[c]),
    };
  });
  const spec: ModelInputSpec = {
    timeframes: [...timeframes],
    windows: Object.fromEntries(timeframes.map((t) => [t, data.spec.windows[t]])),
    features: Object.fromEntries(timeframes.map((t, k) => [t, parts[k].names])),
  };
  const select = (w: Float32Array, p: (typeof parts)[number], B: number): Float32Array => {
    if (p.cols === null) return w;
    const cols = p.cols;
    const rows = B * p.steps;
    const out = new Float32Array(rows * cols.length);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols.length; c++) out[r * cols.length + c] = w[r * p.width + cols[c]];
    return out;
  };
  return {
    spec,
    size: data.size,
    ...(data.patternClasses === undefined ? {} : { patternClasses: data.patternClasses }),
    normalizer: data.normalizer ?? null,
    directionLabels: () => data.directionLabels(),
    forwardReturns: () => data.forwardReturns(),
    numBatches: (batchSize, dropLast) => data.numBatches(batchSize, dropLast),
    async *batches(options) {
      for await (const b of data.batches(options))
        yield { ...b, windows: parts.map((p) => select(b.windows[p.j], p, b.size)) };
    },
  };
}

/** Options of `createWindowDatasets`. */
export interface WindowDatasetOptions {
  /** Window length per timeframe (timeframes in this order, base first). */
  windows: Partial<Record<Timeframe, number>>;
  /** Label horizon in base bars: the forward return is ln(close[i + h] / close[i]). */
  horizon: number;
  /**
   * Flat band: `{ quantile: q }` sets θ to the q-quantile of |r| over the training rows (q = 1/3
   * gives roughly balanced classes); `{ fixed: θ }` uses θ as is. r < −θ is down, r > θ up.
   */
  threshold: { quantile: number } | { fixed: number };
  /** Date ranges of the splits; each sample's decision time and label end lie in its split. */
  splits: { train: DateRange; validation: DateRange; test?: DateRange };
  /** Base bars dropped at the start of the validation and test splits (serial-correlation guard). */
  embargoBars: number;
  /** Keep every `stride`-th eligible row (default 1). */
  stride?: number;
  /** Normaliser method (default zscore). */
  normalizerMethod?: NormalizationMethod;
  /** Normaliser clip applied by the fitted normaliser (default null: the model clips). */
  normalizerClip?: number | null;
}

/** What `createWindowDatasets` returns. */
export interface WindowDatasets {
  /** Training split. */
  train: WindowDataset;
  /** Validation split (embargoed after the training split). */
  validation: WindowDataset;
  /** Test split, or null when it has no rows. */
  test: WindowDataset | null;
  /** Fitted on the training split's rows only. */
  normalizer: FittedNormalizer;
  /** Flat band half-width θ (log return). */
  threshold: number;
  /** Input spec shared by the three splits. */
  spec: ModelInputSpec;
  /** Eligible rows dropped because their label would cross the split end (the purge). */
  purged: { train: number; validation: number; test: number };
}

/** Quantile of |x| (linear interpolation). */
function absQuantile(x: Float32Array, q: number): number {
  const a = Float64Array.from(x, Math.abs).sort();
  if (a.length === 0) return 0;
  const pos = q * (a.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(a.length - 1, lo + 1);
  return a[lo] + (a[hi] - a[lo]) * (pos - lo);
}

/** Direction class of a forward return given the flat band θ. */
export function directionOf(r: number, threshold: number): number {
  return r < -threshold ? 0 : r > threshold ? 2 : 1;
}

/**
 * Cuts labelled window datasets from features: forward log-return labels over `horizon` base
 * bars, a time split by decision time where each sample's label end stays inside its split (the
 * purge), an embargo at the start of later splits, and a normaliser fitted on the training rows
 * only. Rows before `features.firstValidRow`, and rows whose label spans a data gap, are skipped.
 * @throws {DataValidationError} when a split has no sample.
 */
export function createWindowDatasets(
  features: MultiTimeframeFeatures,
  options: WindowDatasetOptions,
): WindowDatasets {
  const base = features.aligned.base;
  const close = base.close;
  const n = close.length;
  const decision = features.perTimeframe.get(features.base)!.time;
  const barMs = timeframeMs(features.base);
  const h = options.horizon;
  const stride = options.stride ?? 1;
  if (!(Number.isInteger(h) && h > 0)) throw new RangeError('horizon must be a positive integer');
  const timeframes = Object.keys(options.windows) as Timeframe[];
  const spec: ModelInputSpec = {
    timeframes,
    windows: { ...options.windows },
    features: Object.fromEntries(
      timeframes.map((t) => {
        const m = features.perTimeframe.get(t);
        if (m === undefined) throw new RangeError(`features lack timeframe ${t}`);
        return [t, [...m.names]];
      }),
    ),
  };
  // The first row at which every window of this spec is known.
  let first = features.firstValidRow;
  for (const t of timeframes) {
    const idx = features.rowIndex.get(t)!;
    while (first < n && idx[first] < options.windows[t]! - 1) first++;
  }
  const cut = (range: DateRange, embargo: number): { rows: number[]; purged: number } => {
    const rows: number[] = [];
    let purged = 0;
    let k = 0;
    for (let i = first; i < n; i++) {
      if (decision[i] < range.fromMs || decision[i] >= range.toMs) continue;
      if (k++ < embargo) continue;
      const j = i + h;
      if (j >= n || decision[j] >= range.toMs) {
        purged++;
        continue;
      }
      if (decision[j] - decision[i] !== h * barMs) continue;
      if ((k - 1 - embargo) % stride === 0) rows.push(i);
    }
    return { rows, purged };
  };
  const tr = cut(options.splits.train, 0);
  const va = cut(options.splits.validation, options.embargoBars);
  const te =
    options.splits.test === undefined ? null : cut(options.splits.test, options.embargoBars);
  for (const [name, s] of [
    ['train', tr],
    ['validation', va],
  ] as const)
    if (s.rows.length === 0)
      throw new DataValidationError({
        source: `${base.symbol} ${features.base} features`,
        field: `splits.${name}`,
        reason: `no sample in the ${name} split (check the split dates and the data range)`,
      });
  const returnsOf = (rows: number[]): Float32Array =>
    Float32Array.from(rows, (i) => Math.log(close[i + h] / close[i]));
  const trainReturns = returnsOf(tr.rows);
  const threshold =
    'fixed' in options.threshold
      ? options.threshold.fixed
      : absQuantile(trainReturns, options.threshold.quantile);
  // The normaliser sees decision times up to the last training decision only.
  const lastTrain = tr.rows[tr.rows.length - 1];
  const normalizer = fitNormalizer(features, {
    // Finite bounds (the normaliser records them in JSON): the data start at the earliest.
    fromMs: Math.max(options.splits.train.fromMs, decision[0] - barMs),
    toMs: decision[lastTrain] + 1,
    method: options.normalizerMethod ?? 'zscore',
    clip: options.normalizerClip ?? null,
  });
  const make = (rows: number[], returns: Float32Array): WindowDataset =>
    new WindowDataset(
      features,
      spec,
      Int32Array.from(rows),
      {
        direction: Int32Array.from(returns, (r) => directionOf(r, threshold)),
        forwardReturn: returns,
      },
      normalizer,
    );
  return {
    train: make(tr.rows, trainReturns),
    validation: make(va.rows, returnsOf(va.rows)),
    test: te === null || te.rows.length === 0 ? null : make(te.rows, returnsOf(te.rows)),
    normalizer,
    threshold,
    spec,
    purged: { train: tr.purged, validation: va.purged, test: te?.purged ?? 0 },
  };
}

// ---------------------------------------------------------------------------------------------
// Metrics

/** Classification metrics of the direction head. */
export interface DirectionMetrics {
  /** Samples evaluated. */
  count: number;
  /** Fraction of samples whose most probable class is the true one. */
  accuracy: number;
  /** Unweighted mean of the per-class F1 scores (classes absent from labels and predictions count 0). */
  macroF1: number;
  /** Multi-class Brier score: mean over samples of Σ_k (p_k − y_k)². */
  brier: number;
  /** Mean negative log-likelihood of the true class. */
  logLoss: number;
  /** Confusion counts [true][predicted], 3 x 3 row-major. */
  confusion: number[];
}

/** Accumulates direction metrics from probabilities batch by batch. */
export class DirectionMetricsAccumulator {
  private count = 0;
  private correct = 0;
  private brierSum = 0;
  private nllSum = 0;
  private readonly confusion = new Float64Array(9);

  /** Adds B samples: `probs` [B·3] (down, flat, up), `labels` [B]. */
  add(probs: ArrayLike<number>, labels: ArrayLike<number>): void {
    for (let i = 0; i < labels.length; i++) {
      const y = labels[i];
      let best = 0;
      for (let k = 1; k < 3; k++) if (probs[i * 3 + k] > probs[i * 3 + best]) best = k;
      if (best === y) this.correct++;
      this.confusion[y * 3 + best]++;
      for (let k = 0; k < 3; k++) {
        const d = probs[i * 3 + k] - (k === y ? 1 : 0);
        this.brierSum += d * d;
      }
      this.nllSum -= Math.log(Math.max(probs[i * 3 + y], 1e-12));
      this.count++;
    }
  }

  /** The metrics so far. */
  result(): DirectionMetrics {
    const c = this.confusion;
    let f1 = 0;
    for (let k = 0; k < 3; k++) {
      const tp = c[k * 3 + k];
      const predicted = c[k] + c[3 + k] + c[6 + k];
      const actual = c[k * 3] + c[k * 3 + 1] + c[k * 3 + 2];
      f1 += predicted + actual === 0 ? 0 : (2 * tp) / (predicted + actual);
    }
    const n = Math.max(this.count, 1);
    return {
      count: this.count,
      accuracy: this.correct / n,
      macroF1: f1 / 3,
      brier: this.brierSum / n,
      logLoss: this.nllSum / n,
      confusion: Array.from(c),
    };
  }
}

/** Evaluation of a model on a dataset. */
export interface EvaluationResult extends DirectionMetrics {
  /** Mean weighted total loss (the training objective). */
  loss: number;
  /** Mean (class-weighted) cross-entropy of the direction head alone. */
  directionLoss: number;
  /** Correlation of predicted and realised forward returns. */
  returnCorrelation: number;
  /** Pattern accuracy overall and per class (samples with a known pattern only). */
  pattern: {
    accuracy: number;
    count: number;
    perClass: Record<string, { accuracy: number; count: number }>;
  } | null;
  /** Direction probabilities [N·3] in dataset order (when `keepPredictions`). */
  probabilities?: Float32Array;
}

function toTensors(spec: ModelInputSpec, batch: SequenceBatch): tf.Tensor3D[] {
  return spec.timeframes.map((t, j) =>
    tf.tensor3d(batch.windows[j], [batch.size, spec.windows[t]!, spec.features[t]!.length]),
  );
}

/**
 * Evaluates a model on a dataset in dataset order (no dropout): loss, direction metrics, return
 * correlation and pattern accuracy per class.
 */
export async function evaluateTimeSeriesModel(
  model: MultiTimeframeModel,
  data: SequenceDataset,
  options: {
    batchSize?: number;
    classWeights?: Float32Array | null;
    keepPredictions?: boolean;
  } = {},
): Promise<EvaluationResult> {
  const batchSize = options.batchSize ?? 256;
  const acc = new DirectionMetricsAccumulator();
  const P = model.config.patternClasses.length;
  const patCorrect = new Float64Array(P);
  const patCount = new Float64Array(P);
  const probsAll = options.keepPredictions === true ? new Float32Array(data.size * 3) : null;
  let lossSum = 0;
  let dirLossSum = 0;
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for await (const batch of data.batches({ batchSize })) {
    const xs = toTensors(model.spec, batch);
    const targets = {
      direction: batch.direction,
      forwardReturn: batch.forwardReturn,
      pattern: batch.pattern,
    };
    const out = model.forward(xs, null);
    const l = model.lossFrom(out, targets, options.classWeights ?? null);
    lossSum += l.total.dataSync()[0] * batch.size;
    dirLossSum += l.direction.dataSync()[0] * batch.size;
    tf.dispose([l.total, l.direction, l.forwardReturn, l.pattern ?? []].flat());
    const p = model.predictionFrom(out);
    disposeOutputs(out);
    const probs = p.direction.dataSync();
    const ret = p.forwardReturn.dataSync();
    acc.add(probs, batch.direction);
    if (probsAll !== null)
      for (let b = 0; b < batch.size; b++)
        for (let k = 0; k < 3; k++) probsAll[batch.indices[b] * 3 + k] = probs[b * 3 + k];
    for (let b = 0; b < batch.size; b++) {
      const x = ret[b];
      const y = batch.forwardReturn[b];
      sx += x;
      sy += y;
      sxx += x * x;
      syy += y * y;
      sxy += x * y;
    }
    if (p.pattern !== null && batch.pattern !== undefined) {
      const pp = p.pattern.dataSync();
      for (let b = 0; b < batch.size; b++) {
        const y = batch.pattern[b];
        if (y < 0 || y >= P) continue;
        let best = 0;
        for (let k = 1; k < P; k++) if (pp[b * P + k] > pp[b * P + best]) best = k;
        patCount[y]++;
        if (best === y) patCorrect[y]++;
      }
    }
    n += batch.size;
    tf.dispose([...xs, p.direction, p.forwardReturn, p.pattern ?? []].flat());
  }
  const cov = sxy / n - (sx / n) * (sy / n);
  const vx = sxx / n - (sx / n) ** 2;
  const vy = syy / n - (sy / n) ** 2;
  const totalPat = patCount.reduce((a, b) => a + b, 0);
  return {
    ...acc.result(),
    loss: lossSum / Math.max(n, 1),
    directionLoss: dirLossSum / Math.max(n, 1),
    returnCorrelation: vx > 0 && vy > 0 ? cov / Math.sqrt(vx * vy) : 0,
    pattern:
      P === 0 || totalPat === 0
        ? null
        : {
            accuracy: patCorrect.reduce((a, b) => a + b, 0) / totalPat,
            count: totalPat,
            perClass: Object.fromEntries(
              model.config.patternClasses.map((name, k) => [
                name,
                { accuracy: patCount[k] > 0 ? patCorrect[k] / patCount[k] : 0, count: patCount[k] },
              ]),
            ),
          },
    ...(probsAll !== null ? { probabilities: probsAll } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Optimizer

/** Options of `Adam`. */
export interface AdamOptions {
  /** Decay rate of the first-moment estimate, default 0.9. */
  beta1?: number;
  /** Decay rate of the second-moment estimate, default 0.999. */
  beta2?: number;
  /** Added to the root of the second moment in the denominator, default 1e-8. */
  epsilon?: number;
  /** Decoupled weight decay (AdamW), per step: p −= lr · weightDecay · p. Default 0. */
  weightDecay?: number;
  /**
   * Decay of an exponential moving average of the weights kept beside them (Polyak averaging;
   * 0 = off, the default). Per step the average moves by 1 − min(decay, (1 + t) / (10 + t)),
   * so early steps are not dominated by the initial weights.
   */
  averageDecay?: number;
  /** Clip the global gradient norm to this value; 0 = no clipping. Default 0. */
  clipNorm?: number;
}

/** Serialisable optimizer state. */
export interface AdamState {
  /** Optimizer steps taken (Adam's bias-correction counter). */
  step: number;
  /** First-moment estimates, one array per variable (variable order). */
  m: Float32Array[];
  /** Second-moment estimates, one array per variable (variable order). */
  v: Float32Array[];
  /** Moving average of the weights, one array per variable, or null when averaging is off. */
  average: Float32Array[] | null;
}

/**
 * Adam (PyTorch's update, with optional decoupled weight decay and global-norm clipping), kept in
 * float32 arrays on the JS side: its state is exact to save and restore, and the update is one
 * loop over all parameters instead of a dozen tfjs ops per variable.
 */
export class Adam {
  private readonly variables: readonly tf.Variable[];
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  private readonly clipNorm: number;
  private readonly averageDecay: number;
  private state: AdamState;

  /**
   * @param variables - the trainable variables, in the order gradients are passed.
   * @param options - PyTorch's defaults: betas 0.9 / 0.999, epsilon 1e-8, no decay, no clipping.
   */
  constructor(variables: readonly tf.Variable[], options: AdamOptions = {}) {
    this.variables = variables;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.clipNorm = options.clipNorm ?? 0;
    this.averageDecay = options.averageDecay ?? 0;
    if (!(this.averageDecay >= 0 && this.averageDecay < 1))
      throw new RangeError(`averageDecay must be in [0, 1), got ${this.averageDecay}`);
    this.state = {
      step: 0,
      m: variables.map((v) => new Float32Array(v.size)),
      v: variables.map((v) => new Float32Array(v.size)),
      average:
        this.averageDecay > 0
          ? variables.map((v) => Float32Array.from(v.dataSync() as Float32Array))
          : null,
    };
  }

  /**
   * Applies one update with gradients in variable order at learning rate `lr`. Returns the global
   * gradient norm before clipping (NaN/Infinity gradients skip the update and return NaN).
   */
  apply(grads: readonly tf.Tensor[], lr: number): number {
    const g = grads.map((t) => t.dataSync() as Float32Array);
    let sq = 0;
    for (const a of g) for (let i = 0; i < a.length; i++) sq += a[i] * a[i];
    const norm = Math.sqrt(sq);
    if (!Number.isFinite(norm)) return NaN;
    const scale = this.clipNorm > 0 && norm > this.clipNorm ? this.clipNorm / norm : 1;
    const s = this.state;
    s.step++;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const c1 = 1 - Math.pow(b1, s.step);
    const c2 = 1 - Math.pow(b2, s.step);
    const decay = 1 - lr * this.weightDecay;
    const avgKeep = Math.min(this.averageDecay, (1 + s.step) / (10 + s.step));
    for (let k = 0; k < this.variables.length; k++) {
      const v = this.variables[k];
      const p = Float32Array.from(v.dataSync() as Float32Array);
      const m = s.m[k];
      const vv = s.v[k];
      const gk = g[k];
      for (let i = 0; i < p.length; i++) {
        const gi = gk[i] * scale;
        const mi = b1 * m[i] + (1 - b1) * gi;
        const vi = b2 * vv[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        vv[i] = vi;
        p[i] = p[i] * decay - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + this.epsilon);
      }
      if (s.average !== null) {
        const a = s.average[k];
        for (let i = 0; i < p.length; i++) a[i] = avgKeep * a[i] + (1 - avgKeep) * p[i];
      }
      assignValues(v, p);
    }
    return norm;
  }

  /** A copy of the state (for checkpoints). */
  getState(): AdamState {
    return {
      step: this.state.step,
      m: this.state.m.map((a) => a.slice()),
      v: this.state.v.map((a) => a.slice()),
      average: this.state.average?.map((a) => a.slice()) ?? null,
    };
  }

  /** A copy of the moving average of the weights (variable order), or null when it is off. */
  averageWeights(): Float32Array[] | null {
    return this.state.average?.map((a) => a.slice()) ?? null;
  }

  /** Restores a state from `getState`. @throws {RangeError} on a size mismatch. */
  setState(state: AdamState): void {
    if (state.m.length !== this.variables.length || state.v.length !== this.variables.length)
      throw new RangeError('optimizer state has another number of variables');
    state.m.forEach((a, k) => {
      if (a.length !== this.variables[k].size || state.v[k].length !== a.length)
        throw new RangeError(`optimizer state of variable ${k} has the wrong size`);
    });
    if ((state.average !== null) !== this.averageDecay > 0)
      throw new RangeError(
        `optimizer state ${state.average === null ? 'lacks' : 'has'} a weight average, this optimizer ${this.averageDecay > 0 ? 'keeps one' : 'keeps none'}`,
      );
    state.average?.forEach((a, k) => {
      if (a.length !== this.variables[k].size)
        throw new RangeError(`weight average of variable ${k} has the wrong size`);
    });
    this.state = {
      step: state.step,
      m: state.m.map((a) => a.slice()),
      v: state.v.map((a) => a.slice()),
      average: state.average?.map((a) => a.slice()) ?? null,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Training

/** Learning-rate schedule. */
export type LearningRateSchedule =
  | {
      /** The base `learningRate` at every step. */
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
  /** Multiply by `factor` after `patience` epochs without a validation-loss improvement. */
  | {
      /** Reduce on plateau of the monitored validation figure. */
      type: 'plateau';
      /** Multiplier applied to the learning rate at each reduction, in (0, 1). */
      factor: number;
      /** Epochs without improvement of the monitored figure before a reduction. */
      patience: number;
      /** Floor of the learning rate. */
      minLearningRate: number;
    };

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

const CKPT_FORMAT = 'ctm-train-checkpoint';

interface CheckpointDoc {
  format: string;
  version: 1;
  state: TrainState;
  optimizerStep: number;
  weightNames: string[];
  dataFile: string;
  /** Whether the weight average follows the second moments in the data file. */
  hasAverage: boolean;
  hasBest: boolean;
  /** Fingerprint of what the run trains on; resuming with other data or settings is refused. */
  fingerprint: string;
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

function learningRateAt(
  schedule: LearningRateSchedule,
  base: number,
  step: number,
  totalSteps: number,
  plateauLr: number,
): number {
  if (schedule.type === 'constant') return base;
  if (schedule.type === 'plateau') return plateauLr;
  if (step < schedule.warmupSteps) return (base * (step + 1)) / schedule.warmupSteps;
  const span = Math.max(1, totalSteps - schedule.warmupSteps);
  const progress = Math.min(1, (step - schedule.warmupSteps) / span);
  return (
    schedule.minLearningRate +
    0.5 * (base - schedule.minLearningRate) * (1 + Math.cos(Math.PI * progress))
  );
}

/** JSON has no Infinity or NaN: checkpoints carry them as tagged strings. */
function encodeNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? `#num:${value}` : value;
}

function decodeNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.startsWith('#num:') ? Number(value.slice(5)) : value;
}

function writeCheckpoint(
  dir: string,
  state: TrainState,
  model: MultiTimeframeModel,
  opt: Adam,
  best: Map<string, Float32Array> | null,
  fingerprint: string,
): void {
  mkdirSync(dir, { recursive: true });
  const names = model.weightNames;
  const weights = model.getWeights();
  const os = opt.getState();
  const parts: Float32Array[] = [];
  for (const name of names) parts.push(weights.get(name)!);
  parts.push(...os.m, ...os.v, ...(os.average ?? []));
  if (best !== null) for (const name of names) parts.push(best.get(name)!);
  const total = parts.reduce((s, p) => s + p.length, 0);
  const all = new Float32Array(total);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  const dataFile = `ckpt-${String(state.globalStep).padStart(9, '0')}.bin`;
  writeFileAtomicSync(join(dir, dataFile), new Uint8Array(all.buffer));
  const doc: CheckpointDoc = {
    format: CKPT_FORMAT,
    version: 1,
    state,
    optimizerStep: os.step,
    weightNames: names,
    dataFile,
    hasAverage: os.average !== null,
    hasBest: best !== null,
    fingerprint,
  };
  writeFileAtomicSync(join(dir, 'checkpoint.json'), JSON.stringify(doc, encodeNonFinite) + '\n');
  for (const f of readdirSync(dir))
    if (/^ckpt-\d+\.bin$/.test(f) && f !== dataFile) rmSync(join(dir, f), { force: true });
}

function readCheckpoint(
  dir: string,
  model: MultiTimeframeModel,
  opt: Adam,
  fingerprint: string,
): { state: TrainState; best: Map<string, Float32Array> | null } | null {
  const file = join(dir, 'checkpoint.json');
  if (!existsSync(file)) return null;
  let doc: CheckpointDoc;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'), decodeNonFinite) as CheckpointDoc;
  } catch (err) {
    throw new CheckpointError(file, 'checkpoint.json is not valid JSON', { cause: err });
  }
  if (doc.format !== CKPT_FORMAT || doc.version !== 1)
    throw new CheckpointError(file, `not a ${CKPT_FORMAT} v1 checkpoint`);
  if (doc.fingerprint !== fingerprint)
    throw new CheckpointError(
      file,
      'the checkpoint was written for other data, model or training settings',
      {
        hint: "resume with the run's own config and data, or start a new run",
      },
    );
  const names = model.weightNames;
  if (doc.weightNames.join(',') !== names.join(','))
    throw new CheckpointError(file, 'the checkpoint belongs to another model architecture');
  const bin = readFileSync(join(dir, doc.dataFile));
  const all = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  const vars = model.trainableVariables;
  let off = 0;
  const take = (len: number): Float32Array => {
    if (off + len > all.length)
      throw new CheckpointError(join(dir, doc.dataFile), 'checkpoint data is truncated');
    const a = all.slice(off, off + len);
    off += len;
    return a;
  };
  const weights = new Map<string, Float32Array>();
  names.forEach((name, k) => weights.set(name, take(vars[k].size)));
  const m = vars.map((v) => take(v.size));
  const v = vars.map((x) => take(x.size));
  const average = doc.hasAverage ? vars.map((x) => take(x.size)) : null;
  let best: Map<string, Float32Array> | null = null;
  if (doc.hasBest) {
    best = new Map();
    names.forEach((name, k) => best!.set(name, take(vars[k].size)));
  }
  model.setWeights(weights);
  opt.setState({ step: doc.optimizerStep, m, v, average });
  return { state: doc.state, best };
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
  const opt = new Adam(vars, {
    weightDecay: options.weightDecay ?? 0,
    clipNorm: options.clipNorm ?? 1,
    averageDecay: options.averageDecay ?? 0,
  });
  const averaged = (): Map<string, Float32Array> | null => {
    const a = opt.averageWeights();
    return a === null ? null : new Map(model.weightNames.map((name, k) => [name, a[k]]));
  };
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify({
        spec: model.spec,
        weights: model.weightNames,
        n: [trainData.size, valData.size],
        labels: createHash('sha256')
          .update(new Uint8Array(labels.buffer, labels.byteOffset, labels.byteLength))
          .digest('hex'),
        normalizer: model.normalizer?.json ?? null,
        options: {
          ...options,
          run: undefined,
          onEpochEnd: undefined,
          logger: undefined,
          checkpoint: undefined,
          resume: undefined,
          progress: undefined,
        },
      }),
    )
    .digest('hex');
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
    const restored = readCheckpoint(ckpt.dir, model, opt, fingerprint);
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
    writeCheckpoint(ckpt.dir, state, model, opt, best, fingerprint);
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
      const norm = opt.apply(gradList, lr);
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
