// `ctm train model` as a library function: candles from a source (the store, a candle directory as
// in docs/architecture.md, or the synthetic base process) -> features -> labelled window datasets,
// or a dataset directory written by `ctm dataset build` (pattern labels included) -> a new,
// initialised-from or resumed model -> training with checkpoints in runs/<id>/ -> the saved model,
// its test metrics and history. A resumed run rebuilds everything from its own run.json, so
// it continues on exactly the data and settings it started with. Never reads the holdout split.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Candles, Timeframe } from '../../data-processing/candles.js';
import { repairCandles, sliceByTime, validateCandles } from '../../data-processing/candles.js';
import { buildFeatures } from '../../data-processing/feature-engineering.js';
import {
  dataFingerprint,
  loadCandleDirectory,
  loadHistoricalData,
} from '../../data-processing/data-loader.js';
import { loadCalibration } from '../../synthetic-data/calibration.js';
import { generateBaseMarket } from '../../synthetic-data/base-process.js';
import { DiskDataset } from '../../data-processing/dataset-format.js';
import { CheckpointError, DataValidationError, UsageError } from '../../errors.js';
import { rangeMs, type Config } from '../../utils/config.js';
import { logger as rootLogger } from '../../utils/logger.js';
import { createRun, openRun, type DataFingerprint, type Run } from '../../utils/runs.js';
import { initTensorflow } from '../common/backend.js';
import { MultiTimeframeModel, modelConfigFromSection } from './model.js';
import { trainOptionsFromSection, trainTimeSeriesModel } from './trainer.js';
import {
  clipToHoldout,
  configDataRange,
  configSplits,
  type DateRange,
} from '../../data-processing/splits.js';
import {
  type ModelInputSpec,
  createWindowDatasets,
  type SequenceDataset,
  type WindowDatasets,
} from '../../data-processing/window-datasets.js';
import { evaluateTimeSeriesModel, type EvaluationResult } from './evaluation.js';

/** Where the candles of a training run come from. */
export type TrainingSource = 'real' | 'synthetic' | 'dataset';

/** Options of `runModelTraining`. */
export interface ModelTrainingOptions {
  /** The resolved config (ignored when resuming: the run's own config is used). */
  config: Config;
  /**
   * Where the candles come from: real candles, a synthetic market, or a built dataset. Default
   * real.
   */
  source?: TrainingSource;
  /** Symbol of a real-data run (default: the first of `data.symbols`). */
  symbol?: string;
  /**
   * Source `real`: read candles from this folder (`<exchange>-<BASEQUOTE>-<tf>.csv[.gz]`) instead
   * of the store. Source `dataset`: the dataset directory (`ctm dataset build --out DIR`).
   */
  dataDir?: string;
  /** Start from the weights of this run's model (fine-tuning; the normaliser is refitted). */
  initFrom?: string;
  /** Continue this run from its last checkpoint. */
  resume?: string;
  /** Command line recorded in run.json. */
  commandLine?: string[];
  /** Called with the run as soon as it exists (before training), e.g. to record it for a resume. */
  onRun?: (run: Run) => void;
}

/** What a training run produced. */
export interface ModelTrainingResult {
  /** The run the model, history, checkpoint and metrics were written to. */
  run: Run;
  /** Directory of the saved model (`<run>/model`). */
  modelDir: string;
  /** 0-based epoch whose weights were kept (see `TrainResult.bestEpoch`). */
  bestEpoch: number;
  /** Validation loss of that epoch. */
  bestValLoss: number;
  /** Epochs run (history entries, resumed ones included). */
  epochs: number;
  /** Optimizer steps taken in total. */
  steps: number;
  /** Step the run resumed from, or null for a fresh run. */
  resumedFromStep: number | null;
  /** Evaluation of the final model on the validation split. */
  validation: EvaluationResult;
  /** Evaluation on the test split, or null when it has no samples. */
  test: EvaluationResult | null;
}

/** Where a training run's data and initial weights come from (recorded in run.json `extra`). */
export interface TrainingRunSource {
  /** Where the candles came from. */
  source: TrainingSource;
  /** Symbol of a real-data run. */
  symbol: string;
  /** Folder of candle files (null: the store), or the dataset directory of source `dataset`. */
  dataDir: string | null;
  /** Run whose model initialises the weights, or null. */
  initFrom: string | null;
}

const log = rootLogger.child({ module: 'train-model' });

