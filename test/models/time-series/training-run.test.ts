// `ctm train model --source dataset`: the trainer reads a directory written by the dataset builder
// through the same SequenceDataset interface, trains the pattern head on its pattern labels, and
// records the run; a dataset source without a directory is a usage error.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.js';
import { MultiTimeframeModel } from '../../../src/models/time-series/model.js';
import { runModelTraining } from '../../../src/models/time-series/training-run.js';
import type { DatasetManifest } from '../../../src/data-processing/dataset-format.js';
import { buildSyntheticDataset } from '../../../src/synthetic-data/dataset-builder.js';
import { defaultConfig, type Config } from '../../../src/utils/config.js';

let dir: string;
let manifest: DatasetManifest;
let config: Config;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-train-ds-'));
  manifest = await buildSyntheticDataset(300, {}, { outDir: join(dir, 'ds'), seed: 3 });
  config = defaultConfig();
  config.paths.runs = join(dir, 'runs');
  config.model = {
    ...config.model,
    hiddenDims: 8,
    attentionHeads: 2,
    denseUnits: 8,
    train: {
      ...config.model.train,
      epochs: 1,
      batchSize: 16,
      maxStepsPerEpoch: 4,
      evalBatchSize: 64,
    },
  };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runModelTraining with a built dataset', () => {
  it('trains on the dataset splits with a pattern head and records the run', async () => {
    const r = await runModelTraining({ config, source: 'dataset', dataDir: join(dir, 'ds') });
    expect(r.steps).toBe(4);
    expect(r.test).not.toBeNull();
    expect(r.test!.count).toBe(manifest.splits.counts.test);
    expect(r.test!.pattern).not.toBeNull();
    expect(r.test!.pattern!.count).toBeGreaterThan(0);
    const model = MultiTimeframeModel.load(r.modelDir, manifest.spec);
    expect(model.config.patternClasses).toEqual(manifest.patternClasses);
    expect(model.normalizer).not.toBeNull();
    model.dispose();
    const info = JSON.parse(readFileSync(r.run.path('run.json'), 'utf8')) as {
      extra: { source: string };
      featureSpec: unknown;
    };
    expect(info.extra.source).toBe('dataset');
    expect(info.featureSpec).toEqual(manifest.spec);
  });

  it('refuses a dataset source without its directory, before creating a run', async () => {
    const runs = (): string[] => readdirSync(config.paths.runs);
    const before = runs();
    await expect(runModelTraining({ config, source: 'dataset' })).rejects.toThrow(UsageError);
    expect(runs()).toEqual(before);
  });
});
