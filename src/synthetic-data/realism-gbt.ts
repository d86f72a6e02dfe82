// The classifier behind the discriminative score: histogram-based gradient-boosted trees with
// logistic loss (our own, deterministic for a seed), and the ROC AUC. Knows nothing of markets.

import { Rng } from '../utils/random.js';
import { quantileSorted } from './realism-stats.js';

/** Hyperparameters of `fitGradientBoostedTrees`. */
export interface GbtOptions {
  /** Boosting rounds. */
  rounds: number;
  /** Maximum depth of each tree. */
  depth: number;
  /** Shrinkage of each tree's leaf values. */
  learningRate: number;
  /** Quantile bins per feature (<= 255). */
  bins: number;
  /** Minimum training rows in a leaf. */
  minLeaf: number;
  /** L2 regularisation of leaf values. */
  lambda: number;
  /** Fraction of rows drawn (without replacement) for each tree. */
  rowSubsample: number;
  /** Fraction of features considered by each tree. */
  colSubsample: number;
  /** Seed of the subsampling. */
  seed: number;
}

/** Default GBT hyperparameters (also in config/default.yaml under synthetic.realism.gbt). */
export const DEFAULT_GBT: Readonly<GbtOptions> = Object.freeze({
  rounds: 200,
  depth: 3,
  learningRate: 0.05,
  bins: 32,
  minLeaf: 8,
  lambda: 1,
  rowSubsample: 0.8,
  colSubsample: 0.6,
  seed: 1,
});

/** A fitted boosted-tree classifier. Trees are stored flat: node k of tree t at t * nodesPerTree + k. */
export interface GbtModel {
  /** Number of features the model was fitted on. */
  cols: number;
  /** Initial log-odds: log(prior / (1 - prior)) of the training labels. */
  base: number;
  /** Node slots per tree (a full binary tree of the fitted depth). */
  nodesPerTree: number;
  /** Feature index of each node, -1 for a leaf. */
  feature: Int32Array;
  /** Go left when value <= threshold (NaN goes right). */
  threshold: Float64Array;
  /** Leaf value (already multiplied by the learning rate). */
  value: Float64Array;
  /** Number of trees (boosting rounds). */
  trees: number;
}

/**
 * Fits histogram-based gradient-boosted trees with logistic loss on rows x cols features
 * (row-major; NaN allowed) and 0/1 labels. Deterministic for a given seed.
 */
