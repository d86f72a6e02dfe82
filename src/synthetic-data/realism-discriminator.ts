// The discriminative score: time-blocked, purged cross-validation of the boosted trees telling
// real windows from other windows, with cluster-bootstrap intervals. Never trains and scores on
// windows that share a time range.

import { TIMEFRAME_MS } from '../data-processing/candles.js';
import { DataValidationError } from '../errors.js';
import { Rng } from '../utils/random.js';
import {
  fitGradientBoostedTrees,
  type GbtOptions,
  predictGradientBoostedTrees,
  rocAuc,
} from './realism-gbt.js';
import { quantileSorted } from './realism-stats.js';
import { type WindowSet } from './realism-windows.js';

/** Options of `discriminativeScore`. */
export interface DiscriminativeOptions {
  /** Contiguous time blocks per class; each is the test set once (default 5). */
  folds: number;
  /** Windows whose span reaches into the test block are purged from training (in ms; default 256 x 15m). */
  purgeMs: number;
  /** Bootstrap resamples for the confidence intervals (default 1000). */
  bootstrap: number;
  /** Length of the bootstrap clusters of consecutive windows, in days (default 7). */
  clusterDays: number;
  /** Classifier hyperparameters. */
  gbt: Partial<GbtOptions>;
  /** Seed of the bootstrap and of the classifier. */
  seed: number;
}

/** Default options of `discriminativeScore`. */
export const DEFAULT_DISCRIMINATIVE: Readonly<DiscriminativeOptions> = Object.freeze({
  folds: 5,
  purgeMs: 256 * TIMEFRAME_MS['15m'],
  bootstrap: 1000,
  clusterDays: 7,
  gbt: {},
  seed: 1,
});

/** A point estimate with its 95% confidence interval. */
export interface Estimate {
  /** Point estimate. */
  value: number;
  /** Lower bound of the 95% interval. */
  lo: number;
  /** Upper bound of the 95% interval. */
  hi: number;
}

/** Result of `discriminativeScore`. */
export interface DiscriminativeResult {
  /** Out-of-fold accuracy at threshold 0.5 (chance = 0.5; classes are balanced). */
  accuracy: Estimate;
  /** Out-of-fold ROC AUC. */
  auc: Estimate;
  /** Windows per class after balancing. */
  windowsPerClass: number;
  /** Time blocks (folds) used per class. */
  folds: number;
  /** The five features the trees split on most (split counts). */
  topFeatures: { name: string; splits: number }[];
}

/** Evenly spaced subset of `k` row indices out of `n` (all when k >= n). */
function evenSubset(n: number, k: number): Int32Array {
  if (k >= n) return Int32Array.from({ length: n }, (_, i) => i);
  return Int32Array.from({ length: k }, (_, i) => Math.floor(((i + 0.5) * n) / k));
}

/**
 * Trains the boosted trees to tell `real` windows (label 1) from `other` windows (label 0) with
 * time-blocked cross-validation: each class is cut into `folds` contiguous time blocks; for fold
 * k the trees train on the other blocks (minus windows overlapping block k, purged) and score
 * block k, so real windows used for training and for scoring never share a time range. The
 * larger class is thinned evenly to the size of the smaller. Accuracy and AUC are pooled over
 * folds; 95% intervals come from a bootstrap over clusters of `clusterDays` consecutive windows.
 * @throws {DataValidationError} when a class has fewer than 2 x folds windows or names differ.
 */
