// The trainer and its data: the purged time split (labels never cross their split, embargo after
// it), the normaliser fitted on training rows only, seeded and resumable batch order, the direction metrics on a hand-computed example, and training itself: deterministic
// under a seed, learning a planted cross-timeframe signal, early stopping with best-weights restore,
// and refusing a checkpoint written for other settings.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../../src/errors.js';
import type { MultiTimeframeFeatures } from '../../../src/data-processing/feature-engineering.js';
import { initTensorflow } from '../../../src/models/common/backend.js';
import {
  MultiTimeframeModel,
  type MultiTimeframeModelConfig,
} from '../../../src/models/time-series/model.js';
import {
  balancedClassWeights,
  trainTimeSeriesModel,
} from '../../../src/models/time-series/trainer.js';
import { fixtureFeatures } from './fixtures.js';
import {
  type ModelInputSpec,
  createWindowDatasets,
  directionOf,
  sampleOrder,
  timeframeSubset,
  type SequenceBatch,
  type WindowDatasetOptions,
} from '../../../src/data-processing/window-datasets.js';
import {
  DirectionMetricsAccumulator,
  evaluateTimeSeriesModel,
} from '../../../src/models/time-series/evaluation.js';

let dir: string;
beforeAll(async () => {
  await initTensorflow('wasm');
  dir = mkdtempSync(join(tmpdir(), 'ctm-trainer-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BAR = 15 * 60_000;

function splitOptions(
  f: MultiTimeframeFeatures,
  horizon: number,
  embargo: number,
): WindowDatasetOptions {
  const t = f.perTimeframe.get('15m')!.time;
  const n = t.length;
  return {
    windows: { '15m': 8, '4h': 4 },
    horizon,
    threshold: { quantile: 1 / 3 },
    splits: {
      train: { fromMs: t[0] - BAR, toMs: t[Math.floor(n * 0.6)] },
      validation: { fromMs: t[Math.floor(n * 0.6)], toMs: t[Math.floor(n * 0.8)] },
      test: { fromMs: t[Math.floor(n * 0.8)], toMs: Infinity },
    },
    embargoBars: embargo,
  };
}

function modelConfig(
  spec: ModelInputSpec,
  over: Partial<MultiTimeframeModelConfig> = {},
): MultiTimeframeModelConfig {
  return {
    spec,
    cell: 'gru',
    gruImplementation: 'fused',
    hiddenDims: 8,
    numLayers: 1,
    pooling: 'last',
    attentionHeads: 2,
    denseUnits: 8,
    dropout: 0.1,
    patternClasses: [],
    lossWeights: { direction: 1, forwardReturn: 0.5, pattern: 0 },
    inputClip: 10,
    ...over,
  };
}

describe('createWindowDatasets: purged time split', () => {
  it('keeps every label inside its split, purges across the boundary and embargoes the next split', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 0, max: 30 }),
        (h, embargo) => {
          const f = fixtureFeatures({ seed: 3, bars: 16 * 80 });
          const o = splitOptions(f, h, embargo);
          const ds = createWindowDatasets(f, o);
          const t = f.perTimeframe.get('15m')!.time;
          const trainRows = ds.train.rows;
          const valRows = ds.validation.rows;
          const testRows = ds.test!.rows;
          // Decision times inside the split, label ends inside the split.
          for (const [rows, r] of [
            [trainRows, o.splits.train],
            [valRows, o.splits.validation],
            [testRows, o.splits.test!],
          ] as const)
            for (const i of rows) {
              expect(t[i]).toBeGreaterThanOrEqual(r.fromMs);
              expect(t[i + h]).toBeLessThan(r.toMs);
              expect(i).toBeGreaterThanOrEqual(f.firstValidRow);
            }
          // The last training label ends before the first validation decision: nothing the model is
          // trained on knows a price of the validation period.
          const lastTrainLabelEnd = t[trainRows[trainRows.length - 1] + h];
          expect(lastTrainLabelEnd).toBeLessThan(t[valRows[0]]);
          // Purge: exactly the h rows before the boundary are dropped (no gaps in the fixture).
          expect(ds.purged.train).toBe(h);
          expect(trainRows[trainRows.length - 1]).toBe(valRows[0] - embargo - h - 1);
          // Embargo: the first `embargo` rows of the validation split are skipped.
          const firstValEligible = t.findIndex((x) => x >= o.splits.validation.fromMs);
          expect(valRows[0]).toBe(firstValEligible + embargo);
          // Labels: the direction is the sign of the forward log return outside the flat band.
          const close = f.aligned.base.close;
          const dirs = ds.validation.directionLabels();
          const rets = ds.validation.forwardReturns();
          valRows.forEach((i, k) => {
            expect(rets[k]).toBeCloseTo(Math.log(close[i + h] / close[i]), 6);
            expect(dirs[k]).toBe(directionOf(rets[k], ds.threshold));
          });
        },
      ),
      { numRuns: 12, seed: 3 },
    );
  });

  it('fits the normaliser on training rows only: poisoning every later row changes nothing', () => {
    const f = fixtureFeatures({ seed: 5, bars: 16 * 60 });
    const o = splitOptions(f, 4, 2);
    const clean = createWindowDatasets(f, o);
    const lastTrainTime =
      f.perTimeframe.get('15m')!.time[clean.train.rows[clean.train.rows.length - 1]];
    const poison = (mutate: (time: number) => boolean): MultiTimeframeFeatures => {
      const perTimeframe = new Map(
        [...f.perTimeframe].map(([tf, m]) => {
          const values = m.values.slice();
          for (let r = 0; r < m.rows; r++)
            if (mutate(m.time[r])) for (let c = 0; c < m.cols; c++) values[r * m.cols + c] = 1e9;
          return [tf, { ...m, values }];
        }),
      );
      return { ...f, perTimeframe };
    };
    const poisoned = createWindowDatasets(
      poison((time) => time > lastTrainTime),
      o,
    );
    expect(poisoned.normalizer.json.timeframes).toEqual(clean.normalizer.json.timeframes);
    // Not vacuous: poisoning one training-period row does change it.
    const touched = createWindowDatasets(
      poison((time) => time === lastTrainTime),
      o,
    );
    expect(touched.normalizer.json.timeframes['15m']).not.toEqual(
      clean.normalizer.json.timeframes['15m'],
    );
    // The normaliser fit range ends at the last training decision.
    expect(clean.normalizer.json.fit.toMs).toBe(lastTrainTime + 1);
    // The flat band comes from training labels only as well.
    expect(poisoned.threshold).toBe(clean.threshold);
  });

  it('refuses a split without samples, naming it', () => {
    const f = fixtureFeatures({ seed: 5, bars: 16 * 40 });
    const o = splitOptions(f, 4, 0);
    o.splits.validation = { fromMs: 0, toMs: 1 };
    expect(() => createWindowDatasets(f, o)).toThrow(/no sample in the validation split/);
  });
});

