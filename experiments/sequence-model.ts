// Experiments of the sequence model (section `sequence-model` of docs/results.md):
// 1. Synthetic pattern data (`buildSyntheticDataset`, one dataset per seed): the full model
//    against each single-timeframe ablation (the same model on one timeframe's windows) and a
//    logistic regression on the same windows; test-set direction (action) accuracy per seed, mean
//    +- standard error over 3 seeds, and the pattern-type accuracy per type.
// 2. Real BTC/USDT candles (../shared/data): rolling walk-forward (2 years train, 1 year test,
//    purge and embargo = label horizon) of the full model, the same pipeline with shuffled training
//    labels (the control), logistic regression, and the majority class.
// Run: `node --import tsx experiments/sequence-model.ts [--tiny] [--out FILE]` (or through
// experiments/run-all); the section goes to docs/results.md unless --out names another file.
// Never reads the holdout split; never tunes anything on test rows.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { TIMEFRAME_MS, type Candles, type Timeframe } from '../src/data-processing/candles.js';
import { buildFeatures } from '../src/data-processing/feature-engineering.js';
import { DiskDataset } from '../src/data-processing/dataset-format.js';
import { buildSyntheticDataset } from '../src/synthetic-data/dataset-builder.js';
import { loadCandleDirectory } from '../src/data-processing/data-loader.js';
import { initTensorflow } from '../src/models/common/backend.js';
import { Adam } from '../src/models/common/optimizer.js';
import { assignValues, variableParameter } from '../src/models/common/tensors.js';
import { MultiTimeframeModel, normalizerStats } from '../src/models/time-series/model.js';
import { trainTimeSeriesModel } from '../src/models/time-series/trainer.js';
import { defaultConfig } from '../src/utils/config.js';
import { writeResultsSection } from './results-section.js';
import { logger } from '../src/utils/logger.js';
import { Rng } from '../src/utils/random.js';
import { walkForwardSplits, type DateRange } from '../src/data-processing/splits.js';
import {
  type ModelInputSpec,
  createWindowDatasets,
  sampleOrder,
  timeframeSubset,
  WindowDataset,
  type SequenceDataset,
  type WindowDatasets,
} from '../src/data-processing/window-datasets.js';
import {
  DirectionMetricsAccumulator,
  evaluateTimeSeriesModel,
  type DirectionMetrics,
  type EvaluationResult,
} from '../src/models/time-series/evaluation.js';

const log = logger.child({ module: 'experiment.sequence-model' });
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SECTION = 'sequence-model';

/** Sizes of one experiment run. */
interface Scale {
  name: 'full' | 'tiny';
  hidden: number;
  heads: number;
  dense: number;
  windows: Record<'15m' | '4h' | '1d', number>;
  epochs: number;
  batch: number;
  learningRate: number;
  /** Decay of the moving average of the weights that validation and testing use. */
  averageDecay: number;
  seeds: number[];
  /** Samples of each synthetic pattern dataset. */
  patternSamples: number;
  real: { from: string; to: string; trainYears: number; testYears: number; stride: number };
}

const FULL: Scale = {
  name: 'full',
  hidden: 64,
  heads: 4,
  dense: 64,
  windows: { '15m': 64, '4h': 32, '1d': 16 },
  epochs: 12,
  batch: 64,
  learningRate: 1e-3,
  averageDecay: 0.999,
  seeds: [1, 2, 3],
  patternSamples: 100_000,
  real: { from: '2019-01-01', to: '2024-01-01', trainYears: 2, testYears: 1, stride: 4 },
};

const TINY: Scale = {
  name: 'tiny',
  hidden: 8,
  heads: 2,
  dense: 8,
  windows: { '15m': 16, '4h': 8, '1d': 4 },
  epochs: 2,
  batch: 32,
  learningRate: 3e-3,
  averageDecay: 0.99,
  seeds: [1, 2, 3],
  patternSamples: 400,
  real: { from: '2022-07-01', to: '2024-01-01', trainYears: 1, testYears: 0.25, stride: 96 },
};

const REAL_HORIZON = 16; // real-data label horizon (4 hours)

// ---------------------------------------------------------------------------------------------
// Statistics

function mean(x: number[]): number {
  return x.reduce((a, b) => a + b, 0) / x.length;
}

