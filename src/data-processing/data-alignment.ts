// Multi-timeframe alignment without look-ahead. For base row i (the finest timeframe), a higher
// timeframe contributes only the last candle whose close time is <= the close time of row i
// (`lastClosed`), or, in forming mode, the candle in progress built only from base rows up to i.
// Nothing here ever reads a candle that closes after the decision time, and nothing is backfilled.

import type { Candles, Timeframe } from './candles.js';

/** How higher timeframes are seen from a base row. */
export type AlignmentMode = 'last-closed' | 'forming';

/** One higher timeframe aligned to the base rows. */
export interface AlignedTimeframe {
  readonly timeframe: Timeframe;
  /** The higher timeframe's own candles (complete candles only). */
  readonly candles: Candles;
  /**
   * For each base row i: index into `candles` of the last candle whose close time is <= the close
   * time of base row i, or -1 when there is none yet.
   */
  readonly lastClosed: Int32Array;
  /**
   * For each base row i: base rows elapsed since that candle closed (0 on the base row where it
   * closes), or -1 when `lastClosed[i]` is -1. Grows across gaps; never borrows a later candle.
   */
  readonly staleness: Int32Array;
  /**
   * Forming mode only: for each base row i, the higher candle in progress built from base rows up
   * to i (openTime = the bucket's open). Equal to the closed candle on the row where it closes.
   */
  readonly forming?: Candles;
}

/** The base timeframe's candles plus every higher timeframe aligned to them. */
export interface AlignedFrames {
  readonly mode: AlignmentMode;
  /** The finest (decision) timeframe's candles. */
  readonly base: Candles;
  /** Higher timeframes, finest first. */
  readonly higher: readonly AlignedTimeframe[];
}
