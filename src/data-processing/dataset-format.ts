// The on-disk dataset format (manifest.json, binary window shards per timeframe and float64 label
// shards) and its reader: what `ctm dataset build` writes and the trainer reads, as a
// SequenceDataset whose batches come straight from the shards. Knows no generator: the builder in
// synthetic-data/ writes this format, the trainer reads it without importing synthetic-data.
// Never writes and never loads a whole split's windows into memory.

import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { DataValidationError, UsageError } from '../errors.js';
import type { Config } from '../utils/config.js';
import type { Timeframe } from './candles.js';
import type { FeatureSpec } from './feature-engineering.js';
import { FittedNormalizer } from './normalizer.js';
import {
  sampleOrder,
  type BatchOptions,
  type ModelInputSpec,
  type SequenceBatch,
  type SequenceDataset,
} from './window-datasets.js';

/** Format tag of a dataset's manifest. */
export const DATASET_FORMAT = 'ctm-dataset';
/** Version of the dataset format this package writes and reads. */
export const DATASET_VERSION = 3;

/** Label columns of every sample, in shard order (each a float64). */
export const LABEL_COLUMNS = [
  'pattern',
  'timeframe',
  'onsetTimeMs',
  'completionTimeMs',
  'decisionTimeMs',
  'expectedDirection',
  'horizonBars',
  'forwardReturn',
  'action',
  'adversarial',
  'htfAlignment',
  'series',
  'heightAtr',
  'htfTrend',
  'lagBars',
  'indicatorNoise',
  'source',
] as const;

/** What each label column means (written into the manifest). */
export const LABEL_DEFINITIONS: Readonly<Record<(typeof LABEL_COLUMNS)[number], string>> =
  Object.freeze({
    pattern:
      'index into patternClasses of the pattern completed on its primary timeframe by the decision time (0 = none); -1 = unknown (real data)',
    timeframe: 'index into timeframeCodes of the pattern primary timeframe (0 = none)',
    onsetTimeMs: 'open time of the first bar of the pattern, UTC ms (NaN when none)',
    completionTimeMs:
      'close time of the bar that completes the pattern, UTC ms, <= decisionTimeMs (NaN when none)',
    decisionTimeMs: 'close time of the base row the windows end at, UTC ms',
    expectedDirection: 'textbook direction of the pattern after completion: -1, 0, 1 (0 when none)',
    horizonBars: 'forward horizon in base (15m) bars',
    forwardReturn:
      'log(close[decision + horizon] / close[decision]) on the base timeframe: what actually happened',
    action:
      'index into actionClasses: long when forwardReturn > roundTripCost, short when < -roundTripCost, else flat',
    adversarial: '1 when the pattern was planted to fail after completion (a look-alike), else 0',
    htfAlignment:
      'the confluence of the higher timeframes (4h and 1d for a 15m pattern, 1d for a 4h one) at the pattern onset that decided its outcome: the mean of their trends relative to expectedDirection, 1 = all confirm, -1 = all contradict, 0 = flat or split; NaN when the outcome did not depend on it (none, 1d patterns, non-directional, htfInfluence 0)',
    series: 'index of the generated market the sample was cut from (-1 for real data)',
    heightAtr: 'pattern height in ATRs of its primary timeframe at onset (NaN when none)',
    htfTrend:
      'trend of the next higher timeframe at the decision time from its closed candles: -1, 0, 1 (NaN when none above)',
    lagBars: 'augmentation: bars by which lagging-indicator columns were delayed (0 = none)',
    indicatorNoise: 'augmentation: 1 when indicator columns carry added noise, else 0',
    source: '0 synthetic, 1 real',
  });

/** Column index of each label in a sample's row. */
export const LABEL_INDEX = Object.fromEntries(LABEL_COLUMNS.map((c, i) => [c, i])) as Record<
  (typeof LABEL_COLUMNS)[number],
  number
>;
/** Label columns per sample. */
export const LABEL_COUNT = LABEL_COLUMNS.length;
const COL = LABEL_INDEX;
const NCOL = LABEL_COUNT;