/** Standard error of the mean (n − 1 in the variance). */
function stderr(x: number[]): number {
  if (x.length < 2) return NaN;
  const m = mean(x);
  return Math.sqrt(x.reduce((a, b) => a + (b - m) ** 2, 0) / (x.length - 1) / x.length);
}

function pct(x: number): string {
  return Number.isFinite(x) ? (100 * x).toFixed(1) : 'n/a';
}

function pm(x: number[]): string {
  return `${pct(mean(x))} ± ${pct(stderr(x))}`;
}

// ---------------------------------------------------------------------------------------------
// Models

function createModel(
  spec: ModelInputSpec,
  s: Scale,
  seed: number,
  patternClasses: readonly string[],
): MultiTimeframeModel {
  return MultiTimeframeModel.create(
    {
      spec,
      cell: 'gru',
      gruImplementation: 'fused',
      hiddenDims: s.hidden,
      numLayers: 1,
      pooling: 'last',
      attentionHeads: spec.timeframes.length > 1 ? s.heads : 0,
      denseUnits: s.dense,
      dropout: 0.1,
      patternClasses: [...patternClasses],
      lossWeights: { direction: 1, forwardReturn: 0.5, pattern: 0.5 },
      inputClip: 10,
    },
    seed,
  );
}

async function fitAndTest(
  train: SequenceDataset,
  val: SequenceDataset,
  test: SequenceDataset,
  s: Scale,
  seed: number,
): Promise<EvaluationResult> {
  const model = createModel(train.spec, s, seed, train.patternClasses ?? []);
  await trainTimeSeriesModel(model, train, val, {
    epochs: s.epochs,
    batchSize: s.batch,
    learningRate: s.learningRate,
    seed,
    // Direction accuracy is the figure compared: no class re-weighting (the rare flat action would
    // dominate), and the best epoch is chosen on the direction head's validation loss (the pattern
    // and return heads are auxiliary tasks).
    classWeights: 'none',
    monitor: 'directionLoss',
    // Weight averaging: the full model over-fits within a few epochs; validating and testing the
    // moving average of its weights smooths the choice of the stopping point (every model alike).
    averageDecay: s.averageDecay,
    schedule: { type: 'cosine', warmupSteps: 100, minLearningRate: s.learningRate / 20 },
    earlyStopping: { patience: 3, minDelta: 1e-4 },
    progress: false,
  });
  const r = await evaluateTimeSeriesModel(model, test, { batchSize: 512, keepPredictions: true });
  model.dispose();
  return r;
}

/** Multinomial logistic regression on the normalised, flattened windows of every timeframe. */
class LogisticRegression {
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  private readonly stats: ReturnType<typeof normalizerStats>;
  private readonly dims: number[];

  constructor(
    private readonly data: SequenceDataset,
    seed: number,
  ) {
    const spec = data.spec;
    this.stats = normalizerStats(data.normalizer!, spec);
    this.dims = spec.timeframes.map((t) => spec.windows[t]! * spec.features[t]!.length);
    const D = this.dims.reduce((a, b) => a + b, 0);
    const rng = new Rng(seed).fork('logistic');
    this.w = tf.variable(
      tf.tensor2d(
        Float32Array.from({ length: D * 3 }, () => 0.01 * rng.normal()),
        [D, 3],
      ),
    );
    this.b = tf.variable(tf.zeros([3]));
  }

  /** Normalised (NaN → 0, clipped ±10) flattened inputs [B, D]. */
  inputs(windows: readonly Float32Array[], B: number): tf.Tensor2D {
    const D = this.dims.reduce((a, b) => a + b, 0);
    const x = new Float32Array(B * D);
    for (let b = 0; b < B; b++) {
      let off = b * D;
      windows.forEach((w, j) => {
        const F = this.stats[j].center.length;
        const size = this.dims[j];
        for (let k = 0; k < size; k++) {
          const f = k % F;
          const z = (w[b * size + k] - this.stats[j].center[f]) * this.stats[j].invScale[f];
          x[off + k] = z === z ? Math.max(-10, Math.min(10, z)) : 0;
        }
        off += size;
      });
    }
    return tf.tensor2d(x, [B, D]);
  }

