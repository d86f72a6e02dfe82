// Labelled window datasets, the contract between whoever makes training samples (the synthetic
// dataset builder, real candles cut here) and whoever trains on them (the sequence model's
// trainer, experiments): the input spec (windows of named features per timeframe), batches of
// windows with direction / forward-return / pattern labels in a seeded, resumable order, and an
// in-memory dataset cut from multi-timeframe features with forward-return labels and a purged time
// split (normaliser fitted on training rows only). Never lets a label cross its split; never fits
// anything on validation or test rows. Loads no model code.

import type { Timeframe } from './candles.js';
import { timeframeMs } from './candles.js';
import { copyWindow, type MultiTimeframeFeatures } from './feature-engineering.js';
import { fitNormalizer, type FittedNormalizer, type NormalizationMethod } from './normalizer.js';
import type { DateRange } from './splits.js';
import { DataValidationError } from '../errors.js';
import { Rng } from '../utils/random.js';

/** Which windows of which features a model reads, per timeframe (its input spec). */
export interface ModelInputSpec {
  /** Timeframes in input order (the order of `predict`'s arguments). */
  readonly timeframes: readonly Timeframe[];
  /** Window length (bars) per timeframe. */
  readonly windows: Readonly<Partial<Record<Timeframe, number>>>;
  /** Feature names per timeframe, in column order. */
  readonly features: Readonly<Partial<Record<Timeframe, readonly string[]>>>;
}

/** Total number of floats of each timeframe's window in spec order: [T·F, ...]. */
export function windowSizes(spec: ModelInputSpec): number[] {
  return spec.timeframes.map((t) => (spec.windows[t] ?? 0) * (spec.features[t]?.length ?? 0));
}

/** A spec with generated feature names `f0 ... f{n-1}` (for synthetic inputs and benchmarks). */
export function makeInputSpec(
  timeframes: readonly Timeframe[],
  windows: Partial<Record<Timeframe, number>>,
  inputDims: Partial<Record<Timeframe, number>>,
): ModelInputSpec {
  const features: Partial<Record<Timeframe, string[]>> = {};
  for (const t of timeframes)
    features[t] = Array.from({ length: inputDims[t] ?? 0 }, (_, i) => `f${i}`);
  return { timeframes: [...timeframes], windows: { ...windows }, features };
}

/**
 * Describes how two specs differ, or returns null when they are equal (same timeframes, windows,
 * feature names and order).
 */