export function discriminativeScore(
  real: WindowSet,
  other: WindowSet,
  options: Partial<DiscriminativeOptions> = {},
): DiscriminativeResult {
  const o = { ...DEFAULT_DISCRIMINATIVE, ...options };
  if (real.names.join() !== other.names.join())
    throw new DataValidationError({
      source: 'discriminativeScore',
      reason: 'feature names differ',
    });
  const per = Math.min(real.rows, other.rows);
  if (per < 2 * o.folds)
    throw new DataValidationError({
      source: 'discriminativeScore',
      reason: `too few windows (${real.rows} real, ${other.rows} other) for ${o.folds} folds`,
    });
  const cols = real.names.length;
  const sets = [other, real];
  const pick = sets.map((s) => evenSubset(s.rows, per));
  // Block id of each selected window (by time position within its own class).
  const block = sets.map((s, c) => {
    const t0 = s.endTimes[pick[c][0]];
    const t1 = s.endTimes[pick[c][per - 1]];
    return Int32Array.from(pick[c], (i) =>
      Math.min(o.folds - 1, Math.floor(((s.endTimes[i] - t0) / (t1 - t0 + 1)) * o.folds)),
    );
  });
  const prob = [new Float64Array(per), new Float64Array(per)];
  const splitCounts = new Float64Array(cols);
  for (let k = 0; k < o.folds; k++) {
    const trainRows: number[] = [];
    const trainY: number[] = [];
    for (let c = 0; c < 2; c++) {
      const s = sets[c];
      let lo = Infinity;
      let hi = -Infinity;
      for (let j = 0; j < per; j++)
        if (block[c][j] === k) {
          lo = Math.min(lo, s.endTimes[pick[c][j]]);
          hi = Math.max(hi, s.endTimes[pick[c][j]]);
        }
      for (let j = 0; j < per; j++) {
        if (block[c][j] === k) continue;
        const t = s.endTimes[pick[c][j]];
        if (t > lo - o.purgeMs && t < hi + o.purgeMs) continue;
        trainRows.push(c * per + j);
        trainY.push(c);
      }
    }
    const xTrain = new Float64Array(trainRows.length * cols);
    trainRows.forEach((code, r) => {
      const c = code >= per ? 1 : 0;
      const j = code - c * per;
      xTrain.set(sets[c].x.subarray(pick[c][j] * cols, (pick[c][j] + 1) * cols), r * cols);
    });
    const model = fitGradientBoostedTrees(xTrain, trainRows.length, cols, Uint8Array.from(trainY), {
      ...o.gbt,
      seed: o.seed + k,
    });
    for (let t = 0; t < model.feature.length; t++)
      if (model.feature[t] >= 0) splitCounts[model.feature[t]]++;
    for (let c = 0; c < 2; c++) {
      const rowsK: number[] = [];
      for (let j = 0; j < per; j++) if (block[c][j] === k) rowsK.push(j);
      const xTest = new Float64Array(rowsK.length * cols);
      rowsK.forEach((j, r) =>
        xTest.set(sets[c].x.subarray(pick[c][j] * cols, (pick[c][j] + 1) * cols), r * cols),
      );
      const p = predictGradientBoostedTrees(model, xTest, rowsK.length);
      rowsK.forEach((j, r) => (prob[c][j] = p[r]));
    }
  }
  const scores = new Float64Array(2 * per);
  const labels = new Uint8Array(2 * per);
  for (let c = 0; c < 2; c++)
    for (let j = 0; j < per; j++) {
      scores[c * per + j] = prob[c][j];
      labels[c * per + j] = c;
    }
  const acc = accuracyOf(scores, labels);
  const auc = rocAuc(scores, labels);
  // Cluster bootstrap: clusters of consecutive windows of about clusterDays, per class.
  const clusterMs = o.clusterDays * TIMEFRAME_MS['1d'];
  const clusters = sets.map((s, c) => {
    const map = new Map<number, number[]>();
    const t0 = s.endTimes[pick[c][0]];
    for (let j = 0; j < per; j++) {
      const id = Math.floor((s.endTimes[pick[c][j]] - t0) / clusterMs);
      const list = map.get(id);
      if (list === undefined) map.set(id, [c * per + j]);
      else list.push(c * per + j);
    }
    return [...map.values()];
  });
  const rng = new Rng(o.seed ^ 0x5eed);
  const accs = new Float64Array(o.bootstrap);
  const aucs = new Float64Array(o.bootstrap);
  const bs: number[] = [];
  const bl: number[] = [];
  for (let b = 0; b < o.bootstrap; b++) {
    bs.length = 0;
    bl.length = 0;
    for (let c = 0; c < 2; c++) {
      const cl = clusters[c];
      for (let q = 0; q < cl.length; q++) {
        const members = cl[rng.int(cl.length)];
        for (const m of members) {
          bs.push(scores[m]);
          bl.push(labels[m]);
        }
      }
    }
    accs[b] = accuracyOf(bs, bl);
    aucs[b] = rocAuc(bs, bl);
  }
  accs.sort();
  aucs.sort();
  const ranked = Array.from(splitCounts, (v, i) => ({ name: real.names[i], splits: v }))
    .sort((a, b) => b.splits - a.splits)
    .slice(0, 5);
  return {
    accuracy: { value: acc, lo: quantileSorted(accs, 0.025), hi: quantileSorted(accs, 0.975) },
    auc: { value: auc, lo: quantileSorted(aucs, 0.025), hi: quantileSorted(aucs, 0.975) },
    windowsPerClass: per,
    folds: o.folds,
    topFeatures: ranked,
  };
}

function accuracyOf(score: ArrayLike<number>, label: ArrayLike<number>): number {
  let ok = 0;
  for (let i = 0; i < score.length; i++) if ((score[i] >= 0.5 ? 1 : 0) === label[i]) ok++;
  return ok / score.length;
}
