// Real Binance candles from ../shared/data (through shared-data.ts), cut to a span, for the live
// and streaming tests. Reads each file once per test file; never writes or alters the data.

import type { Candles, Timeframe } from '../../src/data-processing/candles.js';
import { sliceByTime } from '../../src/data-processing/candles.js';
import { readCandlesCsv } from '../../src/data-processing/file-formats.js';
import { sharedFile } from './shared-data.js';

const cache = new Map<string, Promise<Candles>>();

/** Every candle of `pair` (e.g. `BTCUSDT`) at `tf`, as the symbol `BTC/USDT`. */
export function realCandles(pair: string, tf: Timeframe): Promise<Candles> {
  const key = `${pair}-${tf}`;
  let p = cache.get(key);
  if (p === undefined) {
    p = readCandlesCsv(sharedFile(`binance-${key}.csv.gz`), {
      symbol: `${pair.slice(0, -4)}/${pair.slice(-4)}`,
      timeframe: tf,
    }).then((r) => r.candles);
    cache.set(key, p);
  }
  return p;
}

/** The candles of each timeframe with open time in [fromMs, toMs). */
export async function realSpan(
  pair: string,
  timeframes: readonly Timeframe[],
  fromMs: number,
  toMs: number,
): Promise<Map<Timeframe, Candles>> {
  const out = new Map<Timeframe, Candles>();
  for (const tf of timeframes) {
    out.set(tf, sliceByTime(await realCandles(pair, tf), fromMs, toMs));
  }
  return out;
}