export function specMismatch(expected: ModelInputSpec, actual: ModelInputSpec): string | null {
  if (expected.timeframes.join(',') !== actual.timeframes.join(','))
    return `timeframes differ: model [${expected.timeframes.join(', ')}], data [${actual.timeframes.join(', ')}]`;
  for (const t of expected.timeframes) {
    if ((expected.windows[t] ?? 0) !== (actual.windows[t] ?? 0))
      return `window of ${t} differs: model ${expected.windows[t]}, data ${actual.windows[t]}`;
    const a = expected.features[t] ?? [];
    const b = actual.features[t] ?? [];
    if (a.length !== b.length)
      return `${t} feature count differs: model ${a.length}, data ${b.length}`;
    for (let i = 0; i < a.length; i++)
      if (a[i] !== b[i])
        return `${t} feature ${i} differs: model "${a[i]}", data "${b[i]}" (names and order must match)`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Dataset interface

/** One batch of labelled windows. */
export interface SequenceBatch {
  /** Number of samples B. */
  readonly size: number;
  /** Raw windows per timeframe (spec order), each [B, T_tf, F_tf] row-major, oldest bar first. */
  readonly windows: readonly Float32Array[];
  /** Direction class per sample: 0 down, 1 flat, 2 up. */
  readonly direction: Int32Array;
  /** Forward log return per sample over the label horizon. */
  readonly forwardReturn: Float32Array;
  /** Pattern class per sample (-1 = none/unknown), when the dataset has pattern labels. */
  readonly pattern?: Int32Array;
  /** Dataset indices of the samples. */
  readonly indices: Int32Array;
}

/** Where and how a pass over a dataset starts. */
export interface BatchOptions {
  /** Samples per batch (> 0). */
  batchSize: number;
  /**
   * Seed of the sample order; each epoch draws its own permutation from (seed, epoch). null or
   * omitted = dataset order.
   */
  shuffleSeed?: number | null;
  /** Epoch number (selects the permutation). Default 0. */
  epoch?: number;
  /** First batch to yield (resuming inside an epoch). Default 0. */
  startBatch?: number;
  /** Drop a last partial batch. Default false. */
  dropLast?: boolean;
}

/**
 * What the trainer reads. The in-memory `WindowDataset` implements it; the dataset builder's
 * on-disk datasets implement it too. Batch order is a pure function of (shuffleSeed, epoch), so a
 * pass can be resumed at any batch.
 */
export interface SequenceDataset {
  /** Timeframes, windows (bars) and feature names of the samples' inputs. */
  readonly spec: ModelInputSpec;
  /** Number of samples. */
  readonly size: number;
  /** Pattern class names when samples carry pattern labels. */
  readonly patternClasses?: readonly string[];
  /** Normaliser fitted on the training rows this dataset belongs to, if it carries one. */
  readonly normalizer?: FittedNormalizer | null;
  /** Direction labels of every sample, in dataset order. */
  directionLabels(): Int32Array;
  /** Forward returns of every sample, in dataset order. */
  forwardReturns(): Float32Array;
  /** Number of batches of one pass. */
  numBatches(batchSize: number, dropLast?: boolean): number;
  /** The batches of one pass, in the order fixed by `options`. */
  batches(options: BatchOptions): AsyncIterableIterator<SequenceBatch>;
}

/** The sample order of one pass: dataset order, or a permutation drawn from (seed, epoch). */
export function sampleOrder(
  size: number,
  shuffleSeed: number | null | undefined,
  epoch: number,
): Int32Array {
  const order = new Int32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  if (shuffleSeed !== null && shuffleSeed !== undefined)
    new Rng(shuffleSeed).fork(`epoch-${epoch}`).shuffle(order);
  return order;
}

// ---------------------------------------------------------------------------------------------
// In-memory dataset cut from features

/** A split's sample rows and labels, with the features they are cut from. */
export class WindowDataset implements SequenceDataset {
  /** Timeframes, windows (bars) and feature names of the samples' inputs. */
  readonly spec: ModelInputSpec;
  /** Number of samples. */
  readonly size: number;
  /** Pattern class names when samples carry pattern labels. */
  readonly patternClasses?: readonly string[];
  /** Normaliser fitted on the training split's rows, or null. */
  readonly normalizer: FittedNormalizer | null;
  /** Base rows (decision rows) of the samples. */
  readonly rows: Int32Array;
  private readonly direction: Int32Array;
  private readonly returns: Float32Array;
  private readonly pattern: Int32Array | undefined;
  private readonly features: MultiTimeframeFeatures;

  /**
   * @param features the features windows are cut from (with `copyWindow`).
   * @param rows base rows of the samples.
   * @param labels per-sample labels, aligned with `rows`.
   */
  constructor(
    features: MultiTimeframeFeatures,
    spec: ModelInputSpec,
    rows: Int32Array,
    labels: { direction: Int32Array; forwardReturn: Float32Array; pattern?: Int32Array },
    normalizer: FittedNormalizer | null,
    patternClasses?: readonly string[],
  ) {
    for (const t of spec.timeframes) {
      const m = features.perTimeframe.get(t);
      if (m === undefined) throw new RangeError(`features lack timeframe ${t}`);
      const names = spec.features[t] ?? [];
      if (names.length !== m.cols || names.some((n, j) => m.names[j] !== n))
        throw new RangeError(`spec features of ${t} must be the matrix columns in order`);
    }
    if (labels.direction.length !== rows.length || labels.forwardReturn.length !== rows.length)
      throw new RangeError('labels and rows differ in length');
    this.features = features;
    this.spec = spec;
    this.rows = rows;
    this.size = rows.length;
    this.direction = labels.direction;
    this.returns = labels.forwardReturn;
    this.pattern = labels.pattern;
    this.normalizer = normalizer;
    if (patternClasses !== undefined) this.patternClasses = patternClasses;
  }

  /**
   * The same samples and windows with other labels (e.g. permuted for a shuffled-label control).
   * @throws {RangeError} when the labels have another length.
   */
  withLabels(labels: {
    direction: Int32Array;
    forwardReturn: Float32Array;
    pattern?: Int32Array;
  }): WindowDataset {
    return new WindowDataset(
      this.features,
      this.spec,
      this.rows,
      labels,
      this.normalizer,
      this.patternClasses,
    );
  }

  /** Direction labels (0 down, 1 flat, 2 up) in dataset order: the dataset's own array, not a copy. */
  directionLabels(): Int32Array {
    return this.direction;
  }

  /** Forward returns in dataset order: the dataset's own array, not a copy. */
  forwardReturns(): Float32Array {
    return this.returns;
  }

  /** Batches of `batchSize` in one pass (the last one partial unless `dropLast`). */
  numBatches(batchSize: number, dropLast = false): number {
    return dropLast ? Math.floor(this.size / batchSize) : Math.ceil(this.size / batchSize);
  }

  /**
   * The batches of one pass (see {@link SequenceDataset.batches}); windows are cut from the
   * feature matrices on the fly, freshly allocated per batch.
   */
  async *batches(options: BatchOptions): AsyncIterableIterator<SequenceBatch> {
    const { batchSize } = options;
    const order = sampleOrder(this.size, options.shuffleSeed, options.epoch ?? 0);
    const n = this.numBatches(batchSize, options.dropLast ?? false);
    const sizes = windowSizes(this.spec);
    const tfs = this.spec.timeframes;
    const lengths = tfs.map((t) => this.spec.windows[t]!);
    for (let k = options.startBatch ?? 0; k < n; k++) {
      const from = k * batchSize;
      const B = Math.min(batchSize, this.size - from);
      const windows = sizes.map((s) => new Float32Array(B * s));
      const direction = new Int32Array(B);
      const forwardReturn = new Float32Array(B);
      const pattern = this.pattern === undefined ? undefined : new Int32Array(B);
      const indices = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        const i = order[from + b];
        indices[b] = i;
        const row = this.rows[i];
        for (let j = 0; j < tfs.length; j++)
          copyWindow(this.features, tfs[j], row, lengths[j], windows[j], b * sizes[j]);
        direction[b] = this.direction[i];
        forwardReturn[b] = this.returns[i];
        if (pattern !== undefined) pattern[b] = this.pattern![i];
      }
      yield {
        size: B,
        windows,
        direction,
        forwardReturn,
        indices,
        ...(pattern ? { pattern } : {}),
      };
    }
  }
}

/**
 * A view of a dataset restricted to some of its timeframes and, optionally, columns (for
 * single-timeframe ablations): same samples, order and labels; batches carry only the chosen
 * windows and columns.
 * @param keepColumn which feature columns of a timeframe to keep (default: all).
 * @throws {RangeError} when a timeframe is not in the dataset or no column of one is kept.
 */
export function timeframeSubset(
  data: SequenceDataset,
  timeframes: readonly Timeframe[],
  keepColumn: (tf: Timeframe, name: string) => boolean = () => true,
): SequenceDataset {
  const parts = timeframes.map((t) => {
    const j = data.spec.timeframes.indexOf(t);
    if (j < 0) throw new RangeError(`dataset has no timeframe ${t}`);
    const names = data.spec.features[t] ?? [];
    const cols = names.map((n, c) => (keepColumn(t, n) ? c : -1)).filter((c) => c >= 0);
    if (cols.length === 0) throw new RangeError(`no column of ${t} is kept`);
    return {
      j,
      steps: data.spec.windows[t]!,
      width: names.length,
      cols: cols.length === names.length ? null : Int32Array.from(cols),
      names: cols.map((c) => names[c]),
    };
  });
  const spec: ModelInputSpec = {
    timeframes: [...timeframes],
    windows: Object.fromEntries(timeframes.map((t) => [t, data.spec.windows[t]])),
    features: Object.fromEntries(timeframes.map((t, k) => [t, parts[k].names])),
  };
  const select = (w: Float32Array, p: (typeof parts)[number], B: number): Float32Array => {
    if (p.cols === null) return w;
    const cols = p.cols;
    const rows = B * p.steps;
    const out = new Float32Array(rows * cols.length);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols.length; c++) out[r * cols.length + c] = w[r * p.width + cols[c]];
    return out;
  };
  return {
    spec,
    size: data.size,
    ...(data.patternClasses === undefined ? {} : { patternClasses: data.patternClasses }),
    normalizer: data.normalizer ?? null,
    directionLabels: () => data.directionLabels(),
    forwardReturns: () => data.forwardReturns(),
    numBatches: (batchSize, dropLast) => data.numBatches(batchSize, dropLast),
    async *batches(options) {
      for await (const b of data.batches(options))
        yield { ...b, windows: parts.map((p) => select(b.windows[p.j], p, b.size)) };
    },
  };
}

