// Refactoring guard: fixed seeds give fixed bytes. A tiny synthetic dataset (every shard file and
// the manifest's counts) and the sequence model's weights after a few training steps (Adam with
// clipping, a cosine schedule, weight averaging and class weights) are hashed; moving code between
// modules must leave every hash unchanged. A change of result shows up here before anywhere else.
// When a result is meant to change, the new hashes go in with the commit that says why.

import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initTensorflow } from '../src/models/common/backend.js';
import { MultiTimeframeModel } from '../src/models/time-series/model.js';
import { trainTimeSeriesModel } from '../src/models/time-series/trainer.js';
import { buildSyntheticDataset } from '../src/synthetic-data/dataset-builder.js';
import { defaultConfig } from '../src/utils/config.js';
import { fixtureFeatures } from './models/time-series/fixtures.js';
import { createWindowDatasets } from '../src/data-processing/window-datasets.js';

let root: string;
beforeAll(async () => {
  await initTensorflow('wasm');
  root = mkdtempSync(join(tmpdir(), 'ctm-invariance-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function sha(parts: Iterable<Uint8Array | string>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}

describe('fixed seeds give fixed bytes across refactors', () => {
  it('a tiny synthetic dataset has the same shards and counts', async () => {
    const config = defaultConfig();
    config.dataset.seriesDays = 120;
    config.dataset.shardSize = 64;
    const dir = join(root, 'ds');
    const manifest = await buildSyntheticDataset(
      80,
      {},
      { outDir: dir, config, seed: 11, workers: 1 },
    );
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.f32') || f.endsWith('.f64'))
      .sort();
    expect(files.length).toBeGreaterThan(0);
    const hash = sha([
      JSON.stringify(manifest.counts),
      JSON.stringify(manifest.splits.counts),
      ...files.flatMap((f) => [f, readFileSync(join(dir, f))]),
    ]);
    expect(hash).toBe('aa83a48007f40fa7');
  });

  it('the sequence model has the same weights after a few training steps', async () => {
    const f = fixtureFeatures({ seed: 21, bars: 16 * 60, signal: 0.001 });
    const t = f.perTimeframe.get('15m')!.time;
    const n = t.length;
    const ds = createWindowDatasets(f, {
      windows: { '15m': 8, '4h': 4 },
      horizon: 4,
      threshold: { quantile: 1 / 3 },
      splits: {
        train: { fromMs: 0, toMs: t[Math.floor(n * 0.7)] },
        validation: { fromMs: t[Math.floor(n * 0.7)], toMs: Infinity },
      },
      embargoBars: 2,
    });
    const model = MultiTimeframeModel.create(
      {
        spec: ds.spec,
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
      },
      3,
    );
    const result = await trainTimeSeriesModel(model, ds.train, ds.validation, {
      epochs: 2,
      batchSize: 16,
      learningRate: 3e-3,
      seed: 5,
      weightDecay: 0.01,
      averageDecay: 0.9,
      clipNorm: 0.5,
      classWeights: 'balanced',
      schedule: { type: 'cosine', warmupSteps: 2, minLearningRate: 1e-4 },
      maxStepsPerEpoch: 6,
      progress: false,
    });
    const weights = result.model.getWeights();
    const hash = sha(
      [...weights.keys()].sort().flatMap((k) => {
        const w = weights.get(k)!;
        return [k, new Uint8Array(w.buffer, w.byteOffset, w.byteLength)];
      }),
    );
    result.model.dispose();
    expect(hash).toBe('1cc1b04c4591f4f3');
  });
});