/** The dataset splits, in time order. */
export const DATASET_SPLITS = ['train', 'validation', 'test'] as const;
/** A dataset split. */
export type DatasetSplit = (typeof DATASET_SPLITS)[number];

/** The manifest of a dataset directory (manifest.json). */
export interface DatasetManifest {
  /** Format tag, always `ctm-dataset` (checked when a dataset is opened). */
  format: typeof DATASET_FORMAT;
  /** Dataset format version (3); another version is refused when the dataset is opened. */
  version: typeof DATASET_VERSION;
  /** Build time, ISO 8601 UTC. */
  createdAt: string;
  /** Seed the whole dataset was generated from. */
  seed: number;
  /** Samples written, all splits together. */
  samples: number;
  /** Windows per timeframe and feature names per timeframe: the model's input spec. */
  spec: ModelInputSpec;
  /** The feature registry the windows were computed with (config `features`). */
  featureSpec: FeatureSpec;
  /** Names of the label column `pattern`'s codes (`none` first). */
  patternClasses: readonly string[];
  /** Names of the label column `timeframe`'s codes (`none` first). */
  timeframeCodes: readonly string[];
  /** Names of the label column `action`'s codes: short, flat, long. */
  actionClasses: readonly string[];
  /**
   * Label columns in shard order with their definitions, the round-trip cost (fraction) the action
   * label uses, and the forward-return horizon in bars per timeframe.
   */
  labels: {
    columns: readonly string[];
    definitions: Readonly<Record<string, string>>;
    roundTripCost: number;
    horizonBars: Readonly<Partial<Record<Timeframe, number>>>;
  };
  /** How samples were split by time: shares, embargo (ms), samples per split and purged samples. */
  splits: {
    method: string;
    fractions: { train: number; validation: number; test: number };
    embargoMs: number;
    counts: Record<DatasetSplit, number>;
    /** Samples dropped because their label crossed a split end or fell in an embargo. */
    purged: number;
    /** Date ranges of real samples (when any). */
    realRanges?: Record<DatasetSplit, { fromMs: number; toMs: number }>;
  };
  /**
   * Sample counts by pattern class, timeframe, action and split, plus adversarial and real samples.
   */
  counts: {
    byPattern: Record<string, number>;
    byTimeframe: Record<string, number>;
    byAction: Record<string, number>;
    adversarial: number;
    real: number;
    /** Per split, per pattern class. */
    bySplitPattern: Record<DatasetSplit, Record<string, number>>;
  };
  /** Shard file stems and their sample counts, per split, in order. */
  shards: Record<DatasetSplit, Array<{ name: string; samples: number }>>;
  /** File of the normaliser fitted on the training split's windows. */
  normalizer: string;
  /**
   * Generator settings the build used (calibration, market count and length in days, weights,
   * augmentation) and its duration (`elapsedMs`).
   */
  generator: {
    calibration: string;
    seriesDays: number;
    series: number;
    warmupDays: number;
    decisionsPerPattern: Readonly<Partial<Record<Timeframe, number>>>;
    adversarialFraction: number;
    htfInfluence: number;
    resolutionDelayBars: number;
    noneFraction: number;
    patternWeights: Readonly<Record<string, number>>;
    timeframeWeights: Readonly<Partial<Record<Timeframe, number>>>;
    amplitudeScale: number;
    visibilityShift: number;
    maxAmplitudeScale: number;
    noiseLevel: number;
    withIndicators: boolean;
    augment: Config['dataset']['augment'];
    realSampleRatio: number;
    elapsedMs: number;
  };
}

function usage(message: string, hint?: string): never {
  throw new UsageError(message, { hint });
}