/** Options of `createWindowDatasets`. */
export interface WindowDatasetOptions {
  /** Window length per timeframe (timeframes in this order, base first). */
  windows: Partial<Record<Timeframe, number>>;
  /** Label horizon in base bars: the forward return is ln(close[i + h] / close[i]). */
  horizon: number;
  /**
   * Flat band: `{ quantile: q }` sets θ to the q-quantile of |r| over the training rows (q = 1/3
   * gives roughly balanced classes); `{ fixed: θ }` uses θ as is. r < −θ is down, r > θ up.
   */
  threshold: { quantile: number } | { fixed: number };
  /** Date ranges of the splits; each sample's decision time and label end lie in its split. */
  splits: { train: DateRange; validation: DateRange; test?: DateRange };
  /** Base bars dropped at the start of the validation and test splits (serial-correlation guard). */
  embargoBars: number;
  /** Keep every `stride`-th eligible row (default 1). */
  stride?: number;
  /** Normaliser method (default zscore). */
  normalizerMethod?: NormalizationMethod;
  /** Normaliser clip applied by the fitted normaliser (default null: the model clips). */
  normalizerClip?: number | null;
}

/** What `createWindowDatasets` returns. */
export interface WindowDatasets {
  /** Training split. */
  train: WindowDataset;
  /** Validation split (embargoed after the training split). */
  validation: WindowDataset;
  /** Test split, or null when it has no rows. */
  test: WindowDataset | null;
  /** Fitted on the training split's rows only. */
  normalizer: FittedNormalizer;
  /** Flat band half-width θ (log return). */
  threshold: number;
  /** Input spec shared by the three splits. */
  spec: ModelInputSpec;
  /** Eligible rows dropped because their label would cross the split end (the purge). */
  purged: { train: number; validation: number; test: number };
}

