// MultiTimeframeModel: shapes and probabilities, seeded initialisation, every encoder variant
// (fused GRU, stock tf.layers.gru fallback, LSTM, attention pooling, stacked layers) training on a
// fixed batch, the feature extractor, save/load round trips with the normaliser and the checks
// that refuse a model that does not fit the data, and the model as a backtest Policy.

import { variableParameter } from '../../../src/models/common/tensors.js';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../../src/errors.js';
import { ObservationBuilder } from '../../../src/evaluation/policy.js';
import { initTensorflow } from '../../../src/models/common/backend.js';
import {
  MultiTimeframeModel,
  type MultiTimeframeModelConfig,
} from '../../../src/models/time-series/model.js';
import {
  positionFromProbabilities,
  SequenceModelPolicy,
} from '../../../src/models/time-series/policy.js';
import { Rng } from '../../../src/utils/random.js';
import { fixtureFeatures } from './fixtures.js';
import {
  makeInputSpec,
  type ModelInputSpec,
  createWindowDatasets,
} from '../../../src/data-processing/window-datasets.js';
import { Adam } from '../../../src/models/common/optimizer.js';

let dir: string;
beforeAll(async () => {
  await initTensorflow('wasm');
  dir = mkdtempSync(join(tmpdir(), 'ctm-model-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SPEC: ModelInputSpec = makeInputSpec(
  ['15m', '4h', '1d'],
  { '15m': 12, '4h': 6, '1d': 4 },
  { '15m': 5, '4h': 4, '1d': 3 },
);

function config(over: Partial<MultiTimeframeModelConfig> = {}): MultiTimeframeModelConfig {
  return {
    spec: SPEC,
    cell: 'gru',
    gruImplementation: 'fused',
    hiddenDims: 8,
    numLayers: 1,
    pooling: 'last',
    attentionHeads: 2,
    denseUnits: 8,
    dropout: 0,
    patternClasses: [],
    lossWeights: { direction: 1, forwardReturn: 0.5, pattern: 0.5 },
    inputClip: 10,
    ...over,
  };
}

function inputs(B: number, seed: number, spec = SPEC): tf.Tensor3D[] {
  const rng = new Rng(seed);
  return spec.timeframes.map((t) => {
    const T = spec.windows[t]!;
    const F = spec.features[t]!.length;
    return tf.tensor3d(
      Float32Array.from({ length: B * T * F }, () => rng.normal()),
      [B, T, F],
    );
  });
}

function targets(B: number, seed: number, patterns = 0) {
  const rng = new Rng(seed);
  return {
    direction: Int32Array.from({ length: B }, () => rng.int(3)),
    forwardReturn: Float32Array.from({ length: B }, () => 0.01 * rng.normal()),
    ...(patterns > 0
      ? { pattern: Int32Array.from({ length: B }, () => rng.int(patterns + 1) - 1) }
      : {}),
  };
}

/** Trains `steps` Adam steps on one fixed batch; returns the first and last loss. */
function fitBatch(model: MultiTimeframeModel, steps: number, patterns = 0): [number, number] {
  const xs = inputs(16, 1, model.spec);
  const y = targets(16, 2, patterns);
  const opt = new Adam([
    {
      name: 'model',
      params: model.trainableVariables.map((v) => variableParameter(v)),
      learningRate: 0.01,
    },
  ]);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { value, grads } = tf.variableGrads(
      () => model.loss(xs, y, null, null).total,
      model.trainableVariables,
    );
    losses.push(value.dataSync()[0]);
    opt.apply(model.trainableVariables.map((v) => grads[v.name].dataSync() as Float32Array));
    tf.dispose([value, ...Object.values(grads)]);
  }
  tf.dispose(xs);
  return [losses[0], losses[losses.length - 1]];
}

describe('MultiTimeframeModel', () => {
  it('predicts direction probabilities [B, 3] summing to 1 and a forward return [B]', () => {
    const model = MultiTimeframeModel.create(config(), 1);
    const xs = inputs(5, 3);
    const p = model.predict(...xs);
    expect(p.direction.shape).toEqual([5, 3]);
    expect(p.forwardReturn.shape).toEqual([5]);
    expect(p.pattern).toBeNull();
    const d = p.direction.dataSync();
    for (let b = 0; b < 5; b++) expect(d[b * 3] + d[b * 3 + 1] + d[b * 3 + 2]).toBeCloseTo(1, 5);
    tf.dispose([...xs, p.direction, p.forwardReturn]);
    model.dispose();
  });

  it('refuses inputs that do not match its spec, naming the timeframe', () => {
    const model = MultiTimeframeModel.create(config(), 1);
    const xs = inputs(2, 3);
    expect(() => model.predict(xs[0], xs[1])).toThrow(/expected 3 inputs/);
    expect(() => model.predict(xs[0], xs[2], xs[1])).toThrow(/input 4h has shape/);
    tf.dispose(xs);
    model.dispose();
  });

  it('initialises identically from the same seed and differently from another', () => {
    const a = MultiTimeframeModel.create(config(), 7).getWeights();
    const b = MultiTimeframeModel.create(config(), 7).getWeights();
    const c = MultiTimeframeModel.create(config(), 8).getWeights();
    for (const [name, v] of a) expect(b.get(name), name).toEqual(v);
    expect(c.get('enc.15m.0.W')).not.toEqual(a.get('enc.15m.0.W'));
  });

  it('rejects an invalid architecture', () => {
    expect(() => MultiTimeframeModel.create(config({ attentionHeads: 3 }), 1)).toThrow(/divisible/);
    expect(() => MultiTimeframeModel.create(config({ dropout: 1 }), 1)).toThrow(/dropout/);
  });

  const variants: [string, Partial<MultiTimeframeModelConfig>][] = [
    ['fused GRU', {}],
    ['stock tf.layers.gru fallback', { gruImplementation: 'layers' }],
    ['LSTM', { cell: 'lstm' }],
    [
      '2 layers, attention pooling, pattern head',
      { numLayers: 2, pooling: 'attention', patternClasses: ['a', 'b'] },
    ],
    ['no fusion attention', { attentionHeads: 0 }],
  ];
  for (const [name, over] of variants)
    it(`fits a fixed batch with every weight receiving gradient: ${name}`, () => {
      const model = MultiTimeframeModel.create(config(over), 3);
      const xs = inputs(8, 4);
      const y = targets(8, 5, over.patternClasses?.length ?? 0);
      const { grads } = tf.variableGrads(
        () => model.loss(xs, y, null, null).total,
        model.trainableVariables,
      );
      for (const [k, v] of model.trainableVariables.entries()) {
        const g = grads[v.name];
        expect(g, model.weightNames[k]).toBeDefined();
        expect(tf.max(tf.abs(g)).dataSync()[0], model.weightNames[k]).toBeGreaterThan(0);
      }
      tf.dispose([...xs, ...Object.values(grads)]);
      const [first, last] = fitBatch(model, 40, over.patternClasses?.length ?? 0);
      expect(last).toBeLessThan(0.7 * first);
      model.dispose();
    });

  it('exports its encoders as a feature extractor for an RL policy', () => {
    const model = MultiTimeframeModel.create(config(), 1);
    const xs = inputs(4, 9);
    for (const level of ['fused', 'encoders'] as const) {
      const fx = model.featureExtractor(level);
      const out = fx.extract(xs);
      expect(out.shape).toEqual([4, fx.outputSize]);
      expect(fx.outputSize).toBe(3 * 8);
      expect(fx.variables.length).toBe(level === 'fused' ? 12 + 6 : 12);
      out.dispose();
      fx.dispose();
    }
    tf.dispose(xs);
    model.dispose();
  });

  it('gives the extractor its own copy: fine-tuning it leaves the model byte-identical', () => {
    const model = MultiTimeframeModel.create(config(), 2);
    const before = model.getWeights();
    const xs = inputs(4, 3);
    const fx = model.featureExtractor('encoders');
    const emb0 = fx.extract(xs);
    const modelEmb = model.featureExtractor('encoders');
    // Same numbers as the model's own encoders before any training.
    const e1 = modelEmb.extract(xs);
    expect(Array.from(emb0.dataSync())).toEqual(Array.from(e1.dataSync()));
    // A few Adam steps on the extractor's variables.
    const start = fx.getWeights();
    const opt = tf.train.adam(0.05);
    for (let k = 0; k < 5; k++)
      opt.minimize(() => tf.sum(tf.square(fx.extract(xs))) as tf.Scalar, false, [...fx.variables]);
    const moved = fx.getWeights();
    expect(moved.some((w, k) => w.some((v, i) => v !== start[k][i]))).toBe(true);
    const after = model.getWeights();
    for (const [name, w] of before) expect(after.get(name)).toEqual(w);
    const emb1 = fx.extract(xs);
    expect(Array.from(emb1.dataSync())).not.toEqual(Array.from(emb0.dataSync()));
    tf.dispose([...xs, emb0, e1, emb1]);
    opt.dispose();
    fx.dispose();
    modelEmb.dispose();
    model.dispose();
  });
});

describe('save and load', () => {
  const features = fixtureFeatures({ seed: 4, bars: 16 * 120, higher: ['4h'] });
  const t = features.perTimeframe.get('15m')!.time;
  const ds = createWindowDatasets(features, {
    windows: { '15m': 8, '4h': 4 },
    horizon: 2,
    threshold: { quantile: 1 / 3 },
    splits: {
      train: { fromMs: -Infinity, toMs: t[1200] },
      validation: { fromMs: t[1200], toMs: Infinity },
    },
    embargoBars: 0,
  });

  for (const gruImplementation of ['fused', 'layers'] as const)
    it(`round-trips weights, config, normaliser and target scale (${gruImplementation})`, () => {
      const model = MultiTimeframeModel.create(config({ spec: ds.spec, gruImplementation }), 5);
      model.setNormalizer(ds.normalizer);
      model.targetScale = { mean: 0.001, std: 0.02 };
      const path = join(dir, `m-${gruImplementation}`);
      model.save(path);
      const loaded = MultiTimeframeModel.load(path, ds.spec);
      expect(loaded.config).toEqual(model.config);
      expect(loaded.targetScale).toEqual(model.targetScale);
      expect(loaded.normalizer!.json).toEqual(ds.normalizer.json);
      // Raw, un-normalised inputs: both models normalise them the same way.
      const xs = inputs(6, 11, ds.spec).map((x) => tf.mul(x, 50) as tf.Tensor3D);
      const a = model.predict(...xs);
      const b = loaded.predict(...xs);
      expect(b.direction.dataSync()).toEqual(a.direction.dataSync());
      expect(b.forwardReturn.dataSync()).toEqual(a.forwardReturn.dataSync());
      tf.dispose([...xs, a.direction, a.forwardReturn, b.direction, b.forwardReturn]);
      model.dispose();
      loaded.dispose();
    });

  it('keeps exactly one weights file, the one model.json names, after saving twice', () => {
    const model = MultiTimeframeModel.create(config(), 5);
    const path = join(dir, 'twice');
    model.save(path);
    const v = model.trainableVariables[0];
    v.assign(tf.add(v, 1));
    model.save(path);
    const files = readdirSync(path).filter((f) => f.startsWith('weights-'));
    expect(files.length).toBe(1);
    const loaded = MultiTimeframeModel.load(path);
    expect(loaded.getWeights().get(model.weightNames[0])).toEqual(
      model.getWeights().get(model.weightNames[0]),
    );
    model.dispose();
    loaded.dispose();
  });

  it('refuses a model whose feature spec differs from the data, naming the difference', () => {
    const model = MultiTimeframeModel.create(config({ spec: ds.spec }), 5);
    const path = join(dir, 'spec');
    model.save(path);
    const renamed: ModelInputSpec = {
      ...ds.spec,
      features: { ...ds.spec.features, '4h': ['ret', 'other', 'f2'] },
    };
    expect(() => MultiTimeframeModel.load(path, renamed)).toThrow(CheckpointError);
    expect(() => MultiTimeframeModel.load(path, renamed)).toThrow(
      /4h feature 1 differs: model "f1", data "other"/,
    );
    const shorter: ModelInputSpec = { ...ds.spec, windows: { '15m': 8, '4h': 3 } };
    expect(() => MultiTimeframeModel.load(path, shorter)).toThrow(/window of 4h differs/);
    model.dispose();
  });

  it('refuses a missing or corrupt model directory', () => {
    expect(() => MultiTimeframeModel.load(join(dir, 'nope'))).toThrow(/no model.json/);
    const path = join(dir, 'corrupt');
    MultiTimeframeModel.create(config(), 1).save(path);
    writeFileSync(join(path, 'model.json'), '{"format": "ctm-sequence-model", "vers');
    expect(() => MultiTimeframeModel.load(path)).toThrow(/not valid JSON/);
  });
});

describe('SequenceModelPolicy', () => {
  it('maps probabilities to positions with the confidence threshold', () => {
    expect(positionFromProbabilities(0.2, 0.5, 0.45, 'discrete')).toBe(1);
    expect(positionFromProbabilities(0.5, 0.2, 0.45, 'discrete')).toBe(-1);
    expect(positionFromProbabilities(0.3, 0.4, 0.45, 'discrete')).toBe(0);
    expect(positionFromProbabilities(0.46, 0.46, 0.45, 'discrete')).toBe(0);
    expect(positionFromProbabilities(0.1, 0.6, 0.45, 'proportional')).toBeCloseTo(0.5);
    expect(positionFromProbabilities(0.1, 0.3, 0.45, 'proportional')).toBe(0);
    expect(
      () => new SequenceModelPolicy(MultiTimeframeModel.create(config(), 1), { threshold: 1.5 }),
    ).toThrow(/outside/);
  });

  it('acts on ObservationBuilder observations exactly as the model predicts on the same windows', () => {
    const features = fixtureFeatures({ seed: 6, bars: 16 * 60, higher: ['4h'] });
    const spec: ModelInputSpec = {
      timeframes: ['15m', '4h'],
      windows: { '15m': 8, '4h': 4 },
      features: { '15m': ['ret', 'f1', 'f2'], '4h': ['ret', 'f1', 'f2'] },
    };
    const model = MultiTimeframeModel.create(config({ spec }), 2);
    const policy = new SequenceModelPolicy(model, { threshold: 0.34 });
    const builder = new ObservationBuilder(features, policy.observation);
    const rows = [200, 333, 517, 800];
    const obs = new Float32Array(builder.size * rows.length);
    rows.forEach((r, e) => builder.build(r, null, obs, e * builder.size));
    const out = new Float32Array(rows.length);
    policy.act(obs, rows.length, out);
    const w15 = new Float32Array(rows.length * 24);
    const w4h = new Float32Array(rows.length * 12);
    rows.forEach((r, e) => {
      w15.set(obs.subarray(e * builder.size, e * builder.size + 24), e * 24);
      w4h.set(obs.subarray(e * builder.size + 24, e * builder.size + 36), e * 12);
    });
    const { direction } = model.predictArrays([w15, w4h], rows.length);
    rows.forEach((_, e) =>
      expect(out[e]).toBe(
        positionFromProbabilities(direction[e * 3], direction[e * 3 + 2], 0.34, 'discrete'),
      ),
    );
    // One env at a time gives the same decisions as the batch.
    const single = new Float32Array(1);
    rows.forEach((_, e) => {
      policy.act(obs.subarray(e * builder.size, (e + 1) * builder.size), 1, single);
      expect(single[0]).toBe(out[e]);
    });
    model.dispose();
  });
});