/** Reads and checks a dataset's manifest. @throws {DataValidationError} when it is not a dataset. */
export function readDatasetManifest(dir: string): DatasetManifest {
  const file = join(dir, 'manifest.json');
  if (!existsSync(file))
    throw new DataValidationError(
      { source: file, reason: 'no manifest.json: not a dataset directory' },
      { hint: 'build one with `ctm dataset build --out DIR`' },
    );
  let m: DatasetManifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as DatasetManifest;
  } catch (err) {
    throw new DataValidationError(
      { source: file, reason: `not valid JSON (${(err as Error).message})` },
      { cause: err },
    );
  }
  if (m.format !== DATASET_FORMAT || m.version !== DATASET_VERSION)
    throw new DataValidationError({
      source: file,
      field: 'format',
      reason: `expected ${DATASET_FORMAT} version ${DATASET_VERSION}`,
    });
  return m;
}

/**
 * One split of a dataset on disk, as the trainer reads it (`SequenceDataset`): labels are loaded
 * at open (small), windows are read per batch straight from the shards at their offsets, so a
 * fully shuffled pass needs only one batch in memory. Batch order is a pure function of
 * (shuffleSeed, epoch), so passes resume at any batch.
 */
export class DiskDataset implements SequenceDataset {
  /** Input spec of the samples (from the manifest). */
  readonly spec: ModelInputSpec;
  /** Samples in this split. */
  readonly size: number;
  /** Names of the pattern label's codes. */
  readonly patternClasses: readonly string[];
  /** Normaliser fitted on the training split's windows, or null when its file is missing. */
  readonly normalizer: FittedNormalizer | null;
  /** The dataset's manifest.json. */
  readonly manifest: DatasetManifest;
  /** All label columns of the split, [size, LABEL_COLUMNS] row-major. */
  readonly labels: Float64Array;
  private readonly shardOf: Int32Array;
  private readonly indexInShard: Int32Array;
  private readonly files: string[][];
  private readonly sizes: number[];

  private constructor(
    dir: string,
    split: DatasetSplit,
    manifest: DatasetManifest,
    normalizer: FittedNormalizer | null,
  ) {
    this.manifest = manifest;
    this.spec = manifest.spec;
    this.patternClasses = manifest.patternClasses;
    this.normalizer = normalizer;
    const shards = manifest.shards[split];
    const size = shards.reduce((t, sh) => t + sh.samples, 0);
    this.size = size;
    this.labels = new Float64Array(size * NCOL);
    this.shardOf = new Int32Array(size);
    this.indexInShard = new Int32Array(size);
    this.sizes = this.spec.timeframes.map(
      (tf) => (this.spec.windows[tf] ?? 0) * (this.spec.features[tf]?.length ?? 0),
    );
    this.files = [];
    let at = 0;
    shards.forEach((sh, k) => {
      const lab = readFileSync(join(dir, `${sh.name}.labels.f64`));
      if (lab.byteLength !== sh.samples * NCOL * 8)
        throw new DataValidationError({
          source: join(dir, `${sh.name}.labels.f64`),
          reason: `holds ${lab.byteLength} bytes, the manifest says ${sh.samples} samples`,
        });
      this.labels.set(new Float64Array(lab.buffer, lab.byteOffset, sh.samples * NCOL), at * NCOL);
      for (let i = 0; i < sh.samples; i++) {
        this.shardOf[at + i] = k;
        this.indexInShard[at + i] = i;
      }
      this.files.push(this.spec.timeframes.map((tf) => join(dir, `${sh.name}.${tf}.f32`)));
      at += sh.samples;
    });
  }

  /**
   * Opens one split of a dataset directory.
   * @throws {DataValidationError} when the directory is not a dataset or a shard is truncated
   */
  static async open(dir: string, split: DatasetSplit): Promise<DiskDataset> {
    if (!DATASET_SPLITS.includes(split))
      usage(`unknown split "${String(split)}"`, `one of ${DATASET_SPLITS.join(', ')}`);
    const manifest = readDatasetManifest(dir);
    const normFile = join(dir, manifest.normalizer);
    const normalizer = existsSync(normFile) ? await FittedNormalizer.load(normFile) : null;
    return new DiskDataset(dir, split, manifest, normalizer);
  }

  /** One label column of every sample, in dataset order. */
  column(name: (typeof LABEL_COLUMNS)[number]): Float64Array {
    const j = COL[name];
    const out = new Float64Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.labels[i * NCOL + j];
    return out;
  }