export function fitGradientBoostedTrees(
  x: Float64Array,
  rows: number,
  cols: number,
  y: Uint8Array,
  options: Partial<GbtOptions> = {},
): GbtModel {
  const o = { ...DEFAULT_GBT, ...options };
  const rng = new Rng(o.seed);
  // Bin edges per feature from training quantiles.
  const edges: Float64Array[] = [];
  const binned = new Uint8Array(rows * cols);
  const col = new Float64Array(rows);
  for (let f = 0; f < cols; f++) {
    let m = 0;
    for (let i = 0; i < rows; i++) {
      const v = x[i * cols + f];
      if (!Number.isNaN(v)) col[m++] = v;
    }
    const sorted = col.subarray(0, m).slice().sort();
    const e: number[] = [];
    for (let b = 1; b < o.bins; b++) {
      const q = quantileSorted(sorted, b / o.bins);
      if (Number.isFinite(q) && (e.length === 0 || q > e[e.length - 1])) e.push(q);
    }
    const ef = Float64Array.from(e);
    edges.push(ef);
    for (let i = 0; i < rows; i++) {
      const v = x[i * cols + f];
      binned[i * cols + f] = Number.isNaN(v) ? ef.length + 1 : upperCount(ef, v);
    }
  }
  const nb = o.bins + 2;
  const nodesPerTree = (1 << (o.depth + 1)) - 1;
  const feature = new Int32Array(nodesPerTree * o.rounds).fill(-1);
  const threshold = new Float64Array(nodesPerTree * o.rounds);
  const value = new Float64Array(nodesPerTree * o.rounds);
  let pos = 0;
  for (let i = 0; i < rows; i++) pos += y[i];
  const prior = Math.min(Math.max(pos / rows, 1e-3), 1 - 1e-3);
  const base = Math.log(prior / (1 - prior));
  const score = new Float64Array(rows).fill(base);
  const g = new Float64Array(rows);
  const h = new Float64Array(rows);
  const histG = new Float64Array(cols * nb);
  const histH = new Float64Array(cols * nb);
  const histN = new Int32Array(cols * nb);
  const order = new Int32Array(rows);
  for (let i = 0; i < rows; i++) order[i] = i;
  const colOrder = new Int32Array(cols);
  for (let f = 0; f < cols; f++) colOrder[f] = f;
  const nRows = Math.max(2, Math.floor(rows * o.rowSubsample));
  const nCols = Math.max(1, Math.floor(cols * o.colSubsample));
  for (let t = 0; t < o.rounds; t++) {
    for (let i = 0; i < rows; i++) {
      const p = 1 / (1 + Math.exp(-score[i]));
      g[i] = p - y[i];
      h[i] = Math.max(p * (1 - p), 1e-6);
    }
    rng.shuffle(order);
    rng.shuffle(colOrder);
    const feats = colOrder.slice(0, nCols);
    // Node membership lists, breadth first: node k's children are 2k+1 and 2k+2.
    const members: (Int32Array | null)[] = new Array<Int32Array | null>(nodesPerTree).fill(null);
    members[0] = order.slice(0, nRows).sort();
    const off = t * nodesPerTree;
    for (let k = 0; k < nodesPerTree; k++) {
      const idx = members[k];
      if (idx === null) continue;
      let G = 0;
      let H = 0;
      for (let j = 0; j < idx.length; j++) {
        G += g[idx[j]];
        H += h[idx[j]];
      }
      const depthOfK = Math.floor(Math.log2(k + 1));
      value[off + k] = (-G / (H + o.lambda)) * o.learningRate;
      if (depthOfK >= o.depth || idx.length < 2 * o.minLeaf) continue;
      histG.fill(0);
      histH.fill(0);
      histN.fill(0);
      for (let j = 0; j < idx.length; j++) {
        const i = idx[j];
        const gi = g[i];
        const hi = h[i];
        const rowOff = i * cols;
        for (let q = 0; q < feats.length; q++) {
          const f = feats[q];
          const cell = f * nb + binned[rowOff + f];
          histG[cell] += gi;
          histH[cell] += hi;
          histN[cell]++;
        }
      }
      const parentGain = (G * G) / (H + o.lambda);
      let bestGain = 1e-9;
      let bestF = -1;
      let bestB = -1;
      for (let q = 0; q < feats.length; q++) {
        const f = feats[q];
        let gl = 0;
        let hl = 0;
        let nl = 0;
        const last = edges[f].length;
        for (let b = 0; b < last; b++) {
          const cell = f * nb + b;
          gl += histG[cell];
          hl += histH[cell];
          nl += histN[cell];
          const nr = idx.length - nl;
          if (nl < o.minLeaf || nr < o.minLeaf) continue;
          const gr = G - gl;
          const hr = H - hl;
          const gain = (gl * gl) / (hl + o.lambda) + (gr * gr) / (hr + o.lambda) - parentGain;
          if (gain > bestGain) {
            bestGain = gain;
            bestF = f;
            bestB = b;
          }
        }
      }
      if (bestF < 0) continue;
      feature[off + k] = bestF;
      threshold[off + k] = edges[bestF][bestB];
      let nl = 0;
      for (let j = 0; j < idx.length; j++) if (binned[idx[j] * cols + bestF] <= bestB) nl++;
      const left = new Int32Array(nl);
      const right = new Int32Array(idx.length - nl);
      let a = 0;
      let c = 0;
      for (let j = 0; j < idx.length; j++) {
        if (binned[idx[j] * cols + bestF] <= bestB) left[a++] = idx[j];
        else right[c++] = idx[j];
      }
      members[2 * k + 1] = left;
      members[2 * k + 2] = right;
    }
    // Update scores of all rows with this tree.
    for (let i = 0; i < rows; i++)
      score[i] += treeValue(feature, threshold, value, off, x, i * cols);
  }
  return { cols, base, nodesPerTree, feature, threshold, value, trees: o.rounds };
}

function upperCount(edges: Float64Array, v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function treeValue(
  feature: Int32Array,
  threshold: Float64Array,
  value: Float64Array,
  off: number,
  x: Float64Array,
  rowOff: number,
): number {
  let k = 0;
  for (;;) {
    const f = feature[off + k];
    if (f < 0) return value[off + k];
    const v = x[rowOff + f];
    k = v <= threshold[off + k] ? 2 * k + 1 : 2 * k + 2;
  }
}

/** Probability of class 1 for each row of `x` (rows x model.cols, row-major). */
export function predictGradientBoostedTrees(
  model: GbtModel,
  x: Float64Array,
  rows: number,
): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = model.base;
    for (let t = 0; t < model.trees; t++)
      s += treeValue(
        model.feature,
        model.threshold,
        model.value,
        t * model.nodesPerTree,
        x,
        i * model.cols,
      );
    out[i] = 1 / (1 + Math.exp(-s));
  }
  return out;
}

/** Area under the ROC curve of scores for labels (ties count one half). */
export function rocAuc(score: ArrayLike<number>, label: ArrayLike<number>): number {
  const n = score.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => score[a] - score[b]);
  let pos = 0;
  for (let i = 0; i < n; i++) pos += label[i] === 1 ? 1 : 0;
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  // Mann–Whitney U with average ranks for ties.
  let rankSum = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && score[idx[j + 1]] === score[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (label[idx[k]] === 1) rankSum += avg;
    i = j + 1;
  }
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}
