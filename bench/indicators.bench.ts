// Benchmark of the indicator hot path: `indicators.rsi_macd_bb_atr_1m` = RSI14 + MACD(12,26,9) +
// BB(20,2) + ATR14 over 1M random-walk candles (seeded), outputs preallocated once so the timed
// work allocates nothing per row. Target: <= 32 ms (pandas 1.5 on this machine: 322 ms).

import { Rng } from '../src/utils/random.js';
import { atr, bollingerBands, macd, rsi } from '../src/data-processing/indicators.js';
import { report, timeBest } from './lib.js';

const N = 1_000_000;
const rng = new Rng(20240401);
const high = new Float64Array(N);
const low = new Float64Array(N);
const close = new Float64Array(N);
let price = 30_000;
for (let i = 0; i < N; i++) {
  const open = price;
  price *= Math.exp(0.002 * rng.normal());
  const spread = price * 0.001 * Math.abs(rng.normal());
  close[i] = price;
  high[i] = Math.max(open, price) + spread;
  low[i] = Math.min(open, price) - spread;
}

const rsiOut = new Float64Array(N);
const macdOut = {
  macd: new Float64Array(N),
  signal: new Float64Array(N),
  histogram: new Float64Array(N),
};
// The bands themselves (as pandas computes them); %B and bandwidth are computed only when asked.
const bbOut = {
  upper: new Float64Array(N),
  middle: new Float64Array(N),
  lower: new Float64Array(N),
};
const atrOut = new Float64Array(N);

const ms = await timeBest(
  () => {
    rsi(close, 14, rsiOut);
    macd(close, { fastPeriod: 12, slowPeriod: 26, signalPeriod: 9 }, macdOut);
    bollingerBands(close, { period: 20, stdDevUp: 2, stdDevDown: 2 }, bbOut);
    atr(high, low, close, 14, atrOut);
  },
  40,
  3,
);
report('indicators.rsi_macd_bb_atr_1m', ms, 'ms', false, {
  rows: N,
  rsi: 14,
  macd: [12, 26, 9],
  bb: [20, 2],
  atr: 14,
  targetMs: 32,
});