  logits(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(x, this.w), this.b) as tf.Tensor2D;
  }

  async probabilities(data: SequenceDataset): Promise<{ probs: Float32Array; labels: Int32Array }> {
    const probs = new Float32Array(data.size * 3);
    const labels = new Int32Array(data.size);
    for await (const batch of data.batches({ batchSize: 1024 })) {
      const p = tf.tidy(() => tf.softmax(this.logits(this.inputs(batch.windows, batch.size))));
      const v = p.dataSync();
      p.dispose();
      batch.indices.forEach((i, b) => {
        labels[i] = batch.direction[b];
        for (let k = 0; k < 3; k++) probs[i * 3 + k] = v[b * 3 + k];
      });
    }
    return { probs, labels };
  }
}

async function logisticTest(
  train: SequenceDataset,
  val: SequenceDataset,
  test: SequenceDataset,
  s: Scale,
  seed: number,
): Promise<DirectionMetrics & { probabilities: Float32Array }> {
  const lr = new LogisticRegression(train, seed);
  const cw = Float32Array.of(1, 1, 1); // unweighted, as the sequence models
  const opt = new Adam(
    [
      {
        name: 'logistic',
        params: [lr.w, lr.b].map((v) => variableParameter(v)),
        learningRate: 1e-3,
      },
    ],
    { weightDecay: 1e-2 },
  );
  const valLoss = async (): Promise<number> => {
    const { probs, labels } = await lr.probabilities(val);
    let l = 0;
    let wsum = 0;
    labels.forEach((y, i) => {
      l -= cw[y] * Math.log(Math.max(probs[i * 3 + y], 1e-12));
      wsum += cw[y];
    });
    return l / wsum;
  };
  let best = Infinity;
  let bestW: [Float32Array, Float32Array] = [
    lr.w.dataSync() as Float32Array,
    lr.b.dataSync() as Float32Array,
  ];
  let bad = 0;
  for (let epoch = 0; epoch < s.epochs * 2 && bad < 3; epoch++) {
    for await (const batch of train.batches({ batchSize: 256, shuffleSeed: seed, epoch })) {
      const sw = tf.tensor1d(Float32Array.from(batch.direction, (y) => cw[y]));
      const onehot = tf.oneHot(tf.tensor1d(batch.direction, 'int32'), 3);
      const x = lr.inputs(batch.windows, batch.size);
      const { grads } = tf.variableGrads(
        () =>
          tf.div(
            tf.sum(tf.mul(tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(lr.logits(x))), 1)), sw)),
            tf.sum(sw),
          ) as tf.Scalar,
        [lr.w, lr.b],
      );
      opt.apply([grads[lr.w.name], grads[lr.b.name]].map((g) => g.dataSync() as Float32Array));
      tf.dispose([sw, onehot, x, ...Object.values(grads)]);
    }
    const l = await valLoss();
    if (l < best - 1e-4) {
      best = l;
      bad = 0;
      bestW = [lr.w.dataSync() as Float32Array, lr.b.dataSync() as Float32Array];
    } else bad++;
  }
  assignValues(lr.w, bestW[0]);
  assignValues(lr.b, bestW[1]);
  const { probs, labels } = await lr.probabilities(test);
  const acc = new DirectionMetricsAccumulator();
  acc.add(probs, labels);
  tf.dispose([lr.w, lr.b]);
  return { ...acc.result(), probabilities: probs };
}

/** Majority-class baseline: predicts the training class frequencies. */
function majorityTest(train: SequenceDataset, test: SequenceDataset): DirectionMetrics {
  const y = train.directionLabels();
  const freq = [0, 0, 0];
  for (const c of y) freq[c] += 1 / y.length;
  const labels = test.directionLabels();
  const probs = new Float32Array(labels.length * 3);
  for (let i = 0; i < labels.length; i++) for (let k = 0; k < 3; k++) probs[i * 3 + k] = freq[k];
  const acc = new DirectionMetricsAccumulator();
  acc.add(probs, labels);
  return acc.result();
}

/** The same samples with their labels permuted (seeded): the shuffled-label control. */
function shuffledLabels(d: WindowDataset, seed: number): WindowDataset {
  const perm = sampleOrder(d.size, seed, 0);
  const dir = d.directionLabels();
  const ret = d.forwardReturns();
  return d.withLabels({
    direction: Int32Array.from(perm, (i) => dir[i]),
    forwardReturn: Float32Array.from(perm, (i) => ret[i]),
  });
}

