// Multi-timeframe alignment without look-ahead. For base row i (the finest timeframe), a higher
// timeframe contributes only the last candle whose close time is <= the close time of row i
// (`lastClosed`), or, in forming mode, the candle in progress built only from base rows up to i.
// Nothing here ever reads a candle that closes after the decision time, and nothing is backfilled.

import { DataValidationError } from '../errors.js';
import { allocateCandles, TIMEFRAME_MS, type Candles, type Timeframe } from './candles.js';

/** How higher timeframes are seen from a base row. */
export type AlignmentMode = 'last-closed' | 'forming';

/** One higher timeframe aligned to the base rows. */
export interface AlignedTimeframe {
  /** The higher timeframe. */
  readonly timeframe: Timeframe;
  /** The higher timeframe's own candles (complete candles only). */
  readonly candles: Candles;
  /**
   * For each base row i: index into `candles` of the last candle whose close time is <= the close
   * time of base row i, or -1 when there is none yet.
   */
  readonly lastClosed: Int32Array;
  /**
   * For each base row i: base bars (of time, `timeframeMs(base)` each) elapsed since that candle
   * closed (0 on the base row where it closes), or -1 when `lastClosed[i]` is -1. Grows across
   * gaps; never borrows a later candle.
   */
  readonly staleness: Int32Array;
  /**
   * Forming mode only: for each base row i, the higher candle in progress built from base rows up
   * to i (openTime = the bucket's open). Equal to the closed candle on the row where it closes.
   */
  readonly forming?: Candles;
  /**
   * Forming mode only: for each base row i, index into `candles` of the last candle that closed at
   * or before the open of row i's bucket (the candle in progress is not counted), or -1. A window
   * in forming mode is `candles[formingPrev[i] - length + 2 ... formingPrev[i]]` followed by
   * `forming[i]`; on the row where a candle closes this is exactly the last-closed window.
   */
  readonly formingPrev?: Int32Array;
}

/** The base timeframe's candles plus every higher timeframe aligned to them. */
export interface AlignedFrames {
  /** How higher timeframes are seen from a base row (last closed candle, or the one forming). */
  readonly mode: AlignmentMode;
  /** The finest (decision) timeframe's candles. */
  readonly base: Candles;
  /** Higher timeframes, finest first. */
  readonly higher: readonly AlignedTimeframe[];
}

/** Candles keyed by timeframe: a Map (as `loadHistoricalData` returns) or a plain record. */
export type CandlesByTimeframe =
  ReadonlyMap<Timeframe, Candles> | Readonly<Partial<Record<Timeframe, Candles>>>;

/** Options of `alignTimeframes`. */
export interface AlignOptions {
  /** `last-closed` (default) or `forming` (also builds the candle in progress per base row). */
  mode?: AlignmentMode;
}

/** The entries of a `CandlesByTimeframe`, finest timeframe first. */
export function timeframeEntries(candlesByTf: CandlesByTimeframe): Array<[Timeframe, Candles]> {
  const entries: Array<[Timeframe, Candles]> = [];
  if (candlesByTf instanceof Map) {
    for (const [tf, c] of candlesByTf as ReadonlyMap<Timeframe, Candles>) entries.push([tf, c]);
  } else {
    const rec = candlesByTf as Readonly<Partial<Record<Timeframe, Candles>>>;
    for (const tf of Object.keys(rec) as Timeframe[]) {
      const c = rec[tf];
      if (c !== undefined) entries.push([tf, c]);
    }
  }
  for (const [tf] of entries) {
    if (TIMEFRAME_MS[tf] === undefined)
      throw new DataValidationError({ field: 'timeframe', reason: `unknown timeframe "${tf}"` });
  }
  return entries.sort((a, b) => TIMEFRAME_MS[a[0]] - TIMEFRAME_MS[b[0]]);
}

/**
 * Aligns higher timeframes to the finest one (the base, on whose rows decisions are made).
 *
 * For base row i with close time `t_i = openTime[i] + timeframeMs(base)`, `lastClosed[i]` is the
 * last higher candle with `openTime + timeframeMs(tf) <= t_i`: the 08:00 4h candle (closing 12:00)
 * first appears on the 15m row that opens at 11:45. A missing higher candle is never replaced by
 * a later one: the previous one stays, and `staleness` counts the base bars since it closed.
 * In `forming` mode each higher timeframe also carries, per base row, the candle in progress
 * aggregated from the base rows of its bucket up to i (and, on the row where a higher candle
 * closes and that candle exists, that candle itself, so both modes agree exactly there).
 * Runs in O(rows) per timeframe; reads only open times in last-closed mode.
 * @throws {DataValidationError} when no timeframe is given, when candles are labelled with another
 * timeframe than their key, or when a higher timeframe is not a whole multiple of the base.
 * @example
 * const aligned = alignTimeframes(data.get('BTC/USDT')!, { mode: 'last-closed' });
 * const h4 = aligned.higher[0]; // 4h
 * const idx = h4.lastClosed[i]; // 4h candle known at 15m row i's close, or -1
 */
