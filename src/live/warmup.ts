// The warm-up check: how much history the features need before a live process can trust them.
// Recursive indicators (EMA, Wilder's RSI/ATR/ADX, OBV, ...) depend on where they started; features
// computed from only the last `d` days are compared with the same rows computed from the full
// history, per warm-up length, so the warm-up (`live.warmupDays`) and its tolerance are measured,
// not guessed. Reads candles only; never decides anything.

import { sliceByTime, type Candles, type Timeframe } from '../data-processing/candles.js';
import { buildFeatures, type FeatureSpec } from '../data-processing/feature-engineering.js';
import { DataValidationError } from '../errors.js';

const DAY_MS = 86_400_000;

/** How far features from a warm-up of `warmupDays` are from those of the full history. */
export interface WarmupGap {
  /** Days of history before the first compared row. */
  warmupDays: number;
  /** Largest |warm-up value - full-history value| over the compared rows and every feature (Infinity when a warm-up value is NaN and the full one is not). */
  maxAbsDiff: number;
  /** The decision-row column (e.g. `1d.obv_slope_20`) where it occurs. */
  worstFeature: string;
  /** Compared values that differ at all (bits), out of `values`. */
  differing: number;
  /** Values compared. */
  values: number;
}

/** Options of `measureWarmup`. */
export interface MeasureWarmupOptions {
  /** Feature spec (the config's `features`). */
  spec: FeatureSpec;
  /** Window sizes (the config's `windows`). */
  windows: Partial<Record<Timeframe, number>>;
  /** First open time (UTC ms) of the compared rows; they run to the end of the candles. */
  fromMs: number;
  /** Warm-up lengths to measure, in days. */
  warmupDays: readonly number[];
}

/**
 * Measures, per warm-up length, the largest difference between the decision-row features of the
 * rows from `fromMs` on computed from `candles` (the full history) and computed from only the
 * `warmupDays` days before `fromMs`.
 * @throws {DataValidationError} when no base row lies at or after `fromMs`.
 */
export function measureWarmup(
  candles: ReadonlyMap<Timeframe, Candles>,
  options: MeasureWarmupOptions,
): WarmupGap[] {
  const full = buildFeatures(candles, { spec: options.spec, windows: options.windows });
  const fd = full.decisionRows;
  const fullTimes = full.aligned.base.openTime;
  let first = 0;
  while (first < fullTimes.length && fullTimes[first] < options.fromMs) first++;
  if (first >= fullTimes.length)
    throw new DataValidationError({ reason: `no base row at or after ${options.fromMs}` });
  return options.warmupDays.map((days) => {
    const cut = new Map<Timeframe, Candles>();
    for (const [tf, c] of candles)
      cut.set(tf, sliceByTime(c, options.fromMs - days * DAY_MS, Infinity));
    const part = buildFeatures(cut, { spec: options.spec, windows: options.windows });
    const pd = part.decisionRows;
    const pt = part.aligned.base.openTime;
    let offset = 0;
    while (offset < pt.length && pt[offset] < options.fromMs) offset++;
    let maxAbsDiff = 0;
    let worst = -1;
    let differing = 0;
    const cols = fd.cols;
    const rows = fullTimes.length - first;
    for (let r = 0; r < rows; r++) {
      const a = (first + r) * cols;
      const b = (offset + r) * cols;
      for (let j = 0; j < cols; j++) {
        const x = fd.values[a + j];
        const y = pd.values[b + j];
        if (Object.is(x, y)) continue;
        differing++;
        const d = x !== x && y !== y ? 0 : y !== y || x !== x ? Infinity : Math.abs(x - y);
        if (d > maxAbsDiff || worst < 0) {
          if (d >= maxAbsDiff) worst = j;
          maxAbsDiff = Math.max(maxAbsDiff, d);
        }
      }
    }
    return {
      warmupDays: days,
      maxAbsDiff,
      worstFeature: worst < 0 ? '' : fd.names[worst],
      differing,
      values: rows * cols,
    };
  });
}