  /** The `action` label column (0 down, 1 flat, 2 up) in dataset order, as a new array. */
  directionLabels(): Int32Array {
    return Int32Array.from(this.column('action'));
  }

  /** The `forwardReturn` label column in dataset order, as a new array. */
  forwardReturns(): Float32Array {
    return Float32Array.from(this.column('forwardReturn'));
  }

  /** Batches of `batchSize` in one pass (the last one partial unless `dropLast`). */
  numBatches(batchSize: number, dropLast = false): number {
    return dropLast ? Math.floor(this.size / batchSize) : Math.ceil(this.size / batchSize);
  }

  /**
   * The batches of one pass (see {@link SequenceDataset.batches}), windows read from the shards.
   * @throws {UsageError} when `batchSize` is not a whole number > 0.
   */
  async *batches(options: BatchOptions): AsyncIterableIterator<SequenceBatch> {
    const { batchSize } = options;
    if (!(Number.isInteger(batchSize) && batchSize > 0))
      usage(`batchSize must be a whole number > 0, got ${batchSize}`);
    const order = sampleOrder(this.size, options.shuffleSeed, options.epoch ?? 0);
    const n = this.numBatches(batchSize, options.dropLast ?? false);
    const fds = this.files.map((fs) => fs.map(() => -1));
    try {
      for (let b = options.startBatch ?? 0; b < n; b++) {
        const from = b * batchSize;
        const B = Math.min(batchSize, this.size - from);
        const windows = this.sizes.map((z) => new Float32Array(B * z));
        const direction = new Int32Array(B);
        const forwardReturn = new Float32Array(B);
        const pattern = new Int32Array(B);
        const indices = new Int32Array(B);
        for (let k = 0; k < B; k++) {
          const i = order[from + k];
          indices[k] = i;
          const sh = this.shardOf[i];
          const at = this.indexInShard[i];
          this.sizes.forEach((z, j) => {
            if (fds[sh][j] < 0) fds[sh][j] = openSync(this.files[sh][j], 'r');
            const w = windows[j];
            const bytes = z * 4;
            const got = readSync(fds[sh][j], w, k * bytes, bytes, at * bytes);
            if (got !== bytes)
              throw new DataValidationError({
                source: this.files[sh][j],
                row: at,
                reason: `truncated shard: read ${got} of ${bytes} bytes`,
              });
          });
          const o = i * NCOL;
          direction[k] = this.labels[o + COL.action];
          forwardReturn[k] = this.labels[o + COL.forwardReturn];
          pattern[k] = this.labels[o + COL.pattern];
        }
        yield { size: B, windows, direction, forwardReturn, pattern, indices };
      }
    } finally {
      for (const row of fds) for (const fd of row) if (fd >= 0) closeSync(fd);
    }
  }
}

/** Options of `datasetBatches`. */
export interface DatasetBatchOptions {
  /** Split to read. */
  split: DatasetSplit;
  /** Samples per batch (a whole number > 0). */
  batchSize: number;
  /** Seed of the sample order (null or omitted: dataset order). */
  shuffleSeed?: number | null;
  /** Epoch number (selects the permutation). Default 0. */
  epoch?: number;
  /** First batch to yield (resuming inside an epoch). Default 0. */
  startBatch?: number;
  /** Drop a last partial batch. Default false. */
  dropLast?: boolean;
}

/**
 * The batches of one split of a dataset directory, as the trainer consumes them (`SequenceBatch`:
 * windows per timeframe [B, bars, features], direction = action class, forward return, pattern
 * class, sample indices).
 * @example for await (const b of datasetBatches('data/ds', { split: 'train', batchSize: 64, shuffleSeed: 1 })) ...
 * @throws {DataValidationError} when the directory is not a dataset
 */
export async function* datasetBatches(
  dir: string,
  options: DatasetBatchOptions,
): AsyncIterableIterator<SequenceBatch> {
  const ds = await DiskDataset.open(dir, options.split);
  yield* ds.batches(options);
}