describe('batches', () => {
  it('come in a seeded order that is a permutation per epoch, and resume at any batch', async () => {
    const f = fixtureFeatures({ seed: 2, bars: 16 * 40 });
    const ds = createWindowDatasets(f, splitOptions(f, 4, 0)).train;
    const a = sampleOrder(ds.size, 9, 0);
    expect(sampleOrder(ds.size, 9, 0)).toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: ds.size }, (_, i) => i));
    expect(sampleOrder(ds.size, 9, 1)).not.toEqual(a);
    expect(sampleOrder(ds.size, null, 3)).toEqual(
      Int32Array.from({ length: ds.size }, (_, i) => i),
    );
    const all: SequenceBatch[] = [];
    for await (const b of ds.batches({ batchSize: 32, shuffleSeed: 9, epoch: 2 })) all.push(b);
    const tail: SequenceBatch[] = [];
    for await (const b of ds.batches({ batchSize: 32, shuffleSeed: 9, epoch: 2, startBatch: 3 }))
      tail.push(b);
    expect(tail.length).toBe(all.length - 3);
    tail.forEach((b, k) => {
      expect(b.indices).toEqual(all[k + 3].indices);
      expect(b.windows).toEqual(all[k + 3].windows);
      expect(b.direction).toEqual(all[k + 3].direction);
    });
    expect(all.reduce((s, b) => s + b.size, 0)).toBe(ds.size);
  });

  it('restrict to chosen timeframes and columns without changing samples or labels', async () => {
    const f = fixtureFeatures({ seed: 2, bars: 16 * 40 });
    const ds = createWindowDatasets(f, splitOptions(f, 4, 0)).validation;
    const sub = timeframeSubset(ds, ['4h'], (tf, name) => name !== 'f1');
    expect(sub.spec.timeframes).toEqual(['4h']);
    expect(sub.spec.features['4h']).toEqual(['ret', 'f2']);
    expect(sub.directionLabels()).toEqual(ds.directionLabels());
    const full = (await ds.batches({ batchSize: 5, shuffleSeed: 1 }).next()).value as SequenceBatch;
    const part = (await sub.batches({ batchSize: 5, shuffleSeed: 1 }).next())
      .value as SequenceBatch;
    expect(part.indices).toEqual(full.indices);
    expect(part.windows.length).toBe(1);
    const w = full.windows[1]; // 4h: [5, 4 bars, 3 columns]
    for (let r = 0; r < 5 * 4; r++) {
      expect(part.windows[0][r * 2]).toBe(w[r * 3]);
      expect(part.windows[0][r * 2 + 1]).toBe(w[r * 3 + 2]);
    }
    expect(() => timeframeSubset(ds, ['1d'])).toThrow(/no timeframe 1d/);
  });

  it('hold the windows copyWindow cuts at each sample row', async () => {
    const f = fixtureFeatures({ seed: 2, bars: 16 * 40 });
    const ds = createWindowDatasets(f, splitOptions(f, 4, 0)).validation;
    const [b] = await ds
      .batches({ batchSize: 4 })
      .next()
      .then((r) => [r.value as SequenceBatch]);
    const m4h = f.perTimeframe.get('4h')!;
    const idx = f.rowIndex.get('4h')!;
    const row = ds.rows[b.indices[2]];
    // 4h window of sample 2: the 4 rows ending at the last 4h candle closed at that row, oldest first.
    const last = idx[row];
    for (let r = 0; r < 4; r++)
      for (let c = 0; c < m4h.cols; c++)
        expect(b.windows[1][2 * 4 * m4h.cols + r * m4h.cols + c]).toBe(
          m4h.values[(last - 3 + r) * m4h.cols + c],
        );
  });
});

