// Exact aggregation of candles to a coarser timeframe on UTC boundaries. The one resampler used by
// the loader (deriving a timeframe missing from the store), the synthetic generator and the tests.
// A bucket with any finer candle missing is never emitted: it is reported instead.

import { DataValidationError } from '../errors.js';
import {
  allocateCandles,
  makeCandles,
  TIMEFRAME_MS,
  type Candles,
  type Timeframe,
} from './candles.js';

/** A coarse bucket that could not be built because finer candles are missing. */
export interface IncompleteBucket {
  /** Open time (UTC ms) of the coarse bucket. */
  openTime: number;
  /** Finer candles present in the bucket. */
  present: number;
  /** Finer candles a complete bucket holds. */
  expected: number;
}

/** Result of `resample`. */
export interface ResampleResult {
  /** The aggregated candles (complete buckets only). */
  candles: Candles;
  /** Always true: these candles were derived from a finer timeframe, not read from the exchange. */
  derived: true;
  /** The timeframe they were derived from. */
  from: Timeframe;
  /** Buckets skipped because finer candles are missing, in time order. */
  incomplete: IncompleteBucket[];
}

/**
 * Aggregates sorted, on-grid candles to `target` (open = first open, high = max, low = min,
 * close = last close, volume = sum), on UTC-aligned buckets. Only complete buckets are emitted.
 * Runs in one pass and allocates only the output.
 * @throws {DataValidationError} when `target` is not a whole multiple of the source timeframe.
 */
export function resample(candles: Candles, target: Timeframe): ResampleResult {
  const srcMs = TIMEFRAME_MS[candles.timeframe];
  const dstMs = TIMEFRAME_MS[target];
  if (dstMs === undefined || dstMs < srcMs || dstMs % srcMs !== 0) {
    throw new DataValidationError({
      source: candles.symbol,
      field: 'timeframe',
      reason: `cannot resample ${candles.timeframe} to ${target}: target must be a whole multiple of the source`,
    });
  }
  const perBucket = dstMs / srcMs;
  const { openTime, open, high, low, close, volume } = candles;
  const n = openTime.length;
  if (perBucket === 1) {
    return {
      candles: makeCandles(candles.symbol, target, { openTime, open, high, low, close, volume }),
      derived: true,
      from: candles.timeframe,
      incomplete: [],
    };
  }
  // Upper bound on the bucket count: every bucket spanned from first to last candle.
  const maxBuckets =
    n === 0 ? 0 : Math.floor(openTime[n - 1] / dstMs) - Math.floor(openTime[0] / dstMs) + 1;
  const out = allocateCandles(candles.symbol, target, Math.min(maxBuckets, n));
  const oT = out.openTime;
  const oO = out.open;
  const oH = out.high;
  const oL = out.low;
  const oC = out.close;
  const oV = out.volume;
  const incomplete: IncompleteBucket[] = [];
  let m = 0;
  let i = 0;
  while (i < n) {
    const bucket = openTime[i] - (openTime[i] % dstMs);
    const end = bucket + dstMs;
    let h = high[i];
    let l = low[i];
    let v = volume[i];
    const o = open[i];
    let j = i + 1;
    while (j < n && openTime[j] < end) {
      if (high[j] > h) h = high[j];
      if (low[j] < l) l = low[j];
      v += volume[j];
      j++;
    }
    const count = j - i;
    if (count === perBucket) {
      oT[m] = bucket;
      oO[m] = o;
      oH[m] = h;
      oL[m] = l;
      oC[m] = close[j - 1];
      oV[m] = v;
      m++;
    } else {
      incomplete.push({ openTime: bucket, present: count, expected: perBucket });
    }
    i = j;
  }
  const result =
    m === out.openTime.length
      ? out
      : makeCandles(candles.symbol, target, {
          openTime: oT.slice(0, m),
          open: oO.slice(0, m),
          high: oH.slice(0, m),
          low: oL.slice(0, m),
          close: oC.slice(0, m),
          volume: oV.slice(0, m),
        });
  return { candles: result, derived: true, from: candles.timeframe, incomplete };
}