/** Candles of the run's source, validated (repaired when `data.repair`), holdout excluded. */
async function loadCandles(
  config: Config,
  extra: TrainingRunSource,
): Promise<{
  candles: Map<Timeframe, Candles>;
  ranges: { train: DateRange; validation: DateRange; test: DateRange };
}> {
  const timeframes = config.data.timeframes;
  if (extra.source === 'synthetic') {
    const s = config.model.synthetic;
    const market = generateBaseMarket(loadCalibration(s.calibration), {
      seed: config.seed,
      days: s.days,
    });
    const byTf = new Map<Timeframe, Candles>([
      ['15m', market.m15],
      ['4h', market.h4],
      ['1d', market.d1],
    ]);
    const candles = new Map<Timeframe, Candles>();
    for (const tf of timeframes) {
      const c = byTf.get(tf);
      if (c === undefined)
        throw new UsageError(
          `the synthetic base process has no ${tf} candles (it makes 15m, 4h, 1d)`,
        );
      candles.set(tf, c);
    }
    const base = candles.get(timeframes[0])!;
    const t0 = base.openTime[0];
    const t1 = base.openTime[base.openTime.length - 1] + 1;
    const a = t0 + (t1 - t0) * s.trainFraction;
    const b = a + (t1 - t0) * s.validationFraction;
    return {
      candles,
      ranges: {
        train: { fromMs: t0, toMs: a },
        validation: { fromMs: a, toMs: b },
        test: { fromMs: b, toMs: Infinity },
      },
    };
  }
  const span = clipToHoldout(configDataRange(config), rangeMs(config.splits.holdout));
  if (extra.dataDir !== null) {
    const candles = await loadCandleDirectory(extra.dataDir, {
      exchange: config.data.exchange,
      symbol: extra.symbol,
      timeframes,
      ...span,
      repair: config.data.repair,
    });
    const { train, validation, test } = configSplits(config);
    return { candles, ranges: { train, validation, test } };
  }
  const raw = (
    await loadHistoricalData({
      exchange: config.data.exchange,
      symbols: [extra.symbol],
      timeframes,
      startDate: config.data.startDate,
      endDate: config.data.endDate,
      store: config.paths.store,
    })
  ).get(extra.symbol)!;
  const candles = new Map<Timeframe, Candles>();
  for (const tf of timeframes) {
    let c = raw.get(tf);
    if (c === undefined)
      throw new DataValidationError({ source: `${extra.symbol} ${tf}`, reason: 'no candles' });
    c = sliceByTime(c, span.fromMs, span.toMs);
    if (config.data.repair) {
      const r = repairCandles(c);
      if (r.actions.length > 0)
        log.warn(
          { series: `${extra.symbol} ${tf}`, repaired: r.actions.length },
          'rows dropped by data.repair',
        );
      c = r.candles;
    }
    validateCandles(c, { source: `${extra.symbol} ${tf}` });
    candles.set(tf, c);
  }
  const { train, validation, test } = configSplits(config);
  return { candles, ranges: { train, validation, test } };
}

/** The labelled splits a run trains on. */
export interface TrainingDatasets {
  /** Input spec of the samples (timeframes, windows in bars, feature names). */
  spec: ModelInputSpec;
  /** Training split. */
  train: SequenceDataset;
  /** Validation split. */
  validation: SequenceDataset;
  /** Test split, or null when it has no samples. */
  test: SequenceDataset | null;
  /** Pattern classes of the pattern head (empty without pattern labels). */
  patternClasses: readonly string[];
  /** Flat band of the direction labels (log return), when the run cut the labels itself. */
  threshold: number | null;
  /**
   * Fingerprint of the data read (symbols, timeframes, split ranges, hash), recorded in run.json.
   */
  data: DataFingerprint;
}

async function openBuiltDataset(dir: string): Promise<TrainingDatasets> {
  const [train, validation, test] = await Promise.all([
    DiskDataset.open(dir, 'train'),
    DiskDataset.open(dir, 'validation'),
    DiskDataset.open(dir, 'test'),
  ]);
  const m = train.manifest;
  return {
    spec: m.spec,
    train,
    validation,
    test: test.size > 0 ? test : null,
    patternClasses: m.patternClasses,
    threshold: null,
    data: {
      symbols: ['synthetic'],
      timeframes: [...m.spec.timeframes],
      ranges: {},
      hash: createHash('sha256')
        .update(readFileSync(join(dir, 'manifest.json')))
        .digest('hex'),
    },
  };
}

/** Builds (or opens) the labelled datasets of a run from its config and source. */
export async function buildTrainingDatasets(
  config: Config,
  extra: TrainingRunSource,
): Promise<TrainingDatasets> {
  if (extra.source === 'dataset') {
    if (extra.dataDir === null) throw new UsageError('source dataset needs the dataset directory');
    return openBuiltDataset(extra.dataDir);
  }
  const { candles, ranges } = await loadCandles(config, extra);
  const windows: Partial<Record<Timeframe, number>> = {};
  for (const tf of config.data.timeframes) {
    const w = config.windows[tf];
    if (w === undefined) throw new UsageError(`config windows has no entry for ${tf}`);
    windows[tf] = w;
  }
  const features = buildFeatures(candles, { spec: config.features, windows });
  const m = config.model;
  const ds: WindowDatasets = createWindowDatasets(features, {
    windows,
    horizon: m.labels.horizon,
    threshold:
      m.labels.threshold === 'quantile'
        ? { quantile: m.labels.thresholdValue }
        : { fixed: m.labels.thresholdValue },
    splits: ranges,
    embargoBars: m.embargoBars,
    stride: m.sampleStride,
    normalizerMethod: config.features.normalize.method,
    normalizerClip: config.features.normalize.clip,
  });
  return {
    spec: ds.spec,
    train: ds.train,
    validation: ds.validation,
    test: ds.test,
    patternClasses: [],
    threshold: ds.threshold,
    data: dataFingerprint(extra.symbol, candles),
  };
}

