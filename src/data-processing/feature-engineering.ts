// Feature matrices: stationary per-timeframe features and cross-timeframe features, built from the
// aligned frames with the one indicators module. A feature at row r uses only candles that closed
// at or before row r's decision time. Windows for the model, the dataset builder and the env are cut
// from these matrices through `copyWindow`, the one place that maps a base row to the rows of each
// timeframe known at its decision time.

import type { Timeframe } from './candles.js';
import type { AlignedFrames } from './data-alignment.js';

/**
 * A matrix of features on one timeframe's rows. `values` is row-major (`rows` x `names.length`);
 * `time[r]` is row r's decision time (its candle's close time, UTC ms). Warm-up rows hold NaN.
 */
export interface FeatureMatrix {
  readonly timeframe: Timeframe;
  readonly names: readonly string[];
  readonly time: Float64Array;
  readonly values: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

/** Output of `createMultiTimeframeFeatures`. */
export interface MultiTimeframeFeatures {
  /** The finest timeframe: decisions are made on its rows. */
  readonly base: Timeframe;
  /** All timeframes, base first. */
  readonly timeframes: readonly Timeframe[];
  /** One feature matrix per timeframe, each on its own rows. */
  readonly perTimeframe: ReadonlyMap<Timeframe, FeatureMatrix>;
  /**
   * Per timeframe, per base row i: the row of that timeframe's matrix known at i's decision time
   * (identity for the base; `lastClosed` for higher timeframes), or -1 when none is known yet.
   */
  readonly rowIndex: ReadonlyMap<Timeframe, Int32Array>;
  /** The alignment the features were built on. */
  readonly aligned: AlignedFrames;
  /**
   * Flat view on the base rows: current values of every timeframe's features (and the
   * cross-timeframe ones) joined per decision time; names are prefixed `15m.`, `4h.`, `x.`.
   */
  readonly decisionRows: FeatureMatrix;
  /**
   * The first base row at which every window of the configured sizes is free of NaN. Nothing
   * (env episodes, dataset samples, backtests) starts before it.
   */
  readonly firstValidRow: number;
  /** Window sizes (bars per timeframe) `firstValidRow` was computed for. */
  readonly windows: Readonly<Partial<Record<Timeframe, number>>>;
}

/**
 * Copies the `length`-row window of timeframe `tf` known at base row `baseRow` into `out` starting
 * at `offset`, oldest row first, `length * cols` floats. Rows before the start of the matrix are
 * written as NaN. Allocates nothing.
 * @throws {RangeError} when `baseRow` is outside the base rows or `tf` is not in the features.
 */
export function copyWindow(
  features: MultiTimeframeFeatures,
  tf: Timeframe,
  baseRow: number,
  length: number,
  out: Float32Array,
  offset: number,
): void {
  const matrix = features.perTimeframe.get(tf);
  const index = features.rowIndex.get(tf);
  if (matrix === undefined || index === undefined)
    throw new RangeError(`copyWindow: no features for timeframe ${tf}`);
  if (baseRow < 0 || baseRow >= index.length)
    throw new RangeError(`copyWindow: base row ${baseRow} outside [0, ${index.length})`);
  const cols = matrix.cols;
  const values = matrix.values;
  const last = index[baseRow];
  const first = last - length + 1;
  // Rows before the matrix start (or no known row at all) are NaN.
  const missingRows = last < 0 ? length : Math.max(0, -first);
  const nanEnd = offset + missingRows * cols;
  for (let k = offset; k < nanEnd; k++) out[k] = NaN;
  // The known rows are contiguous in `values`: copy them as one block, element by element.
  const src = (first + missingRows) * cols;
  const count = (length - missingRows) * cols;
  for (let k = 0; k < count; k++) out[nanEnd + k] = values[src + k];
}