describe('metrics', () => {
  it('computes accuracy, macro-F1, Brier and log loss as defined', () => {
    const acc = new DirectionMetricsAccumulator();
    // Three samples: true down predicted down (0.7), true up predicted flat (0.5), true up predicted up (0.6).
    acc.add([0.7, 0.2, 0.1, 0.1, 0.5, 0.4, 0.1, 0.3, 0.6], [0, 2, 2]);
    const m = acc.result();
    expect(m.count).toBe(3);
    expect(m.accuracy).toBeCloseTo(2 / 3, 12);
    // F1: down 1, flat 0 (1 predicted, 0 true), up: tp 1, predicted 1, actual 2 -> 2/3.
    expect(m.macroF1).toBeCloseTo((1 + 0 + 2 / 3) / 3, 12);
    const brier = (0.09 + 0.04 + 0.01 + (0.01 + 0.25 + 0.36) + (0.01 + 0.09 + 0.16)) / 3;
    expect(m.brier).toBeCloseTo(brier, 12);
    expect(m.logLoss).toBeCloseTo(-(Math.log(0.7) + Math.log(0.4) + Math.log(0.6)) / 3, 6);
    expect(m.confusion).toEqual([1, 0, 0, 0, 0, 0, 0, 1, 1]);
  });

  it('balances class weights as N / (3 · count)', () => {
    expect(Array.from(balancedClassWeights(Int32Array.from([0, 0, 1, 2, 2, 2])))).toEqual(
      [1, 2, 2 / 3].map(Math.fround),
    );
  });
});

