// Candle helpers shared by the test suites: plain-array views of columnar candles, for
// comparisons that print readably when they fail. Never builds or alters candles.

import type { Candles } from '../../src/data-processing/candles.js';

/** The candles as `[openTime, open, high, low, close, volume]` rows. */
export function candleRows(c: Candles): number[][] {
  return Array.from(c.openTime, (t, i) => [
    t,
    c.open[i],
    c.high[i],
    c.low[i],
    c.close[i],
    c.volume[i],
  ]);
}
