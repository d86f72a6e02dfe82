// Building blocks of hand-made feature fixtures shared by the test suites (evaluation,
// time-series models). Never computes a feature: fixtures fill the values themselves.

import type { Timeframe } from '../../src/data-processing/candles.js';
import type { FeatureMatrix } from '../../src/data-processing/feature-engineering.js';

/** A FeatureMatrix over the given columns: `values` is row-major, `time.length` rows. */
export function featureMatrix(
  tf: Timeframe,
  names: string[],
  time: Float64Array,
  values: Float32Array,
): FeatureMatrix {
  return { timeframe: tf, names, time, values, rows: time.length, cols: names.length };
}