/** Quantile of |x| (linear interpolation). */
function absQuantile(x: Float32Array, q: number): number {
  const a = Float64Array.from(x, Math.abs).sort();
  if (a.length === 0) return 0;
  const pos = q * (a.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(a.length - 1, lo + 1);
  return a[lo] + (a[hi] - a[lo]) * (pos - lo);
}

/** Direction class of a forward return given the flat band θ. */
export function directionOf(r: number, threshold: number): number {
  return r < -threshold ? 0 : r > threshold ? 2 : 1;
}

/**
 * Cuts labelled window datasets from features: forward log-return labels over `horizon` base
 * bars, a time split by decision time where each sample's label end stays inside its split (the
 * purge), an embargo at the start of later splits, and a normaliser fitted on the training rows
 * only. Rows before `features.firstValidRow`, and rows whose label spans a data gap, are skipped.
 * @throws {DataValidationError} when a split has no sample.
 */
export function createWindowDatasets(
  features: MultiTimeframeFeatures,
  options: WindowDatasetOptions,
): WindowDatasets {
  const base = features.aligned.base;
  const close = base.close;
  const n = close.length;
  const decision = features.perTimeframe.get(features.base)!.time;
  const barMs = timeframeMs(features.base);
  const h = options.horizon;
  const stride = options.stride ?? 1;
  if (!(Number.isInteger(h) && h > 0)) throw new RangeError('horizon must be a positive integer');
  const timeframes = Object.keys(options.windows) as Timeframe[];
  const spec: ModelInputSpec = {
    timeframes,
    windows: { ...options.windows },
    features: Object.fromEntries(
      timeframes.map((t) => {
        const m = features.perTimeframe.get(t);
        if (m === undefined) throw new RangeError(`features lack timeframe ${t}`);
        return [t, [...m.names]];
      }),
    ),
  };
  // The first row at which every window of this spec is known.
  let first = features.firstValidRow;
  for (const t of timeframes) {
    const idx = features.rowIndex.get(t)!;
    while (first < n && idx[first] < options.windows[t]! - 1) first++;
  }
  const cut = (range: DateRange, embargo: number): { rows: number[]; purged: number } => {
    const rows: number[] = [];
    let purged = 0;
    let k = 0;
    for (let i = first; i < n; i++) {
      if (decision[i] < range.fromMs || decision[i] >= range.toMs) continue;
      if (k++ < embargo) continue;
      const j = i + h;
      if (j >= n || decision[j] >= range.toMs) {
        purged++;
        continue;
      }
      if (decision[j] - decision[i] !== h * barMs) continue;
      if ((k - 1 - embargo) % stride === 0) rows.push(i);
    }
    return { rows, purged };
  };
  const tr = cut(options.splits.train, 0);
  const va = cut(options.splits.validation, options.embargoBars);
  const te =
    options.splits.test === undefined ? null : cut(options.splits.test, options.embargoBars);
  for (const [name, s] of [
    ['train', tr],
    ['validation', va],
  ] as const)
    if (s.rows.length === 0)
      throw new DataValidationError({
        source: `${base.symbol} ${features.base} features`,
        field: `splits.${name}`,
        reason: `no sample in the ${name} split (check the split dates and the data range)`,
      });
  const returnsOf = (rows: number[]): Float32Array =>
    Float32Array.from(rows, (i) => Math.log(close[i + h] / close[i]));
  const trainReturns = returnsOf(tr.rows);
  const threshold =
    'fixed' in options.threshold
      ? options.threshold.fixed
      : absQuantile(trainReturns, options.threshold.quantile);
  // The normaliser sees decision times up to the last training decision only.
  const lastTrain = tr.rows[tr.rows.length - 1];
  const normalizer = fitNormalizer(features, {
    // Finite bounds (the normaliser records them in JSON): the data start at the earliest.
    fromMs: Math.max(options.splits.train.fromMs, decision[0] - barMs),
    toMs: decision[lastTrain] + 1,
    method: options.normalizerMethod ?? 'zscore',
    clip: options.normalizerClip ?? null,
  });
  const make = (rows: number[], returns: Float32Array): WindowDataset =>
    new WindowDataset(
      features,
      spec,
      Int32Array.from(rows),
      {
        direction: Int32Array.from(returns, (r) => directionOf(r, threshold)),
        forwardReturn: returns,
      },
      normalizer,
    );
  return {
    train: make(tr.rows, trainReturns),
    validation: make(va.rows, returnsOf(va.rows)),
    test: te === null || te.rows.length === 0 ? null : make(te.rows, returnsOf(te.rows)),
    normalizer,
    threshold,
    spec,
    purged: { train: tr.purged, validation: va.purged, test: te?.purged ?? 0 },
  };
}
