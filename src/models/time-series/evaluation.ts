// Evaluation of the sequence model on a labelled window dataset: direction metrics (accuracy,
// macro F1, Brier score, log loss, confusion), the training objective, the correlation of predicted
// and realised forward returns, and pattern accuracy per class. Reads data, never trains.

import * as tf from '@tensorflow/tfjs';
import type {
  ModelInputSpec,
  SequenceBatch,
  SequenceDataset,
} from '../../data-processing/window-datasets.js';
import { disposeOutputs, type MultiTimeframeModel } from './model.js';

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

/** The windows of a batch as one [B, T, F] tensor per timeframe (spec order). */
export function toTensors(spec: ModelInputSpec, batch: SequenceBatch): tf.Tensor3D[] {
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