describe('trainTimeSeriesModel', () => {
  const features = fixtureFeatures({ seed: 8, bars: 16 * 250, signal: 0.0015 });
  const data = createWindowDatasets(features, splitOptions(features, 4, 4));

  it('is deterministic under a seed and learns a signal planted in the 4h features', async () => {
    const run = async () => {
      const model = MultiTimeframeModel.create(modelConfig(data.spec), 4);
      const r = await trainTimeSeriesModel(model, data.train, data.validation, {
        epochs: 3,
        batchSize: 32,
        learningRate: 3e-3,
        seed: 12,
        schedule: { type: 'cosine', warmupSteps: 10, minLearningRate: 1e-4 },
        progress: false,
      });
      return { model, r };
    };
    const a = await run();
    const b = await run();
    expect(b.r.history.map((h) => h.valLoss)).toEqual(a.r.history.map((h) => h.valLoss));
    const wa = a.model.getWeights();
    for (const [name, w] of b.model.getWeights()) expect(w, name).toEqual(wa.get(name));
    // Chance is about 1/3; the drift planted by the 4h feature makes ~70% reachable.
    expect(a.r.history[a.r.history.length - 1].valAccuracy).toBeGreaterThan(0.5);
    expect(a.r.history[0].valMacroF1).toBeGreaterThan(0);
    a.model.dispose();
    b.model.dispose();
  });

  it('stops early and restores the weights of the best validation epoch', async () => {
    // Pure noise and a high learning rate: validation loss bottoms out early, then rises.
    const noise = fixtureFeatures({ seed: 9, bars: 16 * 120 });
    const d = createWindowDatasets(noise, splitOptions(noise, 4, 0));
    const model = MultiTimeframeModel.create(
      modelConfig(d.spec, { dropout: 0, hiddenDims: 16, denseUnits: 32 }),
      1,
    );
    const perEpoch: Map<string, Float32Array>[] = [];
    const r = await trainTimeSeriesModel(model, d.train, d.validation, {
      epochs: 12,
      batchSize: 16,
      learningRate: 1e-2,
      seed: 3,
      earlyStopping: { patience: 2, minDelta: 0 },
      clipNorm: 0,
      progress: false,
      onEpochEnd: () => perEpoch.push(model.getWeights()),
    });
    const losses = r.history.map((h) => h.valLoss);
    expect(r.stoppedEarly).toBe(true);
    expect(r.history.length).toBe(r.bestEpoch + 3);
    expect(r.bestValLoss).toBe(Math.min(...losses));
    expect(losses[r.bestEpoch]).toBe(r.bestValLoss);
    const final = model.getWeights();
    for (const [name, w] of perEpoch[r.bestEpoch]) expect(final.get(name), name).toEqual(w);
    expect(final.get('dense.w')).not.toEqual(perEpoch[perEpoch.length - 1].get('dense.w'));
    model.dispose();
  });

  it('with weight averaging, validates and returns the averaged weights of the best epoch', async () => {
    const noise = fixtureFeatures({ seed: 9, bars: 16 * 120 });
    const d = createWindowDatasets(noise, splitOptions(noise, 4, 0));
    const opts = {
      epochs: 3,
      batchSize: 16,
      learningRate: 1e-2,
      seed: 3,
      progress: false,
    };
    const results = [];
    for (const averageDecay of [0, 0.9]) {
      const model = MultiTimeframeModel.create(modelConfig(d.spec, { dropout: 0 }), 2);
      const r = await trainTimeSeriesModel(model, d.train, d.validation, { ...opts, averageDecay });
      // The validation figures reported for the best epoch are those of the returned model.
      const check = await evaluateTimeSeriesModel(model, d.validation, {
        batchSize: 256,
        classWeights: balancedClassWeights(d.train.directionLabels()),
      });
      expect(check.loss).toBeCloseTo(r.bestValLoss, 5);
      results.push(r.history.map((h) => h.valLoss));
      model.dispose();
    }
    expect(results[1]).not.toEqual(results[0]);
  });

  it('picks the best epoch by the monitored validation figure', async () => {
    const noise = fixtureFeatures({ seed: 9, bars: 16 * 120 });
    const d = createWindowDatasets(noise, splitOptions(noise, 4, 0));
    for (const monitor of ['accuracy', 'directionLoss'] as const) {
      const model = MultiTimeframeModel.create(
        modelConfig(d.spec, { dropout: 0, hiddenDims: 16 }),
        2,
      );
      const perEpoch: Map<string, Float32Array>[] = [];
      const r = await trainTimeSeriesModel(model, d.train, d.validation, {
        epochs: 4,
        batchSize: 16,
        learningRate: 1e-2,
        seed: 3,
        monitor,
        progress: false,
        onEpochEnd: () => perEpoch.push(model.getWeights()),
      });
      const figure = r.history.map((h) =>
        monitor === 'accuracy' ? -h.valAccuracy : h.valDirectionLoss,
      );
      expect(r.bestEpoch).toBe(figure.indexOf(Math.min(...figure)));
      expect(r.bestValLoss).toBe(r.history[r.bestEpoch].valLoss);
      for (const [name, w] of perEpoch[r.bestEpoch])
        expect(model.getWeights().get(name), name).toEqual(w);
      model.dispose();
    }
  });

  it('follows its learning-rate schedules: reduce-on-plateau and cosine with warm-up', async () => {
    const noise = fixtureFeatures({ seed: 9, bars: 16 * 120 });
    const d = createWindowDatasets(noise, splitOptions(noise, 4, 0));
    const base = { batchSize: 16, seed: 3, progress: false, clipNorm: 0 };
    const m1 = MultiTimeframeModel.create(
      modelConfig(d.spec, { dropout: 0, hiddenDims: 16, denseUnits: 32 }),
      1,
    );
    const plateau = await trainTimeSeriesModel(m1, d.train, d.validation, {
      ...base,
      epochs: 6,
      learningRate: 1e-2,
      schedule: { type: 'plateau', factor: 0.5, patience: 1, minLearningRate: 1e-3 },
    });
    // The rate of epoch e is halved (floored) when epoch e − 1 did not improve on the best before it.
    let reductions = 0;
    const h = plateau.history;
    for (let e = 1; e < h.length; e++) {
      const bestBefore = Math.min(Infinity, ...h.slice(0, e - 1).map((x) => x.valLoss));
      const improved = h[e - 1].valLoss < bestBefore;
      const expected = improved
        ? h[e - 1].learningRate
        : Math.max(1e-3, h[e - 1].learningRate * 0.5);
      expect(h[e].learningRate, `epoch ${e}`).toBeCloseTo(expected, 12);
      if (h[e].learningRate < h[e - 1].learningRate) reductions++;
    }
    expect(reductions).toBeGreaterThan(0);
    const m2 = MultiTimeframeModel.create(modelConfig(d.spec), 1);
    const cosine = await trainTimeSeriesModel(m2, d.train, d.validation, {
      ...base,
      epochs: 3,
      learningRate: 1e-2,
      schedule: { type: 'cosine', warmupSteps: 5, minLearningRate: 1e-4 },
    });
    const lrs = cosine.history.map((h) => h.learningRate);
    expect(lrs[1]).toBeLessThan(lrs[0]);
    expect(lrs[2]).toBeLessThan(lrs[1]);
    expect(lrs[2]).toBeCloseTo(1e-4, 5); // the last step is one step before the end of the decay
    m1.dispose();
    m2.dispose();
  });

  it('refuses to resume a checkpoint written for other training settings', async () => {
    const ckpt = join(dir, 'ckpt');
    const opts = {
      epochs: 1,
      batchSize: 32,
      learningRate: 1e-3,
      seed: 1,
      maxStepsPerEpoch: 4,
      checkpoint: { dir: ckpt, everySteps: 2 },
      progress: false,
    };
    const m1 = MultiTimeframeModel.create(modelConfig(data.spec), 1);
    await trainTimeSeriesModel(m1, data.train, data.validation, opts);
    const m2 = MultiTimeframeModel.create(modelConfig(data.spec), 1);
    await expect(
      trainTimeSeriesModel(m2, data.train, data.validation, {
        ...opts,
        learningRate: 2e-3,
        resume: true,
      }),
    ).rejects.toThrow(CheckpointError);
    // The same settings resume (here: the finished run, nothing left to do).
    const r = await trainTimeSeriesModel(m2, data.train, data.validation, {
      ...opts,
      resume: true,
    });
    expect(r.resumedFromStep).toBe(4);
    expect(r.steps).toBe(4);
    m1.dispose();
    m2.dispose();
  });

  it('leaks no tensors: training and evaluation keep the count flat, dispose() frees the model', async () => {
    for (const over of [{}, { gruImplementation: 'layers' as const }, { cell: 'lstm' as const }]) {
      const start = tf.memory().numTensors;
      const model = MultiTimeframeModel.create(modelConfig(data.spec, over), 1);
      const opts = {
        epochs: 1,
        batchSize: 32,
        learningRate: 1e-3,
        seed: 1,
        maxStepsPerEpoch: 3,
        progress: false,
      };
      await trainTimeSeriesModel(model, data.train, data.validation, opts);
      const before = tf.memory().numTensors;
      await trainTimeSeriesModel(model, data.train, data.validation, { ...opts, epochs: 2 });
      await evaluateTimeSeriesModel(model, data.validation);
      expect(tf.memory().numTensors, JSON.stringify(over)).toBe(before);
      model.dispose();
      expect(tf.memory().numTensors, JSON.stringify(over)).toBe(start);
    }
  });

  it('refuses datasets that do not match the model', async () => {
    const other = MultiTimeframeModel.create(
      modelConfig({ ...data.spec, windows: { '15m': 8, '4h': 5 } }),
      1,
    );
    await expect(
      trainTimeSeriesModel(other, data.train, data.validation, {
        epochs: 1,
        batchSize: 8,
        learningRate: 1e-3,
        seed: 1,
      }),
    ).rejects.toThrow(/window of 4h differs/);
    other.dispose();
  });
});