// ---------------------------------------------------------------------------------------------
// Part 1: synthetic pattern data

interface PatternResult {
  seeds: number[];
  rows: { name: string; acc: number[]; f1: number[] }[];
  majority: number[];
  sizes: { train: number; validation: number; test: number };
  /** Pattern-head accuracy of the full model per seed. */
  patternAccuracy: number[];
  /** Per pattern type over all seeds (full model): correct and total test samples. */
  perType: Map<string, { correct: number; count: number }>;
  /** Per variant (row order), per primary-timeframe code: test accuracy per seed. */
  byPrimary: Map<string, number[]>[];
  /** Per variant (row order), per higher-timeframe alignment group: test accuracy per seed. */
  byAlignment: Map<string, number[]>[];
  /** Test patterns (15m and 4h) per alignment group over all seeds: count and failed. */
  failures: Map<string, { count: number; failed: number }>;
}

/** Alignment groups of 15m and 4h pattern samples (the label `htfAlignment`). */
const ALIGNMENT_GROUPS = ['confirms', 'flat or split', 'contradicts'] as const;

function alignmentGroup(a: number): (typeof ALIGNMENT_GROUPS)[number] | null {
  return a > 0 ? 'confirms' : a < 0 ? 'contradicts' : a === 0 ? 'flat or split' : null;
}

/**
 * Direction accuracy of the 15m and 4h pattern samples by what the higher timeframes' trends at
 * the pattern's onset said about its expected direction (the context that moves its outcome).
 */
function accuracyByAlignment(probs: Float32Array, test: DiskDataset): Map<string, number> {
  const align = test.column('htfAlignment');
  const labels = test.directionLabels();
  const correct = new Map<string, number>();
  const count = new Map<string, number>();
  for (let i = 0; i < labels.length; i++) {
    const g = alignmentGroup(align[i]);
    if (g === null) continue;
    let best = 0;
    for (let k = 1; k < 3; k++) if (probs[i * 3 + k] > probs[i * 3 + best]) best = k;
    count.set(g, (count.get(g) ?? 0) + 1);
    if (best === labels[i]) correct.set(g, (correct.get(g) ?? 0) + 1);
  }
  return new Map(ALIGNMENT_GROUPS.map((g) => [g, (correct.get(g) ?? 0) / (count.get(g) ?? NaN)]));
}

/** Direction accuracy per primary-timeframe code of the samples (`none`, `15m`, `4h`, `1d`). */
function accuracyByPrimary(probs: Float32Array, test: DiskDataset): Map<string, number> {
  const codes = test.manifest.timeframeCodes;
  const tfCol = test.column('timeframe');
  const labels = test.directionLabels();
  const correct = new Float64Array(codes.length);
  const count = new Float64Array(codes.length);
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let k = 1; k < 3; k++) if (probs[i * 3 + k] > probs[i * 3 + best]) best = k;
    const c = tfCol[i];
    count[c]++;
    if (best === labels[i]) correct[c]++;
  }
  return new Map(codes.map((code, c) => [code, count[c] > 0 ? correct[c] / count[c] : NaN]));
}

/**
 * Columns of a single-timeframe ablation: the timeframe's own features, without the cross-timeframe
 * `x.*` columns that carry other timeframes (the base matrix holds `x.trend_4h`, `x.pos_1d`, ...);
 * its own `x.*_<tf>` columns and calendar columns stay.
 */
function ownTimeframeColumn(tf: Timeframe, name: string): boolean {
  return !name.startsWith('x.') || name.endsWith(`_${tf}`) || /^x\.(tod|dow)_/.test(name);
}