export function alignTimeframes(
  candlesByTf: CandlesByTimeframe,
  options: AlignOptions = {},
): AlignedFrames {
  const mode: AlignmentMode = options.mode ?? 'last-closed';
  if (mode !== 'last-closed' && mode !== 'forming')
    throw new DataValidationError({
      field: 'mode',
      reason: `unknown alignment mode "${String(mode)}" (last-closed | forming)`,
    });
  const entries = timeframeEntries(candlesByTf);
  if (entries.length === 0)
    throw new DataValidationError({ field: 'timeframe', reason: 'no timeframes to align' });
  for (const [tf, c] of entries) {
    if (c.timeframe !== tf)
      throw new DataValidationError({
        source: c.symbol,
        field: 'timeframe',
        reason: `candles keyed ${tf} are labelled ${c.timeframe}`,
      });
  }
  const [baseTf, base] = entries[0];
  const baseMs = TIMEFRAME_MS[baseTf];
  const higher: AlignedTimeframe[] = [];
  for (let e = 1; e < entries.length; e++) {
    const [tf, candles] = entries[e];
    const tfMs = TIMEFRAME_MS[tf];
    if (tfMs === baseMs)
      throw new DataValidationError({
        source: candles.symbol,
        field: 'timeframe',
        reason: `timeframe ${tf} given twice`,
      });
    if (tfMs % baseMs !== 0)
      throw new DataValidationError({
        source: candles.symbol,
        field: 'timeframe',
        reason: `${tf} is not a whole multiple of the base timeframe ${baseTf}`,
      });
    higher.push(alignOne(base, baseMs, tf, candles, mode));
  }
  return Object.freeze({ mode, base, higher: Object.freeze(higher) });
}

function alignOne(
  base: Candles,
  baseMs: number,
  tf: Timeframe,
  candles: Candles,
  mode: AlignmentMode,
): AlignedTimeframe {
  const tfMs = TIMEFRAME_MS[tf];
  const n = base.openTime.length;
  const m = candles.openTime.length;
  const bOpen = base.openTime;
  const hOpen = candles.openTime;
  const lastClosed = new Int32Array(n);
  const staleness = new Int32Array(n);
  // Two pointers: j = number of higher candles closed by base row i's close.
  let j = 0;
  for (let i = 0; i < n; i++) {
    const closeTime = bOpen[i] + baseMs;
    while (j < m && hOpen[j] + tfMs <= closeTime) j++;
    const k = j - 1;
    lastClosed[i] = k;
    staleness[i] = k < 0 ? -1 : Math.round((closeTime - (hOpen[k] + tfMs)) / baseMs);
  }
  if (mode === 'last-closed')
    return Object.freeze({ timeframe: tf, candles, lastClosed, staleness });

  const forming = allocateCandles(candles.symbol, tf, n);
  const formingPrev = new Int32Array(n);
  const fT = forming.openTime;
  const fO = forming.open;
  const fH = forming.high;
  const fL = forming.low;
  const fC = forming.close;
  const fV = forming.volume;
  const { open, high, low, close, volume } = base;
  let bucket = NaN;
  let o = 0;
  let h = 0;
  let l = 0;
  let v = 0;
  let p = 0; // number of higher candles closed at or before the current bucket's open
  let q = 0; // index of the higher candle whose open is >= the current bucket's open
  for (let i = 0; i < n; i++) {
    const t = bOpen[i];
    const b = t - (((t % tfMs) + tfMs) % tfMs);
    if (b !== bucket) {
      bucket = b;
      o = open[i];
      h = high[i];
      l = low[i];
      v = volume[i];
      while (p < m && hOpen[p] + tfMs <= b) p++;
      while (q < m && hOpen[q] < b) q++;
    } else {
      if (high[i] > h) h = high[i];
      if (low[i] < l) l = low[i];
      v += volume[i];
    }
    formingPrev[i] = p - 1;
    fT[i] = b;
    if (t + baseMs === b + tfMs && q < m && hOpen[q] === b) {
      // The row where the higher candle closes: the candle itself, so both modes agree exactly.
      fO[i] = candles.open[q];
      fH[i] = candles.high[q];
      fL[i] = candles.low[q];
      fC[i] = candles.close[q];
      fV[i] = candles.volume[q];
    } else {
      fO[i] = o;
      fH[i] = h;
      fL[i] = l;
      fC[i] = close[i];
      fV[i] = v;
    }
  }
  return Object.freeze({ timeframe: tf, candles, lastClosed, staleness, forming, formingPrev });
}