/**
 * Runs `ctm train model`: a new run (optionally initialised from another run's model) or the
 * continuation of a killed one (`resume`), ending with the best model saved in runs/<id>/model,
 * history.jsonl/history.json, and metrics.json (validation and test evaluation).
 * @throws {CheckpointError} when the run to resume or initialise from is missing or does not fit.
 * @throws {DataValidationError} on bad or missing candles.
 */
export async function runModelTraining(
  options: ModelTrainingOptions,
): Promise<ModelTrainingResult> {
  let run: Run;
  let config: Config;
  let extra: TrainingRunSource;
  if (options.resume !== undefined) {
    run = openRun(options.resume, options.config.paths.runs);
    config = run.info.config;
    const e = run.info.extra as Partial<TrainingRunSource> | undefined;
    if (e?.source === undefined || e.symbol === undefined)
      throw new CheckpointError(run.dir, 'run.json does not describe a train-model run');
    extra = {
      source: e.source,
      symbol: e.symbol,
      dataDir: e.dataDir ?? null,
      initFrom: e.initFrom ?? null,
    };
    if (!existsSync(run.path('checkpoint/checkpoint.json')))
      throw new CheckpointError(run.dir, 'the run has no checkpoint to resume from');
  } else {
    config = options.config;
    extra = {
      source: options.source ?? 'real',
      symbol: options.symbol ?? config.data.symbols[0],
      dataDir: options.dataDir ?? null,
      initFrom: options.initFrom ?? null,
    };
    if (extra.source === 'dataset' && extra.dataDir === null)
      throw new UsageError('source dataset needs the dataset directory', {
        hint: 'ctm train model --source dataset --data-dir DIR (from ctm dataset build --out DIR)',
      });
    run = createRun({ kind: 'train-model', config, commandLine: options.commandLine });
    run.update({ extra: { ...extra } });
  }
  options.onRun?.(run);
  const tfInfo = await initTensorflow(config.model.backend);
  log.info(
    { run: run.id, backend: tfInfo.backend, source: extra.source, symbol: extra.symbol },
    'train model',
  );
  const datasets = await buildTrainingDatasets(config, extra);
  run.update({ data: datasets.data, featureSpec: datasets.spec });
  log.info(
    {
      train: datasets.train.size,
      validation: datasets.validation.size,
      test: datasets.test?.size ?? 0,
      threshold: datasets.threshold,
    },
    'datasets',
  );
  let model: MultiTimeframeModel;
  if (extra.initFrom !== null) {
    const from = openRun(extra.initFrom, config.paths.runs);
    model = MultiTimeframeModel.load(from.path('model'), datasets.spec);
  } else {
    model = MultiTimeframeModel.create(
      modelConfigFromSection(config.model, datasets.spec, datasets.patternClasses),
      config.seed,
    );
  }
  const trainOptions = trainOptionsFromSection(config.model.train, config.seed);
  const result = await trainTimeSeriesModel(model, datasets.train, datasets.validation, {
    ...trainOptions,
    checkpoint: {
      dir: run.path('checkpoint'),
      everySteps: config.model.train.checkpointEverySteps,
    },
    resume: options.resume !== undefined,
    run,
  });
  const modelDir = run.path('model');
  model.save(modelDir);
  run.addArtifact('model', 'model');
  run.addArtifact('history', 'history.json');
  run.addArtifact('checkpoint', 'checkpoint');
  const evalOptions = { batchSize: config.model.train.evalBatchSize };
  const validation = await evaluateTimeSeriesModel(model, datasets.validation, evalOptions);
  const test =
    datasets.test === null
      ? null
      : await evaluateTimeSeriesModel(model, datasets.test, evalOptions);
  run.writeMetrics({
    bestEpoch: result.bestEpoch,
    bestValLoss: result.bestValLoss,
    epochs: result.history.length,
    steps: result.steps,
    stoppedEarly: result.stoppedEarly,
    threshold: datasets.threshold,
    samples: {
      train: datasets.train.size,
      validation: datasets.validation.size,
      test: datasets.test?.size ?? 0,
    },
    validation,
    test,
  });
  model.dispose();
  return {
    run,
    modelDir,
    bestEpoch: result.bestEpoch,
    bestValLoss: result.bestValLoss,
    epochs: result.history.length,
    steps: result.steps,
    resumedFromStep: result.resumedFromStep,
    validation,
    test,
  };
}