async function patternExperiment(s: Scale): Promise<PatternResult> {
  const rows: PatternResult['rows'] = [
    { name: 'full model (15m + 4h + 1d)', acc: [], f1: [] },
    { name: '15m only', acc: [], f1: [] },
    { name: '4h only', acc: [], f1: [] },
    { name: '1d only', acc: [], f1: [] },
    { name: '15m window incl. its cross-timeframe columns', acc: [], f1: [] },
    { name: 'logistic regression (all windows)', acc: [], f1: [] },
  ];
  const result: PatternResult = {
    seeds: s.seeds,
    rows,
    majority: [],
    sizes: { train: 0, validation: 0, test: 0 },
    patternAccuracy: [],
    perType: new Map(),
    byPrimary: rows.map(() => new Map()),
    byAlignment: rows.map(() => new Map()),
    failures: new Map(),
  };
  const addPrimary = (k: number, probs: Float32Array, test: DiskDataset): void => {
    for (const [by, groups] of [
      [result.byPrimary[k], accuracyByPrimary(probs, test)],
      [result.byAlignment[k], accuracyByAlignment(probs, test)],
    ] as const)
      for (const [code, a] of groups) {
        const list = by.get(code) ?? [];
        list.push(a);
        by.set(code, list);
      }
  };
  for (const seed of s.seeds) {
    const dir = mkdtempSync(join(tmpdir(), 'ctm-seqexp-'));
    try {
      const outDir = join(dir, 'dataset');
      await buildSyntheticDataset(s.patternSamples, {}, { outDir, seed: 1000 + seed });
      const [train, validation, test] = await Promise.all(
        (['train', 'validation', 'test'] as const).map((split) => DiskDataset.open(outDir, split)),
      );
      result.sizes = { train: train.size, validation: validation.size, test: test.size };
      const align = test.column('htfAlignment');
      const failed = test.column('adversarial');
      for (let i = 0; i < test.size; i++) {
        const g = alignmentGroup(align[i]);
        if (g === null) continue;
        const f = result.failures.get(g) ?? { count: 0, failed: 0 };
        f.count++;
        f.failed += failed[i];
        result.failures.set(g, f);
      }
      const variants: [Timeframe[], (tf: Timeframe, name: string) => boolean][] = [
        [['15m', '4h', '1d'], () => true],
        [['15m'], ownTimeframeColumn],
        [['4h'], ownTimeframeColumn],
        [['1d'], ownTimeframeColumn],
        [['15m'], () => true],
      ];
      for (const [k, [tfs, keep]] of variants.entries()) {
        const sub = (d: SequenceDataset): SequenceDataset => timeframeSubset(d, tfs, keep);
        const r = await fitAndTest(sub(train), sub(validation), sub(test), s, seed);
        rows[k].acc.push(r.accuracy);
        rows[k].f1.push(r.macroF1);
        addPrimary(k, r.probabilities!, test);
        if (k === 0 && r.pattern !== null) {
          result.patternAccuracy.push(r.pattern.accuracy);
          for (const [name, c] of Object.entries(r.pattern.perClass)) {
            const t = result.perType.get(name) ?? { correct: 0, count: 0 };
            t.correct += c.accuracy * c.count;
            t.count += c.count;
            result.perType.set(name, t);
          }
        }
        log.info({ seed, variant: rows[k].name, accuracy: r.accuracy }, 'pattern data');
      }
      const lr = await logisticTest(train, validation, test, s, seed);
      rows[5].acc.push(lr.accuracy);
      rows[5].f1.push(lr.macroF1);
      addPrimary(5, lr.probabilities, test);
      result.majority.push(majorityTest(train, test).accuracy);
      log.info({ seed, variant: rows[5].name, accuracy: lr.accuracy }, 'pattern data');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Part 2: real data walk-forward

/** Sign accuracy of the long/short calls: the trading-relevant part of a direction prediction. */
interface HitRate {
  /** Share of test samples predicted up or down (not flat). */
  coverage: number;
  /** Among those, the share whose forward return has the predicted sign. */
  hitRate: number;
}

function hitRate(probs: Float32Array, returns: Float32Array): HitRate {
  let calls = 0;
  let hits = 0;
  for (let i = 0; i < returns.length; i++) {
    let best = 0;
    for (let k = 1; k < 3; k++) if (probs[i * 3 + k] > probs[i * 3 + best]) best = k;
    if (best === 1) continue;
    calls++;
    if ((best === 2 && returns[i] > 0) || (best === 0 && returns[i] < 0)) hits++;
  }
  return { coverage: calls / Math.max(returns.length, 1), hitRate: calls > 0 ? hits / calls : NaN };
}

interface FoldResult {
  test: DateRange;
  samples: { train: number; validation: number; test: number };
  /** Share of test samples labelled flat (the band comes from the training years). */
  testFlatShare: number;
  model: DirectionMetrics & HitRate;
  control: DirectionMetrics & HitRate;
  logistic: DirectionMetrics & HitRate;
  majority: DirectionMetrics;
}

async function loadRealCandles(dataDir: string, s: Scale): Promise<Map<Timeframe, Candles>> {
  return loadCandleDirectory(dataDir, {
    exchange: 'binance',
    symbol: 'BTC/USDT',
    timeframes: ['15m', '4h', '1d'],
    fromMs: Date.parse(`${s.real.from}T00:00:00Z`) - 120 * 86_400_000, // feature warm-up
    toMs: Date.parse(`${s.real.to}T00:00:00Z`),
    repair: true,
  });
}

async function realDataExperiment(s: Scale, dataDir: string): Promise<FoldResult[]> {
  const config = defaultConfig();
  const candles = await loadRealCandles(dataDir, s);
  const features = buildFeatures(candles, { spec: config.features, windows: s.windows });
  const year = 365 * 86_400_000;
  const horizonMs = REAL_HORIZON * TIMEFRAME_MS['15m'];
  const folds = walkForwardSplits({
    range: {
      fromMs: Date.parse(`${s.real.from}T00:00:00Z`),
      toMs: Date.parse(`${s.real.to}T00:00:00Z`),
    },
    mode: 'rolling',
    trainMs: s.real.trainYears * year,
    testMs: s.real.testYears * year,
    purgeMs: horizonMs,
    embargoMs: horizonMs,
  });
  const results: FoldResult[] = [];
  for (const fold of folds) {
    const train = fold.train[0];
    const cut = train.fromMs + 0.85 * (train.toMs - train.fromMs);
    const ds: WindowDatasets = createWindowDatasets(features, {
      windows: s.windows,
      horizon: REAL_HORIZON,
      threshold: { quantile: 1 / 3 },
      splits: {
        train: { fromMs: train.fromMs, toMs: cut },
        validation: { fromMs: cut, toMs: train.toMs },
        test: fold.test,
      },
      embargoBars: REAL_HORIZON,
      stride: s.real.stride,
      normalizerMethod: config.features.normalize.method,
      normalizerClip: config.features.normalize.clip,
    });
    const seed = 100 + fold.index;
    const test = ds.test!;
    const returns = test.forwardReturns();
    const withHits = <T extends DirectionMetrics>(r: T, probs: Float32Array): T & HitRate => ({
      ...r,
      ...hitRate(probs, returns),
    });
    const m = await fitAndTest(ds.train, ds.validation, test, s, seed);
    const c = await fitAndTest(
      shuffledLabels(ds.train, seed),
      shuffledLabels(ds.validation, seed + 1),
      test,
      s,
      seed,
    );
    const l = await logisticTest(ds.train, ds.validation, test, s, seed);
    const model = withHits(m, m.probabilities!);
    const control = withHits(c, c.probabilities!);
    const logistic = withHits(l, l.probabilities);
    const majority = majorityTest(ds.train, test);
    const labels = test.directionLabels();
    results.push({
      test: fold.test,
      samples: { train: ds.train.size, validation: ds.validation.size, test: test.size },
      testFlatShare: labels.reduce((a, y) => a + (y === 1 ? 1 : 0), 0) / labels.length,
      model,
      control,
      logistic,
      majority,
    });
    log.info(
      {
        fold: fold.index,
        model: model.accuracy,
        control: control.accuracy,
        logistic: logistic.accuracy,
      },
      'walk-forward fold',
    );
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Report

function iso(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function patternMarkdown(r: PatternResult): string {
  const lines: string[] = [];
  lines.push(
    `Test-set direction accuracy (%) — the action label: long / short when the realised forward return beats the round-trip cost, else flat — per seed (one generated dataset per seed), mean ± standard error over ${r.seeds.length} seeds; samples train/validation/test ${r.sizes.train}/${r.sizes.validation}/${r.sizes.test} per seed; majority class ${pm(r.majority)}.`,
    '',
    `| variant | ${r.seeds.map((s) => `seed ${s}`).join(' | ')} | mean ± SE | macro-F1 mean |`,
    `|---|${r.seeds.map(() => '---:').join('|')}|---:|---:|`,
  );
  for (const row of r.rows)
    lines.push(
      `| ${row.name} | ${row.acc.map(pct).join(' | ')} | ${pm(row.acc)} | ${mean(row.f1).toFixed(3)} |`,
    );
  const full = r.rows[0].acc;
  const best = r.rows.slice(1, 4).reduce((a, b) => (mean(b.acc) > mean(a.acc) ? b : a));
  lines.push(
    '',
    "Single-timeframe ablations see one timeframe's own columns; the 15m window's cross-timeframe columns (`x.trend_4h`, `x.pos_1d`, ...) carry 4h/1d information and are shown as a separate row.",
    '',
  );
  for (const [name, other] of [
    [`best single-timeframe ablation (${best.name})`, best.acc],
    ['logistic regression', r.rows[5].acc],
  ] as [string, number[]][]) {
    const d = full.map((x, i) => x - other[i]);
    const m = mean(d);
    const se = stderr(d);
    const ok = m >= 0.02 && m > 2 * se;
    lines.push(
      `- full model − ${name}: ${pct(m)} ± ${pct(se)} pp (paired over seeds): ${ok ? 'above by ≥ 2 pp and beyond 2 SE' : 'NOT above by ≥ 2 pp beyond 2 SE'}.`,
    );
  }
  const codes = [...r.byPrimary[0].keys()];
  lines.push(
    '',
    "Direction accuracy (%) by the primary timeframe of the sample's pattern (`none` = no pattern completes), mean over seeds:",
    '',
    `| variant | ${codes.join(' | ')} |`,
    `|---|${codes.map(() => '---:').join('|')}|`,
  );
  r.rows.forEach((row, k) =>
    lines.push(
      `| ${row.name} | ${codes.map((c) => pct(mean(r.byPrimary[k].get(c) ?? []))).join(' | ')} |`,
    ),
  );
  const fails = ALIGNMENT_GROUPS.map((g) => {
    const f = r.failures.get(g) ?? { count: 0, failed: 0 };
    return `${g} ${f.count} samples, ${pct(f.failed / f.count)}% planted to fail`;
  });
  lines.push(
    '',
    `Direction accuracy (%) of the 15m and 4h pattern samples by the confluence of the higher timeframes' trends at the pattern's onset (4h and 1d for 15m patterns, 1d for 4h ones; the sign of their mean relative to the pattern's direction) — the context that moves the outcome (\`dataset.htfInfluence\`); test samples of all seeds: ${fails.join('; ')}. Mean over seeds:`,
    '',
    `| variant | ${ALIGNMENT_GROUPS.join(' | ')} |`,
    `|---|${ALIGNMENT_GROUPS.map(() => '---:').join('|')}|`,
  );
  r.rows.forEach((row, k) =>
    lines.push(
      `| ${row.name} | ${ALIGNMENT_GROUPS.map((g) => pct(mean(r.byAlignment[k].get(g) ?? []))).join(' | ')} |`,
    ),
  );
  lines.push(
    '',
    `Pattern-type accuracy of the full model's pattern head (test samples of all seeds pooled; overall ${pm(r.patternAccuracy)} per seed):`,
    '',
    '| pattern type | test samples | accuracy (%) |',
    '|---|---:|---:|',
  );
  for (const [name, t] of r.perType)
    lines.push(`| ${name} | ${t.count} | ${t.count > 0 ? pct(t.correct / t.count) : 'n/a'} |`);
  return lines.join('\n');
}

function realMarkdown(folds: FoldResult[]): string {
  const lines: string[] = [];
  lines.push(
    'Test-year direction accuracy (%) / macro-F1 / Brier per walk-forward fold (label: 4-hour forward return, flat band = training tercile of |return|; chance ≈ 33.3).',
    '',
    '| test window | samples (train/val/test) | model | shuffled-label control | logistic regression | majority class |',
    '|---|---|---|---|---|---|',
  );
  const cell = (m: DirectionMetrics): string =>
    `${pct(m.accuracy)} / ${m.macroF1.toFixed(3)} / ${m.brier.toFixed(3)}`;
  for (const f of folds)
    lines.push(
      `| ${iso(f.test.fromMs)} – ${iso(f.test.toMs)} | ${f.samples.train}/${f.samples.validation}/${f.samples.test} | ${cell(f.model)} | ${cell(f.control)} | ${cell(f.logistic)} | ${cell(f.majority)} |`,
    );
  lines.push(
    '',
    'The flat band is fitted on the training years, so a calmer test year has more flat labels, and a model that reads current volatility gains accuracy by calling flat: accuracy mixes that with direction. The trading-relevant part is the sign of the long/short calls — hit rate (%) of the up/down predictions against the sign of the forward return, with the share of samples called (coverage); 50 is chance:',
    '',
    '| test window | flat labels in test | model hit rate (coverage) | control | logistic regression |',
    '|---|---:|---|---|---|',
  );
  const hits = (h: HitRate): string => `${pct(h.hitRate)} (${pct(h.coverage)})`;
  for (const f of folds)
    lines.push(
      `| ${iso(f.test.fromMs)} – ${iso(f.test.toMs)} | ${pct(f.testFlatShare)} | ${hits(f.model)} | ${hits(f.control)} | ${hits(f.logistic)} |`,
    );
  const m = folds.map((f) => f.model.accuracy);
  const c = folds.map((f) => f.control.accuracy);
  const l = folds.map((f) => f.logistic.accuracy);
  const d = folds.map((f, i) => m[i] - c[i]);
  const hm = folds.map((f) => f.model.hitRate);
  const hc = folds.map((f) => f.control.hitRate);
  const dh = folds.map((f, i) => hm[i] - hc[i]);
  const edge = mean(dh) > 2 * stderr(dh) && mean(dh) > 0.01;
  lines.push(
    '',
    `Mean over folds: accuracy model ${pm(m)}, control ${pm(c)}, logistic regression ${pm(l)} (model − control ${pct(mean(d))} ± ${pct(stderr(d))} pp); hit rate model ${pm(hm)}, control ${pm(hc)} (model − control ${pct(mean(dh))} ± ${pct(stderr(dh))} pp). ` +
      'Samples overlap (4-hour labels on 15-minute steps, thinned by the stride), so per-sample standard errors would overstate certainty; the fold-level spread is the honest one. ' +
      (edge
        ? 'The long/short calls beat the control in this sample; whether that survives costs is a backtest question.'
        : 'No directional edge over the shuffled-label control is claimed.'),
  );
  return lines.join('\n');
}

/** Options of `runSequenceModelExperiments`. */
export interface SequenceModelExperimentOptions {
  tiny?: boolean;
  /** Folder with binance-BTCUSDT-{15m,4h,1d}.csv.gz (default ../shared/data or CTM_SHARED_DATA). */
  dataDir?: string;
}

/** Runs both parts and returns the markdown section. */
export async function runSequenceModelExperiments(
  options: SequenceModelExperimentOptions = {},
): Promise<string> {
  const s = options.tiny === true ? TINY : FULL;
  const info = await initTensorflow();
  const started = Date.now();
  const dataDir = options.dataDir ?? process.env.CTM_SHARED_DATA ?? join(ROOT, '../shared/data');
  const patterns = await patternExperiment(s);
  const hasReal = existsSync(join(dataDir, 'binance-BTCUSDT-15m.csv.gz'));
  const real = hasReal ? await realDataExperiment(s, dataDir) : null;
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const parts = [
    '## Sequence model',
    '',
    `Scale: ${s.name} (hidden ${s.hidden}, windows 15m/4h/1d ${s.windows['15m']}/${s.windows['4h']}/${s.windows['1d']}, up to ${s.epochs} epochs with early stopping, batch ${s.batch}, weight average ${s.averageDecay}); backend ${info.backend}; ${minutes} min. Reproduce: \`node --import tsx experiments/sequence-model.ts${s.name === 'tiny' ? ' --tiny' : ''}\`.`,
    '',
    '### Synthetic pattern data',
    '',
    patternMarkdown(patterns),
    '',
    '### Real data: BTC/USDT walk-forward',
    '',
    real === null ? `Not run: ${dataDir} has no BTC/USDT candles.` : realMarkdown(real),
  ];
  return parts.join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const tiny = process.argv.includes('--tiny');
  const out = process.argv.indexOf('--out');
  const body = await runSequenceModelExperiments({ tiny });
  writeResultsSection(SECTION, body, out > 0 ? process.argv[out + 1] : undefined);
  process.stdout.write(body + '\n');
}
